// Package executortest is the conformance suite every executor (local,
// docker, sim, and later kube) must pass: Run(t, harness).
//
// Each case uses its own task name (the Task* constants), so an executor
// that runs no real command (sim) can be configured per case. A harness
// declares what its executor cannot do; the suite then skips those checks
// with a message, or checks the weaker promise (sim: synthetic artifacts
// without bytes, no logs).
package executortest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store/blob"
)

// Task names of the cases, for harnesses that configure behaviour by task.
const (
	TaskOK         = "ok"         // succeeds, writing OutputN, a file and a dir artifact
	TaskFail       = "fail"       // exits FailExitCode
	TaskTimeout    = "timeout"    // runs far longer than its Timeout
	TaskCancel     = "cancel"     // runs until cancelled
	TaskBigLogs    = "big-logs"   // writes BigLogBytes to stdout
	TaskBigOutput  = "big-output" // writes BigArtifactBytes to an artifact
	TaskConcurrent = "concurrent" // many at once, each echoing its id
	TaskAdopt      = "adopt"      // runs a little, then writes OutputN
	TaskHostile    = "hostile"    // plants symbolic links to host files in its root
)

// Values the cases expect.
const (
	OutputN          = 42
	FailExitCode     = 3
	BigLogBytes      = 4 << 20
	BigArtifactBytes = 24 << 20
)

// Harness supplies an executor to the suite.
type Harness struct {
	// New returns an executor keeping its state (work dirs, blob store)
	// under dir, and the blob store it reads inputs from and writes
	// outputs and logs to. A second call with the same dir is the same
	// executor after an engine restart.
	New func(t testing.TB, dir string) (executors.Executor, *blob.Store)
	// Detach makes x forget its executions without touching them, as if
	// its process had died (needed for the adoption case).
	Detach func(x executors.Executor)
	// Image is Spec.Image for every case ("" for executors without images).
	Image string
	// Shell is the absolute path of a POSIX shell the step can run, with
	// printf, cat, mkdir, sleep, head, sha256sum and cut on its PATH.
	Shell string
	// Synthetic: the executor runs no commands; outputs are reported
	// without bytes (artifacts are references only, no logs), and cases
	// about bytes (big logs, big artifacts) are skipped.
	Synthetic bool
	// Concurrency is how many executions the concurrent case starts
	// (0 = 16).
	Concurrency int
	// Deadline bounds each wait (0 = 60s).
	Deadline time.Duration
}

// Run runs every case against h.
func Run(t *testing.T, h Harness) {
	if h.Deadline == 0 {
		h.Deadline = 60 * time.Second
	}
	if h.Concurrency == 0 {
		h.Concurrency = 16
	}
	if !h.Synthetic && h.Shell == "" {
		t.Fatal("executortest: Harness.Shell is required for executors that run commands")
	}
	cases := []struct {
		name string
		f    func(*testing.T, Harness)
	}{
		{"SuccessWithOutputs", testSuccess},
		{"FailureExitCode", testFailure},
		{"Timeout", testTimeout},
		{"Cancel", testCancel},
		{"LargeLogs", testLargeLogs},
		{"LargeArtifact", testLargeArtifact},
		{"ManyConcurrent", testConcurrent},
		{"AdoptAfterRestart", testAdopt},
		{"BadSpecRejected", testBadSpec},
		{"HostileSymlinks", testHostile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.f(t, h)
		})
	}
}

// fixture is one executor with its recorder.
type fixture struct {
	h     Harness
	dir   string
	x     executors.Executor
	blobs *blob.Store
	rec   *Recorder
}

func newFixture(t *testing.T, h Harness) *fixture {
	dir := t.TempDir()
	x, blobs := h.New(t, dir)
	return &fixture{h: h, dir: dir, x: x, blobs: blobs, rec: NewRecorder()}
}

var seq struct {
	sync.Mutex
	n int
}

