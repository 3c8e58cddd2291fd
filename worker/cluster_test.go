package worker_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/leader"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/clustertest"
	"github.com/skiffml/skiff/worker"
)

// Timing of the tests' workers: short, but tolerant of a loaded machine.
const (
	testHeartbeat = 150 * time.Millisecond
	testNodeTTL   = 3 * time.Second
)

// ledger counts side effects across the whole cluster: starts per
// execution, and executions live per task at each instant.
type ledger struct {
	mu         sync.Mutex
	starts     map[string]int
	live       map[string]int // run/task -> live executions
	liveOf     map[string]string
	violations []string
	where      []string
	args       map[string][]string // execution id -> the args it started with
}

func newLedger() *ledger {
	return &ledger{starts: map[string]int{}, live: map[string]int{}, liveOf: map[string]string{}, args: map[string][]string{}}
}

func (l *ledger) start(s *executors.Spec, node string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.where = append(l.where, fmt.Sprintf("%s@%s+%s", s.ID, node, time.Now().Format("05.000")))
	l.starts[s.ID]++
	l.args[s.ID] = append([]string(nil), s.Args...)
	if l.starts[s.ID] > 1 {
		l.violations = append(l.violations, "execution "+s.ID+" started twice")
	}
	task := fmt.Sprintf("%s/%d", s.RunID, s.TaskIndex)
	l.live[task]++
	l.liveOf[s.ID] = task
	if l.live[task] > 1 {
		l.violations = append(l.violations, fmt.Sprintf("task %s has %d live executions (at %s on %s; starts so far %v)", task, l.live[task], s.ID, node, l.where))
	}
}

func (l *ledger) end(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.where = append(l.where, fmt.Sprintf("end:%s+%s", id, time.Now().Format("05.000")))
	if task, ok := l.liveOf[id]; ok {
		l.live[task]--
		delete(l.liveOf, id)
	}
}

func (l *ledger) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.starts {
		n += c
	}
	return n
}

func (l *ledger) bad() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.violations...)
}

// nodeExec is one node's sim executor, recording into the ledger. crash
// ends its executions without a word (the node's process died).
type nodeExec struct {
	*sim.Executor
	l       *ledger
	node    string
	mu      sync.Mutex
	live    map[string]bool
	crashed bool
	ran     map[string]string // execution id -> node, shared
}

func (x *nodeExec) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	x.mu.Lock()
	if x.crashed {
		x.mu.Unlock()
		return fmt.Errorf("node %s is down", x.node)
	}
	x.live[s.ID] = true
	x.mu.Unlock()
	x.l.start(s, x.node)
	x.l.mu.Lock()
	x.ran[s.ID] = x.node
	x.l.mu.Unlock()
	err := x.Executor.Start(ctx, s, func(ev executors.Event) {
		if ev.Kind == executors.EventExited {
			x.mu.Lock()
			was := x.live[ev.ID]
			delete(x.live, ev.ID)
			crashed := x.crashed
			x.mu.Unlock()
			if was {
				x.l.end(ev.ID)
			}
			if crashed {
				return
			}
		}
		report(ev)
	})
	if err != nil { // it never ran
		x.mu.Lock()
		delete(x.live, s.ID)
		x.mu.Unlock()
		x.l.end(s.ID)
	}
	return err
}

func (x *nodeExec) crash() {
	x.mu.Lock()
	x.crashed = true
	ids := make([]string, 0, len(x.live))
	for id := range x.live {
		ids = append(ids, id)
	}
	x.mu.Unlock()
	for _, id := range ids {
		_ = x.Executor.Cancel(context.Background(), id)
	}
}

// cluster is clustertest's cluster with a worker on every node and an
// engine (with a dispatcher) on the leader.
type cluster struct {
	t   testing.TB
	c   *clustertest.Cluster
	l   *ledger
	ran map[string]string
	sim sim.Config
	// labels[i] are node i's worker labels (nil = none).
	labels []map[string]string
	// workspaces[i], when set, is node i's worker's WorkspaceDir.
	workspaces []string
	// disk[i], when set, is node i's worker's DiskCheck.
	disk []func() string

	nodes []*node

	mu     sync.Mutex
	stores []*store.Store // the live nodes' stores (the harness's fields are the test goroutine's)
}

