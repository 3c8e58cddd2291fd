package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// normValue checks that raw is a JSON value of parameter type t and returns
// it in canonical form (compact; an int without fraction or exponent).
func normValue(t Type, raw json.RawMessage) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, fmt.Errorf("expected %s, got invalid JSON %s", t, shorten(string(raw)))
	}
	bad := func() error { return fmt.Errorf("expected %s, got %s", t, describe(v)) }
	switch t {
	case TypeString:
		if _, ok := v.(string); !ok {
			return nil, bad()
		}
	case TypeBool:
		if _, ok := v.(bool); !ok {
			return nil, bad()
		}
	case TypeList:
		if _, ok := v.([]any); !ok {
			return nil, bad()
		}
	case TypeObject:
		if _, ok := v.(map[string]any); !ok {
			return nil, bad()
		}
	case TypeInt:
		n, ok := v.(json.Number)
		if !ok {
			return nil, bad()
		}
		i, err := jsonInt(n)
		if err != nil {
			return nil, fmt.Errorf("expected int, got %s", n)
		}
		return json.RawMessage(strconv.FormatInt(i, 10)), nil
	case TypeFloat:
		n, ok := v.(json.Number)
		if !ok {
			return nil, bad()
		}
		if f, err := n.Float64(); err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("expected float, got out-of-range number %s", n)
		}
	default:
		if t.Kind() == KindArtifact {
			return nil, fmt.Errorf("type %s is an artifact type and takes no literal value", t)
		}
		return nil, fmt.Errorf("unknown type %q", t)
	}
	var b, esc bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, bad()
	}
	json.HTMLEscape(&esc, b.Bytes()) // as json.Marshal writes it
	return esc.Bytes(), nil
}

// jsonInt reads an integral JSON number (5, -3, 5.0, 1e3) as an int64.
func jsonInt(n json.Number) (int64, error) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.Trunc(f) != f || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("not an int")
	}
	return int64(f), nil
}

// describe names the JSON type of v for error messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "string " + strconv.Quote(shorten(v))
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

// parseParamText reads a parameter given as text (`-p name=value`): a
// string is taken raw, int, float and bool are parsed, list and object are
// JSON.
func parseParamText(t Type, s string) (json.RawMessage, error) {
	switch t {
	case TypeString:
		b, _ := json.Marshal(s)
		return b, nil
	case TypeInt:
		i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("expected int, got %q", s)
		}
		return json.RawMessage(strconv.FormatInt(i, 10)), nil
	case TypeFloat:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("expected float, got %q", s)
		}
		b, _ := json.Marshal(f)
		return b, nil
	case TypeBool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("expected bool (true or false), got %q", s)
		}
		return json.RawMessage(strconv.FormatBool(b)), nil
	case TypeList, TypeObject:
		v, err := normValue(t, json.RawMessage(s))
		if err != nil {
			return nil, fmt.Errorf("expected %s as JSON, got %q", t, shorten(s))
		}
		return v, nil
	}
	return nil, fmt.Errorf("parameter has unknown type %q", t)
}

// ResolveParams turns parameter values given as text (`-p name=value`)
// into JSON values, parsed by each parameter's declared type, and applies
// defaults. It returns a value for every declared parameter, or a
// *ValidationError naming `parameters.NAME` for an unknown name, a missing
// required parameter or a bad value.
func (p *Plan) ResolveParams(given map[string]string) (map[string]json.RawMessage, error) {
	return resolveParams(p, given, parseParamText)
}

// ResolveParamValues is ResolveParams for values already in JSON: it checks
// each against its parameter's type, normalises it and applies defaults.
func (p *Plan) ResolveParamValues(given map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	return resolveParams(p, given, normValue)
}

// resolveParams parses each given value by its parameter's type with parse,
// then applies defaults.
func resolveParams[V any](p *Plan, given map[string]V, parse func(Type, V) (json.RawMessage, error)) (map[string]json.RawMessage, error) {
	var errs errList
	vals := make(map[string]json.RawMessage, len(p.Params))
	for _, name := range sortedKeys(given) {
		prm := p.Param(name)
		if prm == nil {
			errs.add(key("parameters", name), p.unknownParamMsg())
			continue
		}
		v, err := parse(prm.Type, given[name])
		if err != nil {
			errs.add(key("parameters", name), err.Error())
			continue
		}
		vals[name] = v
	}
	p.applyDefaults(vals, &errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return vals, nil
}

// CheckParams checks values already in JSON: every name is a declared
// parameter, every value has its parameter's type, and every required
// parameter (one without a default) has a value.
func (p *Plan) CheckParams(vals map[string]json.RawMessage) error {
	_, err := p.ResolveParamValues(vals)
	return err
}

func (p *Plan) applyDefaults(vals map[string]json.RawMessage, errs *errList) {
	for _, prm := range p.Params {
		path := key("parameters", prm.Name)
		if _, ok := vals[prm.Name]; ok || hasErr(*errs, path) {
			continue
		}
		if prm.Default == nil {
			errs.add(path, fmt.Sprintf("required parameter of type %s has no value", prm.Type))
			continue
		}
		vals[prm.Name] = slices.Clone(prm.Default)
	}
}

func hasErr(errs errList, path string) bool {
	for _, e := range errs {
		if e.Path == path {
			return true
		}
	}
	return false
}

func (p *Plan) unknownParamMsg() string {
	if len(p.Params) == 0 {
		return "unknown parameter: the pipeline declares none"
	}
	names := make([]string, len(p.Params))
	for i, prm := range p.Params {
		names[i] = prm.Name
	}
	return "unknown parameter; declared: " + strings.Join(names, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
