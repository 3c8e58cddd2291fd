package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/skiffml/skiff/engine/spec"
)

// The store's on-disk JSON (raft log entries and state.db records) keeps
// enums as stable numeric codes, never as display names: a name is for
// people and may change, and a value without a name (an out-of-range
// state) must still round-trip. Public JSON (the API, `-o json`) keeps the
// names: the stored form goes through views that swap the enum fields for
// code types, so Run, Task and the commands keep their MarshalJSON.
//
// Data written before the codes (schema version 1) holds the names; the
// decoders read both.

// runStateCode is a spec.RunState as stored: its number.
type runStateCode spec.RunState

// taskStateCode is a spec.TaskState as stored: its number.
type taskStateCode spec.TaskState

func (c runStateCode) MarshalJSON() ([]byte, error) {
	return strconv.AppendUint(nil, uint64(c), 10), nil
}

func (c *runStateCode) UnmarshalJSON(b []byte) error {
	return decodeCode(b, (*uint8)(c), func(b []byte) (uint8, error) {
		var s spec.RunState
		err := s.UnmarshalJSON(b)
		return uint8(s), err
	})
}

func (c taskStateCode) MarshalJSON() ([]byte, error) {
	return strconv.AppendUint(nil, uint64(c), 10), nil
}

func (c *taskStateCode) UnmarshalJSON(b []byte) error {
	return decodeCode(b, (*uint8)(c), func(b []byte) (uint8, error) {
		var s spec.TaskState
		err := s.UnmarshalJSON(b)
		return uint8(s), err
	})
}

// decodeCode reads a code (any number 0-255: the FSM, not the decoder,
// judges whether it is a known state) or, from schema version 1, a name.
func decodeCode(b []byte, dst *uint8, byName func([]byte) (uint8, error)) error {
	if len(b) > 0 && b[0] == '"' {
		v, err := byName(b)
		if err != nil {
			return err
		}
		*dst = v
		return nil
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 8)
	if err != nil {
		return fmt.Errorf("state code %s: %w", b, err)
	}
	*dst = uint8(v)
	return nil
}

// storedSlice is a slice stored element by element through view, which
// returns a pointer to the element's stored form.
type storedSlice[E any] struct {
	s    *[]E
	view func(*E) any
}

func (s storedSlice[E]) IsZero() bool { return len(*s.s) == 0 }

func (s storedSlice[E]) MarshalJSON() ([]byte, error) {
	if *s.s == nil {
		return []byte("null"), nil
	}
	views := make([]any, len(*s.s))
	for i := range *s.s {
		views[i] = s.view(&(*s.s)[i])
	}
	return json.Marshal(views)
}

func (s *storedSlice[E]) UnmarshalJSON(b []byte) error {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return err
	}
	if raws == nil {
		*s.s = nil
		return nil
	}
	*s.s = make([]E, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, s.view(&(*s.s)[i])); err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return nil
}

// Views. Each embeds the type's fields (a method-less copy of the type, so
// its own MarshalJSON is not called) and shadows the enum fields with
// pointers to their codes: one view serves to encode and to decode.

type (
	runFields        Run
	taskFields       Task
	attemptFields    Attempt
	createRunFields  CreateRun
	setRunFields     SetRunState
	transitionFields Transition
	transitionsField TransitionTasks
)

type runView struct {
	*runFields
	State *runStateCode `json:"state"`
}

func storedRun(r *Run) *runView { return &runView{(*runFields)(r), (*runStateCode)(&r.State)} }

type taskView struct {
	*taskFields
	State    *taskStateCode       `json:"state"`
	Attempts storedSlice[Attempt] `json:"attempts,omitzero"`
}

func storedTask(t *Task) *taskView {
	return &taskView{(*taskFields)(t), (*taskStateCode)(&t.State), storedSlice[Attempt]{&t.Attempts, storedAttempt}}
}

type attemptView struct {
	*attemptFields
	State *taskStateCode `json:"state"`
}

func storedAttempt(a *Attempt) any {
	return &attemptView{(*attemptFields)(a), (*taskStateCode)(&a.State)}
}

type createRunView struct {
	*createRunFields
	Run *runView `json:"run"`
}

func (c *CreateRun) stored() any { return &createRunView{(*createRunFields)(c), storedRun(&c.Run)} }

type setRunView struct {
	*setRunFields
	From *runStateCode `json:"from"`
	To   *runStateCode `json:"to"`
}

func (c *SetRunState) stored() any {
	return &setRunView{(*setRunFields)(c), (*runStateCode)(&c.From), (*runStateCode)(&c.To)}
}

type transitionView struct {
	*transitionFields
	From *taskStateCode `json:"from"`
	To   *taskStateCode `json:"to"`
}

func storedTransition(t *Transition) any {
	return &transitionView{(*transitionFields)(t), (*taskStateCode)(&t.From), (*taskStateCode)(&t.To)}
}

type transitionsView struct {
	*transitionsField
	Items storedSlice[Transition] `json:"items"`
}

func (c *TransitionTasks) stored() any {
	return &transitionsView{(*transitionsField)(c), storedSlice[Transition]{&c.Items, storedTransition}}
}

// storedForm is implemented (on the pointer) by commands whose stored JSON
// differs from their public JSON.
type storedForm interface{ stored() any }

// storedView returns what to encode or decode for *p.
func storedView(p any) any {
	if s, ok := p.(storedForm); ok {
		return s.stored()
	}
	return p
}

// checkStates is implemented by commands carrying states: it names the
// first field holding a state that does not exist, so a bad command is
// refused before it is proposed.
type checkStates interface{ checkStates() error }

func checkRunState(field string, s spec.RunState) error {
	if s > spec.RunCanceled {
		return fmt.Errorf("%s: unknown run state %d", field, uint8(s))
	}
	return nil
}

func checkTaskState(field string, s spec.TaskState) error {
	if s > spec.TaskCanceled {
		return fmt.Errorf("%s: unknown task state %d", field, uint8(s))
	}
	return nil
}

func (c CreateRun) checkStates() error { return checkRunState("run.state", c.Run.State) }

func (c SetRunState) checkStates() error {
	if err := checkRunState("from", c.From); err != nil {
		return err
	}
	return checkRunState("to", c.To)
}

func (c TransitionTasks) checkStates() error {
	for i, it := range c.Items {
		if err := checkTaskState(fmt.Sprintf("items[%d].from", i), it.From); err != nil {
			return err
		}
		if err := checkTaskState(fmt.Sprintf("items[%d].to", i), it.To); err != nil {
			return err
		}
	}
	return nil
}