type node struct {
	i int
	// othersRead counts the worker's reads of other nodes' assignments.
	othersRead atomic.Int64

	exec       *nodeExec
	stopWorker context.CancelFunc
	workerDone chan struct{}
	stopFollow func()
}

func newCluster(t testing.TB, n int, cfg sim.Config, labels ...map[string]string) *cluster {
	t.Helper()
	cl := &cluster{t: t, c: clustertest.MakeCluster(t, n), l: newLedger(), ran: map[string]string{}, sim: cfg, stores: make([]*store.Store, n), labels: labels}
	for i := range n {
		cl.nodes = append(cl.nodes, &node{i: i})
		cl.startNode(i)
	}
	t.Cleanup(func() {
		for i := range cl.nodes {
			cl.stopNode(i)
		}
	})
	return cl
}

// proposer applies through whichever node leads now (a server forwards
// to the leader; the in-memory cluster has no RPC).
type proposer struct{ cl *cluster }

func (p proposer) Apply(ctx context.Context, cmds ...store.Command) (store.ApplyResult, error) {
	p.cl.mu.Lock()
	stores := append([]*store.Store(nil), p.cl.stores...)
	p.cl.mu.Unlock()
	for _, st := range stores {
		if st != nil && st.IsLeader() {
			return st.Apply(ctx, cmds...)
		}
	}
	return store.ApplyResult{}, store.ErrNotLeader
}

func (cl *cluster) startNode(i int) {
	cl.t.Helper()
	nd := cl.nodes[i]
	st := cl.c.Nodes[i].Store
	cl.mu.Lock()
	cl.stores[i] = st
	cl.mu.Unlock()
	cl.startWorker(i)
	d, err := worker.NewDispatcher(worker.DispatchConfig{Store: st, Kinds: []string{sim.Name}, NodeTTL: testNodeTTL, Interval: testHeartbeat, Logger: testLogger(cl.c.Nodes[i].ID)})
	if err != nil {
		cl.t.Fatal(err)
	}
	ecfg := engine.DefaultConfig(st, d.Executors()...)
	ecfg.Logger = testLogger(st.ID())
	l, err := leader.New(leader.Config{Engine: ecfg, Store: st, Dispatch: d, Logger: testLogger(st.ID())})
	if err != nil {
		cl.t.Fatal(err)
	}
	nd.stopFollow = l.Follow()
}