// spec returns a spec for task with a fresh id and a shell script: the
// script gets args as $1, $2, ... (after $0 = task).
func (f *fixture) spec(task, script string, args ...string) *executors.Spec {
	seq.Lock()
	seq.n++
	n := seq.n
	seq.Unlock()
	run := fmt.Sprintf("conf%d", n)
	s := &executors.Spec{
		ID: executors.ExecutionID(run, 0, 1), RunID: run, Task: task, TaskIndex: 0, Attempt: 1,
		Image: f.h.Image,
	}
	if !f.h.Synthetic {
		s.Command = []string{f.h.Shell, "-c", script, task}
		s.Args = args
	} else {
		s.Command = []string{"/bin/true"}
	}
	return s
}

func (f *fixture) root(s *executors.Spec) string { return f.x.Root(s.ID) }

func (f *fixture) start(t *testing.T, s *executors.Spec) {
	t.Helper()
	if err := f.x.Start(context.Background(), s, f.rec.Report); err != nil {
		t.Fatalf("start %s: %v", s.ID, err)
	}
}

func (f *fixture) exited(t *testing.T, id string) executors.Event {
	t.Helper()
	return f.rec.Wait(t, id, executors.EventExited, f.h.Deadline)
}

func (f *fixture) logs(t *testing.T, ev executors.Event) string {
	t.Helper()
	if f.h.Synthetic {
		return ""
	}
	if ev.Logs == nil {
		t.Fatalf("%s: Exited carries no Logs reference", ev.ID)
	}
	return string(f.readBlob(t, *ev.Logs))
}

func (f *fixture) readBlob(t *testing.T, ref spec.ArtifactRef) []byte {
	t.Helper()
	rc, err := f.blobs.Open(context.Background(), ref.Digest)
	if err != nil {
		t.Fatalf("open blob %s: %v", ref.Digest, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read blob %s: %v", ref.Digest, err)
	}
	return b
}

func testSuccess(t *testing.T, h Harness) {
	f := newFixture(t, h)
	var in *spec.ArtifactRef
	if !h.Synthetic {
		ref, err := f.blobs.Put(context.Background(), strings.NewReader("from upstream"))
		if err != nil {
			t.Fatal(err)
		}
		in = &ref
	}
	s := f.spec(TaskOK, `set -e
printf '%s\n' "$1" > "$2"
printf 'hello' > "$3"
mkdir -p "$4/sub"
printf a > "$4/a"
cat "$5" > "$4/sub/b"
echo "ok: done"`, "", "", "", "", "")
	root := f.root(s)
	s.Args = []string{fmt.Sprint(OutputN), executors.OutputPath(root, "n"), executors.OutputPath(root, "file"),
		executors.OutputPath(root, "dir"), executors.InputPath(root, "in")}
	s.Env = []spec.EnvVar{{Name: "GREETING", Value: "hi"}}
	s.Outputs = []executors.OutputSpec{{Name: "n", Type: spec.TypeInt}, {Name: "file", Type: spec.TypeArtifact}, {Name: "dir", Type: spec.TypeDataset}}
	if in != nil {
		s.Inputs = []executors.ArtifactInput{{Name: "in", Ref: *in}}
	}
	f.start(t, s)
	ev := f.exited(t, s.ID)
	f.rec.CheckOrder(t, s.ID)
	if ev.State != spec.TaskSucceeded || ev.ExitCode != 0 {
		t.Fatalf("state %s exit %d reason %q; want SUCCEEDED 0", ev.State, ev.ExitCode, ev.Reason)
	}
	if got := string(ev.Outputs["n"].Param); got != fmt.Sprint(OutputN) {
		t.Errorf("output n = %q, want %d", got, OutputN)
	}
	file, dir := ev.Outputs["file"].Artifact, ev.Outputs["dir"].Artifact
	if file == nil || dir == nil || file.Type != spec.TypeArtifact || dir.Type != spec.TypeDataset {
		t.Fatalf("artifact outputs: file %+v dir %+v", file, dir)
	}
	if h.Synthetic {
		return
	}
	if got := string(f.readBlob(t, *file)); got != "hello" {
		t.Errorf("file artifact = %q, want hello", got)
	}
	if !dir.Dir {
		t.Errorf("dir artifact is not a directory: %+v", dir)
	}
	dst := filepath.Join(t.TempDir(), "dir")
	if err := f.blobs.Materialize(context.Background(), *dir, dst); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a": "a", "sub/b": "from upstream"} {
		if b, err := os.ReadFile(filepath.Join(dst, name)); err != nil || string(b) != want {
			t.Errorf("dir artifact %s = %q, %v; want %q", name, b, err, want)
		}
	}
	if logs := f.logs(t, ev); !strings.Contains(logs, "ok: done") {
		t.Errorf("logs = %q, want them to hold the step's output", logs)
	}
}

