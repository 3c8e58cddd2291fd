package spec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalid is the sentinel every *ValidationError unwraps to: the input
// (a pipeline document, a plan, parameter values) was rejected.
var ErrInvalid = errors.New("invalid input")

// ErrTooLarge is what an input exceeding one of the parsers' bounds
// unwraps to (besides ErrInvalid): see LimitError.
var ErrTooLarge = errors.New("input too large")

// LimitError is an input that exceeds one of the parsers' bounds (the
// expanded size or alias count of a YAML document, the tasks a compiled
// plan expands to). It unwraps to ErrTooLarge; the parsers return it
// inside a *ValidationError, which then unwraps to it too.
type LimitError struct {
	Limit string // what is bounded: "YAML expanded size", "YAML aliases"...
	Max   int64
	Unit  string // bytes, aliases, nodes, tasks
	Hint  string // what counts, or how to stay under it; may be ""
}

func (e *LimitError) Error() string {
	msg := fmt.Sprintf("exceeds the %s limit of %d %s", e.Limit, e.Max, e.Unit)
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

// Unwrap returns ErrTooLarge.
func (e *LimitError) Unwrap() error { return ErrTooLarge }

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
	// cause is what made the input invalid as a whole (a *LimitError), or nil.
	cause error
}

// TooLarge returns a *ValidationError for an input over a limit: one
// error at path whose message is prefix followed by the limit's, unwrapping
// to le (and so to ErrTooLarge).
func TooLarge(path, prefix string, le *LimitError) *ValidationError {
	return &ValidationError{Errors: []FieldError{{Path: path, Msg: prefix + le.Error()}}, cause: le}
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

// Unwrap returns ErrInvalid, and the cause (a *LimitError) when there is one.
func (e *ValidationError) Unwrap() []error {
	if e.cause != nil {
		return []error{ErrInvalid, e.cause}
	}
	return []error{ErrInvalid}
}

// errList collects field errors.
type errList []FieldError

func (l *errList) add(path, msg string) { *l = append(*l, FieldError{Path: path, Msg: msg}) }

func (l errList) err() error {
	if len(l) == 0 {
		return nil
	}
	return &ValidationError{Errors: l}
}

// index is path's element i: tasks[3].
func index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
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
