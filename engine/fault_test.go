package engine_test

import (
	"context"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
)

// faultStore is a store whose commits of engine changes (task transitions
// and run states) can be rejected or held back on purpose, as Nomad's
// scheduler harness rejects plans: a rejected item is not applied and is
// reported as the state machine reports a stale change.
type faultStore struct {
	*store.Store
	mu sync.Mutex
	// reject, when set, says whether to reject item of c (0 for a run
	// state).
	reject func(c store.Command, item int) bool
	// hold, when set, is called before an engine change is applied; it may
	// block.
	hold func()
}

func (f *faultStore) setReject(fn func(store.Command, int) bool) {
	f.mu.Lock()
	f.reject = fn
	f.mu.Unlock()
}

func (f *faultStore) setHold(fn func()) {
	f.mu.Lock()
	f.hold = fn
	f.mu.Unlock()
}

func isEngineChange(c store.Command) bool {
	switch c.(type) {
	case store.TransitionTasks, store.SetRunState:
		return true
	}
	return false
}

func (f *faultStore) Apply(ctx context.Context, cmds ...store.Command) (store.ApplyResult, error) {
	f.mu.Lock()
	reject, hold := f.reject, f.hold
	f.mu.Unlock()
	engineChange := false
	for _, c := range cmds {
		engineChange = engineChange || isEngineChange(c)
	}
	if !engineChange {
		return f.Store.Apply(ctx, cmds...)
	}
	if hold != nil {
		hold()
	}
	if reject == nil {
		return f.Store.Apply(ctx, cmds...)
	}
	var (
		keep    []store.Command
		keepIdx []int   // original index of each kept command
		items   [][]int // original item indices of each kept TransitionTasks
		refused []store.Rejection
	)
	for i, c := range cmds {
		switch c := c.(type) {
		case store.TransitionTasks:
			var its []store.Transition
			var idx []int
			for j, it := range c.Items {
				if reject(c, j) {
					refused = append(refused, store.Rejection{Cmd: i, Item: j, Reason: "rejected by the test"})
					continue
				}
				its, idx = append(its, it), append(idx, j)
			}
			if len(its) == 0 {
				continue
			}
			c.Items = its
			keep, keepIdx, items = append(keep, c), append(keepIdx, i), append(items, idx)
		case store.SetRunState:
			if reject(c, 0) {
				refused = append(refused, store.Rejection{Cmd: i, Reason: "rejected by the test"})
				continue
			}
			keep, keepIdx, items = append(keep, c), append(keepIdx, i), append(items, nil)
		default:
			keep, keepIdx, items = append(keep, c), append(keepIdx, i), append(items, nil)
		}
	}
	res, err := f.Store.Apply(ctx, keep...)
	if err != nil {
		return res, err
	}
	for k, rj := range res.Rejected {
		if items[rj.Cmd] != nil {
			rj.Item = items[rj.Cmd][rj.Item]
		}
		rj.Cmd = keepIdx[rj.Cmd]
		res.Rejected[k] = rj
	}
	res.Rejected = append(res.Rejected, refused...)
	return res, nil
}

// faultHarness is an engine over a faultStore.
type faultHarness struct {
	t     testing.TB
	store *faultStore
	eng   *engine.Engine
	// durable collects the OnUpdate lines that were not durable when
	// reported.
	mu      sync.Mutex
	bad     []string
	onLine  func(engine.Update)
	updates []engine.Update
}

func newFaultHarness(t testing.TB, edit func(*engine.Config), execs ...executors.Executor) *faultHarness {
	t.Helper()
	fs := &faultStore{Store: openStore(t, t.TempDir())}
	h := &faultHarness{t: t, store: fs}
	cfg := engine.DefaultConfig(fs, execs...)
	cfg.OnUpdate = h.check
	if edit != nil {
		edit(&cfg)
	}
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine loop: %v", err)
		}
		fs.Store.Close()
	})
	return h
}

// check is the OnUpdate hook: every line must already be in the store.
func (h *faultHarness) check(ups []engine.Update) {
	for _, u := range ups {
		if why := h.notDurable(u); why != "" {
			h.mu.Lock()
			h.bad = append(h.bad, why)
			h.mu.Unlock()
		}
		h.mu.Lock()
		h.updates = append(h.updates, u)
		fn := h.onLine
		h.mu.Unlock()
		if fn != nil {
			fn(u)
		}
	}
}