func testFailure(t *testing.T, h Harness) {
	f := newFixture(t, h)
	s := f.spec(TaskFail, fmt.Sprintf("echo failing >&2; exit %d", FailExitCode))
	f.start(t, s)
	ev := f.exited(t, s.ID)
	f.rec.CheckOrder(t, s.ID)
	if ev.State != spec.TaskFailed || ev.ExitCode != FailExitCode || !strings.Contains(ev.Reason, fmt.Sprintf("exit code %d", FailExitCode)) {
		t.Fatalf("state %s exit %d reason %q; want FAILED with exit code %d", ev.State, ev.ExitCode, ev.Reason, FailExitCode)
	}
	if len(ev.Outputs) != 0 {
		t.Errorf("a failed execution reported outputs %v", ev.Outputs)
	}
	if logs := f.logs(t, ev); !h.Synthetic && !strings.Contains(logs, "failing") {
		t.Errorf("logs = %q, want stderr in them", logs)
	}
}

func testTimeout(t *testing.T, h Harness) {
	f := newFixture(t, h)
	s := f.spec(TaskTimeout, "sleep 60")
	s.Timeout = time.Second
	begin := time.Now()
	f.start(t, s)
	ev := f.exited(t, s.ID)
	f.rec.CheckOrder(t, s.ID)
	if ev.State != spec.TaskFailed || !strings.Contains(ev.Reason, "timed out") {
		t.Fatalf("state %s reason %q; want FAILED, timed out", ev.State, ev.Reason)
	}
	if d := time.Since(begin); d > 45*time.Second {
		t.Errorf("timeout of 1s took %s", d)
	}
}

func testCancel(t *testing.T, h Harness) {
	f := newFixture(t, h)
	s := f.spec(TaskCancel, "echo started; sleep 60")
	f.start(t, s)
	f.rec.Wait(t, s.ID, executors.EventStarted, h.Deadline)
	var follow io.ReadCloser
	if !h.Synthetic {
		// The log can be followed while the step runs.
		var err error
		follow, err = f.x.Logs(context.Background(), s.ID, true)
		if err != nil {
			t.Fatalf("logs -f: %v", err)
		}
		defer follow.Close()
		waitFor(t, h.Deadline, "the followed log to show the step's first line", func() bool {
			return bytes.Contains(readSome(follow), []byte("started"))
		})
	}
	if err := f.x.Cancel(context.Background(), s.ID); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	ev := f.exited(t, s.ID)
	f.rec.CheckOrder(t, s.ID)
	if ev.State != spec.TaskCanceled {
		t.Fatalf("state %s reason %q; want CANCELED", ev.State, ev.Reason)
	}
	if follow != nil {
		done := make(chan error, 1)
		go func() { _, err := io.Copy(io.Discard, follow); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("following reader after exit: %v", err)
			}
		case <-time.After(h.Deadline):
			t.Error("following reader did not end after the execution exited")
		}
	}
	for _, id := range []string{s.ID, "never-started-0-1"} {
		if err := f.x.Cancel(context.Background(), id); err != nil {
			t.Errorf("cancel of finished or unknown %s: %v", id, err)
		}
	}
	waitFor(t, h.Deadline, "Running to forget the execution", func() bool {
		ids, err := f.x.Running(context.Background())
		return err == nil && !contains(ids, s.ID)
	})
}

