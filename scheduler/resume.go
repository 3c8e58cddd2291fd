package scheduler

import (
	"errors"

	"github.com/skiffml/skiff/engine/spec"
)

// Inputs resolves the inputs of a task whose deps all SUCCEEDED, as a
// Start decision would carry them. The engine uses it to re-dispatch a task
// that was running when a previous engine stopped.
func (r *Run) Inputs(task int) (map[string]spec.Value, error) {
	if task < 0 || task >= len(r.state) {
		return nil, errors.New("no such task")
	}
	t := r.Task(task)
	var err error
	r.forDeps(task, func(d int) {
		if err == nil && r.state[d] != spec.TaskSucceeded && !t.IgnoreUpstreamFailure {
			err = errors.New("upstream task " + r.Task(d).Name + " is " + r.state[d].String())
		}
	})
	if err != nil {
		return nil, err
	}
	m, reason := r.resolve(t, task)
	if reason != "" {
		return nil, errors.New(reason)
	}
	return m, nil
}
