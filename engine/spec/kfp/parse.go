package kfp

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/skiffml/skiff/engine/spec"
)

// Options tune parsing and compiling.
type Options struct {
	// Lenient continues past unknown fields and unsupported features: each
	// becomes a Warning and is ignored, instead of an error.
	Lenient bool
	// Kube: the steps run on the kube executor, which applies the
	// kubernetes platform's settings; no warning says they are only kept.
	Kube bool
}

// Document is a parsed compiled pipeline: its PipelineSpec and optional
// PlatformSpec.
type Document struct {
	Pipeline *PipelineSpec
	Platform *PlatformSpec
}

// Parse reads a compiled pipeline: a YAML (or JSON) stream holding a
// PipelineSpec, optionally followed by a PlatformSpec. Every problem is
// reported in one *spec.ValidationError whose paths name the field, e.g.
// `deploymentSpec.executors.exec-x.resolver: unsupported: resolver
// executors`; paths in the PlatformSpec start with `platforms`.
func Parse(data []byte, opts Options) (*Document, []Warning, error) {
	docs, err := spec.YAMLDocuments(data)
	if err != nil {
		return nil, nil, spec.YAMLError(err)
	}
	switch len(docs) {
	case 0:
		return nil, nil, invalid("", "empty file: expected a KFP PipelineSpec")
	case 1, 2:
	default:
		return nil, nil, invalid("", fmt.Sprintf("%d YAML documents: expected a PipelineSpec and at most a PlatformSpec", len(docs)))
	}
	var platform any
	if len(docs) == 2 {
		platform = docs[1]
	}
	return ParseValues(docs[0], platform, opts)
}

// ParseValues is Parse for documents already decoded from JSON or YAML
// (numbers as json.Number or float64): a PipelineSpec and a PlatformSpec
// (nil when there is none). The API uses it for pipeline_spec and
// platform_spec.
func ParseValues(pipeline, platform any, opts Options) (*Document, []Warning, error) {
	pipeline, platform = normalize(pipeline), normalize(platform)
	c := &checker{lenient: opts.Lenient}
	pm, ok := pipeline.(map[string]any)
	if !ok {
		return nil, nil, invalid("", "expected a KFP PipelineSpec object, got "+describe(pipeline))
	}
	if _, ok := pm["platforms"]; ok {
		return nil, nil, invalid("", "the first document is a PlatformSpec; a PipelineSpec must come first")
	}
	doc := &Document{Pipeline: &PipelineSpec{}}
	c.decode("", pm, doc.Pipeline)
	if platform != nil {
		doc.Platform = &PlatformSpec{}
		c.decode("", platform, doc.Platform)
		c.checkPlatform(doc.Platform)
	}
	if len(c.errs) == 0 {
		c.checkRequired(doc.Pipeline)
	}
	if len(c.errs) > 0 {
		return nil, c.warns, &spec.ValidationError{Errors: c.errs}
	}
	return doc, c.warns, nil
}

// decode checks v against the type of dst and decodes what passed.
func (c *checker) decode(path string, v any, dst any) {
	n := len(c.errs)
	clean := c.walk(path, v, reflect.TypeOf(dst).Elem())
	if len(c.errs) > n {
		return
	}
	b, err := json.Marshal(clean)
	if err == nil {
		err = json.Unmarshal(b, dst)
	}
	if err != nil {
		c.fail(path, err.Error())
	}
}

func (c *checker) checkPlatform(p *PlatformSpec) {
	for _, name := range sortedKeys(p.Platforms) {
		if name != "kubernetes" {
			c.dropped(key("platforms", name), "unsupported: the "+name+" platform (Skiff reads the kubernetes platform spec)")
			delete(p.Platforms, name)
		}
	}
}

// checkRequired reports the fields every pipeline needs.
func (c *checker) checkRequired(p *PipelineSpec) {
	if p.PipelineInfo == nil || p.PipelineInfo.Name == "" {
		c.fail("pipelineInfo.name", "required: the pipeline's name")
	}
	switch {
	case p.Root == nil:
		c.fail("root", "required: the pipeline's root component")
	case p.Root.DAG == nil:
		c.fail("root.dag", "required: the pipeline's DAG")
	}
	for _, name := range sortedKeys(p.Components) {
		if p.Components[name] == nil {
			c.fail(key("components", name), "expected a component, got null")
		}
	}
}

// normalize turns float64 numbers (from encoding/json without UseNumber)
// into json.Number so that the checker sees one kind of number.
func normalize(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return json.Number(strconv.FormatInt(int64(x), 10))
		}
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	}
	return v
}

func invalid(path, msg string) error {
	return &spec.ValidationError{Errors: []spec.FieldError{{Path: path, Msg: msg}}}
}
