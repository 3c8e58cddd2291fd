package scheduler

import (
	"errors"

	"github.com/skiffml/skiff/engine/spec"
)

// Inputs resolves the inputs of a task whose deps all SUCCEEDED, as a
// Start decision would carry them. The engine uses it to re-dispatch a task
// that was running when a previous engine stopped.
func (r *Run) Inputs(task int) (map[string]spec.Value, error) {
	if task < 0 || task >= len(r.plan.Tasks) {
		return nil, errors.New("no such task")
	}
	for _, d := range r.plan.Tasks[task].Deps {
		if r.state[d] != spec.TaskSucceeded {
			return nil, errors.New("upstream task " + r.plan.Tasks[d].Name + " is " + r.state[d].String())
		}
	}
	m, reason := r.resolve(&r.plan.Tasks[task])
	if reason != "" {
		return nil, errors.New(reason)
	}
	return m, nil
}
