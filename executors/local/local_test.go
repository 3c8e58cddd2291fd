package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store/blob"
)

const (
	testDeadline = 20 * time.Second
	pollInterval = 10 * time.Millisecond
)

// recorder collects events of all executions, in order.
type recorder struct {
	mu     sync.Mutex
	events []executors.Event
	ch     chan struct{} // pinged on each event
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 1)} }

func (r *recorder) report(ev executors.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

func (r *recorder) snapshot() []executors.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]executors.Event(nil), r.events...)
}

// wait returns the first event of kind for id, failing after the deadline.
func (r *recorder) wait(t testing.TB, id string, kind executors.EventKind) executors.Event {
	t.Helper()
	deadline := time.NewTimer(testDeadline)
	defer deadline.Stop()
	for {
		for _, ev := range r.snapshot() {
			if ev.ID == id && ev.Kind == kind {
				return ev
			}
		}
		select {
		case <-r.ch:
		case <-deadline.C:
			t.Fatalf("no event %d for %s within %s; got %+v", kind, id, testDeadline, r.snapshot())
		}
	}
}

type fixture struct {
	ex    *Executor
	blobs *blob.Store
	rec   *recorder
}

func newFixture(t testing.TB, mod func(*Config)) *fixture {
	t.Helper()
	blobs, err := blob.Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig(filepath.Join(t.TempDir(), "work"), blobs)
	cfg.Logger = nil
	cfg.GPUs = []string{}
	cfg.GracePeriod = 2 * time.Second
	if mod != nil {
		mod(&cfg)
	}
	ex, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ex: ex, blobs: blobs, rec: newRecorder()}
	t.Cleanup(func() {
		ids, _ := ex.Running(context.Background())
		for _, id := range ids {
			ex.Cancel(context.Background(), id)
		}
		for _, id := range ids {
			f.rec.wait(t, id, executors.EventExited)
		}
	})
	return f
}

func shSpec(id, script string) *executors.Spec {
	return &executors.Spec{ID: id, RunID: "run1", Task: "t", Attempt: 1, Command: []string{"/bin/sh", "-c", script}}
}

func (f *fixture) start(t testing.TB, s *executors.Spec) {
	t.Helper()
	if err := f.ex.Start(context.Background(), s, f.rec.report); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) run(t testing.TB, s *executors.Spec) executors.Event {
	t.Helper()
	f.start(t, s)
	return f.rec.wait(t, s.ID, executors.EventExited)
}

func (f *fixture) blobBytes(t testing.TB, ref *spec.ArtifactRef) []byte {
	t.Helper()
	if ref == nil {
		t.Fatal("nil ref")
	}
	rc, err := f.blobs.Open(context.Background(), ref.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor polls cond until it holds.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(testDeadline); time.Now().Before(deadline); time.Sleep(pollInterval) {
		if cond() {
			return
		}
	}
	t.Fatalf("condition not met within %s", testDeadline)
}

// processGone polls until pid no longer exists (or is a zombie).
func processGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for time.Now().Before(deadline) {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if _, f := procStat(pid); len(f) > 0 && f[0] == "Z" {
			return
		}
		time.Sleep(pollInterval) // polling with a deadline, not waiting blindly
	}
	t.Fatalf("process %d still alive after %s", pid, testDeadline)
}

// procStat reads /proc/<pid>/stat: the command's name and the fields
// after it (state, ppid, pgrp, session, ...); none when pid is gone.
func procStat(pid int) (comm string, fields []string) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if err != nil || i < 0 || j < i {
		return "", nil
	}
	return string(b[i+1 : j]), strings.Fields(string(b[j+1:]))
}

// readPID polls for a pid written by a step into path.
func readPID(t testing.TB, path string) int {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err == nil {
				return pid
			}
		}
		time.Sleep(pollInterval) // polling with a deadline, not waiting blindly
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

