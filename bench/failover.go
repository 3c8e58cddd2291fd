package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

// FailoverResult is what `skiff bench --cluster N --failover K` measures:
// the leader is killed K times while fan-outs run; for each kill, the time
// until the next leader's engine commits its first decision.
type FailoverResult struct {
	Nodes    int    `json:"nodes"`
	Kills    int    `json:"kills"`
	Workload string `json:"workload"` // the fan-out kept running
	Runs     int    `json:"runs"`     // fan-outs submitted
	// Succeeded counts the fan-outs that ended SUCCEEDED (all should).
	Succeeded int `json:"runs_succeeded"`
	// KillToDecision: from the kill to the next committed decision of the
	// new leader's engine.
	KillToDecisionP50Ms float64   `json:"kill_to_decision_p50_ms"`
	KillToDecisionP99Ms float64   `json:"kill_to_decision_p99_ms"`
	KillToDecisionMaxMs float64   `json:"kill_to_decision_max_ms"`
	KillToDecisionMs    []float64 `json:"kill_to_decision_ms"`
	// KillToLeader: from the kill to a node becoming leader (the election
	// alone; the rest is the new engine's catch-up, resume and commit).
	KillToLeaderP50Ms float64 `json:"kill_to_leader_p50_ms"`
	KillToLeaderP99Ms float64 `json:"kill_to_leader_p99_ms"`
	// Executions started by the workers; StartedTwice: starts of an
	// execution (run, task, attempt) already started, which fencing must
	// keep at 0; TasksRerun: tasks started again under a new attempt
	// because the worker running them died with the leader (each kill
	// takes a worker with it: a server is both).
	Executions   int `json:"executions_started"`
	StartedTwice int `json:"executions_started_twice"`
	TasksRerun   int `json:"tasks_rerun_after_loss"`
	// KilledWithoutOtherWork counts the kills made when no other node's
	// worker held a live execution after waiting for one (readyToKill):
	// the next decision may then wait for the killed node's lease.
	KilledWithoutOtherWork int    `json:"killed_without_other_work"`
	Error                  string `json:"error,omitempty"`
}

// FailoverFanout is the default width of each fan-out kept running.
const FailoverFanout = 2000

// RunFailover kills the cluster's leader kills times while fan-outs run:
// each kill waits until the current leader has committed a decision,
// kills it (engine, raft and cluster port at once), measures the time
// until the next leader's engine commits one, then brings the killed node
// back on its data and waits until it has caught up.
// width is the fan-out's (0 = FailoverFanout).
func (c *Cluster) RunFailover(ctx context.Context, kills, width int) FailoverResult {
	if width <= 0 {
		width = FailoverFanout
	}
	w := fanoutWorkload(width)
	res := FailoverResult{Nodes: len(c.nodes), Kills: kills, Workload: w.Name()}
	p, err := w.Plan()
	if err != nil {
		res.Error = err.Error()
		return res
	}
	first := make(chan int, 64)
	c.mu.Lock()
	c.onFirst = func(term int) {
		select {
		case first <- term:
		default:
		}
	}
	c.mu.Unlock()
	var runs []string
	submit := func() error {
		// The request id makes a submission retried on the next leader
		// create one run.
		opts := engine.SubmitOptions{RequestID: fmt.Sprintf("failover-%d-%d", time.Now().UnixNano(), len(runs))}
		var err error
		for try := 0; try < 40; try++ {
			var e *engine.Engine
			if e, _, err = c.engine(ctx); err != nil {
				return err
			}
			var id string
			if id, err = e.Submit(ctx, p, map[string]json.RawMessage{}, opts); err == nil {
				runs = append(runs, id)
				return nil
			}
			time.Sleep(50 * time.Millisecond) // leadership is moving
		}
		return err
	}
	var lat, elect []time.Duration
	for k := 0; k < kills; k++ {
		leader, other, err := c.readyToKill(ctx, &runs, submit)
		if err != nil {
			res.Error = fmt.Sprintf("kill %d: %v", k+1, err)
			break
		}
		if !other {
			res.KilledWithoutOtherWork++
		}
		c.mu.Lock()
		term := c.term
		c.mu.Unlock()
		drain(first)
		killed := time.Now()
		c.kill(leader)
		d, err := waitFirst(ctx, first, term, killed)
		if err != nil {
			res.Error = fmt.Sprintf("kill %d: %v", k+1, err)
			break
		}
		lat = append(lat, d)
		c.mu.Lock()
		for t := term + 1; t <= c.term; t++ {
			if b, ok := c.began[t]; ok && b.After(killed) {
				elect = append(elect, b.Sub(killed))
				break
			}
		}
		c.mu.Unlock()
		fmt.Fprintf(c.log, "  failover %d/%d: %s killed; next decision after %s\n", k+1, kills, c.nodes[leader].id, d.Round(time.Millisecond))
		if err := c.revive(ctx, leader); err != nil {
			res.Error = fmt.Sprintf("kill %d: bringing %s back: %v", k+1, c.nodes[leader].id, err)
			break
		}
	}
	c.mu.Lock()
	c.onFirst = nil
	c.mu.Unlock()
	res.Runs = len(runs)
	for _, id := range runs {
		r, err := c.wait(ctx, id)
		if err == nil && r.State == spec.RunSucceeded {
			res.Succeeded++
		} else if res.Error == "" {
			res.Error = fmt.Sprintf("run %s: %v %s", id, err, r.State)
		}
	}
	if len(lat) > 0 {
		for _, d := range lat {
			res.KillToDecisionMs = append(res.KillToDecisionMs, ms(d))
		}
		slices.Sort(lat)
		res.KillToDecisionP50Ms, res.KillToDecisionP99Ms, res.KillToDecisionMaxMs = ms(quantile(lat, 0.5)), ms(quantile(lat, 0.99)), ms(lat[len(lat)-1])
	}
	if len(elect) > 0 {
		slices.Sort(elect)
		res.KillToLeaderP50Ms, res.KillToLeaderP99Ms = ms(quantile(elect, 0.5)), ms(quantile(elect, 0.99))
	}
	res.StartedTwice, res.TasksRerun, res.Executions = c.startedTwice()
	return res
}