func (h *faultHarness) notDurable(u engine.Update) string {
	if u.Task < 0 {
		r, err := h.store.GetRun(u.RunID)
		if err != nil {
			return err.Error()
		}
		// A batch may carry a run's later states too: a stored state
		// may be further on, never behind, and a final one is exact.
		if r.State != u.RunState && (u.RunState.Final() || r.State == spec.RunPending ||
			u.RunState == spec.RunCanceling && r.State == spec.RunRunning) {
			return "run " + u.RunID + " reported " + u.RunState.String() + ", stored " + r.State.String()
		}
		return ""
	}
	tk, err := h.store.Task(u.RunID, u.Task)
	if err != nil {
		return err.Error()
	}
	switch {
	case len(tk.Attempts) < u.Attempt:
		return "task " + tk.Name + " reported attempt " + itoa(u.Attempt) + ", stored " + itoa(len(tk.Attempts))
	case u.TaskState.Final() && tk.State != u.TaskState:
		return "task " + tk.Name + " reported " + u.TaskState.String() + ", stored " + tk.State.String()
	}
	return ""
}

var itoa = strconv.Itoa

func (h *faultHarness) nonDurable() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bad...)
}

func (h *faultHarness) submit(p *spec.Plan) string {
	h.t.Helper()
	id, err := h.eng.Submit(context.Background(), p, nil, engine.SubmitOptions{})
	if err != nil {
		h.t.Fatalf("submit: %v", err)
	}
	return id
}

// waitFinal waits (up to d) for run id to be final in the store.
func (h *faultHarness) waitFinal(id string, d time.Duration) store.Run {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	r, err := h.eng.Wait(ctx, id)
	if err != nil {
		ts, _ := h.store.Tasks(id)
		var b strings.Builder
		for _, tk := range ts {
			b.WriteString("\n  " + tk.Name + " " + tk.State.String() + " attempts " + itoa(len(tk.Attempts)))
		}
		h.t.Fatalf("run %s is still %s after %s: %v; tasks:%s", id, r.State, d, err, b.String())
	}
	return r
}

// manual is an executor whose executions end when the test says so.
type manual struct {
	name string
	mu   sync.Mutex
	live map[string]func(executors.Event)
	outs map[string]map[string]spec.Value // what a success reports: sim's outputs
}

func newManual(name string) *manual {
	return &manual{name: name, live: map[string]func(executors.Event){}, outs: map[string]map[string]spec.Value{}}
}

func (m *manual) Name() string          { return m.name }
func (m *manual) Root(id string) string { return "/manual/" + id }
func (m *manual) Start(_ context.Context, s *executors.Spec, report func(executors.Event)) error {
	var outs map[string]spec.Value
	if err := sim.New(sim.Config{}).Start(context.Background(), s, func(ev executors.Event) { outs = ev.Outputs }); err != nil {
		return err
	}
	m.mu.Lock()
	m.live[s.ID] = report
	m.outs[s.ID] = outs
	m.mu.Unlock()
	report(executors.Event{ID: s.ID, Kind: executors.EventStarted, Time: time.Now()})
	return nil
}

// end reports the end of execution id (false when it is not live).
func (m *manual) end(id string, st spec.TaskState) bool {
	m.mu.Lock()
	report, outs := m.live[id], m.outs[id]
	delete(m.live, id)
	delete(m.outs, id)
	m.mu.Unlock()
	if report == nil {
		return false
	}
	if st != spec.TaskSucceeded {
		outs = nil
	}
	report(executors.Event{ID: id, Kind: executors.EventExited, Time: time.Now(), State: st, Outputs: outs})
	return true
}

func (m *manual) isLive(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.live[id] != nil
}

func (m *manual) Cancel(_ context.Context, id string) error {
	m.end(id, spec.TaskCanceled)
	return nil
}

func (m *manual) Logs(context.Context, string, bool) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}

func (m *manual) Running(context.Context) ([]string, error) { return nil, nil }

var _ executors.Executor = (*manual)(nil)

