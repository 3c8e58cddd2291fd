package executors

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/skiffml/skiff/engine/spec"
)

// MaxParamBytes is the largest parameter output file CollectOutputs reads.
// Parameters travel inline through the replicated store; anything larger
// belongs in an artifact.
const MaxParamBytes = 1 << 20

// PrepareRoot creates the layout of an execution's root on the host:
// inputs/, outputs/ and tmp/ (and hostRoot itself). PrepareRootFor makes
// only what a spec needs.
func PrepareRoot(hostRoot string) error { return prepareRoot(hostRoot, InputsDir, OutputsDir, TmpDir) }

// PrepareRootFor creates hostRoot with tmp/, and outputs/ when s declares
// outputs; inputs/ comes with the first input materialised. Directories
// cost a metadata write each, and an execution starts after all of them.
func PrepareRootFor(hostRoot string, s *Spec) error {
	if len(s.Outputs) > 0 {
		return prepareRoot(hostRoot, OutputsDir, TmpDir)
	}
	return prepareRoot(hostRoot, TmpDir)
}

func prepareRoot(hostRoot string, dirs ...string) error {
	if err := os.MkdirAll(hostRoot, 0o755); err != nil {
		return fmt.Errorf("prepare root: %w", err)
	}
	// Plain Mkdir: MkdirAll would stat each path first, and this runs once
	// per execution.
	for _, d := range dirs {
		if err := os.Mkdir(filepath.Join(hostRoot, d), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("prepare root: %w", err)
		}
	}
	return nil
}

// ParseParam turns the content of a parameter output file into the JSON
// value of type t:
//
//   - string: the raw text, with ONE trailing newline ("\n" or "\r\n")
//     removed, as `echo` writes it; anything else is kept. It must be UTF-8.
//   - int: a JSON integer (no fraction or exponent) that fits in int64.
//   - float: any JSON number.
//   - bool: true or false.
//   - list / object: a JSON array / object.
//
// Whitespace around JSON values is allowed. The result is compact JSON.
func ParseParam(t spec.Type, data []byte) (json.RawMessage, error) {
	if t == spec.TypeString {
		s := data
		if bytes.HasSuffix(s, []byte("\r\n")) {
			s = s[:len(s)-2]
		} else if bytes.HasSuffix(s, []byte("\n")) {
			s = s[:len(s)-1]
		}
		if !utf8.Valid(s) {
			return nil, errors.New("expected string, got bytes that are not UTF-8")
		}
		return json.Marshal(string(s))
	}
	if t.Kind() != spec.KindParameter {
		return nil, fmt.Errorf("%q is not a parameter type", t)
	}
	v := bytes.TrimSpace(data)
	if !json.Valid(v) {
		return nil, badParam(t, data)
	}
	var kind spec.Type
	switch c := v[0]; {
	case c == '[':
		kind = spec.TypeList
	case c == '{':
		kind = spec.TypeObject
	case c == 't' || c == 'f':
		kind = spec.TypeBool
	case c == '-' || (c >= '0' && c <= '9'):
		kind = spec.TypeFloat
	default: // a JSON string or null
		return nil, badParam(t, data)
	}
	switch {
	case kind == t:
	case t == spec.TypeInt && kind == spec.TypeFloat:
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return nil, badParam(t, data)
		}
		return json.RawMessage(strconv.FormatInt(n, 10)), nil
	default:
		return nil, badParam(t, data)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return nil, badParam(t, data)
	}
	return buf.Bytes(), nil
}

// ParseKFPParam turns the content of a KFP step's parameter output file
// into the JSON value of type t the way KFP's launcher reads it:
//
//   - string: the text as is, trailing newline included. It must be UTF-8.
//   - int: an integer (Go's strconv.ParseInt) after trimming white space.
//   - float: a number (Go's strconv.ParseFloat, finite) after trimming.
//   - bool: Go's strconv.ParseBool after trimming: 1, t, T, TRUE, true,
//     True, 0, f, F, FALSE, false, False (Python's str(True) included).
//   - list / object: a JSON array / object.
func ParseKFPParam(t spec.Type, data []byte) (json.RawMessage, error) {
	v := string(bytes.TrimSpace(data))
	switch t {
	case spec.TypeString:
		if !utf8.Valid(data) {
			return nil, errors.New("expected string, got bytes that are not UTF-8")
		}
		return json.Marshal(string(data))
	case spec.TypeInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, badParam(t, data)
		}
		return json.RawMessage(strconv.FormatInt(n, 10)), nil
	case spec.TypeFloat:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, badParam(t, data)
		}
		return json.Marshal(f)
	case spec.TypeBool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, badParam(t, data)
		}
		return json.Marshal(b)
	}
	return ParseParam(t, data)
}

func badParam(t spec.Type, data []byte) error {
	const max = 64
	got := string(data)
	if len(data) > max {
		got = string(data[:max]) + "..."
	}
	return fmt.Errorf("expected %s, got %q", t, got)
}

// executorOutput is the part of a KFP ExecutorOutput file Skiff reads.
type executorOutput struct {
	ParameterValues map[string]json.RawMessage `json:"parameterValues"`
	Artifacts       map[string]struct {
		Artifacts []eoArtifact `json:"artifacts"`
	} `json:"artifacts"`
}

// eoArtifact is an artifact of an ExecutorOutput file: kfp's Python
// executor writes custom_path (Artifact.set_path), protojson customPath.
type eoArtifact struct {
	URI         string          `json:"uri"`
	CustomPath  string          `json:"custom_path"`
	CustomPath2 string          `json:"customPath"`
	Metadata    json.RawMessage `json:"metadata"`
}

