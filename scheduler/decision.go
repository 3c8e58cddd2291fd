package scheduler

import (
	"fmt"

	"github.com/skiffml/skiff/engine/spec"
)

// Action says what a Decision asks the engine to do.
type Action uint8

// Actions. The numbers only grow; a number is never reused.
const (
	// ActStart: dispatch Task with Inputs. The scheduler already counts the
	// task as RUNNING; it must come back through Finished.
	ActStart Action = iota + 1
	// ActSkip: Task is SKIPPED (an upstream task did not succeed); Reason
	// names that upstream task. Already applied inside the scheduler.
	ActSkip
	// ActCancel: Task was PENDING and is CANCELED by Cancel; it never starts.
	// Already applied inside the scheduler.
	ActCancel
	// ActStop: Task is running; ask its executor to stop it. The task stays
	// RUNNING in the scheduler until its outcome comes back through Finished
	// (normally CANCELED).
	ActStop
	// ActDone: every task is final; RunState is SUCCEEDED, FAILED or
	// CANCELED. Returned exactly once per Run.
	ActDone
	// ActFail: Task's deps all succeeded but one of its inputs cannot be
	// resolved (an upstream task produced no such output, a pipeline
	// parameter has no value, a parameter arrived where an artifact was
	// declared...). Task is FAILED without starting and Reason says why;
	// its successors are skipped. Already applied inside the scheduler.
	ActFail
	// ActExpand: group Task starts: Count instances of its body (a loop's
	// iterations; 1 otherwise) are added as tasks Base .. Base +
	// Count*len(body)-1, all PENDING. The group counts as RUNNING. Record it
	// before any decision about the new tasks.
	ActExpand
	// ActGroupDone: group Task ended in State (SUCCEEDED with Outputs,
	// FAILED or CANCELED with Reason) once all its body's tasks were final.
	ActGroupDone
	// ActContinue: loops have iterations left to activate; call Continue
	// (after recording these decisions) to get them. Comes last.
	ActContinue
)

var actionNames = [...]string{"", "start", "skip", "cancel", "stop", "done", "fail", "expand", "group-done", "continue"}

func (a Action) String() string {
	if int(a) < len(actionNames) && a != 0 {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Decision is one thing the engine must do (or record) next.
type Decision struct {
	Action Action
	// Task is the index into Plan.Tasks (unused for ActDone).
	Task int
	// Inputs (ActStart only) holds every input of the task, resolved: a
	// literal value, a pipeline parameter (or its default) or the upstream
	// task's output. nil when the task declares no inputs. The values share
	// memory with the plan, the parameters and the upstream outputs: treat
	// them as read-only.
	Inputs map[string]spec.Value
	// Reason (ActSkip, ActCancel, ActFail) says why, e.g.
	// `upstream task "train" failed`.
	Reason string
	// RunState (ActDone only) is the run's final state.
	RunState spec.RunState
	// Base and Count (ActExpand only): where the new tasks start and how
	// many instances of the body there are.
	Base, Count int
	// State and Outputs (ActGroupDone only): how the group ended.
	State   spec.TaskState
	Outputs map[string]spec.Value
}

func (d Decision) String() string {
	switch d.Action {
	case ActDone:
		return fmt.Sprintf("done %s", d.RunState)
	case ActStart, ActStop:
		return fmt.Sprintf("%s %d", d.Action, d.Task)
	case ActExpand:
		return fmt.Sprintf("expand %d at %d x%d", d.Task, d.Base, d.Count)
	case ActGroupDone:
		return fmt.Sprintf("group-done %d %s", d.Task, d.State)
	}
	return fmt.Sprintf("%s %d (%s)", d.Action, d.Task, d.Reason)
}

// Counts is the number of tasks in each state.
type Counts struct {
	Pending, Running, Succeeded, Failed, Skipped, Canceled int
}

// Total is the number of tasks counted.
func (c Counts) Total() int {
	return c.Pending + c.Running + c.Succeeded + c.Failed + c.Skipped + c.Canceled
}

func (c *Counts) add(s spec.TaskState, d int) {
	switch s {
	case spec.TaskPending:
		c.Pending += d
	case spec.TaskRunning:
		c.Running += d
	case spec.TaskSucceeded:
		c.Succeeded += d
	case spec.TaskFailed:
		c.Failed += d
	case spec.TaskSkipped:
		c.Skipped += d
	case spec.TaskCanceled:
		c.Canceled += d
	}
}
