package engine

import (
	"math"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

// TestReport_QueuesBareExitsCompactly: an Exited event with nothing but
// its state and exit code waits in the loop's inbox as a bareExit (a
// wide fan-out of instant steps queues one per task), and comes out as
// the same event less its time, which the loop does not use; any other
// event is queued whole.
func TestReport_QueuesBareExitsCompactly(t *testing.T) {
	if n := unsafe.Sizeof(bareExit{}); n > 32 {
		t.Errorf("bareExit is %d bytes, want at most 32 (an Event is %d)", n, unsafe.Sizeof(executors.Event{}))
	}
	now := time.Now()
	bare := []executors.Event{
		{ID: "r-1-1", Kind: executors.EventExited, Time: now, State: spec.TaskSucceeded},
		{ID: "r-2-1", Kind: executors.EventExited, Time: now, State: spec.TaskFailed, ExitCode: 3},
		{ID: "r-3-1", Kind: executors.EventExited, Time: now, State: spec.TaskCanceled, ExitCode: -1},
	}
	whole := []executors.Event{
		{ID: "r-4-1", Kind: executors.EventExited, Time: now, State: spec.TaskFailed, ExitCode: 1, Reason: "exit code 1"},
		{ID: "r-5-1", Kind: executors.EventExited, Time: now, State: spec.TaskSucceeded, Outputs: map[string]spec.Value{"o": {}}},
		{ID: "r-6-1", Kind: executors.EventExited, Time: now, State: spec.TaskFailed, Logs: &spec.ArtifactRef{}},
		{ID: "r-7-1", Kind: executors.EventExited, Time: now, State: spec.TaskFailed, Lost: true},
		{ID: "r-8-1", Kind: executors.EventExited, Time: now, State: spec.TaskFailed, ExitCode: math.MaxInt32 + 1},
		{ID: "r-9-1", Kind: executors.EventWaiting, Time: now, Reason: "no room"},
	}
	e := &Engine{wake: make(chan struct{}, 1)}
	for _, ev := range append(append([]executors.Event{}, bare...), whole...) {
		e.report(ev)
	}
	msgs := e.take()
	if len(msgs) != len(bare)+len(whole) {
		t.Fatalf("%d messages queued, want %d", len(msgs), len(bare)+len(whole))
	}
	for i, ev := range bare {
		x, ok := msgs[i].(bareExit)
		if !ok {
			t.Errorf("%s: queued as %T, want bareExit", ev.ID, msgs[i])
			continue
		}
		want := ev
		want.Time = time.Time{}
		if got := x.event(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: comes out as %+v, want %+v", ev.ID, got, want)
		}
	}
	for i, ev := range whole {
		if got, ok := msgs[len(bare)+i].(executors.Event); !ok || !reflect.DeepEqual(got, ev) {
			t.Errorf("%s: queued as %#v, want the event itself", ev.ID, msgs[len(bare)+i])
		}
	}
}