// fromExecutorOutput is what the ExecutorOutput file says of out: for a
// parameter, its value (done true); for an artifact, its metadata (compact;
// nil when none or empty, which must be a JSON object) and, when the step
// wrote no file for it, the artifact stored from that metadata's JSON
// (done true). The file is read once per CollectOutputs call, through the
// root; nothing is written under it.
func (c *collector) fromExecutorOutput(ctx context.Context, out OutputSpec) (v spec.Value, meta json.RawMessage, done bool, err error) {
	if !filepath.IsLocal(out.ExecutorOutput) {
		return v, nil, false, fmt.Errorf("executor output file %q must be a relative path", out.ExecutorOutput)
	}
	eo, ok := c.eo[out.ExecutorOutput]
	if !ok {
		data, err := c.readParam(out.ExecutorOutput)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return v, nil, false, fmt.Errorf("executor output file: %w", err)
		}
		if err == nil {
			eo = &executorOutput{}
			if err := json.Unmarshal(data, eo); err != nil {
				return v, nil, false, fmt.Errorf("executor output file: %w", err)
			}
		}
		c.eo[out.ExecutorOutput] = eo // nil when the step wrote none
	}
	if eo == nil {
		return v, nil, false, nil
	}
	key := out.Key
	if key == "" {
		key = out.Name
	}
	switch out.Type.Kind() {
	case spec.KindParameter:
		raw, ok := eo.ParameterValues[key]
		if !ok {
			return v, nil, false, nil
		}
		text, err := paramFileText(out.Type, raw)
		if err != nil {
			return v, nil, false, err
		}
		param, err := ParseParam(out.Type, text)
		return spec.Value{Param: param}, nil, err == nil, err
	case spec.KindArtifact:
		arts := eo.Artifacts[key].Artifacts
		if len(arts) == 0 {
			return v, nil, false, nil
		}
		meta, err := metadataObject(arts[0].Metadata)
		if err != nil {
			return v, nil, false, fmt.Errorf("executor output file: artifacts.%s.artifacts[0].metadata: %w", key, err)
		}
		name, err := movedArtifact(out, key, arts[0])
		if err != nil || name != "" {
			if err == nil {
				v, err = c.putArtifact(ctx, out, name, meta)
			}
			return v, nil, err == nil, err
		}
		// No metadata: the step must write the file, except a metrics
		// artifact, whose content is its metadata (none logged: {}).
		if meta == nil && out.Type != spec.TypeMetrics && out.Type != spec.TypeClassificationMetrics {
			return v, nil, false, nil
		}
		if meta == nil && len(arts[0].Metadata) == 0 {
			return v, nil, false, nil
		}
		if _, err := c.root.Lstat(outputName(out)); !errors.Is(err, fs.ErrNotExist) {
			return v, meta, false, nil // the step wrote the artifact itself
		}
		ref, err := c.blobs.Put(ctx, bytes.NewReader(arts[0].Metadata))
		if err != nil {
			return v, nil, false, err
		}
		ref.Type, ref.Metadata = out.Type, meta
		return spec.Value{Artifact: &ref}, nil, true, nil
	}
	return v, nil, false, nil
}

// movedArtifact is where, relative to the root, the step wrote artifact
// out when its ExecutorOutput entry a moved it (a custom_path, or a uri
// other than the output's own path); "" when it did not. A place outside
// the execution's root is an error: Skiff reads outputs only from there.
func movedArtifact(out OutputSpec, key string, a eoArtifact) (string, error) {
	p, field := a.CustomPath, "custom_path"
	if p == "" {
		p, field = a.CustomPath2, "customPath"
	}
	if p == "" {
		p, field = strings.TrimPrefix(a.URI, "file://"), "uri"
	}
	if p == "" || out.StepRoot == "" || path.Clean(p) == path.Join(out.StepRoot, outputName(out)) {
		return "", nil
	}
	rel, ok := strings.CutPrefix(path.Clean(p), path.Clean(out.StepRoot)+"/")
	if !ok || !filepath.IsLocal(rel) {
		return "", fmt.Errorf("executor output file: artifacts.%s.artifacts[0].%s: %q is outside the execution's root %s, where Skiff reads outputs: write the artifact under it (dsl.get_uri(), or the output's own path)", key, field, p, out.StepRoot)
	}
	return rel, nil
}

// metadataObject checks that raw, an artifact's metadata, is a JSON object
// and returns it compact; nil for none (absent, null or {}).
func metadataObject(raw json.RawMessage) (json.RawMessage, error) {
	v := bytes.TrimSpace(raw)
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return nil, nil
	}
	if v[0] != '{' {
		return nil, fmt.Errorf("expected a JSON object, got %s", shortJSON(v))
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return nil, err
	}
	if buf.String() == "{}" {
		return nil, nil
	}
	return buf.Bytes(), nil
}

func shortJSON(v []byte) string {
	const max = 64
	if len(v) > max {
		return string(v[:max]) + "..."
	}
	return string(v)
}

// paramFileText turns a JSON parameter value of an ExecutorOutput into the
// text ParseParam reads for type t: a string's text, an integral number
// (JSON numbers are doubles there: 3.0) for an int, the JSON otherwise.
func paramFileText(t spec.Type, v json.RawMessage) ([]byte, error) {
	switch t {
	case spec.TypeString:
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, badParam(t, v)
		}
		return []byte(s + "\n"), nil // ParseParam drops one newline; keep a trailing one of s
	case spec.TypeInt:
		var f float64
		if err := json.Unmarshal(v, &f); err != nil || f != float64(int64(f)) {
			return nil, badParam(t, v)
		}
		return []byte(strconv.FormatInt(int64(f), 10)), nil
	}
	return v, nil
}
