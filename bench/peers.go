package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Peer is another DAG runner measured on the same shapes, on the same
// machine, in the same invocation. Peers run as separate programs,
// installed on first use: Skiff's module never depends on them.
type Peer interface {
	Name() string
	// Install makes the peer runnable, installing it under cacheDir when
	// it is not there yet, and returns its version. log receives what the
	// installation prints.
	Install(ctx context.Context, cacheDir string, log io.Writer) (version string, err error)
	// Unsupported says why the peer cannot run w, or "".
	Unsupported(w Workload) string
	// Run runs w once in dir (empty, removed afterwards) and returns its
	// times.
	Run(ctx context.Context, w Workload, dir string) (PeerRun, error)
	// Durability says what the peer makes durable, and how, as it is run
	// here (Skiff's is Report.Durability).
	Durability() string
}

// PeerRun is one run's times. Wall is the whole process, its start-up
// and its reading of the shape included, as Skiff's wall time starts from
// the pipeline's text. Sched, when the peer reports it, is its own
// measure of the run alone (0: not measured apart). CPU is the user and
// system CPU time of the peer's process over its whole run, start-up,
// parse and the processes it waited for (its steps) included (0: not
// measured).
type PeerRun struct {
	Wall, Sched, CPU time.Duration
}

// runPeerProcess runs cmd to its end and returns its wall time and its
// CPU time (exitedCPU).
func runPeerProcess(cmd *exec.Cmd) (wall, cpu time.Duration, err error) {
	start := time.Now()
	err = cmd.Run()
	wall = time.Since(start)
	return wall, exitedCPU(cmd.ProcessState), err
}

// Peer versions, pinned so that figures can be reproduced. See
// bench/README.md for how they were chosen.
const (
	GoTaskVersion = "v3.54.0"
	GoTaskPackage = "github.com/go-task/task/v3/cmd/task"
)

// PeerNames lists the peers --peers accepts.
var PeerNames = []string{"go-task", "go-workflows"}

// NewPeer returns the peer named name.
func NewPeer(name string) (Peer, error) {
	switch name {
	case "go-task":
		return &goTask{}, nil
	case "go-workflows":
		return &goWorkflows{}, nil
	}
	return nil, fmt.Errorf("unknown peer %q (have %s)", name, strings.Join(PeerNames, ", "))
}