// ensureRunning keeps two fan-outs unfinished (so that one is still
// running when the leader dies, whatever the timing), and waits until the
// current term's engine has committed a decision.
func (c *Cluster) ensureRunning(ctx context.Context, runs []string, submit func() error) error {
	_, i, err := c.engine(ctx)
	if err != nil {
		return err
	}
	unfinished := 0
	for _, id := range runs {
		if r, err := c.nodes[i].st.GetRun(id); err == nil && !r.State.Final() {
			unfinished++
		}
	}
	for ; unfinished < 2; unfinished++ {
		if err := submit(); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		_, ok := c.firstOf[c.term]
		c.mu.Unlock()
		if ok {
			return nil
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
	return fmt.Errorf("the leader's engine committed nothing within a minute")
}

// otherWorkWait bounds the wait for work on another node before a kill.
const otherWorkWait = 5 * time.Second

// readyToKill keeps two fan-outs unfinished (ensureRunning) until a
// worker other than the leader's holds a live execution, for up to
// otherWorkWait, and returns the leader and whether one did. A kill then
// leaves the next leader a decision to make as soon as that execution's
// report comes. Work held only by the leader's own worker dies with it,
// and by design is taken back only when the node's lease lapses
// (store.RaftConfig.NodeTTL, 10 s by default): a kill at such a moment
// (at a fan-out's start, its root placed on the leader's own worker)
// would measure that lease, not the failover.
func (c *Cluster) readyToKill(ctx context.Context, runs *[]string, submit func() error) (leader int, other bool, err error) {
	deadline := time.Now().Add(otherWorkWait)
	for {
		if err := c.ensureRunning(ctx, *runs, submit); err != nil {
			return 0, false, err
		}
		if _, leader, err = c.engine(ctx); err != nil {
			return 0, false, err
		}
		if c.otherWork(leader) {
			return leader, true, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return leader, false, nil
		}
		time.Sleep(time.Millisecond) // polling interval
	}
}

// otherWork reports whether, in node leader's store, a worker other than
// leader's holds a live execution.
func (c *Cluster) otherWork(leader int) bool {
	as, err := c.nodes[leader].st.Assignments("")
	if err != nil {
		return false
	}
	for _, a := range as {
		if a.Live() && a.NodeID != c.nodes[leader].id {
			return true
		}
	}
	return false
}

func drain(ch chan int) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// waitFirst waits for the first decision of a term after term.
func waitFirst(ctx context.Context, first chan int, term int, since time.Time) (time.Duration, error) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case got := <-first:
			if got > term {
				return time.Since(since), nil
			}
		case <-t.C:
			return 0, fmt.Errorf("no decision committed within a minute of the kill")
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// revive reopens a killed node on its data dir and cluster address and
// waits until it has applied what the leader has.
func (c *Cluster) revive(ctx context.Context, i int) error {
	if err := c.open(ctx, i, 0, nil); err != nil {
		return err
	}
	_, li, err := c.engine(ctx)
	if err != nil {
		return err
	}
	target := c.nodes[li].st.AppliedIndex()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return c.nodes[i].st.WaitIndex(wctx, target)
}

// wait waits until run id is final, following the engine across leaders:
// a wait on an engine is abandoned as soon as another takes over.
func (c *Cluster) wait(ctx context.Context, id string) (store.Run, error) {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for {
		c.mu.Lock()
		e, ch := c.cur, c.changed
		c.mu.Unlock()
		if e == nil {
			select {
			case <-ch:
				continue
			case <-wctx.Done():
				return store.Run{}, fmt.Errorf("bench: waiting for run %s: no leader engine (%s): %w", id, c.states(), wctx.Err())
			}
		}
		actx, acancel := context.WithCancel(wctx)
		go func() {
			select {
			case <-ch:
				acancel()
			case <-actx.Done():
			}
		}()
		r, err := e.Wait(actx, id)
		acancel()
		if err == nil {
			return r, nil
		}
		if wctx.Err() != nil {
			return r, err
		}
		select {
		case <-ch:
		case <-wctx.Done():
		case <-time.After(20 * time.Millisecond): // that engine stopped: the next leader's
		}
	}
}

func fanoutWorkload(n int) Workload {
	w, err := ParseWorkload(fmt.Sprintf("fanout-%d", n))
	if err != nil {
		panic(err) // a constant name
	}
	return w
}
