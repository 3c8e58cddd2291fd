package chaostest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/cluster/containertest"
	"github.com/skiffml/skiff/engine/spec"
)

// The suite's settings, from the environment (make test-chaos, make chaos).
const (
	SeedEnv  = "SKIFF_CHAOS_SEED"  // replays a schedule and a workload
	TimeEnv  = "SKIFF_CHAOS_TIME"  // the workload's time (default 90s)
	NodesEnv = "SKIFF_CHAOS_NODES" // 3 (default) or 5
)

// lease is the worker lease of the image's servers (--node-ttl default).
const lease = 10 * time.Second

type settings struct {
	seed   int64
	length time.Duration
	nodes  int
}

func readSettings(t *testing.T) settings {
	s := settings{seed: time.Now().UnixNano() % 1_000_000_000, length: 90 * time.Second, nodes: 3}
	var err error
	if v := os.Getenv(SeedEnv); v != "" {
		if s.seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatalf("%s: %q is not an integer", SeedEnv, v)
		}
	}
	if v := os.Getenv(TimeEnv); v != "" {
		if s.length, err = time.ParseDuration(v); err != nil || s.length < 30*time.Second {
			t.Fatalf("%s: %q is not a duration of at least 30s", TimeEnv, v)
		}
	}
	if v := os.Getenv(NodesEnv); v != "" {
		if s.nodes, err = strconv.Atoi(v); err != nil || (s.nodes != 3 && s.nodes != 5) {
			t.Fatalf("%s: %q: want 3 or 5", NodesEnv, v)
		}
	}
	return s
}

// accepted is a run the cluster acknowledged.
type accepted struct {
	id, key string
	kind    Workload
}

// suite is one chaos run: the cluster, the clients' view of its API
// addresses, the history and the figures.
type suite struct {
	t     *testing.T
	c     *containertest.Cluster
	hist  *History
	mu    sync.RWMutex
	urls  []string
	runs  []accepted
	stop  atomic.Bool
	stats struct {
		creates, createErrs, resends, reads, readErrs, cancels atomic.Int64
		unacked                                                atomic.Int64
	}
}

func (s *suite) refreshURLs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, n := range s.c.Nodes {
		s.urls[i] = n.URL()
	}
}

func (s *suite) client(i int) *api.Client {
	s.mu.RLock()
	u := s.urls[i]
	s.mu.RUnlock()
	cl := api.NewClient(u, s.c.Token)
	cl.HTTP = &http.Client{Timeout: 10 * time.Second}
	return cl
}

// create submits a run through random nodes, sending it again with the
// same request id until one answers (for up to two minutes).
func (s *suite) create(rng *rand.Rand, client int, key string, w Workload) (string, bool) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		call := s.hist.Begin()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		r, err := s.client(rng.IntN(len(s.urls))).CreateRun(ctx, api.Run{DisplayName: key, PipelineSpec: containertest.SpecJSON(Pipeline(w))}, key)
		cancel()
		s.stats.creates.Add(1)
		if err == nil {
			s.hist.Add(client, call, Input{Kind: OpCreate, Key: key}, Output{RunID: r.RunID})
			return r.RunID, true
		}
		s.stats.createErrs.Add(1)
		time.Sleep(200 * time.Millisecond) // then the same request again
	}
	return "", false
}

// read is a linearizable read (?consistent) of a run's state through node i.
func (s *suite) read(i int, id string) (string, error) {
	s.mu.RLock()
	u := s.urls[i] + "/apis/v2beta1/runs/" + url.PathEscape(id) + "?consistent"
	s.mu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+s.c.Token)
	res, err := (&http.Client{}).Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return "", fmt.Errorf("%s: %s", res.Status, b)
	}
	var r api.Run
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		return "", err
	}
	return r.State, nil
}

// submitter submits runs until stopped; one in four is sent again
// through another node after its answer (the same run must come back).
func (s *suite) submitter(client int, seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(client)))
	for n := 0; !s.stop.Load(); n++ {
		w := Workloads[rng.IntN(len(Workloads))]
		key := fmt.Sprintf("w%d-%d-%s", client, n, w)
		id, ok := s.create(rng, client, key, w)
		if !ok {
			s.stats.unacked.Add(1)
			continue
		}
		s.mu.Lock()
		s.runs = append(s.runs, accepted{id: id, key: key, kind: w})
		s.mu.Unlock()
		if rng.IntN(4) == 0 {
			s.stats.resends.Add(1)
			s.create(rng, client, key, w)
		}
		if w == WCancel {
			time.Sleep(500*time.Millisecond + time.Duration(rng.Int64N(int64(2500*time.Millisecond))))
			for try := 0; try < 50; try++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := s.client(rng.IntN(len(s.urls))).TerminateRun(ctx, id)
				cancel()
				if err == nil {
					s.stats.cancels.Add(1)
					break
				}
				time.Sleep(300 * time.Millisecond) // then again
			}
		}
		time.Sleep(time.Duration(rng.Int64N(int64(400 * time.Millisecond))))
	}
}

