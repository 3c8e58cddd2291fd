package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

// recorder collects the events of executions.
type recorder struct {
	mu     sync.Mutex
	events []executors.Event
	exited chan executors.Event
}

func newRecorder() *recorder { return &recorder{exited: make(chan executors.Event, 1024)} }

func (r *recorder) report(ev executors.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	if ev.Kind == executors.EventExited {
		select {
		case r.exited <- ev:
		default: // only tests that wait on exited read it; they start fewer
		}
	}
}

func (r *recorder) all() []executors.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]executors.Event(nil), r.events...)
}

// kinds returns the kinds reported for id, in order.
func (r *recorder) kinds(id string) []executors.EventKind {
	var ks []executors.EventKind
	for _, ev := range r.all() {
		if ev.ID == id {
			ks = append(ks, ev.Kind)
		}
	}
	return ks
}

var startedExited = []executors.EventKind{executors.EventStarted, executors.EventExited}

func specFor(id, task string, outs ...executors.OutputSpec) *executors.Spec {
	return &executors.Spec{ID: id, RunID: "r", Task: task, Attempt: 1, Outputs: outs}
}

func start(t *testing.T, x *Executor, s *executors.Spec, rec *recorder) {
	t.Helper()
	if err := x.Start(context.Background(), s, rec.report); err != nil {
		t.Fatalf("Start(%s): %v", s.ID, err)
	}
}

// lastExit returns the Exited event of id, failing when there is none.
func lastExit(t *testing.T, rec *recorder, id string) executors.Event {
	t.Helper()
	for _, ev := range rec.all() {
		if ev.ID == id && ev.Kind == executors.EventExited {
			return ev
		}
	}
	t.Fatalf("no Exited event for %s", id)
	return executors.Event{}
}

