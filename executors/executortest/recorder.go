package executortest

import (
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/executors"
)

// Recorder collects the events of executions, in order.
type Recorder struct {
	mu     sync.Mutex
	events []executors.Event
	ch     chan struct{}
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return &Recorder{ch: make(chan struct{}, 1)} }

// Report is the report func to give an executor.
func (r *Recorder) Report(ev executors.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

// Events returns a copy of what was reported.
func (r *Recorder) Events() []executors.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]executors.Event(nil), r.events...)
}

// Count is the number of events reported.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// CountOf is the number of events reported for id.
func (r *Recorder) CountOf(id string) int {
	n := 0
	for _, ev := range r.Events() {
		if ev.ID == id {
			n++
		}
	}
	return n
}

// Wait returns the first event of kind for id, failing t after d.
func (r *Recorder) Wait(t testing.TB, id string, kind executors.EventKind, d time.Duration) executors.Event {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		for _, ev := range r.Events() {
			if ev.ID == id && ev.Kind == kind {
				return ev
			}
		}
		select {
		case <-r.ch:
		case <-deadline.C:
			t.Fatalf("no event of kind %d for %s within %s", kind, id, d)
		}
	}
}

// CheckOrder checks that id got at most one Started, exactly one Exited,
// and Started (if any) before Exited (Waiting events aside).
func (r *Recorder) CheckOrder(t testing.TB, id string) {
	t.Helper()
	var kinds []executors.EventKind
	for _, ev := range r.Events() {
		if ev.ID == id && ev.Kind != executors.EventWaiting {
			kinds = append(kinds, ev.Kind)
		}
	}
	switch {
	case len(kinds) == 2 && kinds[0] == executors.EventStarted && kinds[1] == executors.EventExited:
	case len(kinds) == 1 && kinds[0] == executors.EventExited:
	default:
		t.Errorf("%s: events %v; want Started then one Exited", id, kinds)
	}
}
