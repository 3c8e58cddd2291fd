package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/bench"
	"github.com/skiffml/skiff/store"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:      "bench",
		Usage:     "measure scheduler throughput on standard DAG shapes, side by side with peers",
		ArgsUsage: "[WORKLOAD...]",
		Description: `bench runs the real engine — a real store with its Raft log, fsyncs on —
in a fresh data dir, on named workloads: ` + bench.Usage() + `.
Sim workloads use the simulated executor (steps finish at once); proc-
workloads run /bin/true with the local executor.

Runs are interleaved: round r runs Skiff's run r (on each --raft-log-store),
then each peer's run r; every side reports its median of --runs and the
spread (min-max). For each workload it reports the wall time from the
pipeline's YAML text (parse and plan included, as a peer's wall time
includes reading its own file) to the run's final state being durable, the
scheduling time alone (SCHED: submission to the final state), the process's
CPU time over it (CPU: user and system, steps' processes included), tasks/s,
the scheduling latency from ready to dispatched (p50/p99), store entries and fsyncs per task, and the peak heap. Fsyncs are
counted in the Raft log store with the wal backend; with bolt (bbolt syncs by
itself) they are estimated as entries × 2 and marked ~. --raft-log-store
wal,bolt measures both backends in one invocation, interleaved.
With --peers, go-task and go-workflows run the same shapes on this machine in
the same invocation (installed with go install into a cache dir on first use);
each side's durability is stated, and a peer's CPU time is that of its whole
process and the processes it waited for (its steps). proc- workloads also get a per-task
breakdown (JSON "breakdown"): the executor's process time, the engine's
commits (store entry and fsync), the rest of the engine, and the CPU time
of Skiff's process and of the steps' processes.
With --reopen, a child skiff process fills a Raft log of --reopen-entries
entries without a snapshot, mid-run, and is killed with SIGKILL; the report
gives the time from opening its data dir to the first scheduling decision on
the resumed run (with --reopen and no workload named, only that is measured).

Default workloads: ` + strings.Join(bench.DefaultWorkloads, " ") + `
See bench/README.md.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "format: table or json"},
			&cli.IntFlag{Name: "runs", Value: 1, Usage: "measured runs per workload; the median run is reported"},
			&cli.StringFlag{Name: "peers", Value: "none", Usage: "peers to measure too: none, all, or a list (" + strings.Join(bench.PeerNames, ",") + ")"},
			&cli.StringFlag{Name: "data-dir", Usage: "the benchmark node's data dir (default: a temp dir, removed after)"},
			&cli.StringFlag{Name: "save", Usage: "also write the JSON report to this file"},
			&cli.DurationFlag{Name: "peer-timeout", Value: 5 * time.Minute, Usage: "give up on one peer run after this long"},
			&cli.BoolFlag{Name: "no-sync", Usage: "turn fsyncs off (figures are then not durable ones)"},
			&cli.StringFlag{Name: "raft-log-store", Value: store.DefaultLogStore, Usage: "the Raft log backend(s) to measure: wal, bolt, or a list (wal,bolt): each gets its own node and they run interleaved, run by run"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress on standard error"},
			&cli.IntFlag{Name: "cluster", Usage: "also run the sim workloads on a cluster of `N` nodes on loopback, beside the single node"},
			&cli.IntFlag{Name: "failover", Usage: "with --cluster: kill the leader `K` times during running fan-outs and report the time to the next decision"},
			&cli.BoolFlag{Name: "reopen", Usage: "also measure recovery: a child skiff fills a Raft log (no snapshot) mid-run and is killed with SIGKILL; report the time from opening its data dir to the first new scheduling decision (with state.db kept, and removed)"},
			&cli.IntFlag{Name: "reopen-entries", Value: bench.DefaultReopenEntries, Usage: "with --reopen: the Raft log entries to leave to replay (about `N`)"},
			&cli.StringFlag{Name: "reopen-child", Hidden: true, Usage: "internal: run the --reopen child in `DIR` until killed"},
		},
		Action: benchAction,
	}
}

func benchAction(c *cli.Context) error {
	if dir := c.String("reopen-child"); dir != "" {
		kind := strings.Split(c.String("raft-log-store"), ",")[0]
		return bench.ReopenChild(c.Context, dir, c.Int("reopen-entries"), c.Bool("no-sync"), kind, os.Stdout)
	}
	out := c.String("output")
	if out != "table" && out != "json" {
		return usageError("bench: --output must be table or json, not %q", out)
	}
	if c.Int("runs") < 1 {
		return usageError("bench: --runs must be at least 1")
	}
	if c.Int("cluster") < 0 || c.Int("cluster") > 9 {
		return usageError("bench: --cluster %d: want 1 to 9 nodes", c.Int("cluster"))
	}
	if c.Int("failover") < 0 {
		return usageError("bench: --failover %d: must not be negative", c.Int("failover"))
	}
	if c.Int("failover") > 0 && c.Int("cluster") < 2 {
		return usageError("bench: --failover needs --cluster N with N of 2 or more (3 to survive a kill)")
	}
	peers, err := bench.ParsePeers(c.String("peers"))
	if err != nil {
		return usageError("bench: --peers: %v", err)
	}
	for _, name := range c.Args().Slice() {
		if _, err := bench.ParseWorkload(name); err != nil {
			return usageError("bench: %v", err)
		}
	}
	var kinds []string
	for _, k := range strings.Split(c.String("raft-log-store"), ",") {
		k = strings.TrimSpace(k)
		if !slices.Contains(store.LogStores, k) {
			return usageError("bench: --raft-log-store %q: want %s, or a list of them", k, strings.Join(store.LogStores, ", "))
		}
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	cfg := bench.Config{
		Workloads: c.Args().Slice(),
		Runs:      c.Int("runs"),
		Peers:     peers,
		DataDir:   c.String("data-dir"),
		NoSync:    c.Bool("no-sync"),
		LogStores: kinds,

		PeerTimeout: c.Duration("peer-timeout"),
		Cluster:     c.Int("cluster"),
		Failover:    c.Int("failover"),
	}
	if c.Int("reopen-entries") < 1 {
		return usageError("bench: --reopen-entries must be at least 1")
	}
	if c.Bool("reopen") {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("bench: --reopen: %w", err)
		}
		cfg.Reopen = &bench.ReopenConfig{Entries: c.Int("reopen-entries"), NoSync: c.Bool("no-sync"), LogStore: kinds[0],
			Child: func(dir string, entries int) *exec.Cmd {
				args := []string{"bench", "--reopen-child", dir, "--reopen-entries", strconv.Itoa(entries), "--raft-log-store", kinds[0]}
				if c.Bool("no-sync") {
					args = append(args, "--no-sync")
				}
				return exec.Command(self, args...)
			}}
	}
	if !c.Bool("quiet") {
		cfg.Progress = os.Stderr
	}
	rep, err := bench.Run(c.Context, cfg)
	if err != nil {
		return err
	}
	if path := c.String("save"); path != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if out == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteTable(os.Stdout)
	}
	if err != nil {
		return err
	}
	for _, r := range rep.Results {
		if r.Error != "" {
			return fmt.Errorf("bench: %s failed", r.Workload)
		}
		if r.Cluster != nil && r.Cluster.Error != "" {
			return fmt.Errorf("bench: %s failed on the cluster", r.Workload)
		}
	}
	if x := rep.Reopen; x != nil && (x.Error != "" || x.Kept.Error != "" || x.Lost.Error != "") {
		return fmt.Errorf("bench: reopen failed: %s", strings.Join(slices.DeleteFunc([]string{x.Error, x.Kept.Error, x.Lost.Error}, func(s string) bool { return s == "" }), "; "))
	}
	if f := rep.Failover; f != nil && (f.Error != "" || f.Succeeded != f.Runs) {
		return fmt.Errorf("bench: failover: %d of %d runs succeeded; %s", f.Succeeded, f.Runs, f.Error)
	}
	return nil
}