// TestEngine_CancelWhileATaskBecomesReadyEndsTheRun: the cancel is
// committed while the loop is busy; the next turn takes both a's end (so b
// becomes ready and its start is proposed) and the cancel (so b is to be
// stopped). The store refuses b's start: the run must still end CANCELED,
// with b never started.
func TestEngine_CancelWhileATaskBecomesReadyEndsTheRun(t *testing.T) {
	t.Parallel()
	m := newManual("sim")
	h := newFaultHarness(t, nil, m)
	id := h.submit(mustPlan(t, chainYAML))
	a := executors.ExecutionID(id, 0, 1)
	waitFor(t, func() bool { return m.isLive(a) })

	// Hold the loop in its next commit (another run's start).
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h.store.setHold(func() {
		once.Do(func() { close(held); <-release })
	})
	other := h.submit(mustPlan(t, chainYAML))
	<-held
	m.end(a, spec.TaskSucceeded)
	if err := h.eng.Cancel(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	close(release)

	r := h.waitFinal(id, 10*time.Second)
	if r.State != spec.RunCanceled {
		t.Fatalf("run = %s, want CANCELED", r.State)
	}
	ts, _ := h.store.Tasks(id)
	if ts[1].State != spec.TaskCanceled || len(ts[1].Attempts) != 0 {
		t.Errorf("task b = %s with %d attempts, want CANCELED and never started", ts[1].State, len(ts[1].Attempts))
	}
	if err := h.eng.Cancel(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	h.waitFinal(other, 10*time.Second)
	if bad := h.nonDurable(); len(bad) > 0 {
		t.Errorf("OnUpdate reported changes the store does not hold: %v", bad)
	}
}

// TestEngine_RejectedCachedStartDoesNotStrandIdenticalTasks: the store
// refuses the start of the task that leads a cache single-flight; neither
// it nor an identical task of another run may wait forever.
func TestEngine_RejectedCachedStartDoesNotStrandIdenticalTasks(t *testing.T) {
	t.Parallel()
	h := newFaultHarness(t, nil, sim.New(sim.Config{Default: sim.Behavior{Duration: 20 * time.Millisecond}}))
	var mu sync.Mutex
	refused := 0
	h.store.setReject(func(c store.Command, item int) bool {
		tt, ok := c.(store.TransitionTasks)
		if !ok {
			return false
		}
		it := tt.Items[item]
		mu.Lock()
		defer mu.Unlock()
		if it.From == spec.TaskPending && it.To == spec.TaskRunning && it.CacheKey != "" && refused == 0 {
			refused++
			return true
		}
		return false
	})
	p := cachedPlan(t, "0")
	id1, id2 := h.submit(p), h.submit(p)
	for _, id := range []string{id1, id2} {
		if r := h.waitFinal(id, 10*time.Second); r.State != spec.RunSucceeded {
			t.Fatalf("run %s = %s (%s), want SUCCEEDED", id, r.State, r.Error)
		}
	}
	if refused != 1 {
		t.Fatalf("the test refused %d starts, want 1", refused)
	}
	if bad := h.nonDurable(); len(bad) > 0 {
		t.Errorf("OnUpdate reported changes the store does not hold: %v", bad)
	}
}

// TestEngine_RejectedRunEndIsNotReported: the store refuses the run's end
// once; OnUpdate must not report it, Wait must not return before the end
// is durable, and the run must still end.
func TestEngine_RejectedRunEndIsNotReported(t *testing.T) {
	t.Parallel()
	h := newFaultHarness(t, nil, sim.New(sim.Config{}))
	var mu sync.Mutex
	refused := 0
	h.store.setReject(func(c store.Command, _ int) bool {
		rs, ok := c.(store.SetRunState)
		mu.Lock()
		defer mu.Unlock()
		if ok && rs.To.Final() && refused == 0 {
			refused++
			return true
		}
		return false
	})
	id := h.submit(mustPlan(t, chainYAML))
	if r := h.waitFinal(id, 10*time.Second); r.State != spec.RunSucceeded {
		t.Fatalf("run = %s, want SUCCEEDED", r.State)
	}
	if refused != 1 {
		t.Fatalf("the test refused %d run ends, want 1", refused)
	}
	if bad := h.nonDurable(); len(bad) > 0 {
		t.Errorf("OnUpdate reported changes the store does not hold: %v", bad)
	}
}