func running(t *testing.T, x *Executor) []string {
	t.Helper()
	ids, err := x.Running(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestExecutor_Identity(t *testing.T) {
	t.Parallel()
	x := New(DefaultConfig())
	if x.Name() != "sim" || x.Root("r-1-1") != "/sim/r-1-1" {
		t.Errorf("Name %q, Root %q", x.Name(), x.Root("r-1-1"))
	}
}

func TestExecutor_InstantOutcomes(t *testing.T) {
	t.Parallel()
	digest := func(id, name string) string {
		sum := sha256.Sum256([]byte("sim/" + id + "/" + name))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	outs := []executors.OutputSpec{
		{Name: "acc", Type: spec.TypeFloat}, {Name: "b", Type: spec.TypeBool}, {Name: "i", Type: spec.TypeInt},
		{Name: "l", Type: spec.TypeList}, {Name: "m", Type: spec.TypeModel}, {Name: "o", Type: spec.TypeObject},
		{Name: "s", Type: spec.TypeString},
	}
	cases := []struct {
		name string
		b    Behavior
		want executors.Event
	}{
		{
			name: "success with configured and default outputs",
			b:    Behavior{Outputs: map[string]json.RawMessage{"acc": json.RawMessage(`0.93`), "undeclared": json.RawMessage(`1`)}},
			want: executors.Event{State: spec.TaskSucceeded, Outputs: map[string]spec.Value{
				"acc": {Param: json.RawMessage(`0.93`)},
				"b":   {Param: json.RawMessage(`false`)},
				"i":   {Param: json.RawMessage(`0`)},
				"l":   {Param: json.RawMessage(`[]`)},
				"m":   {Artifact: &spec.ArtifactRef{Digest: digest("x", "m"), Type: spec.TypeModel}},
				"o":   {Param: json.RawMessage(`{}`)},
				"s":   {Param: json.RawMessage(`""`)},
			}},
		},
		{
			name: "fail with the default exit code",
			b:    Behavior{Fail: true},
			want: executors.Event{State: spec.TaskFailed, ExitCode: 1, Reason: "exit code 1"},
		},
		{
			name: "fail with an exit code",
			b:    Behavior{Fail: true, ExitCode: 3},
			want: executors.Event{State: spec.TaskFailed, ExitCode: 3, Reason: "exit code 3"},
		},
		{
			name: "fail rate 1 always fails",
			b:    Behavior{FailRate: 1, ExitCode: 2},
			want: executors.Event{State: spec.TaskFailed, ExitCode: 2, Reason: "exit code 2"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := newManualClock()
			x := New(Config{Default: tc.b, Clock: clock})
			rec := newRecorder()
			start(t, x, specFor("x", "train", outs...), rec)
			// Reported synchronously, inside Start.
			if got := rec.kinds("x"); !reflect.DeepEqual(got, startedExited) {
				t.Fatalf("events %v, want Started, Exited", got)
			}
			want := tc.want
			want.ID, want.Kind, want.Time = "x", executors.EventExited, clock.Now()
			if got := lastExit(t, rec, "x"); !reflect.DeepEqual(got, want) {
				t.Errorf("Exited =\n  %+v\nwant\n  %+v", got, want)
			}
			if ids := running(t, x); len(ids) != 0 {
				t.Errorf("Running = %v", ids)
			}
		})
	}
}

func TestExecutor_PerTaskBehavior(t *testing.T) {
	t.Parallel()
	x := New(Config{Tasks: map[string]Behavior{"flaky": {Fail: true}}})
	rec := newRecorder()
	start(t, x, specFor("a", "flaky"), rec)
	start(t, x, specFor("b", "fine"), rec)
	if got := lastExit(t, rec, "a").State; got != spec.TaskFailed {
		t.Errorf("flaky: %s", got)
	}
	if got := lastExit(t, rec, "b").State; got != spec.TaskSucceeded {
		t.Errorf("fine: %s", got)
	}
}

func TestExecutor_FailRateIsSeededPerExecution(t *testing.T) {
	t.Parallel()
	outcomes := func(seed int64, order []int) map[string]spec.TaskState {
		x := New(Config{Default: Behavior{FailRate: 0.3}, Seed: seed})
		rec := newRecorder()
		for _, i := range order {
			start(t, x, specFor(executors.ExecutionID("r", i, 1), "t"), rec)
		}
		m := map[string]spec.TaskState{}
		for _, ev := range rec.all() {
			if ev.Kind == executors.EventExited {
				m[ev.ID] = ev.State
			}
		}
		return m
	}
	const n = 2000
	fwd, rev := make([]int, n), make([]int, n)
	for i := range fwd {
		fwd[i], rev[n-1-i] = i, i
	}
	a, b, c := outcomes(7, fwd), outcomes(7, rev), outcomes(8, fwd)
	if !reflect.DeepEqual(a, b) {
		t.Error("the same seed gave different outcomes in another order")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("another seed gave the same outcomes")
	}
	failed := 0
	for _, s := range a {
		if s == spec.TaskFailed {
			failed++
		}
	}
	if failed < n*25/100 || failed > n*35/100 {
		t.Errorf("%d of %d failed with FailRate 0.3", failed, n)
	}
}

func TestExecutor_Duration(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	x := New(Config{Default: Behavior{Duration: 10 * time.Second}, Clock: clock})
	rec := newRecorder()
	t0 := clock.Now()
	start(t, x, specFor("b", "t"), rec)
	start(t, x, specFor("a", "t"), rec)
	if got := rec.kinds("a"); !reflect.DeepEqual(got, startedExited[:1]) {
		t.Fatalf("events %v, want Started", got)
	}
	if ids := running(t, x); !reflect.DeepEqual(ids, []string{"a", "b"}) {
		t.Errorf("Running = %v", ids)
	}
	clock.Advance(9 * time.Second)
	if len(rec.exited) != 0 {
		t.Fatal("exited early")
	}
	clock.Advance(time.Second)
	ev := lastExit(t, rec, "a")
	if ev.State != spec.TaskSucceeded || !ev.Time.Equal(t0.Add(10*time.Second)) {
		t.Errorf("Exited %+v", ev)
	}
	if ids := running(t, x); len(ids) != 0 {
		t.Errorf("Running = %v", ids)
	}
}

func TestExecutor_Timeout(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	x := New(Config{Default: Behavior{Duration: 10 * time.Second}, Clock: clock})
	rec := newRecorder()
	s := specFor("a", "t")
	s.Timeout = 2 * time.Second
	start(t, x, s, rec)
	ok := specFor("b", "t")
	ok.Timeout = 10 * time.Second // not over: succeeds
	start(t, x, ok, rec)
	clock.Advance(2 * time.Second)
	ev := lastExit(t, rec, "a")
	if ev.State != spec.TaskFailed || ev.Reason != "timed out after 2s" || ev.ExitCode != -1 {
		t.Errorf("Exited %+v", ev)
	}
	clock.Advance(8 * time.Second)
	if got := lastExit(t, rec, "b").State; got != spec.TaskSucceeded {
		t.Errorf("b: %s", got)
	}
}

func TestExecutor_Cancel(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	x := New(Config{Default: Behavior{Duration: time.Minute}, Clock: clock})
	rec := newRecorder()
	ctx := context.Background()
	start(t, x, specFor("a", "t"), rec)
	for range 2 {
		if err := x.Cancel(ctx, "a"); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Cancel(ctx, "unknown"); err != nil {
		t.Errorf("Cancel(unknown) = %v", err)
	}
	clock.Advance(time.Hour)
	if got := rec.kinds("a"); !reflect.DeepEqual(got, startedExited) {
		t.Fatalf("events %v, want Started, Exited once", got)
	}
	if ev := lastExit(t, rec, "a"); ev.State != spec.TaskCanceled || ev.ExitCode != -1 {
		t.Errorf("Exited %+v", ev)
	}
	// Finished executions are not cancelled again.
	if err := x.Cancel(ctx, "a"); err != nil || len(rec.kinds("a")) != 2 {
		t.Errorf("Cancel after exit: %v, %v", err, rec.kinds("a"))
	}
}

func TestExecutor_CancelWhileStarting(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	x := New(Config{Default: Behavior{Duration: time.Minute}, Clock: clock})
	rec := newRecorder()
	report := func(ev executors.Event) {
		rec.report(ev)
		if ev.Kind == executors.EventStarted {
			if err := x.Cancel(context.Background(), ev.ID); err != nil {
				t.Error(err)
			}
		}
	}
	if err := x.Start(context.Background(), specFor("a", "t"), report); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if got := rec.kinds("a"); !reflect.DeepEqual(got, startedExited) {
		t.Fatalf("events %v, want Started, Exited", got)
	}
	if ev := lastExit(t, rec, "a"); ev.State != spec.TaskCanceled {
		t.Errorf("Exited %+v", ev)
	}
}

func TestExecutor_BadSpec(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	x := New(Config{Default: Behavior{Duration: time.Second}, Clock: clock})
	rec := newRecorder()
	start(t, x, specFor("live", "t"), rec)
	cases := []struct {
		name   string
		spec   *executors.Spec
		report func(executors.Event)
	}{
		{"nil spec", nil, rec.report},
		{"empty id", specFor("", "t"), rec.report},
		{"nil report", specFor("x", "t"), nil},
		{"output without name", specFor("x", "t", executors.OutputSpec{Type: spec.TypeInt}), rec.report},
		{"unknown output type", specFor("x", "t", executors.OutputSpec{Name: "o", Type: "Blob"}), rec.report},
		{"id still running", specFor("live", "t"), rec.report},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := x.Start(context.Background(), tc.spec, tc.report); !errors.Is(err, executors.ErrBadSpec) {
				t.Errorf("Start = %v, want ErrBadSpec", err)
			}
		})
	}
	if n := len(rec.all()); n != 1 {
		t.Errorf("%d events, want only the live one's Started", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := x.Start(ctx, specFor("y", "t"), rec.report); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a done ctx = %v", err)
	}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	cases := map[string]Config{
		"negative duration":  {Default: Behavior{Duration: -1}},
		"fail rate above 1":  {Tasks: map[string]Behavior{"t": {FailRate: 1.5}}},
		"negative exit code": {Default: Behavior{ExitCode: -2}},
		"bad output json":    {Default: Behavior{Outputs: map[string]json.RawMessage{"o": json.RawMessage(`{`)}}},
	}
	for name, cfg := range cases {
		if cfg.Validate() == nil {
			t.Errorf("%s: Validate passed", name)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
}

func TestExecutor_Logs(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	x := New(Config{Tasks: map[string]Behavior{"slow": {Duration: time.Minute}}, Clock: clock})
	rec := newRecorder()
	ctx := context.Background()
	s := specFor("fast-1", "fast")
	s.Attempt = 2
	start(t, x, s, rec)
	rc, err := x.Logs(ctx, "fast-1", true) // finished: follow ends at once
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "sim: fast attempt 2\n" {
		t.Errorf("logs %q", b)
	}
	rc.Close()
	if _, err := x.Logs(ctx, "nope", false); !errors.Is(err, executors.ErrUnknownExecution) {
		t.Errorf("Logs(unknown) = %v", err)
	}

	start(t, x, specFor("slow-1", "slow"), rec)
	rc, err = x.Logs(ctx, "slow-1", true)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(rc)
		got <- string(b)
	}()
	select {
	case s := <-got:
		t.Fatalf("follow returned %q before the execution exited", s)
	case <-time.After(20 * time.Millisecond):
	}
	clock.Advance(time.Minute)
	select {
	case s := <-got:
		if s != "sim: slow attempt 1\n" {
			t.Errorf("logs %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end when the execution exited")
	}
}

func TestExecutor_RealClockConcurrent(t *testing.T) {
	t.Parallel()
	x := New(Config{Default: Behavior{Duration: 2 * time.Millisecond}, Tasks: map[string]Behavior{"now": {}}})
	rec := newRecorder()
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			task := []string{"now", "later"}[i%2]
			id := fmt.Sprintf("e%d", i)
			start(t, x, specFor(id, task), rec)
			if i%3 == 0 {
				_ = x.Cancel(context.Background(), id)
			}
		}()
	}
	wg.Wait()
	deadline := time.After(10 * time.Second)
	for range n {
		select {
		case <-rec.exited:
		case <-deadline:
			t.Fatal("not every execution exited")
		}
	}
	for i := range n {
		if got := rec.kinds(fmt.Sprintf("e%d", i)); !reflect.DeepEqual(got, startedExited) {
			t.Fatalf("e%d: events %v", i, got)
		}
	}
	if ids := running(t, x); len(ids) != 0 {
		t.Errorf("Running = %v", ids)
	}
}

// BenchmarkExecutor_Instant is the bench's path: Duration 0, two outputs.
func BenchmarkExecutor_Instant(b *testing.B) {
	x := New(DefaultConfig())
	outs := []executors.OutputSpec{{Name: "acc", Type: spec.TypeFloat}, {Name: "model", Type: spec.TypeModel}}
	ids := make([]string, 100000)
	for i := range ids {
		ids[i] = executors.ExecutionID("run", i, 1)
	}
	report := func(executors.Event) {}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := executors.Spec{ID: ids[i%len(ids)], Task: "train", Attempt: 1, Outputs: outs}
		if err := x.Start(ctx, &s, report); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// TestLogs_KeepsTheLastKeepLogs: sim remembers the logs of the last
// KeepLogs executions started, not of every one (a benchmark starts
// millions); a live one stays readable however old.
func TestLogs_KeepsTheLastKeepLogs(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	x := New(Config{Tasks: map[string]Behavior{"slow": {Duration: time.Minute}}, Clock: clock})
	rec := newRecorder()
	ctx := context.Background()
	start(t, x, specFor("slow-1", "slow"), rec)
	for i := range KeepLogs + 10 {
		start(t, x, specFor(fmt.Sprintf("fast-%d", i), "fast"), rec)
	}
	if _, err := x.Logs(ctx, "fast-0", false); !errors.Is(err, executors.ErrUnknownExecution) {
		t.Errorf("logs of an execution %d starts old: %v, want ErrUnknownExecution", KeepLogs+10, err)
	}
	for _, id := range []string{"slow-1", fmt.Sprintf("fast-%d", KeepLogs+9), "fast-11"} {
		if _, err := x.Logs(ctx, id, false); err != nil {
			t.Errorf("logs of %s: %v", id, err)
		}
	}
	x.mu.Lock()
	n := len(x.known)
	x.mu.Unlock()
	if n > KeepLogs+1 {
		t.Errorf("%d records kept, want at most %d", n, KeepLogs+1)
	}
}
