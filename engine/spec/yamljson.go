package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Bounds on what a YAML (or JSON) stream may expand to, aliases included,
// so that a small file cannot blow up into a huge one: an alias counts
// again (with all it names) each time it is used.
const (
	// MaxYAMLExpandedBytes bounds the bytes of every key and scalar value
	// of the expanded stream (about its size as JSON).
	MaxYAMLExpandedBytes = 32 << 20
	// MaxYAMLAliases bounds how many times aliases are expanded (an alias
	// inside an expanded alias counts at each expansion).
	MaxYAMLAliases = 10_000
	// MaxYAMLNodes bounds the nodes of the expanded stream.
	MaxYAMLNodes = 1 << 21
)

// yamlValue reads one YAML document as generic values (maps, lists,
// strings, bools, json.Number and nil: what a JSON decoder with UseNumber
// makes of the same document as JSON) with YAML 1.2 scalar rules: only
// true/false are booleans, so a key or value such as `n`, `y`, `no` or
// `on` stays a string (YAML 1.1 would make it a bool). Duplicate keys,
// merge keys and several documents in one file are errors; an empty
// document is nil.
func yamlValue(data []byte) (any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil, fmt.Errorf("line %d: a second YAML document; a file holds one pipeline", extra.Line)
	}
	return newYAMLConv(defaultYAMLLimits).value(&doc)
}

// YAMLError makes an error of YAMLDocuments a *ValidationError (one that
// unwraps to ErrTooLarge for a document over a limit).
func YAMLError(err error) *ValidationError {
	var le *LimitError
	if errors.As(err, &le) {
		return TooLarge("", "invalid YAML: the document ", le)
	}
	return &ValidationError{Errors: []FieldError{{Msg: "invalid YAML: " + err.Error()}}}
}

// YAMLDocuments reads every document of a YAML (or JSON) stream as generic
// values — maps, lists, strings, bools, json.Number and nil — with the
// rules of yamlValue (YAML 1.2 scalars; duplicate and merge keys are
// errors). Empty documents are left out. A stream over one of the
// bounds above is a *LimitError.
func YAMLDocuments(data []byte) ([]any, error) {
	return yamlDocuments(data, defaultYAMLLimits)
}

func yamlDocuments(data []byte, l yamlLimits) ([]any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	c := newYAMLConv(l)
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

// yamlLimits are the bounds a conversion works within.
type yamlLimits struct{ nodes, bytes, aliases int64 }

var defaultYAMLLimits = yamlLimits{nodes: MaxYAMLNodes, bytes: MaxYAMLExpandedBytes, aliases: MaxYAMLAliases}

// yamlConv converts nodes to values within limits shared by every document
// of a stream; left is what remains of them.
type yamlConv struct{ limits, left yamlLimits }

func newYAMLConv(l yamlLimits) *yamlConv { return &yamlConv{limits: l, left: l} }

// spend takes a node of n bytes from the budget.
func (c *yamlConv) spend(n int) error {
	const hint = "counting each use of an alias"
	c.left.nodes--
	c.left.bytes -= int64(n) + 1
	switch {
	case c.left.nodes < 0:
		return &LimitError{Limit: "YAML node", Max: c.limits.nodes, Unit: "nodes", Hint: hint}
	case c.left.bytes < 0:
		return &LimitError{Limit: "YAML expanded size", Max: c.limits.bytes, Unit: "bytes", Hint: hint}
	}
	return nil
}

func (c *yamlConv) value(n *yaml.Node) (any, error) {
	if err := c.spend(len(n.Value)); err != nil {
		return nil, err
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0])
	case yaml.AliasNode:
		if c.left.aliases--; c.left.aliases < 0 {
			return nil, &LimitError{Limit: "YAML alias", Max: c.limits.aliases, Unit: "aliases", Hint: "counting each expansion, nested ones included"}
		}
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
			if err := c.spend(len(k.Value)); err != nil {
				return nil, err
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
		var i int64
		if err := n.Decode(&i); err != nil {
			return nil, fmt.Errorf("line %d: integer %s out of range", n.Line, n.Value)
		}
		return json.Number(strconv.FormatInt(i, 10)), nil
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