// ParsePeers reads --peers: "none", "all" or a comma-separated list.
func ParsePeers(s string) ([]Peer, error) {
	switch s {
	case "", "none":
		return nil, nil
	case "all":
		s = strings.Join(PeerNames, ",")
	}
	var out []Peer
	for _, name := range strings.Split(s, ",") {
		p, err := NewPeer(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// PeerCacheDir is where peer binaries are installed:
// $XDG_CACHE_HOME/skiff/bench-peers (or ~/.cache/skiff/bench-peers).
func PeerCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "skiff", "bench-peers"), nil
}

// peerShape is what peers support: the plain shapes, sim or proc.
func peerShape(w Workload) string {
	switch w.Shape {
	case ShapeChain, ShapeFanout, ShapeLattice, ShapeParallelFor:
		return "" // a loop runs as the fan-out of the same size
	case ShapeCached:
		return "no comparable result cache"
	}
	return "shape not supported by peers"
}

func goCmd(ctx context.Context, dir string, log io.Writer, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOWORK=off"), env...)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, log)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, lastLine(out.String()))
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// goTask is go-task (Taskfile.yml), a non-durable DAG runner: each task
// of the shape becomes a Taskfile task whose deps are its dependencies,
// and `run: once` makes each run once per invocation. Sim shapes give the
// tasks no command (pure DAG bookkeeping, as the sim executor is); proc
// shapes run /bin/true. Wall time is the whole `task` process.
type goTask struct{ bin string }

func (*goTask) Name() string { return "go-task" }

func (g *goTask) Install(ctx context.Context, cacheDir string, log io.Writer) (string, error) {
	bindir := filepath.Join(cacheDir, "go-task-"+GoTaskVersion)
	g.bin = filepath.Join(bindir, "task")
	if _, err := os.Stat(g.bin); err == nil {
		return GoTaskVersion, nil
	}
	if err := goCmd(ctx, "", log, []string{"GOBIN=" + bindir}, "install", GoTaskPackage+"@"+GoTaskVersion); err != nil {
		return "", err
	}
	return GoTaskVersion, nil
}

func (*goTask) Unsupported(w Workload) string { return peerShape(w) }

// GoTaskDurability: go-task keeps no state of a run (its only files are
// the checksums of `sources:`, which these Taskfiles do not use).
const GoTaskDurability = "none: no run state is kept; a crash loses the run"

func (*goTask) Durability() string { return GoTaskDurability }

func (g *goTask) Run(ctx context.Context, w Workload, dir string) (PeerRun, error) {
	tf := filepath.Join(dir, "Taskfile.yml")
	if err := os.WriteFile(tf, GoTaskfile(w), 0o644); err != nil {
		return PeerRun{}, err
	}
	cmd := exec.CommandContext(ctx, g.bin, "--taskfile", tf, "--silent", "main")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	wall, cpu, err := runPeerProcess(cmd)
	if err != nil {
		return PeerRun{}, fmt.Errorf("task: %w: %s", err, lastLine(out.String()))
	}
	return PeerRun{Wall: wall, CPU: cpu}, nil
}

// GoTaskfile writes w as a Taskfile whose task "main" runs the whole DAG.
// go-task refuses to call one task more than 1,000 times in an
// invocation, so the many dependants of one task (fanout's root, a
// lattice layer) go through a barrier task: "main" runs the root, then a
// task whose deps are the N leaves; a lattice task of layer k depends on
// the task "layer<k-1>" whose deps are that layer's W tasks. The order
// enforced is the same as Skiff's plan.
func GoTaskfile(w Workload) []byte {
	var b strings.Builder
	b.WriteString("version: '3'\nrun: once\ntasks:\n")
	cmd := ""
	if w.Executor == "local" {
		cmd = "    cmds: ['/bin/true']\n"
	}
	task := func(name string, deps []string, body string) {
		fmt.Fprintf(&b, "  %s:\n", name)
		if len(deps) > 0 {
			b.WriteString("    deps: [")
			b.WriteString(strings.Join(deps, ", "))
			b.WriteString("]\n")
		}
		b.WriteString(body)
	}
	switch w.Shape {
	case ShapeChain:
		for i := 0; i < w.N; i++ {
			var deps []string
			if i > 0 {
				deps = []string{name(i - 1)}
			}
			task(name(i), deps, cmd)
		}
		task("main", []string{name(w.N - 1)}, "")
	case ShapeFanout, ShapeParallelFor:
		task("root", nil, cmd)
		leaves := make([]string, w.N)
		for i := range leaves {
			leaves[i] = name(i)
			task(leaves[i], nil, cmd)
		}
		task("leaves", leaves, "")
		task("main", nil, "    cmds: [{task: root}, {task: leaves}]\n")
	case ShapeLattice:
		for l := 0; l < w.D; l++ {
			var deps []string
			if l > 0 {
				deps = []string{"layer" + strconv.Itoa(l-1)}
			}
			layer := make([]string, w.W)
			for i := range layer {
				layer[i] = "l" + strconv.Itoa(l) + "-" + strconv.Itoa(i)
				task(layer[i], deps, cmd)
			}
			task("layer"+strconv.Itoa(l), layer, "")
		}
		task("main", []string{"layer" + strconv.Itoa(w.D-1)}, "")
	}
	return []byte(b.String())
}

// goWorkflows is cschleiden/go-workflows, a durable embedded workflow
// engine on SQLite, driven by the harness in bench/peers/goworkflows (its
// own module), built with `go build` there on first use.
type goWorkflows struct{ bin, sqlite string }

func (*goWorkflows) Name() string { return "go-workflows" }

// GoWorkflowsSourceDir finds bench/peers/goworkflows: $SKIFF_BENCH_PEERS
// /goworkflows, else in the working directory or one above it.
func GoWorkflowsSourceDir() (string, error) {
	var tries []string
	if d := os.Getenv("SKIFF_BENCH_PEERS"); d != "" {
		tries = append(tries, filepath.Join(d, "goworkflows"))
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			tries = append(tries, filepath.Join(d, "bench", "peers", "goworkflows"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, d := range tries {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("bench/peers/goworkflows not found: run skiff bench in the Skiff repository, or set SKIFF_BENCH_PEERS to its bench/peers")
}

func (g *goWorkflows) Install(ctx context.Context, cacheDir string, log io.Writer) (string, error) {
	src, err := GoWorkflowsSourceDir()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	version := moduleVersion(filepath.Join(src, "go.mod"), "github.com/cschleiden/go-workflows")
	g.bin = filepath.Join(cacheDir, "goworkflows-"+hex.EncodeToString(h.Sum(nil))[:12], "goworkflows")
	if _, err := os.Stat(g.bin); err == nil {
		return version, nil
	}
	if err := goCmd(ctx, src, log, nil, "build", "-o", g.bin, "."); err != nil {
		return "", err
	}
	return version, nil
}

// moduleVersion reads the version of module mod required in a go.mod.
func moduleVersion(gomod, mod string) string {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		if len(f) >= 2 && f[0] == mod {
			return f[1]
		}
	}
	return ""
}

func (*goWorkflows) Unsupported(w Workload) string { return peerShape(w) }

// GoWorkflowsDurability is what go-workflows' SQLite backend (v1.2.0,
// backend/sqlite/sqlite.go) sets, read from its code: it opens the file
// with modernc.org/sqlite, sets `PRAGMA journal_mode=WAL` and
// `busy_timeout`, one connection, and leaves `synchronous` at the
// driver's compiled default, which the harness reads back and reports
// (PeerStatus.Notes): FULL (2), so the WAL is fsynced at every commit.
const GoWorkflowsDurability = "SQLite (modernc.org/sqlite), journal_mode=WAL, synchronous=FULL (the driver's default; the backend sets none): the WAL is fsynced at every commit"

func (*goWorkflows) Durability() string { return GoWorkflowsDurability }

func (g *goWorkflows) Run(ctx context.Context, w Workload, dir string) (PeerRun, error) {
	shape := w.Shape
	if shape == ShapeParallelFor {
		shape = ShapeFanout // the harness has no loops: the same fan-out
	}
	args := []string{"-dir", dir, "-shape", string(shape)}
	if w.Shape == ShapeLattice {
		args = append(args, "-w", strconv.Itoa(w.W), "-d", strconv.Itoa(w.D))
	} else {
		args = append(args, "-n", strconv.Itoa(w.N))
	}
	if w.Executor == "local" {
		args = append(args, "-proc")
	}
	if dl, ok := ctx.Deadline(); ok {
		args = append(args, "-timeout", time.Until(dl).Round(time.Second).String())
	}
	cmd := exec.CommandContext(ctx, g.bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	wall, cpu, err := runPeerProcess(cmd)
	if err != nil {
		return PeerRun{}, fmt.Errorf("%w: %s", err, lastLine(errb.String()))
	}
	var res struct {
		WallS       float64 `json:"wall_s"`
		Synchronous string  `json:"sqlite_synchronous"`
		JournalMode string  `json:"sqlite_journal_mode"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		return PeerRun{}, fmt.Errorf("harness output %q: %w", out.String(), err)
	}
	g.sqlite = fmt.Sprintf("journal_mode=%s, synchronous=%s", res.JournalMode, res.Synchronous)
	return PeerRun{Wall: wall, Sched: time.Duration(res.WallS * float64(time.Second)), CPU: cpu}, nil
}

// SQLiteSettings is what the harness last read back from its database:
// "journal_mode=wal, synchronous=2", or "" before a run.
func (g *goWorkflows) SQLiteSettings() string { return g.sqlite }
