package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/skiffml/skiff/engine"
)

// DefaultReopenEntries is how many Raft log entries --reopen leaves to
// replay: a full snapshot interval (the store's default threshold), the
// most a node replays after a crash when snapshots are on.
const DefaultReopenEntries = 4096

// reopenSnapshotThreshold keeps the child from snapshotting, so that its
// whole log is replayed at the next open.
const reopenSnapshotThreshold = 1 << 40

// ReopenConfig is a `skiff bench --reopen` measurement.
type ReopenConfig struct {
	Entries  int // log entries to leave (about); 0 = DefaultReopenEntries
	NoSync   bool
	LogStore string // "" = the store's default
	// Child is the command that runs ReopenChild on a data dir: the same
	// binary, which the measurement kills with SIGKILL.
	Child func(dir string, entries int) *exec.Cmd
	// Timeout bounds the child's filling of the log and each reopen;
	// 0 = 2 minutes.
	Timeout time.Duration
}

// ReopenResult is the recovery time after a crash (Report.Reopen).
type ReopenResult struct {
	// Entries is the index of the last log entry the child reported
	// applied before it was killed with SIGKILL; LogEntries the entries
	// the reopened log held (raft's index, the new term's first entry
	// included), all after the last snapshot (Snapshots: 0).
	Entries    uint64 `json:"entries_before_kill"`
	LogEntries uint64 `json:"log_entries"`
	Snapshots  int    `json:"snapshots"`
	Killed     bool   `json:"killed"` // SIGKILL, not a clean close
	// Kept: reopening the data dir as the kill left it. state.db keeps
	// what the child wrote (a kill does not lose the page cache, and the
	// store keeps the state.db of a process that died on the machine's
	// running boot), so raft hands every entry to the state machine,
	// which skips those state.db already holds.
	Kept ReopenTiming `json:"state_kept"`
	// Lost: the same data dir with state.db removed (as after a power
	// loss that took its unsynced pages): every entry is applied again.
	Lost ReopenTiming `json:"state_lost"`
	// FreshOpenMs is the baseline: opening a new, empty data dir (the
	// store created, raft bootstrapped and elected), nothing to replay.
	FreshOpenMs float64 `json:"fresh_open_ms"`
	Error       string  `json:"error,omitempty"`
}

// ReopenTiming is one reopen: from opening the data dir to the store
// open (log read, raft started, every committed entry applied), to the
// engine's first committed decision on the resumed run, and to its first
// executor start.
type ReopenTiming struct {
	OpenMs          float64 `json:"open_ms"`
	FirstDecisionMs float64 `json:"first_decision_ms"`
	FirstDispatchMs float64 `json:"first_dispatch_ms,omitempty"`
	Applied         uint64  `json:"applied_index"` // after the open
	Resumed         int     `json:"runs_resumed"`
	Error           string  `json:"error,omitempty"`
}

// reopenWorkload is the chain the child runs: one entry per task, long
// enough to be running still when it is killed.
func reopenWorkload(entries int) Workload {
	return Workload{Shape: ShapeChain, N: 2*entries + 1000, Executor: "sim"}
}

// ReopenChild is the child's side of --reopen: it opens a node in dir
// without snapshots, submits a sim chain, prints "ready RUNID INDEX" to
// out once at least entries log entries are applied, and keeps running
// until ctx ends (it is meant to be killed).
func ReopenChild(ctx context.Context, dir string, entries int, noSync bool, logStore string, out io.Writer) error {
	n, err := OpenNode(ctx, dir, Options{NoSync: noSync, LogStore: logStore, SnapshotThreshold: reopenSnapshotThreshold})
	if err != nil {
		return err
	}
	defer n.Close()
	p, err := reopenWorkload(entries).Plan()
	if err != nil {
		return err
	}
	id, err := n.Engine.Submit(ctx, p, map[string]json.RawMessage{}, engine.SubmitOptions{})
	if err != nil {
		return err
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	ready := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if i := n.Store.AppliedIndex(); !ready && i >= uint64(entries) {
			if _, err := fmt.Fprintf(out, "ready %s %d\n", id, i); err != nil {
				return err
			}
			ready = true
		}
	}
}

// MeasureReopen builds a data dir under dir whose Raft log holds about
// cfg.Entries entries after no snapshot, by running ReopenChild in a child
// process and killing it with SIGKILL mid-run; then it reopens that data
// dir, and a copy without state.db, and times each to the engine's first
// decision on the run the child left unfinished.
func MeasureReopen(ctx context.Context, cfg ReopenConfig, dir string) ReopenResult {
	if cfg.Entries <= 0 {
		cfg.Entries = DefaultReopenEntries
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute
	}
	var res ReopenResult
	if cfg.Child == nil {
		res.Error = "no child command"
		return res
	}
	kept, lost, fresh := filepath.Join(dir, "reopen"), filepath.Join(dir, "reopen-state-lost"), filepath.Join(dir, "reopen-fresh")
	for _, d := range []string{kept, lost, fresh} { // left by an earlier --data-dir run
		if err := os.RemoveAll(d); err != nil {
			res.Error = err.Error()
			return res
		}
	}
	runID, index, err := killedChild(ctx, cfg, kept)
	res.Entries, res.Killed = index, err == nil
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if err := copyDir(kept, lost); err != nil {
		res.Error = err.Error()
		return res
	}
	if err := os.Remove(filepath.Join(lost, "store", "state.db")); err != nil {
		res.Error = err.Error()
		return res
	}
	if ents, err := os.ReadDir(filepath.Join(kept, "store", "snapshots")); err == nil {
		res.Snapshots = len(ents)
	}
	start := time.Now()
	n, err := OpenNode(ctx, fresh, Options{NoSync: cfg.NoSync, LogStore: cfg.LogStore})
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.FreshOpenMs = ms(time.Since(start))
	if err := n.Close(); err != nil {
		res.Error = err.Error()
		return res
	}
	res.Kept, res.LogEntries = reopenOnce(ctx, cfg, kept, runID)
	res.Lost, _ = reopenOnce(ctx, cfg, lost, runID)
	return res
}

