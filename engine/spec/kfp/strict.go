package kfp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"

	"github.com/skiffml/skiff/engine/spec"
)

// maxNodes bounds the YAML nodes a file may expand to (aliases included).
const maxNodes = 1 << 21

// yamlDocs reads every document of a YAML (or JSON) stream as generic
// values: maps, lists, strings, bools, json.Number and nil. Scalars follow
// YAML 1.2 (only true/false are booleans). Duplicate keys and merge keys
// are errors.
func yamlDocs(data []byte) ([]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	c := &yamlConv{}
	var docs []any
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
		}
		v, err := c.value(&n)
		if err != nil {
			return nil, err
		}
		if v != nil {
			docs = append(docs, v)
		}
	}
}

type yamlConv struct{ nodes int }

func (c *yamlConv) value(n *yaml.Node) (any, error) {
	c.nodes++
	if c.nodes > maxNodes {
		return nil, fmt.Errorf("the file expands to more than %d YAML nodes", maxNodes)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0])
	case yaml.AliasNode:
		return c.value(n.Alias)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := c.value(e)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, vn := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.AliasNode {
				k = k.Alias
			}
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: a mapping key must be a plain value", k.Line)
			}
			if k.Tag == "!!merge" {
				return nil, fmt.Errorf("line %d: merge keys (<<) are not supported", k.Line)
			}
			if _, dup := out[k.Value]; dup {
				return nil, fmt.Errorf("line %d: key %q appears twice", k.Line, k.Value)
			}
			v, err := c.value(vn)
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		return out, nil
	case yaml.ScalarNode:
		return scalar(n)
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

func scalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		return b, nil
	case "!!int":
		if i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
			return json.Number(strconv.FormatInt(i, 10)), nil
		}
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("line %d: integer %s out of range", n.Line, n.Value)
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return nil, fmt.Errorf("line %d: %v", n.Line, err)
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("line %d: %s is not a finite number", n.Line, n.Value)
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, 64)), nil
	case "!!str", "!!binary", "!!timestamp":
		return n.Value, nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML tag %s", n.Line, n.Tag)
}

// checker walks a generic document along an IR type: it reports unknown
// and unsupported fields and values of the wrong JSON kind, and returns the
// document without the fields it reported, ready to decode.
type checker struct {
	lenient bool
	errs    []spec.FieldError
	warns   []Warning
}

// Warning is a problem that lenient parsing (or compiling) let through.
type Warning struct {
	Path string `json:"path"`
	Msg  string `json:"message"`
}

func (w Warning) String() string {
	if w.Path == "" {
		return w.Msg
	}
	return w.Path + ": " + w.Msg
}

func (c *checker) fail(path, msg string) {
	c.errs = append(c.errs, spec.FieldError{Path: path, Msg: msg})
}

// dropped reports a field that strict parsing rejects and lenient parsing
// ignores.
func (c *checker) dropped(path, msg string) {
	if c.lenient {
		c.warns = append(c.warns, Warning{Path: path, Msg: msg + " (ignored)"})
		return
	}
	c.fail(path, msg)
}

var rawType = reflect.TypeOf(json.RawMessage(nil))
var numberType = reflect.TypeOf(json.Number(""))

// irField is a struct field as the checker sees it.
type irField struct {
	name        string
	typ         reflect.Type
	unsupported string // what is unsupported, or ""
}

var fieldCache sync.Map // reflect.Type -> map[string]irField

func structFields(t reflect.Type) map[string]irField {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]irField)
	}
	m := make(map[string]irField, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		fd := irField{name: name, typ: f.Type}
		if tag, ok := f.Tag.Lookup("kfp"); ok {
			if what, ok := strings.CutPrefix(tag, "unsupported,"); ok {
				fd.unsupported = what
			}
		}
		m[name] = fd
	}
	fieldCache.Store(t, m)
	return m
}

// walk checks v against t at path and returns v without dropped fields.
func (c *checker) walk(path string, v any, t reflect.Type) any {
	if v == nil {
		return nil
	}
	if t == rawType {
		return v
	}
	if t == numberType {
		switch x := v.(type) {
		case json.Number:
			return x
		case string: // proto JSON writes int64 as a string
			if _, err := strconv.ParseFloat(x, 64); err == nil {
				return json.Number(x)
			}
		}
		c.fail(path, "expected a number, got "+describe(v))
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return c.walk(path, v, t.Elem())
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			c.fail(path, "expected an object, got "+describe(v))
			return nil
		}
		fields := structFields(t)
		out := make(map[string]any, len(m))
		for _, k := range sortedKeys(m) {
			fp := key(path, k)
			f, ok := fields[k]
			switch {
			case !ok:
				c.dropped(fp, "unknown field")
			case f.unsupported != "" && !empty(m[k]):
				c.dropped(fp, "unsupported: "+f.unsupported)
			case f.unsupported != "":
			default:
				out[k] = c.walk(fp, m[k], f.typ)
			}
		}
		return out
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			c.fail(path, "expected an object, got "+describe(v))
			return nil
		}
		out := make(map[string]any, len(m))
		for _, k := range sortedKeys(m) {
			out[k] = c.walk(key(path, k), m[k], t.Elem())
		}
		return out
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			c.fail(path, "expected a list, got "+describe(v))
			return nil
		}
		out := make([]any, len(l))
		for i, e := range l {
			out[i] = c.walk(fmt.Sprintf("%s[%d]", path, i), e, t.Elem())
		}
		return out
	case reflect.String:
		if _, ok := v.(string); !ok {
			c.fail(path, "expected a string, got "+describe(v))
			return nil
		}
		return v
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			c.fail(path, "expected true or false, got "+describe(v))
			return nil
		}
		return v
	case reflect.Int, reflect.Int64:
		n, ok := v.(json.Number)
		if ok {
			if _, err := strconv.ParseInt(string(n), 10, 64); err == nil {
				return v
			}
		}
		c.fail(path, "expected an integer, got "+describe(v))
		return nil
	case reflect.Float64:
		if _, ok := v.(json.Number); !ok {
			c.fail(path, "expected a number, got "+describe(v))
			return nil
		}
		return v
	}
	c.fail(path, fmt.Sprintf("internal: no rule for %s", t))
	return nil
}

// empty reports whether v is absent in effect: null, an empty list or an
// empty object.
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		s := v
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return "string " + strconv.Quote(s)
	case bool:
		return "bool " + strconv.FormatBool(v)
	case json.Number:
		return "number " + string(v)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// key renders a map key as a path element: `.name` for plain names,
// `["odd key"]` otherwise.
func key(path, k string) string {
	plain := k != ""
	for i := 0; i < len(k) && plain; i++ {
		c := k[i]
		plain = c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	if plain {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	return path + "[" + strconv.Quote(k) + "]"
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
