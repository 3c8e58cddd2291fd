package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors/sim"
)

// manualClock is a fake engine.Clock: time moves only on Advance, which
// runs the timers that became due.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	c       *manualClock
	at      time.Time
	f       func()
	stopped bool
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) engine.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *manualTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

// pending is the number of armed timers.
func (c *manualClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			due = append(due, t.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// TestEngine_RetryBackoffFollowsTheInjectedClock: a retry due in an hour
// starts when the engine's clock says an hour passed, not before, and
// without waiting for the real one.
func TestEngine_RetryBackoffFollowsTheInjectedClock(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	h := newFaultHarness(t, func(c *engine.Config) { c.Clock = clock },
		&flaky{Executor: sim.New(sim.Config{}), succeedAt: 2})
	id := h.submit(retryPlan(t, "{limit: 1, backoff: 1h}"))
	waitFor(t, func() bool {
		tk, _ := h.store.Task(id, 0)
		return clock.pending() == 1 && tk.State == spec.TaskPending && len(tk.Attempts) == 1
	})
	clock.Advance(59 * time.Minute)
	if tk, _ := h.store.Task(id, 0); tk.State != spec.TaskPending || len(tk.Attempts) != 1 {
		t.Fatalf("before the backoff passed: task %s with %d attempts, want PENDING with 1", tk.State, len(tk.Attempts))
	}
	clock.Advance(time.Minute)
	if r := h.waitFinal(id, 10*time.Second); r.State != spec.RunSucceeded {
		t.Fatalf("run = %s (%s), want SUCCEEDED", r.State, r.Error)
	}
	tk, _ := h.store.Task(id, 0)
	if len(tk.Attempts) != 2 || !tk.Attempts[1].StartedAt.Equal(clock.Now()) {
		t.Errorf("attempts %+v, want the second one started at the fake clock's %s", tk.Attempts, clock.Now())
	}
}

// TestEngine_CancelStopsAFakeClockRetryTimer: cancelling during the
// backoff stops the timer.
func TestEngine_CancelStopsAFakeClockRetryTimer(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	h := newFaultHarness(t, func(c *engine.Config) { c.Clock = clock },
		&flaky{Executor: sim.New(sim.Config{}), succeedAt: 0})
	id := h.submit(retryPlan(t, "{limit: 3, backoff: 1h}"))
	waitFor(t, func() bool { return clock.pending() == 1 })
	if err := h.eng.Cancel(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if r := h.waitFinal(id, 10*time.Second); r.State != spec.RunCanceled {
		t.Fatalf("run = %s, want CANCELED", r.State)
	}
	if n := clock.pending(); n != 0 {
		t.Errorf("%d timers still armed after the cancel", n)
	}
}
