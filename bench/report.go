package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what `skiff bench` prints: the machine, then one entry per
// workload.
type Report struct {
	Date    string  `json:"date"` // RFC 3339, UTC
	Machine Machine `json:"machine"`
	Durable bool    `json:"durable"` // fsyncs on
	// Durability says what Skiff makes durable, as Peers[].Durability
	// says it for each peer.
	Durability string `json:"durability"`
	// Runs is the measured runs per workload, per side: round r runs
	// Skiff's run r (on each log store), then each peer's run r. Figures
	// are the median run's; *_min_s and *_max_s give the spread.
	Runs    int              `json:"runs"`
	Peers   []PeerStatus     `json:"peers,omitempty"`
	Results []WorkloadResult `json:"results"`
	// ClusterNodes: the workloads also ran on a cluster of this many
	// nodes on loopback (WorkloadResult.Cluster); 0 = not.
	ClusterNodes int             `json:"cluster_nodes,omitempty"`
	Failover     *FailoverResult `json:"failover,omitempty"`
	// Reopen: the recovery time after a kill -9 (--reopen).
	Reopen *ReopenResult `json:"reopen,omitempty"`
}

// Machine describes where the figures were measured.
type Machine struct {
	Cores       int    `json:"cores"`
	MemoryBytes uint64 `json:"memory_bytes"`
	GoVersion   string `json:"go_version"`
	OS          string `json:"os"`
	Arch        string `json:"arch"`
	CPUModel    string `json:"cpu_model"`
	Kernel      string `json:"kernel,omitempty"`
	// LoadAvg is the 1-minute load average when the bench started: other
	// work on the machine skews the figures.
	LoadAvg float64 `json:"load_avg_1m"`
}

// WorkloadResult is Skiff's figures for one workload, and the peers'.
type WorkloadResult struct {
	Workload string `json:"workload"`
	LogStore string `json:"log_store,omitempty"` // the raft log's backend
	Tasks    int    `json:"tasks"`
	// WallS runs from the pipeline's YAML text to the run's final state
	// durable (ParseMs, then SchedS); each of the three is its own median.
	WallS     float64   `json:"wall_s"`
	WallMinS  float64   `json:"wall_min_s"`
	WallMaxS  float64   `json:"wall_max_s"`
	WallRunsS []float64 `json:"wall_runs_s,omitempty"` // every measured run, when more than one
	ParseMs   float64   `json:"parse_ms"`              // YAML text to finalized plan
	SchedS    float64   `json:"sched_s"`               // submission to the final state durable
	SchedMinS float64   `json:"sched_min_s"`
	SchedMaxS float64   `json:"sched_max_s"`
	// CPUS is the process's CPU time over the sched time (user and
	// system, its steps' processes included) in the median run.
	CPUS             float64 `json:"cpu_s"`
	TasksPerSec      float64 `json:"tasks_per_sec"`
	LatencyP50Ms     float64 `json:"latency_p50_ms"`
	LatencyP99Ms     float64 `json:"latency_p99_ms"`
	LatencyMaxMs     float64 `json:"latency_max_ms"`
	FirstDispatchMs  float64 `json:"first_dispatch_ms"`
	HeapPeakBytes    uint64  `json:"heap_peak_bytes"`
	HeapBytesPerTask float64 `json:"heap_bytes_per_task"`
	LiveBytesPerTask float64 `json:"heap_live_bytes_per_task"`
	Entries          uint64  `json:"entries"`
	EntriesPerTask   float64 `json:"entries_per_task"`
	FsyncsPerTask    float64 `json:"fsyncs_per_task"`
	FsyncsCounted    bool    `json:"fsyncs_counted"` // counted in the log store, not estimated
	Cached           int     `json:"cached_tasks,omitempty"`
	// Breakdown: where the median run's time went, per task (Breakdown).
	Breakdown *Breakdown   `json:"breakdown,omitempty"`
	Error     string       `json:"error,omitempty"`
	Peers     []PeerResult `json:"peers,omitempty"`
	// Cluster: the same workload on the cluster (Report.ClusterNodes).
	Cluster *ClusterResult `json:"cluster,omitempty"`
}