// killedChild runs the child on dir until it says ready, then kills it
// with SIGKILL; it returns the child's run and applied index.
func killedChild(ctx context.Context, cfg ReopenConfig, dir string) (string, uint64, error) {
	cmd := cfg.Child(dir, cfg.Entries)
	var errb strings.Builder
	cmd.Stderr = &errb
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, fmt.Errorf("reopen child: %w", err)
	}
	type line struct {
		s   string
		err error
	}
	lines := make(chan line, 1)
	go func() {
		s, err := bufio.NewReader(stdout).ReadString('\n')
		lines <- line{s, err}
	}()
	var l line
	select {
	case l = <-lines:
	case <-time.After(cfg.Timeout):
		l.err = fmt.Errorf("not ready after %s", cfg.Timeout)
	case <-ctx.Done():
		l.err = ctx.Err()
	}
	_ = cmd.Process.Kill() // SIGKILL: no clean close of the store
	_ = cmd.Wait()
	if l.err != nil {
		return "", 0, fmt.Errorf("reopen child: %w: %s", l.err, lastLine(errb.String()))
	}
	f := strings.Fields(l.s)
	if len(f) != 3 || f[0] != "ready" {
		return "", 0, fmt.Errorf("reopen child said %q", l.s)
	}
	index, err := strconv.ParseUint(f[2], 10, 64)
	return f[1], index, err
}

// reopenOnce opens the node in dir, resumes its unfinished runs and waits
// for the engine's first committed decision.
func reopenOnce(ctx context.Context, cfg ReopenConfig, dir, runID string) (ReopenTiming, uint64) {
	var t ReopenTiming
	start := time.Now()
	n, err := OpenNode(ctx, dir, Options{NoSync: cfg.NoSync, LogStore: cfg.LogStore, SnapshotThreshold: reopenSnapshotThreshold})
	if err != nil {
		t.Error = err.Error()
		return t, 0
	}
	defer n.Close()
	t.OpenMs = ms(time.Since(start))
	t.Applied = n.Store.AppliedIndex()
	if _, err := n.Store.GetRun(runID); err != nil {
		t.Error = fmt.Sprintf("the child's run %s is not in the reopened store: %v", runID, err)
		return t, t.Applied
	}
	ids, err := n.Engine.Resume(ctx)
	t.Resumed = len(ids)
	if err != nil {
		t.Error = err.Error()
		return t, t.Applied
	}
	deadline := time.Now().Add(cfg.Timeout)
	for n.rec.firstUpdate.Load() == 0 {
		if time.Now().After(deadline) {
			t.Error = fmt.Sprintf("no decision within %s", cfg.Timeout)
			return t, t.Applied
		}
		time.Sleep(100 * time.Microsecond)
	}
	t.FirstDecisionMs = ms(time.Unix(0, n.rec.firstUpdate.Load()).Sub(start))
	// The decision (the lost attempt's task RUNNING again) is committed,
	// then its execution started: wait for that too.
	for n.rec.firstStart.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	if s := n.rec.firstStart.Load(); s != 0 {
		t.FirstDispatchMs = ms(time.Unix(0, s).Sub(start))
		// The engine starts an execution only after its decision is
		// committed; the update that tells of the commit can reach the
		// recorder a little after the start. The commit was no later.
		t.FirstDecisionMs = min(t.FirstDecisionMs, t.FirstDispatchMs)
	}
	return t, t.Applied
}

// copyDir copies the regular files and directories under src to dst.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o700)
		case !d.Type().IsRegular():
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o600)
	})
}

// writeReopen prints the --reopen measurement.
func (r *Report) writeReopen(w io.Writer) {
	x := r.Reopen
	if x == nil {
		return
	}
	fmt.Fprintf(w, "\nreopen after kill -9: %d log entries after the last snapshot (%d snapshots); child killed: %v; opening a new data dir takes %.0f ms\n", x.LogEntries, x.Snapshots, x.Killed, x.FreshOpenMs)
	if x.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", x.Error)
		return
	}
	for _, c := range []struct {
		label string
		t     ReopenTiming
	}{{"state.db kept", x.Kept}, {"state.db lost", x.Lost}} {
		if c.t.Error != "" {
			fmt.Fprintf(w, "  %s: error: %s\n", c.label, c.t.Error)
			continue
		}
		fmt.Fprintf(w, "  %s: open %.0f ms, first decision committed %.0f ms, its execution started %.0f ms (from opening the data dir)\n", c.label, c.t.OpenMs, c.t.FirstDecisionMs, c.t.FirstDispatchMs)
	}
}