// reader reads random accepted runs' states until stopped.
func (s *suite) reader(client int, seed int64) {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(client)))
	for !s.stop.Load() {
		s.mu.RLock()
		n := len(s.runs)
		var a accepted
		if n > 0 {
			a = s.runs[rng.IntN(n)]
		}
		s.mu.RUnlock()
		if n == 0 {
			time.Sleep(100 * time.Millisecond) // nothing to read yet
			continue
		}
		call := s.hist.Begin()
		state, err := s.read(rng.IntN(len(s.urls)), a.id)
		s.stats.reads.Add(1)
		if err != nil {
			s.stats.readErrs.Add(1)
			continue
		}
		s.hist.Add(client, call, Input{Kind: OpRead, Key: a.key}, Output{RunID: a.id, State: state})
		time.Sleep(50 * time.Millisecond)
	}
}

// leader waits for the node every node names as leader.
func (s *suite) leader() int {
	l := -1
	containertest.Eventually(s.t, 90*time.Second, "a leader", func() (err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		l, err = s.c.Leader(ctx)
		return err
	})
	return l
}

// inject applies one fault and heals it after its hold; it returns what
// it did, for the printed schedule.
func (s *suite) inject(f Fault) string {
	c, n := s.c, len(s.c.Nodes)
	l := s.leader()
	var followers []int
	for i := range n {
		if i != l {
			followers = append(followers, i)
		}
	}
	pick := followers[int(f.Pick)%len(followers)]
	id := func(is ...int) string {
		var ss []string
		for _, i := range is {
			ss = append(ss, c.Nodes[i].ID)
		}
		return strings.Join(ss, ",")
	}
	hold := func() { time.Sleep(f.Hold) } // the fault's hold, from the schedule
	switch f.Kind {
	case KillLeader, KillFollower:
		v := pick
		if f.Kind == KillLeader {
			v = l
		}
		c.Kill(v)
		hold()
		c.Restart(v)
		s.refreshURLs()
		return "killed " + id(v) + ", restarted"
	case PartitionMinority, PartitionLeader:
		cut := []int{pick}
		if f.Kind == PartitionLeader {
			cut = []int{l}
		} else if n == 5 {
			cut = append(cut, followers[(int(f.Pick)+1)%len(followers)])
		}
		for _, i := range cut {
			c.Disconnect(i)
		}
		hold()
		for _, i := range cut {
			c.Connect(i)
		}
		return "cut off " + id(cut...) + ", healed"
	case PauseNode:
		v := int(f.Pick) % n
		c.Pause(v)
		hold()
		c.Unpause(v)
		return "paused " + id(v) + ", unpaused"
	case RestartNode:
		v := int(f.Pick) % n
		c.Stop(v)
		hold()
		c.Restart(v)
		s.refreshURLs()
		return "stopped " + id(v) + ", started"
	case FillDisk:
		v := n - 1
		if err := c.FillDisk(); err != nil {
			s.t.Errorf("fill disk: %v", err)
		}
		hold()
		if err := c.FreeDisk(); err != nil {
			s.t.Errorf("free disk: %v", err)
		}
		return "filled " + id(v) + "'s blob tmpfs, freed"
	}
	panic("unknown fault " + string(f.Kind))
}

