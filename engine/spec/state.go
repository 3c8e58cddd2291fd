package spec

import (
	"encoding/json"
	"fmt"
)

// TaskState is the state of one task of a run. The names are KFP's.
type TaskState uint8

const (
	TaskPending TaskState = iota
	TaskRunning
	TaskSucceeded
	TaskFailed
	TaskSkipped
	TaskCanceled
)

var taskStateNames = [...]string{"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "SKIPPED", "CANCELED"}

func (s TaskState) String() string {
	if int(s) < len(taskStateNames) {
		return taskStateNames[s]
	}
	return fmt.Sprintf("TaskState(%d)", uint8(s))
}

// Final reports whether s is a terminal state.
func (s TaskState) Final() bool { return s >= TaskSucceeded && s <= TaskCanceled }

// MarshalJSON writes the KFP name.
func (s TaskState) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads the KFP name.
func (s *TaskState) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	for i, n := range taskStateNames {
		if n == name {
			*s = TaskState(i)
			return nil
		}
	}
	return fmt.Errorf("unknown task state %q", name)
}

// RunState is the state of a run. The names are KFP's.
type RunState uint8

const (
	RunPending RunState = iota
	RunRunning
	RunSucceeded
	RunFailed
	RunCanceling
	RunCanceled
)

var runStateNames = [...]string{"PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELING", "CANCELED"}

func (s RunState) String() string {
	if int(s) < len(runStateNames) {
		return runStateNames[s]
	}
	return fmt.Sprintf("RunState(%d)", uint8(s))
}

// Final reports whether s is a terminal state.
func (s RunState) Final() bool {
	return s == RunSucceeded || s == RunFailed || s == RunCanceled
}

// MarshalJSON writes the KFP name.
func (s RunState) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads the KFP name.
func (s *RunState) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return err
	}
	for i, n := range runStateNames {
		if n == name {
			*s = RunState(i)
			return nil
		}
	}
	return fmt.Errorf("unknown run state %q", name)
}
