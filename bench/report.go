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
	Date    string           `json:"date"` // RFC 3339, UTC
	Machine Machine          `json:"machine"`
	Durable bool             `json:"durable"` // fsyncs on
	Runs    int              `json:"runs"`    // measured runs per workload; figures are the median run's
	Peers   []PeerStatus     `json:"peers,omitempty"`
	Results []WorkloadResult `json:"results"`
	// ClusterNodes: the workloads also ran on a cluster of this many
	// nodes on loopback (WorkloadResult.Cluster); 0 = not.
	ClusterNodes int             `json:"cluster_nodes,omitempty"`
	Failover     *FailoverResult `json:"failover,omitempty"`
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
	Workload         string       `json:"workload"`
	LogStore         string       `json:"log_store,omitempty"` // the raft log's backend
	Tasks            int          `json:"tasks"`
	WallS            float64      `json:"wall_s"`
	WallRunsS        []float64    `json:"wall_runs_s,omitempty"` // every measured run, when more than one
	TasksPerSec      float64      `json:"tasks_per_sec"`
	LatencyP50Ms     float64      `json:"latency_p50_ms"`
	LatencyP99Ms     float64      `json:"latency_p99_ms"`
	LatencyMaxMs     float64      `json:"latency_max_ms"`
	FirstDispatchMs  float64      `json:"first_dispatch_ms"`
	HeapPeakBytes    uint64       `json:"heap_peak_bytes"`
	HeapBytesPerTask float64      `json:"heap_bytes_per_task"`
	LiveBytesPerTask float64      `json:"heap_live_bytes_per_task"`
	Entries          uint64       `json:"entries"`
	EntriesPerTask   float64      `json:"entries_per_task"`
	FsyncsPerTask    float64      `json:"fsyncs_per_task"`
	FsyncsCounted    bool         `json:"fsyncs_counted"` // counted in the log store, not estimated
	Cached           int          `json:"cached_tasks,omitempty"`
	Error            string       `json:"error,omitempty"`
	Peers            []PeerResult `json:"peers,omitempty"`
	// Cluster: the same workload on the cluster (Report.ClusterNodes).
	Cluster *ClusterResult `json:"cluster,omitempty"`
}

// PeerResult is one peer's figures for a workload.
type PeerResult struct {
	Peer        string    `json:"peer"`
	Tasks       int       `json:"tasks,omitempty"`
	WallS       float64   `json:"wall_s,omitempty"`
	WallRunsS   []float64 `json:"wall_runs_s,omitempty"`
	TasksPerSec float64   `json:"tasks_per_sec,omitempty"`
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
	Error   string `json:"error,omitempty"`
	Notes   string `json:"notes,omitempty"`
}

// NewResult turns measured runs of one workload into its figures: those of
// the median run by wall time.
func NewResult(runs []Result) WorkloadResult {
	if len(runs) == 0 {
		return WorkloadResult{}
	}
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b Result) int { return int(a.Wall - b.Wall) })
	r := sorted[len(sorted)/2]
	out := WorkloadResult{
		Workload:         r.Workload,
		LogStore:         r.LogStore,
		Tasks:            r.Tasks,
		WallS:            r.Wall.Seconds(),
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
	}
	if len(runs) > 1 {
		for _, x := range runs {
			out.WallRunsS = append(out.WallRunsS, x.Wall.Seconds())
		}
	}
	return out
}