// TestChaos_Suite is the chaos suite (docs/cluster.md, "Chaos suite").
func TestChaos_Suite(t *testing.T) {
	cfg := readSettings(t)
	c := containertest.StartWith(t, cfg.nodes, containertest.Options{BlobTmpfs: "48m"})
	sched := Schedule(cfg.seed, ScheduleConfig{Duration: cfg.length, Lease: lease, Settle: 2 * time.Second})
	t.Logf("chaos: seed %d (replay: %s=%d), %d nodes, workload %s, schedule:\n%s", cfg.seed, SeedEnv, cfg.seed, cfg.nodes, cfg.length, FormatSchedule(sched))
	s := &suite{t: t, c: c, hist: NewHistory(), urls: make([]string, cfg.nodes)}
	s.refreshURLs()

	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { s.submitter(i, cfg.seed) })
	}
	for i := range 2 {
		wg.Go(func() { s.reader(10+i, cfg.seed) })
	}
	begin := time.Now()
	var did []string
	for k, f := range sched {
		if d := time.Until(begin.Add(f.At)); d > 0 {
			time.Sleep(d) // the schedule's time for it
		}
		at := time.Since(begin)
		what := s.inject(f)
		c.WaitHealthy(cfg.nodes)
		did = append(did, fmt.Sprintf("  %2d at %6s %-18s %s; healthy at %s", k, at.Round(100*time.Millisecond), f.Kind, what, time.Since(begin).Round(100*time.Millisecond)))
	}
	if d := time.Until(begin.Add(cfg.length)); d > 0 {
		time.Sleep(d) // the rest of the workload's time
	}
	s.stop.Store(true)
	wg.Wait()
	t.Logf("faults injected (%d):\n%s", len(did), strings.Join(did, "\n"))
	s.check(cfg)
}

// check waits for every run to end and checks the invariants.
func (s *suite) check(cfg settings) {
	t, c := s.t, s.c
	c.WaitHealthy(cfg.nodes)
	final, stuck := s.waitFinal(5 * time.Minute)
	byState := map[string]int{}
	for _, r := range final {
		byState[r.State]++
	}
	t.Logf("runs accepted %d, final %d %v; not acknowledged %d; creates sent %d (%d refused, %d resent after an answer); consistent reads %d (%d refused); cancels %d",
		len(s.runs), len(final), byState, s.stats.unacked.Load(), s.stats.creates.Load(), s.stats.createErrs.Load(), s.stats.resends.Load(), s.stats.reads.Load(), s.stats.readErrs.Load(), s.stats.cancels.Load())
	s.outcomes(final)
	if len(stuck) > 0 {
		t.Errorf("%d runs not final 5 minutes after healing: %v", len(stuck), stuck)
	}
	if n := s.allNonFinal(); n > 0 {
		t.Errorf("%d runs in the store not final (acknowledged or not)", n)
	}

	// Executions started twice.
	twice, unknown, starts := s.doubleStarts(final)
	t.Logf("step starts %d; executions started twice %d; starts of an attempt the store did not record %d", starts, twice, unknown)
	if twice > 0 || unknown > 0 {
		t.Errorf("executions started twice beyond their retry policy: %d twice, %d unrecorded", twice, unknown)
	}

	// The same state machine everywhere.
	ds := c.Digests(2 * time.Minute)
	same := true
	for _, d := range ds[1:] {
		same = same && d.Digest == ds[0].Digest
	}
	t.Logf("state machines at applied index %d: identical=%v", ds[0].AppliedIndex, same)
	if !same {
		t.Errorf("state machines differ at index %d: %+v", ds[0].AppliedIndex, ds)
	}

	// Artifacts and logs of every SUCCEEDED run, from every node.
	checked, bad := s.readable(final)
	t.Logf("artifacts and logs read from every node: %d reads, %d failed", checked, len(bad))
	if len(bad) > 0 {
		sort.Strings(bad)
		t.Logf("first failures: %s", strings.Join(bad[:min(len(bad), 10)], "; "))
		t.Errorf("%d artifact or log reads failed: a SUCCEEDED run's artifacts and logs are replicated to a majority before it is reported", len(bad))
	}

	// Linearizability of run creation and consistent state reads.
	ops := s.hist.Ops()
	res, info := Check(ops, 2*time.Minute)
	t.Logf("history: %d operations; linearizable: %s", len(ops), res)
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("skiff-chaos-%d.html", cfg.seed))
		if err := visualize(info, path); err == nil {
			t.Logf("history visualised in %s", path)
		}
		t.Errorf("the history is not linearizable (%s)", res)
	}
	t.Logf("chaos: seed %d (replay: %s=%d)", cfg.seed, SeedEnv, cfg.seed)
}

// waitFinal polls every accepted run until it is final or limit passes.
func (s *suite) waitFinal(limit time.Duration) (map[string]api.Run, []string) {
	final := map[string]api.Run{}
	deadline := time.Now().Add(limit)
	for {
		var stuck []string
		for _, a := range s.runs {
			if _, ok := final[a.id]; ok {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r, err := s.client(0).GetRun(ctx, a.id)
			cancel()
			if err == nil && containertest.Final(r.State) {
				final[a.id] = r
				continue
			}
			stuck = append(stuck, fmt.Sprintf("%s (%s %s)", a.id, a.key, r.State))
		}
		if len(stuck) == 0 || time.Now().After(deadline) {
			return final, stuck
		}
		time.Sleep(2 * time.Second) // polling interval
	}
}

// allNonFinal counts the runs of the store that are not final.
func (s *suite) allNonFinal() int {
	n, token := 0, ""
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		page, err := s.client(0).ListRuns(ctx, api.ListOptions{PageSize: 200, PageToken: token})
		cancel()
		if err != nil {
			s.t.Errorf("list runs: %v", err)
			return n
		}
		for _, r := range page.Runs {
			if !containertest.Final(r.State) {
				n++
			}
		}
		if token = page.NextPageToken; token == "" {
			return n
		}
	}
}

