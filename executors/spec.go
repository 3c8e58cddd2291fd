package executors

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// BadSpec returns an error wrapping ErrBadSpec with a message naming the
// field.
func BadSpec(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadSpec, fmt.Sprintf(format, a...))
}

// CheckSpec makes the checks every executor makes of a spec before it
// starts anything: a spec, a timeout and resources that are not negative,
// input and output names that stay inside the root, known output types and
// usable environment variable names. Executors add their own (the id's
// form, an image, the node's capacity).
func CheckSpec(s *Spec) error {
	switch {
	case s == nil:
		return BadSpec("nil spec")
	case s.Timeout < 0:
		return BadSpec("timeout: must not be negative, got %s", s.Timeout)
	}
	if r := s.Resources; r.MilliCPU < 0 || r.MemoryBytes < 0 || r.GPU < 0 {
		return BadSpec("resources: must not be negative, got %+v", r)
	}
	for i, in := range s.Inputs {
		if !filepath.IsLocal(in.Name) {
			return BadSpec("inputs[%d].name: %q must be a relative path", i, in.Name)
		}
	}
	for i, out := range s.Outputs {
		if !filepath.IsLocal(out.Name) {
			return BadSpec("outputs[%d].name: %q must be a relative path", i, out.Name)
		}
		if !out.Type.Valid() {
			return BadSpec("outputs[%d].type: unknown type %q", i, out.Type)
		}
	}
	for i, ev := range s.Env {
		if ev.Name == "" || strings.ContainsAny(ev.Name, "=\x00") {
			return BadSpec("env[%d].name: %q is not a variable name", i, ev.Name)
		}
	}
	return nil
}

// Clone returns a copy of s that shares no slice with it, for an executor
// to keep while the caller reuses its spec.
func (s *Spec) Clone() *Spec {
	c := *s
	c.Command = slices.Clone(s.Command)
	c.Args = slices.Clone(s.Args)
	c.Env = slices.Clone(s.Env)
	c.Inputs = slices.Clone(s.Inputs)
	c.Outputs = slices.Clone(s.Outputs)
	return &c
}
