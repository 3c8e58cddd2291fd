package scheduler

import (
	"errors"
	"fmt"
)

// ErrInvalidPlan is wrapped by the *PlanError that Validate returns (and
// that New panics with) when a plan was not finalized correctly.
var ErrInvalidPlan = errors.New("invalid plan")

// PlanError says which field of a plan is wrong. It unwraps to
// ErrInvalidPlan.
type PlanError struct {
	Field string // field path, e.g. "tasks[3].deps[0]"
	Msg   string
}

func (e *PlanError) Error() string {
	return fmt.Sprintf("scheduler: %v: %s: %s", ErrInvalidPlan, e.Field, e.Msg)
}

// Unwrap returns ErrInvalidPlan.
func (e *PlanError) Unwrap() error { return ErrInvalidPlan }
