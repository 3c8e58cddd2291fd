package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/skiffml/skiff/store"
)

// DefaultWorkloads run when none are named: a small-to-medium set that
// finishes in well under a minute on a 2-core machine.
var DefaultWorkloads = []string{
	"chain-1000", "fanout-10000", "lattice-50x20", "cached-1000",
	"proc-chain-200", "proc-fanout-200",
}

// TargetWorkloads are the sizes the targets name; `make bench`
// runs them.
var TargetWorkloads = []string{
	"fanout-10000", "chain-1000", "lattice-100x10", "cached-10000",
	"proc-chain-1000", "proc-fanout-1000",
}

// Config is one `skiff bench` invocation.
type Config struct {
	Workloads []string // names for ParseWorkload; nil = DefaultWorkloads
	Runs      int      // measured runs per workload (the median is reported); 0 = 1
	Peers     []Peer
	DataDir   string // the node's data dir; "" = a temp dir, removed after
	// NoSync turns fsyncs off (never for reported figures).
	NoSync bool
	// LogStores are the raft log backends to measure (store.LogStoreWAL,
	// store.LogStoreBolt); nil = the store's default. With more than
	// one, each has its own node (data dir DataDir/log-KIND) and they run
	// interleaved: run 1 of a workload on each, then run 2 on each, ...
	LogStores []string
	// PeerTimeout bounds one peer run; 0 = 5 minutes.
	PeerTimeout time.Duration
	// Progress receives progress lines (stderr); nil = none.
	Progress io.Writer
	// Cluster: also run every workload on a cluster of this many nodes on
	// loopback (0 = none), reported beside the single node's figures.
	Cluster int
	// Failover: kill the cluster's leader this many times during running
	// fan-outs (needs Cluster). With Failover and no Workloads named, only
	// the failover is measured.
	Failover int
	// Reopen, when set, also measures the recovery time after a kill -9
	// (MeasureReopen). With Reopen and no Workloads named, only that is
	// measured.
	Reopen *ReopenConfig
	// Trace, when set, is called before each measured run with its side
	// ("skiff[wal]", or a peer's name), workload and run number (from 1):
	// tests check the interleaving with it.
	Trace func(side, workload string, run int)
}

func (c Config) trace(side, workload string, run int) {
	if c.Trace != nil {
		c.Trace(side, workload, run)
	}
}

// Run measures every workload on one real node, then on each peer, and
// returns the report. A workload or peer that fails is reported as such;
// Run fails only when the node cannot be opened or a workload name is bad.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	names := cfg.Workloads
	if len(names) == 0 && cfg.Failover == 0 && cfg.Reopen == nil {
		names = DefaultWorkloads
	}
	if cfg.Failover > 0 && cfg.Cluster < 1 {
		return nil, fmt.Errorf("bench: failover needs a cluster (--cluster N)")
	}
	var ws []Workload
	for _, n := range names {
		w, err := ParseWorkload(n)
		if err != nil {
			return nil, err
		}
		ws = append(ws, w)
	}
	runs := max(cfg.Runs, 1)
	progress := cfg.Progress
	if progress == nil {
		progress = io.Discard
	}
	dir := cfg.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "skiff-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	rep := &Report{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Machine:    DescribeMachine(),
		Durable:    !cfg.NoSync,
		Durability: SkiffDurability(cfg.NoSync, cfg.LogStores),
		Runs:       runs,
	}
	kinds := cfg.LogStores
	if len(kinds) == 0 {
		kinds = []string{""}
	}
	var nodes []*Node
	closeNodes := func() error {
		var first error
		for _, n := range nodes {
			if err := n.Close(); err != nil && first == nil {
				first = err
			}
		}
		nodes = nil
		return first
	}
	defer closeNodes()
	for _, kind := range kinds {
		ndir := dir
		if len(kinds) > 1 {
			ndir = filepath.Join(dir, "log-"+kind)
		}
		n, err := OpenNode(ctx, ndir, Options{NoSync: cfg.NoSync, LogStore: kind})
		if err != nil {
			return nil, fmt.Errorf("open node in %s: %w", ndir, err)
		}
		n.Progress = cfg.Progress
		nodes = append(nodes, n)
	}
	peers := installPeers(ctx, cfg, rep, progress)
	for _, w := range ws {
		runWorkload(ctx, cfg, w, runs, dir, nodes, peersFor(w, ws, peers), rep, progress)
	}
	if err := closeNodes(); err != nil {
		return nil, err
	}
	if cfg.Cluster > 0 {
		if err := runCluster(ctx, cfg, ws, runs, dir, rep, progress); err != nil {
			return nil, err
		}
	}
	if cfg.Reopen != nil {
		fmt.Fprintf(progress, "reopen: filling a log, kill -9, reopening ...\n")
		r := MeasureReopen(ctx, *cfg.Reopen, dir)
		rep.Reopen = &r
	}
	return rep, nil
}