// startWorker starts node i's worker with a fresh executor (a new
// process: a new epoch).
func (cl *cluster) startWorker(i int) {
	nd := cl.nodes[i]
	st := cl.c.Nodes[i].Store
	nd.exec = &nodeExec{Executor: sim.New(cl.sim), l: cl.l, node: cl.c.Nodes[i].ID, live: map[string]bool{}, ran: cl.ran}
	var labels map[string]string
	if i < len(cl.labels) {
		labels = cl.labels[i]
	}
	wcfg := worker.Config{NodeID: cl.c.Nodes[i].ID, Executors: []executors.Executor{nd.exec}, Labels: labels,
		Capacity: spec.Resources{MilliCPU: 8000}, Proposer: proposer{cl}, State: readCounter{st, cl.c.Nodes[i].ID, &nd.othersRead}, Heartbeat: testHeartbeat, Logger: testLogger(cl.c.Nodes[i].ID)}
	if i < len(cl.disk) {
		wcfg.DiskCheck = cl.disk[i]
	}
	if i < len(cl.workspaces) && cl.workspaces[i] != "" {
		wcfg.WorkspaceDir, wcfg.UnpackWorkspace = cl.workspaces[i], api.ExtractBundle
	}
	w, err := worker.New(wcfg)
	if err != nil {
		cl.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nd.stopWorker, nd.workerDone = cancel, make(chan struct{})
	go func() { defer close(nd.workerDone); _ = w.Run(ctx) }()
}

// readCounter is a worker's view of its node's store that counts the
// reads of other nodes' assignments.
type readCounter struct {
	*store.Store
	node   string
	others *atomic.Int64
}

func (r readCounter) Assignment(id string) (store.Assignment, error) {
	a, err := r.Store.Assignment(id)
	if err == nil && a.NodeID != r.node {
		r.others.Add(1)
	}
	return a, err
}

// stopNode kills node i: its worker, its executions (they die with it)
// and its store.
func (cl *cluster) stopNode(i int) {
	nd := cl.nodes[i]
	if nd.stopWorker == nil {
		return
	}
	cl.killWorker(i)
	nd.stopFollow()
	nd.stopWorker = nil
	cl.mu.Lock()
	cl.stores[i] = nil
	cl.mu.Unlock()
	cl.c.Kill(i)
}

// killWorker kills node i's worker and its executions, keeping its store
// (and raft membership): a worker crash.
func (cl *cluster) killWorker(i int) {
	nd := cl.nodes[i]
	if nd.workerDone == nil {
		return
	}
	nd.stopWorker()
	<-nd.workerDone
	nd.workerDone = nil
	nd.exec.crash()
}

// submit commits a new run of p through the leader (as the API would on
// any node, by forwarding).
func (cl *cluster) submit(id string, p *spec.Plan) {
	cl.t.Helper()
	raw, err := json.Marshal(p)
	if err != nil {
		cl.t.Fatal(err)
	}
	names := make([]string, len(p.Tasks))
	for i := range p.Tasks {
		names[i] = p.Tasks[i].Name
	}
	cl.c.Apply(store.CreateRun{Run: store.Run{ID: id, Name: p.Name, PipelineName: p.Name, Plan: raw, DefaultExecutor: sim.Name,
		State: spec.RunPending, CreatedAt: time.Now().UTC(), TaskCount: len(p.Tasks)}, TaskNames: names})
}

// waitNodesUp waits until the leader holds every node as up.
func (cl *cluster) waitNodesUp() {
	cl.t.Helper()
	cl.c.Eventually("every node up", func() error {
		ns, err := cl.c.Nodes[cl.c.Leader()].Store.Nodes()
		if err != nil {
			return err
		}
		up := 0
		for _, n := range ns {
			if n.State == store.NodeUp {
				up++
			}
		}
		if up < len(cl.nodes) {
			return fmt.Errorf("%d of %d nodes up", up, len(cl.nodes))
		}
		return nil
	})
}

// waitFinal waits until every run is final on the leader and returns them.
func (cl *cluster) waitFinal(ids ...string) map[string]store.Run {
	cl.t.Helper()
	out := map[string]store.Run{}
	cl.c.Eventually("every run final", func() error {
		st := cl.c.Nodes[cl.c.Leader()].Store
		for _, id := range ids {
			r, err := st.GetRun(id)
			if err != nil {
				return err
			}
			if !r.State.Final() {
				var open []string
				ts, _ := st.Tasks(id)
				for _, tk := range ts {
					if !tk.State.Final() {
						open = append(open, fmt.Sprintf("%s:%s:%d", tk.Name, tk.State, len(tk.Attempts)))
					}
				}
				as, _ := st.Assignments("")
				var asg []string
				for _, a := range as {
					asg = append(asg, fmt.Sprintf("%s@%s/%d started=%v exit=%v cancel=%v", a.ExecutionID, a.NodeID, a.Epoch, !a.StartedAt.IsZero(), a.Exit, a.CancelRequested))
				}
				if len(open) > 8 {
					open = open[:8]
				}
				return fmt.Errorf("run %s is %s; open tasks %v; assignments %v", id, r.State, open, asg)
			}
			out[id] = r
		}
		return nil
	})
	return out
}

func mustPlan(t testing.TB, yaml string) *spec.Plan {
	t.Helper()
	p, err := spec.ParseSkiff([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func fanOut(t testing.TB, width int, retries int) *spec.Plan {
	items := make([]int, width)
	for i := range items {
		items[i] = i
	}
	list, _ := json.Marshal(items)
	return mustPlan(t, fmt.Sprintf("name: fan\nexecutor: sim\ntasks:\n  - name: loop\n    parallelFor: {items: %s}\n    tasks:\n      - name: s\n        command: [x]\n        retry: {limit: %d, backoff: 10ms}\n  - {name: last, command: [x], after: [loop]}\n", list, retries))
}

// TestCluster_WorkersRunWhatTheLeaderAssigns: runs committed through the
// log are scheduled by the leader's engine and run by the workers of all
// three nodes, each execution once; the state machines agree.
func TestCluster_WorkersRunWhatTheLeaderAssigns(t *testing.T) {
	cl := newCluster(t, 3, sim.Config{Default: sim.Behavior{Duration: 20 * time.Millisecond}})
	cl.waitNodesUp() // all three are to be used
	cl.submit("run-a", fanOut(t, 30, 0))
	cl.submit("run-b", fanOut(t, 30, 0))
	for id, r := range cl.waitFinal("run-a", "run-b") {
		if r.State != spec.RunSucceeded {
			t.Fatalf("run %s is %s (%s)", id, r.State, r.Error)
		}
	}
	if bad := cl.l.bad(); len(bad) > 0 {
		t.Fatalf("side effects: %v", bad)
	}
	if n := cl.l.total(); n != 2*31 {
		t.Fatalf("%d executions started, want %d", n, 2*31)
	}
	perNode := map[string]int{}
	cl.l.mu.Lock()
	for _, nd := range cl.ran {
		perNode[nd]++
	}
	cl.l.mu.Unlock()
	if len(perNode) != 3 {
		t.Fatalf("executions per node %v: want all three nodes used", perNode)
	}
	for _, nd := range cl.nodes {
		if n := nd.othersRead.Load(); n > 0 {
			t.Errorf("worker %d read %d assignments of other nodes (the change feed names each one's node)", nd.i, n)
		}
	}
	cl.c.Eventually("assignments dropped with their attempts", func() error {
		as, err := cl.c.Nodes[cl.c.Leader()].Store.Assignments("")
		if err != nil || len(as) > 0 {
			return fmt.Errorf("%d assignments left (%v)", len(as), err)
		}
		return nil
	})
	cl.c.CheckConverged()
}

// TestCluster_DeadWorkersExecutionsAreRetriedElsewhere: a worker dies
// with executions under way; once its node TTL lapses the leader marks it
// down, its executions end lost and are retried on the other nodes, and
// the run succeeds with no execution started twice.
func TestCluster_DeadWorkersExecutionsAreRetriedElsewhere(t *testing.T) {
	cl := newCluster(t, 3, sim.Config{Default: sim.Behavior{Duration: 300 * time.Millisecond}})
	cl.waitNodesUp() // else a fan-out placed before the victim registered leaves it nothing
	cl.submit("run", fanOut(t, 12, 0))
	victim := (cl.c.Leader() + 1) % 3
	victimID := cl.c.Nodes[victim].ID
	cl.c.Eventually("the victim runs something", func() error {
		as, _ := cl.c.Nodes[cl.c.Leader()].Store.Assignments(victimID)
		if len(as) == 0 {
			return fmt.Errorf("nothing assigned to %s yet", victimID)
		}
		return nil
	})
	cl.killWorker(victim)
	r := cl.waitFinal("run")["run"]
	if r.State != spec.RunSucceeded {
		ts, _ := cl.c.Nodes[cl.c.Leader()].Store.Tasks("run")
		for _, tk := range ts {
			if tk.State == spec.TaskFailed {
				t.Logf("%s: %+v", tk.Name, tk.Attempts)
			}
		}
		t.Fatalf("run is %s (%s)", r.State, r.Error)
	}
	n, err := cl.c.Nodes[cl.c.Leader()].Store.Node(victimID)
	if err != nil || n.State != store.NodeDown {
		t.Fatalf("victim node: %+v %v, want down", n, err)
	}
	tasks, err := cl.c.Nodes[cl.c.Leader()].Store.Tasks("run")
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, tk := range tasks {
		for _, a := range tk.Attempts {
			if a.State == spec.TaskFailed && contains(a.Error, "lost: node "+victimID) {
				lost++
			}
		}
	}
	if lost == 0 {
		t.Fatalf("no attempt ended lost on %s: %+v", victimID, tasks)
	}
	if bad := cl.l.bad(); len(bad) > 0 {
		t.Fatalf("side effects: %v", bad)
	}
	cl.c.CheckConverged()
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// testLogger logs to standard error when SKIFF_TEST_LOG is set.
func testLogger(node string) *slog.Logger {
	if os.Getenv("SKIFF_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("n", node)
}

// TestCluster_NodeSelectorPlacesOnLabeledWorkers: steps with a
// nodeSelector run only on the worker whose labels match; a step whose
// selector no live worker matches fails after the node TTL with a reason
// naming the labels, and nothing of it runs anywhere.
func TestCluster_NodeSelectorPlacesOnLabeledWorkers(t *testing.T) {
	cl := newCluster(t, 3, sim.Config{Default: sim.Behavior{Duration: 10 * time.Millisecond}},
		nil, map[string]string{"gpu": "a100", "zone": "b"}, map[string]string{"gpu": "t4"})
	cl.submit("run-gpu", mustPlan(t, "name: sel\nexecutor: sim\ntasks:\n"+
		"  - {name: a, command: [x], nodeSelector: {gpu: a100}}\n"+
		"  - {name: b, command: [x], nodeSelector: {gpu: a100, zone: b}}\n"+
		"  - {name: c, command: [x], nodeSelector: {gpu: a100}, after: [a]}\n"+
		"  - {name: d, command: [x], nodeSelector: {gpu: t4}}\n"))
	if r := cl.waitFinal("run-gpu")["run-gpu"]; r.State != spec.RunSucceeded {
		t.Fatalf("run-gpu is %s (%s)", r.State, r.Error)
	}
	want := map[string]string{"a": cl.c.Nodes[1].ID, "b": cl.c.Nodes[1].ID, "c": cl.c.Nodes[1].ID, "d": cl.c.Nodes[2].ID}
	cl.l.mu.Lock()
	for exec, nd := range cl.ran {
		task := taskOf(t, cl, "run-gpu", exec)
		if want[task] != nd {
			t.Errorf("task %s ran on %s, want %s", task, nd, want[task])
		}
	}
	cl.l.mu.Unlock()

	cl.submit("run-none", mustPlan(t, "name: none\nexecutor: sim\ntasks:\n  - {name: a, command: [x], nodeSelector: {gpu: h100}}\n"))
	r := cl.waitFinal("run-none")["run-none"]
	if r.State != spec.RunFailed {
		t.Fatalf("run-none is %s, want FAILED", r.State)
	}
	tasks, err := cl.c.Nodes[cl.c.Leader()].Store.Tasks("run-none")
	if err != nil || len(tasks) != 1 || !strings.Contains(tasks[0].Error, "labels gpu=h100") {
		t.Fatalf("run-none's task: %+v %v", tasks, err)
	}
	if n := cl.l.total(); n != 4 {
		t.Fatalf("%d executions started, want the 4 of run-gpu", n)
	}
}

// TestCluster_PipelineFilesUnpackedWhereTheStepRuns: a run's pipeline
// files kept in the store (what `skiff run --server` sends) are unpacked
// by the worker that runs the step, on a node that never saw the request,
// and the step's {{pipeline.dir}} is rebased onto that node's copy; a
// worker keeping no workspaces fails such a step, saying why.
func TestCluster_PipelineFilesUnpackedWhereTheStepRuns(t *testing.T) {
	ws := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	labels := []map[string]string{nil, {"files": "yes"}, {"bare": "yes"}}
	cl := &cluster{t: t, c: clustertest.MakeCluster(t, 3), l: newLedger(), ran: map[string]string{},
		sim: sim.Config{Default: sim.Behavior{Duration: 5 * time.Millisecond}}, stores: make([]*store.Store, 3), labels: labels,
		workspaces: []string{ws[0], ws[1], ""}}
	for i := range 3 {
		cl.nodes = append(cl.nodes, &node{i: i})
		cl.startNode(i)
	}
	t.Cleanup(func() {
		for i := range cl.nodes {
			cl.stopNode(i)
		}
	})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	body := "sepal,petal\n5.1,1.4\n"
	if err := tw.WriteHeader(&tar.Header{Name: "data/in.csv", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write([]byte(body))
	_ = tw.Close()
	_ = zw.Close()
	bundle := buf.Bytes()
	digest := store.WorkspaceDigest(bundle)
	cl.c.Apply(store.PutWorkspace{Namespace: "team", Digest: digest, Data: bundle, Time: time.Now().UTC()})
	root := store.WorkspaceRoot("team", digest)
	submit := func(id, selector string) {
		p := mustPlan(t, "name: files\nexecutor: sim\ntasks:\n  - {name: a, command: [cat], args: ['{{pipeline.dir}}/data/in.csv'], nodeSelector: {"+selector+": 'yes'}}\n")
		raw, _ := json.Marshal(p)
		cl.c.Apply(store.CreateRun{Run: store.Run{ID: id, Name: p.Name, PipelineName: p.Name, Plan: raw, DefaultExecutor: sim.Name,
			PipelineDir: root, Namespace: "team", State: spec.RunPending, CreatedAt: time.Now().UTC(), TaskCount: 1}, TaskNames: []string{"a"}})
	}
	submit("run-files", "files")
	if r := cl.waitFinal("run-files")["run-files"]; r.State != spec.RunSucceeded {
		t.Fatalf("run-files is %s (%s)", r.State, r.Error)
	}
	local := filepath.Join(ws[1], "team", digest)
	cl.l.mu.Lock()
	args := cl.l.args["run-files-0-1"]
	cl.l.mu.Unlock()
	if want := []string{filepath.Join(local, "data", "in.csv")}; !slices.Equal(args, want) {
		t.Fatalf("the step started with args %q, want %q (rebased onto its node's copy)", args, want)
	}
	if got, err := os.ReadFile(args[0]); err != nil || string(got) != body {
		t.Fatalf("%s: %q, %v", args[0], got, err)
	}
	for _, i := range []int{0} {
		if ents, _ := os.ReadDir(ws[i]); len(ents) != 0 {
			t.Errorf("node %d, which did not run the step, unpacked %v", i, ents)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(ws[1], "team")); len(ents) != 1 {
		t.Errorf("the step's node holds %d entries in the namespace's workspace, want 1 (no staging left)", len(ents))
	}

	submit("run-bare", "bare")
	r := cl.waitFinal("run-bare")["run-bare"]
	tasks, err := cl.c.Nodes[cl.c.Leader()].Store.Tasks("run-bare")
	if r.State != spec.RunFailed || err != nil || len(tasks) != 1 || !strings.Contains(tasks[0].Error, "keeps no workspaces") {
		t.Fatalf("run-bare on a worker without workspaces: %s, tasks %+v %v", r.State, tasks, err)
	}
}

// TestCluster_LowDiskNodesGetNoNewWork: a worker whose disk check says
// its disk is nearly full is placed nothing new while it says so; when it
// has room again and the others do not, the work goes to it; when every
// node is low the steps wait (they do not fail) until one has room.
func TestCluster_LowDiskNodesGetNoNewWork(t *testing.T) {
	var low [3]atomic.Value
	for i := range low {
		low[i].Store("")
	}
	check := func(i int) func() string { return func() string { return low[i].Load().(string) } }
	cl := &cluster{t: t, c: clustertest.MakeCluster(t, 3), l: newLedger(), ran: map[string]string{},
		sim: sim.Config{Default: sim.Behavior{Duration: 5 * time.Millisecond}}, stores: make([]*store.Store, 3),
		disk: []func() string{check(0), check(1), check(2)}}
	low[1].Store("10 MiB free under /data, less than 256 MiB")
	for i := range 3 {
		cl.nodes = append(cl.nodes, &node{i: i})
		cl.startNode(i)
	}
	t.Cleanup(func() {
		for i := range cl.nodes {
			cl.stopNode(i)
		}
	})
	ranOn := func(run string) map[string]int {
		cl.l.mu.Lock()
		defer cl.l.mu.Unlock()
		out := map[string]int{}
		for exec, nd := range cl.ran {
			if strings.HasPrefix(exec, run+"-") {
				out[nd]++
			}
		}
		return out
	}
	waitLowDisk := func(want [3]bool) {
		cl.c.Eventually("the nodes' low-disk marks", func() error {
			st := cl.c.Nodes[cl.c.Leader()].Store
			for i, w := range want {
				n, err := st.Node(cl.c.Nodes[i].ID)
				if err != nil {
					return err
				}
				if (n.LowDisk != "") != w {
					return fmt.Errorf("node %d low_disk %q", i, n.LowDisk)
				}
			}
			return nil
		})
	}
	waitLowDisk([3]bool{false, true, false})
	cl.submit("run-1", fanOut(t, 8, 0))
	if r := cl.waitFinal("run-1")["run-1"]; r.State != spec.RunSucceeded {
		t.Fatalf("run-1 is %s (%s)", r.State, r.Error)
	}
	if got := ranOn("run-1"); got[cl.c.Nodes[1].ID] != 0 {
		t.Fatalf("run-1 placed %d executions on the low-disk node: %v", got[cl.c.Nodes[1].ID], got)
	}

	low[0].Store("1 MiB free")
	low[1].Store("")
	low[2].Store("2 MiB free")
	waitLowDisk([3]bool{true, false, true})
	cl.submit("run-2", fanOut(t, 8, 0))
	if r := cl.waitFinal("run-2")["run-2"]; r.State != spec.RunSucceeded {
		t.Fatalf("run-2 is %s (%s)", r.State, r.Error)
	}
	if got := ranOn("run-2"); got[cl.c.Nodes[1].ID] == 0 || got[cl.c.Nodes[0].ID]+got[cl.c.Nodes[2].ID] != 0 {
		t.Fatalf("run-2 placed work on low-disk nodes: %v", got)
	}

	low[1].Store("3 MiB free")
	waitLowDisk([3]bool{true, true, true})
	cl.submit("run-3", fanOut(t, 2, 0))
	time.Sleep(testNodeTTL + 500*time.Millisecond) // past the node TTL: the steps still wait, not fail
	if got := ranOn("run-3"); len(got) != 0 {
		t.Fatalf("run-3 ran on low-disk nodes: %v", got)
	}
	if r, err := cl.c.Nodes[cl.c.Leader()].Store.GetRun("run-3"); err != nil || r.State.Final() {
		t.Fatalf("run-3 with every node low on disk: %s %v (want it waiting)", r.State, err)
	}
	low[2].Store("")
	if r := cl.waitFinal("run-3")["run-3"]; r.State != spec.RunSucceeded {
		t.Fatalf("run-3 after node 2 freed its disk: %s (%s)", r.State, r.Error)
	}
	if got := ranOn("run-3"); got[cl.c.Nodes[2].ID] == 0 || got[cl.c.Nodes[0].ID]+got[cl.c.Nodes[1].ID] != 0 {
		t.Fatalf("run-3 ran on %v, want node 2 only", got)
	}
}

// taskOf names the task of execution id of run (ids are RUN-INDEX-ATTEMPT).
func taskOf(t *testing.T, cl *cluster, run, exec string) string {
	t.Helper()
	tasks, err := cl.c.Nodes[cl.c.Leader()].Store.Tasks(run)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		for _, a := range tk.Attempts {
			if a.ExecutionID == exec {
				return tk.Name
			}
		}
	}
	return "?"
}

// TestCluster_CancelledRunWhoseWorkerDiesEndsCanceled: a run is cancelled
// while its step's worker is dead (its cancel cannot be acted on); when
// the node is declared down the execution ends lost, and the run ends
// CANCELED, not FAILED (found by the chaos suite).
func TestCluster_CancelledRunWhoseWorkerDiesEndsCanceled(t *testing.T) {
	cl := newCluster(t, 3, sim.Config{Default: sim.Behavior{Duration: time.Hour}})
	cl.submit("run", mustPlan(t, "name: long\nexecutor: sim\ntasks:\n  - {name: a, command: [x]}\n  - {name: b, command: [x], after: [a]}\n"))
	var victim int
	cl.c.Eventually("the step started", func() error {
		as, _ := cl.c.Nodes[cl.c.Leader()].Store.Assignments("")
		if len(as) == 0 {
			return fmt.Errorf("nothing assigned yet")
		}
		// Its worker learns of it from its own replica, which may lag the
		// leader's: it must have started it before it dies.
		if cl.l.total() == 0 {
			return fmt.Errorf("%s assigned, not started yet", as[0].ExecutionID)
		}
		for i := range cl.c.Nodes {
			if cl.c.Nodes[i].ID == as[0].NodeID {
				victim = i
			}
		}
		return nil
	})
	cl.killWorker(victim)
	if _, err := (proposer{cl}).Apply(context.Background(), store.RequestCancel{RunID: "run", Time: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	r := cl.waitFinal("run")["run"]
	tasks, _ := cl.c.Nodes[cl.c.Leader()].Store.Tasks("run")
	if r.State != spec.RunCanceled || tasks[0].State != spec.TaskCanceled {
		t.Fatalf("run %s (%s); task a %s %+v", r.State, r.Error, tasks[0].State, tasks[0].Attempts)
	}
	if n := cl.l.total(); n != 1 {
		t.Fatalf("%d executions started, want 1 (no new attempt after the loss)", n)
	}
}