// doubleStarts reads the side-effect file and counts, against what the
// final runs record, the executions started beyond their retry policy
// (countStarts).
func (s *suite) doubleStarts(final map[string]api.Run) (twice, unknown, total int) {
	recorded := map[[2]string]int{}
	for id, r := range final {
		if r.RunDetails == nil {
			continue
		}
		for _, d := range r.RunDetails.TaskDetails {
			if d.ExecutorDetail != nil {
				n, _ := strconv.Atoi(d.ExecutorDetail.Attempts)
				k := [2]string{id, d.DisplayName}
				recorded[k] = max(recorded[k], n)
			}
		}
	}
	starts := s.c.Starts(s.t)
	twice, unknown, lines := countStarts(starts, recorded)
	for _, l := range lines {
		s.t.Log(l)
	}
	return twice, unknown, len(starts)
}

// readable reads every artifact (checking its digest) and every log of
// every SUCCEEDED run's tasks through every node.
func (s *suite) readable(final map[string]api.Run) (int, []string) {
	type job struct{ what, run, task, digest string }
	var jobs []job
	for id, r := range final {
		if r.State != "SUCCEEDED" || r.RunDetails == nil {
			continue
		}
		for _, d := range r.RunDetails.TaskDetails {
			if d.State == "SUCCEEDED" && d.ExecutorDetail != nil {
				jobs = append(jobs, job{what: "log", run: id, task: d.DisplayName})
			}
			for _, raw := range d.Outputs {
				var v spec.Value
				if json.Unmarshal(raw, &v) == nil && v.Artifact != nil && !v.Artifact.Dir {
					jobs = append(jobs, job{what: "artifact", run: id, task: d.DisplayName, digest: v.Artifact.Digest})
				}
			}
		}
	}
	var mu sync.Mutex
	var bad []string
	n := 0
	ch := make(chan job)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for j := range ch {
				for i := range s.c.Nodes {
					err := s.readOne(i, j.what, j.run, j.task, j.digest)
					mu.Lock()
					n++
					if err != nil {
						bad = append(bad, fmt.Sprintf("%s %s/%s via %s: %v", j.what, j.run, j.task, s.c.Nodes[i].ID, err))
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	return n, bad
}

func (s *suite) readOne(i int, what, run, task, digest string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl := s.client(i)
	var rc io.ReadCloser
	var err error
	if what == "log" {
		rc, err = cl.TaskLogs(ctx, run, task, 0, false)
	} else {
		rc, err = cl.Artifact(ctx, digest)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return err
	}
	if what == "artifact" && "sha256:"+hex.EncodeToString(h.Sum(nil)) != digest {
		return fmt.Errorf("bytes do not match %s", digest)
	}
	return nil
}

// outcomes prints each workload's final states and the first reason
// each ending other than SUCCEEDED gave.
func (s *suite) outcomes(final map[string]api.Run) {
	states := map[Workload]map[string]int{}
	reasons := map[string]string{}
	for _, a := range s.runs {
		r, ok := final[a.id]
		if !ok {
			continue
		}
		if states[a.kind] == nil {
			states[a.kind] = map[string]int{}
		}
		states[a.kind][r.State]++
		k := string(a.kind) + " " + r.State
		if _, seen := reasons[k]; !seen && r.State != "SUCCEEDED" && r.Error != nil {
			reasons[k] = r.Error.Message + taskError(r)
		}
	}
	for _, w := range Workloads {
		s.t.Logf("  %-7s %v", w, states[w])
	}
	for k, m := range reasons {
		s.t.Logf("  first %s: %s", k, m)
	}
}

// taskError is the first failed task's error, for a run's reason.
func taskError(r api.Run) string {
	if r.RunDetails == nil {
		return ""
	}
	for _, d := range r.RunDetails.TaskDetails {
		if d.State == "FAILED" && d.Error != nil {
			return ": " + d.Error.Message
		}
	}
	return ""
}