func testLargeLogs(t *testing.T, h Harness) {
	if h.Synthetic {
		t.Skip("synthetic executor: no logs")
	}
	f := newFixture(t, h)
	s := f.spec(TaskBigLogs, `i=0; line=0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz012345678
while [ $i -lt 1024 ]; do printf '%s\n' "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line" "$line"; i=$((i+1)); done
echo END`)
	// 1024 * 51 lines of 82 bytes (81 + newline) + "END\n".
	const want = 1024*51*82 + 4
	f.start(t, s)
	ev := f.exited(t, s.ID)
	if ev.State != spec.TaskSucceeded {
		t.Fatalf("state %s reason %q", ev.State, ev.Reason)
	}
	if ev.Logs == nil || ev.Logs.Size != want {
		t.Fatalf("logs ref %+v; want %d bytes", ev.Logs, want)
	}
	logs := f.logs(t, ev)
	if !strings.HasSuffix(logs, "\nEND\n") || strings.Count(logs, "\n") != 1024*51+1 {
		t.Errorf("logs end %q, %d lines", logs[max(0, len(logs)-100):], strings.Count(logs, "\n"))
	}
	rc, err := f.x.Logs(context.Background(), s.ID, false)
	if err == nil {
		n, _ := io.Copy(io.Discard, rc)
		rc.Close()
		if n != want {
			t.Errorf("Logs after exit returned %d bytes, want %d", n, want)
		}
	} else if !errors.Is(err, executors.ErrUnknownExecution) {
		t.Errorf("Logs after exit: %v", err)
	}
}

