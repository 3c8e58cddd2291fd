package spec

import (
	"errors"
	"strings"
)

// ErrInvalid is the sentinel every *ValidationError unwraps to: the input
// (a pipeline document, a plan, parameter values) was rejected.
var ErrInvalid = errors.New("invalid input")

// FieldError is one problem found in a document, at a field path that
// follows the source document: `tasks[2].inputs.frac`, `parameters.k`,
// `outputs.accuracy`. An empty Path means the whole document.
type FieldError struct {
	Path string `json:"path"`
	Msg  string `json:"message"`
}

func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// ValidationError lists every problem found, in document order.
type ValidationError struct {
	Errors []FieldError `json:"errors"`
}

// Error lists the problems one per line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}

// Unwrap returns ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// errList collects field errors.
type errList []FieldError

func (l *errList) add(path, msg string) { *l = append(*l, FieldError{Path: path, Msg: msg}) }

func (l errList) err() error {
	if len(l) == 0 {
		return nil
	}
	return &ValidationError{Errors: l}
}

// key renders a map key as a path element: `.name` for plain names,
// `["odd key"]` otherwise.
func key(path, k string) string {
	if k != "" && plainKey(k) {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	return path + "[" + quote(k) + "]"
}

func plainKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// PathKey appends map key k to a field path as errors print it: `.name`
// for a plain name, `["odd key"]` otherwise.
func PathKey(path, k string) string { return key(path, k) }

// Describe names the JSON type (and a short value) of a decoded JSON or
// YAML value for error messages: `string "x"`, `number 3`, `a list`.
func Describe(v any) string { return describe(v) }