// NewPeerResult turns a peer's measured wall times into its figures against
// Skiff's.
func NewPeerResult(peer string, tasks int, walls []time.Duration, skiffWallS float64) PeerResult {
	sorted := slices.Clone(walls)
	slices.Sort(sorted)
	wall := sorted[len(sorted)/2].Seconds()
	p := PeerResult{Peer: peer, Tasks: tasks, WallS: wall, TasksPerSec: float64(tasks) / wall}
	if skiffWallS > 0 {
		p.SkiffSpeedup = wall / skiffWallS
	}
	if len(walls) > 1 {
		for _, w := range walls {
			p.WallRunsS = append(p.WallRunsS, w.Seconds())
		}
	}
	return p
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
	fmt.Fprintf(w, "date: %s; %s; median of %d run(s)\n", r.Date, mode, r.Runs)
	for _, p := range r.Peers {
		switch {
		case p.Error != "":
			fmt.Fprintf(w, "peer %s: unavailable: %s\n", p.Peer, p.Error)
		default:
			fmt.Fprintf(w, "peer %s %s\n", p.Peer, p.Version)
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKLOAD\tTASKS\tWALL s\tTASKS/s\tP50 ms\tP99 ms\tENTRIES/task\tFSYNCS/task\tHEAP peak MiB\tHEAP B/task\tLIVE B/task\tvs SKIFF\t")
	for _, x := range r.Results {
		if x.Error != "" {
			fmt.Fprintf(tw, "%s\t\t\t\t\t\t\t\t\t\t\t\t  error: %s\n", x.Workload, x.Error)
			continue
		}
		label, fsyncs := x.Workload, fmt.Sprintf("%.1f", x.FsyncsPerTask)
		if x.LogStore != "" {
			label += " [" + x.LogStore + "]"
		}
		if !x.FsyncsCounted {
			fsyncs = "~" + fsyncs
		}
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.0f\t%.2f\t%.2f\t%.2f\t%s\t%.1f\t%.0f\t%.0f\t\t\n", label, x.Tasks, x.WallS, x.TasksPerSec,
			x.LatencyP50Ms, x.LatencyP99Ms, x.EntriesPerTask, fsyncs, float64(x.HeapPeakBytes)/(1<<20), x.HeapBytesPerTask, x.LiveBytesPerTask)
		for _, p := range x.Peers {
			label := "  " + p.Peer
			switch {
			case p.Skipped != "":
				fmt.Fprintf(tw, "%s\t\t\t\t\t\t\t\t\t\t\t\t  skipped: %s\n", label, p.Skipped)
			case p.Error != "":
				fmt.Fprintf(tw, "%s\t\t\t\t\t\t\t\t\t\t\t\t  error: %s\n", label, p.Error)
			default:
				fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.0f\t\t\t\t\t\t\t\t%s\t\n", label, p.Tasks, p.WallS, p.TasksPerSec, speedup(p.SkiffSpeedup))
			}
		}
		if cr := x.Cluster; cr != nil {
			label := fmt.Sprintf("  cluster-%d", cr.Nodes)
			switch {
			case cr.Skipped != "":
				fmt.Fprintf(tw, "%s\t\t\t\t\t\t\t\t\t\t\t\t  skipped: %s\n", label, cr.Skipped)
			case cr.Error != "":
				fmt.Fprintf(tw, "%s\t\t\t\t\t\t\t\t\t\t\t\t  error: %s\n", label, cr.Error)
			default:
				note := ""
				if cr.LeaderChanges > 0 {
					note = fmt.Sprintf(" (%d leader change(s))", cr.LeaderChanges)
				}
				fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.0f\t%.2f\t%.2f\t%.2f\t\t\t\t\t%.0f%% of single%s\t\n", label, cr.Tasks, cr.WallS, cr.TasksPerSec,
					cr.LatencyP50Ms, cr.LatencyP99Ms, cr.EntriesPerTask, 100*cr.OfSingle, note)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if f := r.Failover; f != nil {
		fmt.Fprintf(w, "\nfailover, cluster of %d: leader killed %d times during %s runs (%d submitted, %d succeeded)\n", f.Nodes, f.Kills, f.Workload, f.Runs, f.Succeeded)
		fmt.Fprintf(w, "  kill to next committed decision: p50 %.0f ms, p99 %.0f ms, max %.0f ms (kill to new leader: p50 %.0f ms, p99 %.0f ms)\n",
			f.KillToDecisionP50Ms, f.KillToDecisionP99Ms, f.KillToDecisionMaxMs, f.KillToLeaderP50Ms, f.KillToLeaderP99Ms)
		fmt.Fprintf(w, "  executions started: %d; the same execution started twice: %d; tasks run again after their worker died with the leader: %d\n", f.Executions, f.StartedTwice, f.TasksRerun)
		if f.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", f.Error)
		}
	}
	_, err := fmt.Fprintln(w, "\nvs SKIFF: the peer's wall time over Skiff's (above 1x, Skiff is faster).\n[wal] [bolt]: the raft log's backend. FSYNCS/task: counted in the log store (wal); ~N: entries × 2, an estimate (bolt: bbolt syncs by itself).\nHEAP: heap in use, garbage included; LIVE: the live heap as of each GC cycle.")
	return err
}

func speedup(x float64) string {
	if x == 0 {
		return ""
	}
	return fmt.Sprintf("%.2fx", x)
}