func TestLocal_SuccessCollectsOutputs(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	s := shSpec("ok-1", `
set -e
echo "hello from $SKIFF_TASK"
echo 0.93 > outputs/acc
printf '%s|%s|%s|%s|%s' "$SKIFF_RUN_ID" "$SKIFF_EXECUTION_ID" "$SKIFF_ATTEMPT" "$TMPDIR" "$(pwd)" > outputs/ident
echo "$GREETING" > outputs/greeting
printf weights > outputs/model
mkdir -p outputs/ds/sub && echo a > outputs/ds/x && echo b > outputs/ds/sub/y
echo done >&2
`)
	s.Env = []spec.EnvVar{{Name: "GREETING", Value: "hi there"}, {Name: "SKIFF_TASK", Value: "overridden?"}}
	s.Outputs = []executors.OutputSpec{
		{Name: "acc", Type: spec.TypeFloat},
		{Name: "ident", Type: spec.TypeString},
		{Name: "greeting", Type: spec.TypeString},
		{Name: "model", Type: spec.TypeModel},
		{Name: "ds", Type: spec.TypeDataset},
	}
	ev := f.run(t, s)
	if ev.State != spec.TaskSucceeded || ev.ExitCode != 0 {
		t.Fatalf("exited %+v", ev)
	}
	root := f.ex.Root("ok-1")
	if !filepath.IsAbs(root) {
		t.Fatalf("root %q not absolute", root)
	}
	wantIdent := `"run1|ok-1|1|` + filepath.Join(root, "tmp") + "|" + root + `"`
	if got := string(ev.Outputs["ident"].Param); got != wantIdent {
		t.Fatalf("ident = %s, want %s", got, wantIdent)
	}
	if got := string(ev.Outputs["acc"].Param); got != "0.93" {
		t.Fatalf("acc = %s", got)
	}
	if got := string(ev.Outputs["greeting"].Param); got != `"hi there"` {
		t.Fatalf("greeting = %s", got)
	}
	if m := ev.Outputs["model"].Artifact; m == nil || m.Type != spec.TypeModel || string(f.blobBytes(t, m)) != "weights" {
		t.Fatalf("model = %+v", m)
	}
	ds := ev.Outputs["ds"].Artifact
	if ds == nil || !ds.Dir || ds.Type != spec.TypeDataset {
		t.Fatalf("ds = %+v", ds)
	}
	dst := filepath.Join(t.TempDir(), "ds")
	if err := f.blobs.Materialize(context.Background(), *ds, dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "sub", "y")); string(b) != "b\n" {
		t.Fatalf("ds/sub/y = %q", b)
	}
	if got := string(f.blobBytes(t, ev.Logs)); got != "hello from t\ndone\n" {
		t.Fatalf("logs = %q", got)
	}
	if ids, _ := f.ex.Running(context.Background()); len(ids) != 0 {
		t.Fatalf("Running = %v after exit", ids)
	}
	// Started came first, and exactly one Exited.
	evs := f.rec.snapshot()
	if len(evs) != 2 || evs[0].Kind != executors.EventStarted || evs[1].Kind != executors.EventExited {
		t.Fatalf("events = %+v", evs)
	}
}

