package engine

import (
	"errors"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

// buildKFPSpec builds the execution spec of a step compiled from KFP IR
// (Task.Protocol == spec.ProtocolKFP).
func (e *Engine) buildKFPSpec(r *activeRun, task, attempt int, id string, x executors.Executor, inputs map[string]spec.Value) (*executors.Spec, error) {
	return nil, errors.New("KFP steps are not supported yet")
}
