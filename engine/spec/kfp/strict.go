package kfp

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/skiffml/skiff/engine/spec"
)

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
// empty object, or a proto3 default ("", false, 0).
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	case string:
		return x == ""
	case bool:
		return !x
	case json.Number:
		f, err := x.Float64()
		return err == nil && f == 0
	}
	return false
}

func describe(v any) string { return spec.Describe(v) }

func key(path, k string) string { return spec.PathKey(path, k) }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
