package sim

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

// behavior returns the Behavior of the named task.
func (e *Executor) behavior(task string) Behavior {
	if b, ok := e.cfg.Tasks[task]; ok {
		return b
	}
	return e.cfg.Default
}

// outcome decides how s ends (its Exited event, without Time) and after
// how long.
func (e *Executor) outcome(s *executors.Spec) (executors.Event, time.Duration) {
	b := e.behavior(s.Task)
	ev := executors.Event{ID: s.ID, Kind: executors.EventExited}
	if s.Timeout > 0 && b.Duration > s.Timeout {
		ev.State, ev.ExitCode = spec.TaskFailed, -1
		ev.Reason = "timed out after " + s.Timeout.String()
		return ev, s.Timeout
	}
	if b.Fail || (b.FailRate > 0 && roll(e.cfg.Seed, s.ID) < b.FailRate) {
		code := b.ExitCode
		if code == 0 {
			code = 1
		}
		ev.State, ev.ExitCode = spec.TaskFailed, code
		ev.Reason = fmt.Sprintf("exit code %d", code)
		return ev, b.Duration
	}
	ev.State = spec.TaskSucceeded
	ev.Outputs = outputs(s, &b)
	return ev, b.Duration
}

// outputs builds the declared outputs of s.
func outputs(s *executors.Spec, b *Behavior) map[string]spec.Value {
	if len(s.Outputs) == 0 {
		return nil
	}
	m := make(map[string]spec.Value, len(s.Outputs))
	for _, o := range s.Outputs {
		if o.Type.Kind() == spec.KindArtifact {
			m[o.Name] = spec.Value{Artifact: artifactRef(s.ID, o.Name, o.Type)}
			continue
		}
		raw, ok := b.Outputs[o.Name]
		if !ok {
			raw = defaultParam(o.Type)
		}
		m[o.Name] = spec.Value{Param: raw}
	}
	return m
}

// Default parameter values, shared by every event: read-only.
var defaults = map[spec.Type]json.RawMessage{
	spec.TypeString: json.RawMessage(`""`),
	spec.TypeInt:    json.RawMessage(`0`),
	spec.TypeFloat:  json.RawMessage(`0.0`),
	spec.TypeBool:   json.RawMessage(`false`),
	spec.TypeList:   json.RawMessage(`[]`),
	spec.TypeObject: json.RawMessage(`{}`),
}

func defaultParam(t spec.Type) json.RawMessage {
	if raw, ok := defaults[t]; ok {
		return raw
	}
	return json.RawMessage(`null`)
}

// roll returns a number in [0, 1) from seed and id: FNV-1a of id mixed
// with seed through splitmix64. No allocation, no shared state.
func roll(seed int64, id string) float64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	x := h ^ uint64(seed)
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	return float64(x>>11) / (1 << 53)
}