// SkiffDurability is Report.Durability: what one entry costs, as run.
func SkiffDurability(noSync bool, logStores []string) string {
	if noSync {
		return "none (--no-sync): the Raft log is not fsynced; a crash may lose acknowledged entries"
	}
	return "fsync per Raft log append (" + strings.Join(logStoresOrDefault(logStores), ", ") + "): every committed entry is on disk before it is applied; state.db is not synced: kept after a kill -9, rebuilt from the log after a machine restart"
}

func logStoresOrDefault(kinds []string) []string {
	var out []string
	for _, k := range kinds {
		if k == "" {
			k = store.DefaultLogStore
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		out = []string{store.DefaultLogStore}
	}
	return out
}

// installPeers installs cfg.Peers and records their status in rep; it
// returns them in the same order, nil for one not installed.
func installPeers(ctx context.Context, cfg Config, rep *Report, progress io.Writer) []Peer {
	cache, cerr := PeerCacheDir()
	var ok []Peer
	for _, p := range cfg.Peers {
		st := PeerStatus{Peer: p.Name(), Durability: p.Durability()}
		if cerr != nil {
			st.Error = cerr.Error()
		} else {
			fmt.Fprintf(progress, "installing %s (first use only) ...\n", p.Name())
			st.Version, st.Error = errString(p.Install(ctx, cache, io.Discard))
		}
		rep.Peers = append(rep.Peers, st)
		if st.Error == "" {
			ok = append(ok, p)
		} else {
			ok = append(ok, nil)
		}
	}
	return ok
}

// peersFor is peers, or, for parallelfor-N when fanout-N runs in the
// same invocation, the same peers marked to skip it: peers run a loop as
// that very fan-out, so the fan-out's row has their figures.
func peersFor(w Workload, ws []Workload, peers []Peer) []Peer {
	if w.Shape != ShapeParallelFor {
		return peers
	}
	fan := Workload{Shape: ShapeFanout, N: w.N, Executor: w.Executor, Command: w.Command}
	if !slices.ContainsFunc(ws, func(x Workload) bool { return x.Name() == fan.Name() }) {
		return peers
	}
	out := make([]Peer, len(peers))
	for i, p := range peers {
		if p != nil {
			p = sameAs{p, fan.Name()}
		}
		out[i] = p
	}
	return out
}

// sameAs is a peer that skips a workload it would run as another one.
type sameAs struct {
	Peer
	other string
}

func (p sameAs) Unsupported(Workload) string {
	return "runs as " + p.other + " (no loops): see that row"
}

// peerRuns is one peer's runs of a workload, or why it has none (more).
type peerRuns struct {
	runs         []PeerRun
	skipped, err string
}

// runWorkload measures w on every node and every peer, interleaved: round
// r runs Skiff's run r on each node (log store), then each peer's run r,
// so that a change in the machine's load falls on every side alike. A
// side that fails is not run again; the others go on.
func runWorkload(ctx context.Context, cfg Config, w Workload, runs int, dir string, nodes []*Node, peers []Peer, rep *Report, progress io.Writer) {
	timeout := cfg.PeerTimeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	rs := make([][]Result, len(nodes))
	errs := make([]error, len(nodes))
	prs := make([]peerRuns, len(peers))
	for j, p := range peers {
		switch {
		case p == nil:
			prs[j].err = "not installed: " + rep.Peers[j].Error
		case p.Unsupported(w) != "":
			prs[j].skipped = p.Unsupported(w)
		}
	}
	for i := 0; i < runs; i++ {
		for k, n := range nodes {
			if errs[k] != nil {
				continue
			}
			cfg.trace("skiff["+n.Store.LogStore()+"]", w.Name(), i+1)
			fmt.Fprintf(progress, "skiff %s [%s] run %d ...\n", w.Name(), n.Store.LogStore(), i+1)
			r, err := n.Run(ctx, w)
			if err != nil {
				errs[k] = err
				continue
			}
			rs[k] = append(rs[k], r)
		}
		for j, p := range peers {
			if prs[j].skipped != "" || prs[j].err != "" {
				continue
			}
			cfg.trace(p.Name(), w.Name(), i+1)
			fmt.Fprintf(progress, "%s %s run %d ...\n", p.Name(), w.Name(), i+1)
			pr, err := runPeerOnce(ctx, p, w, dir, timeout)
			if err != nil {
				prs[j].err = err.Error()
				continue
			}
			prs[j].runs = append(prs[j].runs, pr)
		}
	}
	for k, n := range nodes {
		res := NewResult(rs[k])
		res.Workload, res.LogStore = w.Name(), n.Store.LogStore()
		if errs[k] != nil {
			res = WorkloadResult{Workload: w.Name(), LogStore: n.Store.LogStore(), Error: errs[k].Error()}
		}
		rep.Results = append(rep.Results, res)
	}
	addPeerResults(cfg, w, peers, prs, rep)
}

// addPeerResults puts the peers' figures under w's first result.
func addPeerResults(cfg Config, w Workload, peers []Peer, prs []peerRuns, rep *Report) {
	res := rep.result(w.Name())
	tasks := 0
	if pl, err := w.Plan(); err == nil {
		tasks = w.Tasks(pl)
	}
	for j, p := range peers {
		pr := PeerResult{Peer: cfg.Peers[j].Name(), Skipped: prs[j].skipped, Error: prs[j].err}
		if pr.Skipped == "" && pr.Error == "" {
			pr = NewPeerResult(pr.Peer, tasks, prs[j].runs, res.WallS)
		}
		if s, ok := p.(sameAs); ok {
			p = s.Peer
		}
		if g, ok := p.(*goWorkflows); ok && g.SQLiteSettings() != "" {
			rep.Peers[j].Notes = "SQLite as run: " + g.SQLiteSettings()
		}
		res.Peers = append(res.Peers, pr)
	}
}

// runPeerOnce runs p on w once in a fresh dir under dir, bounded by timeout.
func runPeerOnce(ctx context.Context, p Peer, w Workload, dir string, timeout time.Duration) (PeerRun, error) {
	d, err := os.MkdirTemp(dir, "peer-")
	if err != nil {
		return PeerRun{}, err
	}
	defer os.RemoveAll(d)
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pr, err := p.Run(rctx, w, d)
	if rctx.Err() != nil {
		return PeerRun{}, fmt.Errorf("timed out after %s", timeout)
	}
	return pr, err
}

// result is the first result of workload name (with several log stores,
// that of the first one named): peers and the cluster are compared with it.
func (r *Report) result(name string) *WorkloadResult {
	for i := range r.Results {
		if r.Results[i].Workload == name {
			return &r.Results[i]
		}
	}
	r.Results = append(r.Results, WorkloadResult{Workload: name})
	return &r.Results[len(r.Results)-1]
}

func errString(v string, err error) (string, string) {
	if err != nil {
		return v, err.Error()
	}
	return v, ""
}