// PeerResult is one peer's figures for a workload.
type PeerResult struct {
	Peer  string `json:"peer"`
	Tasks int    `json:"tasks,omitempty"`
	// WallS is the whole process, start-up and reading the shape included
	// (PeerRun); SchedS the peer's own measure of the run alone, when it
	// has one (go-workflows: creating the instance to reading its result).
	WallS     float64   `json:"wall_s,omitempty"`
	WallMinS  float64   `json:"wall_min_s,omitempty"`
	WallMaxS  float64   `json:"wall_max_s,omitempty"`
	WallRunsS []float64 `json:"wall_runs_s,omitempty"`
	SchedS    float64   `json:"sched_s,omitempty"`
	// CPUS is the CPU time of the peer's process in the run of the median
	// wall time: the whole process, start-up and parse included, and the
	// processes it waited for (its steps) (PeerRun.CPU).
	CPUS        float64 `json:"cpu_s,omitempty"`
	TasksPerSec float64 `json:"tasks_per_sec,omitempty"`
	// SkiffSpeedup is the peer's wall time over Skiff's: above 1, Skiff
	// is faster.
	SkiffSpeedup float64 `json:"skiff_speedup,omitempty"`
	Skipped      string  `json:"skipped,omitempty"` // why it was not run
	Error        string  `json:"error,omitempty"`
}

// PeerStatus says which peer was used, at which version, or why not.
type PeerStatus struct {
	Peer    string `json:"peer"`
	Version string `json:"version,omitempty"`
	// Durability: what the peer makes durable, as run here.
	Durability string `json:"durability"`
	Error      string `json:"error,omitempty"`
	Notes      string `json:"notes,omitempty"`
}

// NewResult turns measured runs of one workload into its figures: those of
// the median run by wall time, with the spread of the runs; parse and
// sched times are each their own median.
func NewResult(runs []Result) WorkloadResult {
	if len(runs) == 0 {
		return WorkloadResult{}
	}
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b Result) int { return int(a.Wall - b.Wall) })
	r := sorted[len(sorted)/2]
	walls, parses, scheds := make([]time.Duration, len(runs)), make([]time.Duration, len(runs)), make([]time.Duration, len(runs))
	for i, x := range runs {
		walls[i], parses[i], scheds[i] = x.Wall, x.Parse, x.Sched
	}
	wall, sched := spread(walls), spread(scheds)
	bd := r.Breakdown
	out := WorkloadResult{
		Workload:         r.Workload,
		LogStore:         r.LogStore,
		Tasks:            r.Tasks,
		WallS:            r.Wall.Seconds(),
		WallMinS:         wall.min.Seconds(),
		WallMaxS:         wall.max.Seconds(),
		ParseMs:          ms(spread(parses).median),
		SchedS:           sched.median.Seconds(),
		SchedMinS:        sched.min.Seconds(),
		SchedMaxS:        sched.max.Seconds(),
		CPUS:             r.CPU.Seconds(),
		TasksPerSec:      r.TasksPerSec(),
		LatencyP50Ms:     ms(r.Latency.P50),
		LatencyP99Ms:     ms(r.Latency.P99),
		LatencyMaxMs:     ms(r.Latency.Max),
		FirstDispatchMs:  ms(r.FirstDispatch),
		HeapPeakBytes:    r.HeapPeak,
		HeapBytesPerTask: r.HeapBytesPerTask(),
		LiveBytesPerTask: r.LiveBytesPerTask(),
		Entries:          r.Entries,
		EntriesPerTask:   r.EntriesPerTask(),
		FsyncsPerTask:    r.FsyncsPerTask(),
		FsyncsCounted:    r.SyncsCounted,
		Cached:           r.Cached,
		Breakdown:        &bd,
	}
	if len(runs) > 1 {
		out.WallRunsS = seconds(walls)
	}
	return out
}

// NewPeerResult turns a peer's measured runs into its figures against
// Skiff's: the median wall time (and the median of its own sched times),
// with the spread.
func NewPeerResult(peer string, tasks int, runs []PeerRun, skiffWallS float64) PeerResult {
	walls, scheds := make([]time.Duration, len(runs)), make([]time.Duration, 0, len(runs))
	for i, r := range runs {
		walls[i] = r.Wall
		if r.Sched > 0 {
			scheds = append(scheds, r.Sched)
		}
	}
	w := spread(walls)
	wall := w.median.Seconds()
	p := PeerResult{Peer: peer, Tasks: tasks, WallS: wall, WallMinS: w.min.Seconds(), WallMaxS: w.max.Seconds(), TasksPerSec: float64(tasks) / wall}
	for _, r := range runs {
		if r.Wall == w.median {
			p.CPUS = r.CPU.Seconds()
			break
		}
	}
	if len(scheds) > 0 {
		p.SchedS = spread(scheds).median.Seconds()
	}
	if skiffWallS > 0 {
		p.SkiffSpeedup = wall / skiffWallS
	}
	if len(walls) > 1 {
		p.WallRunsS = seconds(walls)
	}
	return p
}

type spreadOf struct{ median, min, max time.Duration }