func TestLocal_Failures(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name, script string
		outs         []executors.OutputSpec
		code         int
		reason       string
	}{
		{"exit code", "echo oops; exit 3", nil, 3, "exit code 3"},
		{"signal", "kill -KILL $$", nil, -1, "killed by signal 9"},
		{"missing output", "true", []executors.OutputSpec{{Name: "acc", Type: spec.TypeFloat}}, 0, `output "acc": missing`},
		{"bad output", "echo abc > outputs/acc", []executors.OutputSpec{{Name: "acc", Type: spec.TypeFloat}}, 0, `output "acc": expected float, got "abc\n"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := shSpec(strings.ReplaceAll(tc.name, " ", "-"), tc.script)
			s.Outputs = tc.outs
			ev := f.run(t, s)
			if ev.State != spec.TaskFailed || ev.ExitCode != tc.code || !strings.HasPrefix(ev.Reason, tc.reason) {
				t.Fatalf("exited %+v; want FAILED code %d reason %q", ev, tc.code, tc.reason)
			}
			if ev.Logs == nil {
				t.Fatal("no logs stored")
			}
		})
	}
	t.Run("no such command", func(t *testing.T) {
		s := &executors.Spec{ID: "nocmd", Command: []string{"skiff-no-such-binary"}}
		ev := f.run(t, s)
		if ev.State != spec.TaskFailed || !strings.Contains(ev.Reason, "skiff-no-such-binary") {
			t.Fatalf("exited %+v", ev)
		}
	})
}

func TestLocal_TimeoutKillsWholeGroup(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.GracePeriod = 300 * time.Millisecond })
	pidFile := filepath.Join(t.TempDir(), "child")
	// Both sh and its child ignore SIGTERM, so only the SIGKILL after the
	// grace period ends them.
	s := shSpec("slow", `trap "" TERM; sleep 60 & echo $! > `+pidFile+`; wait`)
	s.Timeout = 500 * time.Millisecond
	ev := f.run(t, s)
	if ev.State != spec.TaskFailed || ev.Reason != "timed out after 500ms" {
		t.Fatalf("exited %+v", ev)
	}
	processGone(t, readPID(t, pidFile))
}

func TestLocal_CancelRunning(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	pidFile := filepath.Join(t.TempDir(), "child")
	f.start(t, shSpec("c1", `sleep 60 & echo $! > `+pidFile+`; wait`))
	f.rec.wait(t, "c1", executors.EventStarted)
	child := readPID(t, pidFile)
	if err := f.ex.Cancel(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	ev := f.rec.wait(t, "c1", executors.EventExited)
	if ev.State != spec.TaskCanceled || ev.Reason != "canceled" {
		t.Fatalf("exited %+v", ev)
	}
	processGone(t, child)
	if err := f.ex.Cancel(context.Background(), "unknown"); err != nil {
		t.Fatalf("cancel unknown: %v", err)
	}
	if err := f.ex.Cancel(context.Background(), "c1"); err != nil {
		t.Fatalf("cancel finished: %v", err)
	}
}

func TestLocal_ResourceWaiting(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.MilliCPU = 1000 })
	a, b, c := shSpec("a", "sleep 0.3"), shSpec("b", "true"), shSpec("c", "true")
	a.Resources.MilliCPU, b.Resources.MilliCPU, c.Resources.MilliCPU = 1000, 1000, 1000
	f.start(t, a)
	f.start(t, b)
	f.start(t, c)
	if ids, _ := f.ex.Running(context.Background()); strings.Join(ids, ",") != "a,b,c" {
		t.Fatalf("Running = %v, want a,b,c", ids)
	}
	// Cancel c while it waits: it ends without starting.
	f.ex.Cancel(context.Background(), "c")
	if ev := f.rec.wait(t, "c", executors.EventExited); ev.State != spec.TaskCanceled {
		t.Fatalf("c exited %+v", ev)
	}
	f.rec.wait(t, "b", executors.EventExited)
	var order []string
	for _, ev := range f.rec.snapshot() {
		if ev.ID == "c" { // its Exited may come before or after a's Started
			if ev.Kind == executors.EventStarted {
				t.Fatal("canceled waiting step c started")
			}
			continue
		}
		order = append(order, ev.ID+map[executors.EventKind]string{executors.EventStarted: "+", executors.EventExited: "-"}[ev.Kind])
	}
	if got := strings.Join(order, " "); got != "a+ a- b+ b-" {
		t.Fatalf("event order %q, want %q", got, "a+ a- b+ b-")
	}
}

func TestLocal_CUDAVisibleDevices(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.GPUs = []string{"0", "1"} })
	for _, tc := range []struct {
		gpus int
		want string
	}{{2, "0,1"}, {1, "0"}, {0, ""}} {
		id := "gpu" + strconv.Itoa(tc.gpus)
		s := shSpec(id, `echo "${CUDA_VISIBLE_DEVICES-unset}" > outputs/cvd`)
		s.Resources.GPU = tc.gpus
		s.Outputs = []executors.OutputSpec{{Name: "cvd", Type: spec.TypeString}}
		ev := f.run(t, s)
		if got := string(ev.Outputs["cvd"].Param); got != strconv.Quote(tc.want) {
			t.Fatalf("%d GPUs: CUDA_VISIBLE_DEVICES = %s, want %q (%+v)", tc.gpus, got, tc.want, ev)
		}
	}
}

func TestLocal_BadSpecRejected(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.MilliCPU = 2000; c.MemoryBytes = 1 << 30; c.GPUs = []string{"0"} })
	for _, tc := range []struct {
		name string
		mod  func(*executors.Spec)
		want string
	}{
		{"empty command", func(s *executors.Spec) { s.Command = nil }, "command"},
		{"cpu", func(s *executors.Spec) { s.Resources.MilliCPU = 3000 }, "resources.milliCPU"},
		{"memory", func(s *executors.Spec) { s.Resources.MemoryBytes = 2 << 30 }, "resources.memoryBytes"},
		{"gpu", func(s *executors.Spec) { s.Resources.GPU = 2 }, "resources.gpu"},
		{"id", func(s *executors.Spec) { s.ID = "../x" }, "id"},
		{"output type", func(s *executors.Spec) { s.Outputs = []executors.OutputSpec{{Name: "o", Type: "Nope"}} }, "outputs[0].type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := shSpec("bad", "true")
			tc.mod(s)
			called := false
			err := f.ex.Start(context.Background(), s, func(executors.Event) { called = true })
			if !errors.Is(err, executors.ErrBadSpec) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrBadSpec naming %q", err, tc.want)
			}
			if called {
				t.Fatal("report called for a rejected spec")
			}
		})
	}
	if ids, _ := f.ex.Running(context.Background()); len(ids) != 0 {
		t.Fatalf("Running = %v", ids)
	}
}

func TestLocal_LargeLogIntact(t *testing.T) {
	t.Parallel()
	// KeepWorkDirs: the log is read again after exit.
	f := newFixture(t, func(c *Config) { c.KeepWorkDirs = true })
	s := shSpec("biglog", `head -c 2400000 /dev/urandom | base64 | tee outputs/copy; echo tail >&2; echo tail >> outputs/copy`)
	s.Outputs = []executors.OutputSpec{{Name: "copy", Type: spec.TypeArtifact}}
	f.start(t, s)
	follow, err := f.ex.Logs(context.Background(), "biglog", true)
	if err != nil {
		t.Fatal(err)
	}
	defer follow.Close()
	followed, err := io.ReadAll(follow)
	if err != nil {
		t.Fatal(err)
	}
	ev := f.rec.wait(t, "biglog", executors.EventExited)
	if ev.State != spec.TaskSucceeded {
		t.Fatalf("exited %+v", ev)
	}
	want := f.blobBytes(t, ev.Outputs["copy"].Artifact)
	if len(want) < 3_000_000 {
		t.Fatalf("copy only %d bytes", len(want))
	}
	if got := f.blobBytes(t, ev.Logs); !bytes.Equal(got, want) {
		t.Fatalf("stored log (%d bytes) differs from the output (%d bytes)", len(got), len(want))
	}
	if !bytes.Equal(followed, want) {
		t.Fatalf("followed log (%d bytes) differs from the output (%d bytes)", len(followed), len(want))
	}
	rc, err := f.ex.Logs(context.Background(), "biglog", false)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if got, _ := io.ReadAll(rc); !bytes.Equal(got, want) {
		t.Fatal("log after exit differs")
	}
	if _, err := f.ex.Logs(context.Background(), "never", false); !errors.Is(err, executors.ErrUnknownExecution) {
		t.Fatalf("unknown id: err = %v", err)
	}
}

func TestLocal_InputMaterialised(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ref, err := f.blobs.Put(context.Background(), strings.NewReader("training data\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := shSpec("in", `cat inputs/data > outputs/copy`)
	s.Inputs = []executors.ArtifactInput{{Name: "data", Ref: ref}}
	s.Outputs = []executors.OutputSpec{{Name: "copy", Type: spec.TypeString}}
	ev := f.run(t, s)
	if got := string(ev.Outputs["copy"].Param); got != `"training data"` {
		t.Fatalf("copy = %s (%+v)", got, ev)
	}
	// A missing input blob fails before start.
	s = shSpec("in2", "true")
	s.Inputs = []executors.ArtifactInput{{Name: "data", Ref: spec.ArtifactRef{Digest: "sha256:" + strings.Repeat("0", 64)}}}
	ev = f.run(t, s)
	if ev.State != spec.TaskFailed || !strings.Contains(ev.Reason, `input "data"`) || ev.Logs != nil {
		t.Fatalf("exited %+v", ev)
	}
}

func TestLocal_KillLeftover(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	id := "leftover-" + strconv.Itoa(os.Getpid())
	if err := f.ex.KillLeftover(id); !errors.Is(err, ErrNoLeftover) {
		t.Fatalf("nothing left: err = %v", err)
	}
	// A step an earlier engine started: a group leader, a child in its
	// group, and a grandchild that left the group; all carry the id.
	pidFile := filepath.Join(t.TempDir(), "pids")
	cmd := exec.Command("/bin/sh", "-c", `sleep 60 & c=$!; setsid sleep 60 & echo $c $! > `+pidFile+`; wait`)
	cmd.Env = append(os.Environ(), executionEnv+"="+id)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	var child, escaped int
	waitFor(t, func() bool {
		b, err := os.ReadFile(pidFile)
		n, _ := fmt.Sscan(string(b), &child, &escaped)
		return err == nil && n == 2
	})
	// The shell writes the pids as soon as it has forked; wait until the
	// grandchild has left the group (its own session) and runs sleep, so
	// that the kill meets the state the test means, not a fork or exec
	// half done.
	waitFor(t, func() bool {
		comm, f := procStat(escaped)
		return comm == "sleep" && len(f) > 3 && f[3] == strconv.Itoa(escaped)
	})
	// Another execution's process is left alone.
	other := exec.Command("sleep", "60")
	other.Env = append(os.Environ(), executionEnv+"="+id+"-other")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	if err := f.ex.KillLeftover(id); err != nil {
		t.Fatal(err)
	}
	processGone(t, child)
	processGone(t, escaped)
	processGone(t, cmd.Process.Pid)
	if err := syscall.Kill(other.Process.Pid, 0); err != nil {
		t.Errorf("another execution's process was killed: %v", err)
	}
	if err := f.ex.KillLeftover(id); !errors.Is(err, ErrNoLeftover) {
		t.Fatalf("after the kill: err = %v", err)
	}
}

// TestLocal_KillLeftover_ForkingLoop: a leftover that keeps starting
// children in new sessions is killed whole: children forked between the
// scan of /proc and the kill (or caught mid-exec by the scan) are found
// by the scans after it.
func TestLocal_KillLeftover_ForkingLoop(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	id := "forking-" + strconv.Itoa(os.Getpid())
	cmd := exec.Command("/bin/sh", "-c", `while :; do setsid sleep 60 & done`)
	cmd.Env = append(os.Environ(), executionEnv+"="+id)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	t.Cleanup(func() {
		pids, _ := leftoverPIDs(id)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	waitFor(t, func() bool {
		pids, err := leftoverPIDs(id)
		return err == nil && len(pids) >= 20
	})
	if err := f.ex.KillLeftover(id); err != nil {
		t.Fatal(err)
	}
	processGone(t, cmd.Process.Pid)
	// What was killed may take a moment to go; nothing may be left after.
	var left []int
	defer func() {
		if t.Failed() {
			t.Logf("processes of the execution left after the kill: %v", left)
		}
	}()
	waitFor(t, func() bool {
		var err error
		left, err = leftoverPIDs(id)
		return err == nil && len(left) == 0
	})
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	blobs, _ := blob.Open(t.TempDir())
	good := DefaultConfig(t.TempDir(), blobs)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"WorkDir":        func(c *Config) { c.WorkDir = "" },
		"Blobs":          func(c *Config) { c.Blobs = nil },
		"MilliCPU":       func(c *Config) { c.MilliCPU = -1 },
		"GracePeriod":    func(c *Config) { c.GracePeriod = -1 },
		"GPUs":           func(c *Config) { c.GPUs = []string{"0", "0"} },
		"MaxOutputBytes": func(c *Config) { c.MaxOutputBytes = -1 },
	} {
		c := good
		mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestLocal_StdinIsTheNullDevice: a step's standard input is the null
// device, read to its end at once, step after step: the executor gives
// every step the same open descriptor of it, and a later step could not
// start (or would read something else) if an earlier one's end closed or
// consumed it.
func TestLocal_StdinIsTheNullDevice(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for i := range 3 {
		id := "stdin" + strconv.Itoa(i)
		s := shSpec(id, `test -c /dev/stdin && test "$(stat -L -c %t:%T /dev/stdin)" = "$(stat -c %t:%T /dev/null)" && printf '%s' "$(wc -c)" > outputs/n`)
		s.Outputs = []executors.OutputSpec{{Name: "n", Type: spec.TypeString}}
		ev := f.run(t, s)
		if ev.State != spec.TaskSucceeded || string(ev.Outputs["n"].Param) != strconv.Quote("0") {
			t.Fatalf("step %d: stdin is not the null device read to its end: %+v", i, ev)
		}
	}
}