func testLargeArtifact(t *testing.T, h Harness) {
	if h.Synthetic {
		t.Skip("synthetic executor: artifacts have no bytes")
	}
	f := newFixture(t, h)
	s := f.spec(TaskBigOutput, `set -e
head -c "$1" /dev/urandom > "$2"
sha256sum "$2" | cut -d' ' -f1 > "$3"`)
	root := f.root(s)
	s.Args = []string{fmt.Sprint(BigArtifactBytes), executors.OutputPath(root, "blob"), executors.OutputPath(root, "sum")}
	s.Outputs = []executors.OutputSpec{{Name: "blob", Type: spec.TypeModel}, {Name: "sum", Type: spec.TypeString}}
	f.start(t, s)
	ev := f.exited(t, s.ID)
	if ev.State != spec.TaskSucceeded {
		t.Fatalf("state %s reason %q", ev.State, ev.Reason)
	}
	ref := ev.Outputs["blob"].Artifact
	if ref == nil || ref.Size != BigArtifactBytes {
		t.Fatalf("artifact %+v; want %d bytes", ref, BigArtifactBytes)
	}
	rc, err := f.blobs.Open(context.Background(), ref.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	hash := sha256.New()
	if _, err := io.Copy(hash, rc); err != nil {
		t.Fatal(err)
	}
	if got, want := `"`+hex.EncodeToString(hash.Sum(nil))+`"`, string(ev.Outputs["sum"].Param); got != want {
		t.Errorf("stored artifact sha256 %s, the step computed %s", got, want)
	}
}

func testConcurrent(t *testing.T, h Harness) {
	f := newFixture(t, h)
	var specs []*executors.Spec
	for range h.Concurrency {
		s := f.spec(TaskConcurrent, `sleep 1; printf '%s' "$1" > "$2"`)
		s.Args = []string{s.ID, executors.OutputPath(f.root(s), "id")}
		s.Outputs = []executors.OutputSpec{{Name: "id", Type: spec.TypeString}}
		specs = append(specs, s)
	}
	var wg sync.WaitGroup
	for _, s := range specs {
		wg.Go(func() {
			if err := f.x.Start(context.Background(), s, f.rec.Report); err != nil {
				t.Errorf("start %s: %v", s.ID, err)
			}
		})
	}
	wg.Wait()
	for _, s := range specs {
		ev := f.exited(t, s.ID)
		f.rec.CheckOrder(t, s.ID)
		if ev.State != spec.TaskSucceeded {
			t.Errorf("%s: state %s reason %q", s.ID, ev.State, ev.Reason)
			continue
		}
		if !h.Synthetic && string(ev.Outputs["id"].Param) != `"`+s.ID+`"` {
			t.Errorf("%s: output id = %s (outputs crossed between executions?)", s.ID, ev.Outputs["id"].Param)
		}
	}
}

func testAdopt(t *testing.T, h Harness) {
	f := newFixture(t, h)
	if _, ok := f.x.(executors.Adopter); !ok {
		t.Skipf("executor %s does not implement executors.Adopter: its executions do not outlive the engine", f.x.Name())
	}
	if h.Detach == nil {
		t.Skip("harness has no Detach: cannot simulate an engine restart")
	}
	// running: adopted while the step still runs; finished: after it ended.
	script := `echo begin; sleep "$1"; printf '%s' "$2" > "$3"`
	mk := func(sleep string) *executors.Spec {
		s := f.spec(TaskAdopt, script)
		s.Args = []string{sleep, fmt.Sprint(OutputN), executors.OutputPath(f.root(s), "n")}
		s.Outputs = []executors.OutputSpec{{Name: "n", Type: spec.TypeInt}}
		return s
	}
	running, finished := mk("3"), mk("1")
	f.start(t, running)
	f.start(t, finished)
	f.rec.Wait(t, running.ID, executors.EventStarted, h.Deadline)
	f.rec.Wait(t, finished.ID, executors.EventStarted, h.Deadline)
	h.Detach(f.x)
	old := f.rec.Count()

	// The engine restarts: a new executor over the same state.
	x2, _ := h.New(t, f.dir)
	rec2 := NewRecorder()
	waitFor(t, h.Deadline, "the short step to finish while nobody watched", func() bool {
		ids, err := x2.Running(context.Background())
		return err == nil && !contains(ids, finished.ID)
	})
	ad := x2.(executors.Adopter)
	for _, s := range []*executors.Spec{running, finished} {
		ok, err := ad.Adopt(context.Background(), s, rec2.Report)
		if err != nil || !ok {
			t.Fatalf("adopt %s: %v, %v; want adopted", s.ID, ok, err)
		}
	}
	unknown := f.spec(TaskAdopt, script)
	if ok, err := ad.Adopt(context.Background(), unknown, rec2.Report); ok || err != nil {
		t.Errorf("adopt of an unknown execution: %v, %v; want false, nil", ok, err)
	}
	for _, s := range []*executors.Spec{running, finished} {
		ev := rec2.Wait(t, s.ID, executors.EventExited, h.Deadline)
		if ev.State != spec.TaskSucceeded || string(ev.Outputs["n"].Param) != fmt.Sprint(OutputN) {
			t.Errorf("%s: state %s reason %q outputs %v", s.ID, ev.State, ev.Reason, ev.Outputs)
		}
		if logs := f.logs(t, ev); strings.Count(logs, "begin") != 1 {
			t.Errorf("%s: logs %q: want the step to have run exactly once", s.ID, logs)
		}
		if n := rec2.CountOf(s.ID); n != 1 {
			t.Errorf("%s: %d events after adoption, want one Exited", s.ID, n)
		}
	}
	if n := f.rec.Count(); n != old {
		t.Errorf("the detached executor reported %d more events", n-old)
	}
}

func testBadSpec(t *testing.T, h Harness) {
	f := newFixture(t, h)
	report := func(ev executors.Event) { t.Errorf("report called for a rejected spec: %+v", ev) }
	cases := map[string]func(*executors.Spec){
		"no id":            func(s *executors.Spec) { s.ID = "" },
		"negative timeout": func(s *executors.Spec) { s.Timeout = -time.Second },
		"bad output type":  func(s *executors.Spec) { s.Outputs = []executors.OutputSpec{{Name: "x", Type: "Nonsense"}} },
	}
	for name, mod := range cases {
		s := f.spec(TaskOK, "exit 0")
		mod(s)
		err := f.x.Start(context.Background(), s, report)
		if !errors.Is(err, executors.ErrBadSpec) {
			t.Errorf("%s: Start = %v, want an error wrapping ErrBadSpec", name, err)
		}
	}
	if err := f.x.Start(context.Background(), nil, report); !errors.Is(err, executors.ErrBadSpec) {
		t.Errorf("nil spec: Start = %v, want ErrBadSpec", err)
	}
	ids, err := f.x.Running(context.Background())
	if err != nil || len(ids) != 0 {
		t.Errorf("Running after rejected starts = %v, %v; want none", ids, err)
	}
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// readSome reads what r has now, in the background, up to 64 KiB.
func readSome(r io.Reader) []byte {
	buf := make([]byte, 64<<10)
	n, _ := r.Read(buf)
	return buf[:n]
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