// spread is the median (the upper one of an even count, as NewResult's
// median run), the least and the greatest of ds.
func spread(ds []time.Duration) spreadOf {
	if len(ds) == 0 {
		return spreadOf{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return spreadOf{median: s[len(s)/2], min: s[0], max: s[len(s)-1]}
}

func seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// DescribeMachine reads the machine's cores, memory, CPU model and kernel.
func DescribeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.MemoryBytes = kb * 1024
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			m.LoadAvg, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	if m.CPUModel == "" {
		m.CPUModel = "unknown"
	}
	return m
}

// String is the machine in one line.
func (m Machine) String() string {
	return fmt.Sprintf("%d cores (%s), %.1f GiB memory, %s %s/%s, load %.2f at start", m.Cores, m.CPUModel,
		float64(m.MemoryBytes)/(1<<30), m.GoVersion, m.OS, m.Arch, m.LoadAvg)
}

// WriteTable prints the report as aligned columns: one row per workload,
// then one row per peer under it.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	mode := "durable (fsync on)"
	if !r.Durable {
		mode = "NOT durable (fsync off)"
	}
	order := ""
	if len(r.Peers) > 0 && r.Runs > 1 {
		order = ", interleaved: Skiff's run r, then each peer's run r"
	}
	fmt.Fprintf(w, "date: %s; %s; median of %d run(s) per side%s\n", r.Date, mode, r.Runs, order)
	fmt.Fprintf(w, "skiff durability: %s\n", r.Durability)
	for _, p := range r.Peers {
		switch {
		case p.Error != "":
			fmt.Fprintf(w, "peer %s: unavailable: %s\n", p.Peer, p.Error)
		default:
			fmt.Fprintf(w, "peer %s %s durability: %s\n", p.Peer, p.Version, p.Durability)
			if p.Notes != "" {
				fmt.Fprintf(w, "  %s\n", p.Notes)
			}
		}
	}
	if len(r.Results) > 0 {
		if err := r.writeResults(w); err != nil {
			return err
		}
	}
	r.writeBreakdowns(w)
	if f := r.Failover; f != nil {
		fmt.Fprintf(w, "\nfailover, cluster of %d: leader killed %d times during %s runs (%d submitted, %d succeeded)\n", f.Nodes, f.Kills, f.Workload, f.Runs, f.Succeeded)
		fmt.Fprintf(w, "  kill to next committed decision: p50 %.0f ms, p99 %.0f ms, max %.0f ms (kill to new leader: p50 %.0f ms, p99 %.0f ms)\n",
			f.KillToDecisionP50Ms, f.KillToDecisionP99Ms, f.KillToDecisionMaxMs, f.KillToLeaderP50Ms, f.KillToLeaderP99Ms)
		fmt.Fprintf(w, "  executions started: %d; the same execution started twice: %d; tasks run again after their worker died with the leader: %d\n", f.Executions, f.StartedTwice, f.TasksRerun)
		if f.KilledWithoutOtherWork > 0 {
			fmt.Fprintf(w, "  kills made with no live execution on another node's worker (after waiting %s for one): %d; after such a kill the next decision may wait for the killed node's lease\n", otherWorkWait, f.KilledWithoutOtherWork)
		}
		if f.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", f.Error)
		}
	}
	r.writeReopen(w)
	_, err := fmt.Fprintln(w, "\nWALL: from the pipeline's text to its final state durable, parse and plan included (Skiff: its YAML; go-task: the whole `task` process;\n"+
		"go-workflows: the whole harness process, opening its database included). SCHED: submission to the final state (go-workflows: its own timer).\n"+
		"CPU: Skiff's process CPU time (user and system, its steps' processes included) over SCHED; a cluster row's is every node's;\n"+
		"a peer's is its whole process over WALL (start-up and parse included) and the processes it waited for (its steps).\n"+
		"vs SKIFF: the peer's wall time over Skiff's (above 1x, Skiff is faster).\n[wal] [bolt]: the raft log's backend. FSYNCS/task: counted in the log store (wal); ~N: entries × 2, an estimate (bolt: bbolt syncs by itself).\n"+
		"HEAP: heap in use, garbage included; LIVE: the live heap as of each GC cycle.")
	return err
}

