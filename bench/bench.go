package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
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
}

// Run measures every workload on one real node, then on each peer, and
// returns the report. A workload or peer that fails is reported as such;
// Run fails only when the node cannot be opened or a workload name is bad.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	names := cfg.Workloads
	if len(names) == 0 && cfg.Failover == 0 {
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
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: DescribeMachine(),
		Durable: !cfg.NoSync,
		Runs:    runs,
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
	for _, w := range ws {
		rs := make([][]Result, len(nodes))
		errs := make([]error, len(nodes))
		for i := 0; i < runs; i++ {
			for k, n := range nodes {
				if errs[k] != nil {
					continue
				}
				fmt.Fprintf(progress, "skiff %s [%s] run %d ...\n", w.Name(), n.Store.LogStore(), i+1)
				r, err := n.Run(ctx, w)
				if err != nil {
					errs[k] = err
					continue
				}
				rs[k] = append(rs[k], r)
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
	}
	if err := closeNodes(); err != nil {
		return nil, err
	}
	if len(cfg.Peers) > 0 {
		runPeers(ctx, cfg, ws, runs, dir, rep, progress)
	}
	if cfg.Cluster > 0 {
		if err := runCluster(ctx, cfg, ws, runs, dir, rep, progress); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func runPeers(ctx context.Context, cfg Config, ws []Workload, runs int, dir string, rep *Report, progress io.Writer) {
	timeout := cfg.PeerTimeout
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	cache, cerr := PeerCacheDir()
	for _, p := range cfg.Peers {
		st := PeerStatus{Peer: p.Name()}
		if cerr != nil {
			st.Error = cerr.Error()
		} else {
			fmt.Fprintf(progress, "installing %s (first use only) ...\n", p.Name())
			st.Version, st.Error = errString(p.Install(ctx, cache, io.Discard))
		}
		rep.Peers = append(rep.Peers, st)
		for _, w := range ws {
			res := rep.result(w.Name())
			pr := PeerResult{Peer: p.Name()}
			switch {
			case st.Error != "":
				pr.Error = "not installed: " + st.Error
			case p.Unsupported(w) != "":
				pr.Skipped = p.Unsupported(w)
			default:
				fmt.Fprintf(progress, "%s %s ...\n", p.Name(), w.Name())
				pr = runPeer(ctx, p, w, runs, dir, timeout, res.WallS)
			}
			res.Peers = append(res.Peers, pr)
		}
	}
}

func runPeer(ctx context.Context, p Peer, w Workload, runs int, dir string, timeout time.Duration, skiffWallS float64) PeerResult {
	tasks := 0
	if pl, err := w.Plan(); err == nil {
		tasks = w.Tasks(pl)
	}
	var walls []time.Duration
	for i := 0; i < runs; i++ {
		d, err := os.MkdirTemp(dir, "peer-")
		if err != nil {
			return PeerResult{Peer: p.Name(), Error: err.Error()}
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		wall, err := p.Run(rctx, w, d)
		timedOut := rctx.Err() != nil
		cancel()
		os.RemoveAll(d)
		if timedOut {
			return PeerResult{Peer: p.Name(), Error: fmt.Sprintf("timed out after %s (over %.0fx Skiff's wall time)", timeout, timeout.Seconds()/max(skiffWallS, 1e-9))}
		}
		if err != nil {
			return PeerResult{Peer: p.Name(), Error: err.Error()}
		}
		walls = append(walls, wall)
	}
	return NewPeerResult(p.Name(), tasks, walls, skiffWallS)
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