// writeResults prints the table of workloads, with their peers and
// cluster rows.
func (r *Report) writeResults(w io.Writer) error {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	const blank = "\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t"
	fmt.Fprintln(tw, "WORKLOAD\tTASKS\tWALL s\t(min-max)\tSCHED s\tCPU s\tTASKS/s\tP50 ms\tP99 ms\tENTRIES/task\tFSYNCS/task\tHEAP peak MiB\tHEAP B/task\tLIVE B/task\tvs SKIFF\t")
	for _, x := range r.Results {
		if x.Error != "" {
			fmt.Fprintf(tw, "%s%s  error: %s\n", x.Workload, blank, x.Error)
			continue
		}
		label, fsyncs := x.Workload, fmt.Sprintf("%.1f", x.FsyncsPerTask)
		if x.LogStore != "" {
			label += " [" + x.LogStore + "]"
		}
		if !x.FsyncsCounted {
			fsyncs = "~" + fsyncs
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%s\t%.3f\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t%s\t%.1f\t%.0f\t%.0f\t\t\n", label, x.Tasks, x.WallS, minMax(x.WallMinS, x.WallMaxS, r.Runs),
			x.SchedS, cpuCell(x.CPUS), x.TasksPerSec, x.LatencyP50Ms, x.LatencyP99Ms, x.EntriesPerTask, fsyncs, float64(x.HeapPeakBytes)/(1<<20), x.HeapBytesPerTask, x.LiveBytesPerTask)
		for _, p := range x.Peers {
			label := "  " + p.Peer
			switch {
			case p.Skipped != "":
				fmt.Fprintf(tw, "%s%s  skipped: %s\n", label, blank, p.Skipped)
			case p.Error != "":
				fmt.Fprintf(tw, "%s%s  error: %s\n", label, blank, p.Error)
			default:
				sched := ""
				if p.SchedS > 0 {
					sched = fmt.Sprintf("%.3f", p.SchedS)
				}
				fmt.Fprintf(tw, "%s\t%d\t%.3f\t%s\t%s\t%s\t%.0f\t\t\t\t\t\t\t\t%s\t\n", label, p.Tasks, p.WallS, minMax(p.WallMinS, p.WallMaxS, r.Runs), sched, cpuCell(p.CPUS), p.TasksPerSec, speedup(p.SkiffSpeedup))
			}
		}
		if cr := x.Cluster; cr != nil {
			label := fmt.Sprintf("  cluster-%d", cr.Nodes)
			switch {
			case cr.Skipped != "":
				fmt.Fprintf(tw, "%s%s  skipped: %s\n", label, blank, cr.Skipped)
			case cr.Error != "":
				fmt.Fprintf(tw, "%s%s  error: %s\n", label, blank, cr.Error)
			default:
				note := ""
				if cr.LeaderChanges > 0 {
					note = fmt.Sprintf(" (%d leader change(s))", cr.LeaderChanges)
				}
				if cr.CPUOfSingle > 0 {
					note += fmt.Sprintf("; CPU %.1fx single's: at most %.0f%% on %d cores", cr.CPUOfSingle, 100*cr.CPUBoundOfSingle, cr.Cores)
				}
				fmt.Fprintf(tw, "%s\t%d\t%.3f\t\t\t%s\t%.0f\t%.2f\t%.2f\t%.2f\t\t\t\t\t%.0f%% of single%s\t\n", label, cr.Tasks, cr.WallS, cpuCell(cr.CPUS), cr.TasksPerSec,
					cr.LatencyP50Ms, cr.LatencyP99Ms, cr.EntriesPerTask, 100*cr.OfSingle, note)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return nil
}

// cpuCell is a CPU time for the table ("" when not measured).
func cpuCell(s float64) string {
	if s <= 0 {
		return ""
	}
	return fmt.Sprintf("%.3f", s)
}

// writeBreakdowns prints, for each proc- workload, where a task's time
// went (Breakdown).
func (r *Report) writeBreakdowns(w io.Writer) {
	first := true
	for _, x := range r.Results {
		b := x.Breakdown
		if b == nil || x.Error != "" || !strings.HasPrefix(x.Workload, "proc-") {
			continue
		}
		if first {
			fmt.Fprintln(w, "\nper task (median run): executor Start call / Start to exit (process start and run; with tasks at once, waiting for an executor slot too) / engine commits (store entry, fsync) / rest of the engine (chains only);\n"+
				"CPU time: Skiff's process, and the steps' processes")
			first = false
		}
		engine := "overlapped"
		if b.EngineMsPerTask > 0 {
			engine = fmt.Sprintf("%.3f ms", b.EngineMsPerTask)
		}
		label := x.Workload
		if x.LogStore != "" {
			label += " [" + x.LogStore + "]"
		}
		fmt.Fprintf(w, "  %s: start %.3f ms, process %.3f ms, commit %.3f ms (%d commits), engine %s; CPU: Skiff %.3f ms, steps %.3f ms\n", label,
			b.StartMsPerTask, b.ExecMsPerTask, b.CommitMsPerTask, b.Commits, engine, b.SkiffCPUMsPerTask, b.StepsCPUMsPerTask)
	}
}

// minMax is "(min-max)" when there was more than one run.
func minMax(lo, hi float64, runs int) string {
	if runs < 2 {
		return ""
	}
	return fmt.Sprintf("(%.3f-%.3f)", lo, hi)
}

func speedup(x float64) string {
	if x == 0 {
		return ""
	}
	return fmt.Sprintf("%.2fx", x)
}
