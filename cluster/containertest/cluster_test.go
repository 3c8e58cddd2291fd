package containertest

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/skiffml/skiff/api"
)

// waitRuns waits until every run is final (asking node i, tolerating
// errors while nodes come and go) and requires each SUCCEEDED.
func (c *Cluster) waitRuns(t *testing.T, i int, limit time.Duration, ids ...string) {
	t.Helper()
	for _, id := range ids {
		var last api.Run
		eventually(t, limit, "run "+id+" final", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			r, err := c.Client(i).GetRun(ctx, id)
			if err != nil {
				return err
			}
			last = r
			if Final(r.State) {
				return nil
			}
			return fmt.Errorf("run %s %s (%d tasks done)", r.DisplayName, r.State, Succeeded(r))
		})
		if last.State != "SUCCEEDED" {
			t.Errorf("run %s (%s) ended %s: %+v", id, last.DisplayName, last.State, last.Error)
		}
	}
}

// TestContainers_ThreeNodeCluster runs a three-node cluster of the
// project's image with mutual TLS on the cluster port, and puts it through
// a submission through a follower, the leader killed during a fan-out and
// a chain, a partitioned follower, and a rolling restart of all three
// while runs continue. At the end every node's state machine digest is the
// same, and no step started twice but as a recorded new attempt after the
// node running it went away.
func TestContainers_ThreeNodeCluster(t *testing.T) {
	begin := time.Now()
	c := Start(t, 3)
	t.Logf("cluster of 3 up in %s", time.Since(begin).Round(time.Millisecond))
	ctx := context.Background()
	lost := map[string]bool{} // nodes that went away while they led, or were cut off past their lease
	var runs []string
	// The rolling restart stops every node in turn: a step of one of its
	// runs that a stopped node was running ends lost (its worker comes
	// back at a new epoch) and runs again as a new attempt.
	rolling, stopped := map[string]bool{}, map[string]bool{}

	leaderNow := func(skip ...int) int {
		t.Helper()
		l := -1
		eventually(t, 60*time.Second, "a leader", func() (err error) {
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			l, err = c.Leader(cctx, skip...)
			return err
		})
		return l
	}

	t.Run("submit through a follower", func(t *testing.T) {
		f := (leaderNow() + 1) % 3
		id := Submit(t, c.Client(f), "via-follower", Fanout(5, "0.1"))
		runs = append(runs, id)
		c.waitRuns(t, f, 2*time.Minute, id)
	})

	t.Run("leader killed during a fan-out and a chain", func(t *testing.T) {
		l := leaderNow()
		f := (l + 1) % 3
		fan := Submit(t, c.Client(f), "fanout-kill", Fanout(40, "0.5"))
		ch := Submit(t, c.Client(f), "chain-kill", Chain(12, "0.3"))
		runs = append(runs, fan, ch)
		eventually(t, 2*time.Minute, "both runs under way", func() error {
			a, err := c.Client(f).GetRun(ctx, fan)
			if err != nil {
				return err
			}
			b, err := c.Client(f).GetRun(ctx, ch)
			if err != nil {
				return err
			}
			if Succeeded(a) < 5 || Succeeded(b) < 3 {
				return fmt.Errorf("fan-out %d, chain %d tasks done", Succeeded(a), Succeeded(b))
			}
			return nil
		})
		lost[c.Nodes[l].ID] = true
		killed := time.Now()
		c.Kill(l)
		// Poll the survivor: when does it name a new leader, and when does
		// a write through it succeed again? Reads must never fail.
		var elected, wrote time.Duration
		readErrs := 0
		for n := 0; wrote == 0; n++ {
			if time.Since(killed) > time.Minute {
				t.Fatalf("no write through %s within a minute of the kill", c.Nodes[f].ID)
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if elected == 0 {
				// The digest endpoint answers from the node's own raft
				// state (members would wait for the dead node's RPC).
				if d, err := c.Client(f).ClusterDigest(cctx); err == nil && d.LeaderID != "" && d.LeaderID != c.Nodes[l].ID {
					elected = time.Since(killed)
				}
			}
			if _, err := c.Client(f).GetRun(cctx, ch); err != nil {
				readErrs++
			}
			if elected != 0 {
				if _, err := c.Client(f).CreateRun(cctx, api.Run{DisplayName: "after-kill", PipelineSpec: SpecJSON(Fanout(1, "0"))}, "after-kill"); err == nil {
					wrote = time.Since(killed)
				}
			}
			cancel()
			time.Sleep(20 * time.Millisecond) // polling interval
		}
		t.Logf("leader %s killed: new leader named by %s after %s; first write through it answered after %s (%s after the election); %d failed reads",
			c.Nodes[l].ID, c.Nodes[f].ID, elected.Round(time.Millisecond), wrote.Round(time.Millisecond), (wrote - elected).Round(time.Millisecond), readErrs)
		if readErrs > 0 {
			t.Errorf("%d reads on a surviving follower failed during the failover", readErrs)
		}
		if wrote-elected > 3*time.Second {
			t.Errorf("the API took %s after the election to take a write (want about a second)", wrote-elected)
		}
		c.waitRuns(t, f, 3*time.Minute, fan, ch)
		c.Restart(l)
		c.WaitHealthy(3)
	})

	t.Run("partitioned follower answers as stale, then heals", func(t *testing.T) {
		l := leaderNow()
		p := (l + 1) % 3
		c.Disconnect(p)
		cut := true
		defer func() {
			if cut {
				c.Connect(p)
			}
		}()
		eventually(t, time.Minute, "the cut-off node says it is stale", func() error {
			req, _ := http.NewRequest(http.MethodGet, c.Nodes[p].URL()+"/apis/v2beta1/runs", nil)
			req.Header.Set("Authorization", "Bearer "+c.Token)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			res.Body.Close()
			if res.Header.Get(api.StaleHeader) != "true" {
				return fmt.Errorf("list runs: %s without %s", res.Status, api.StaleHeader)
			}
			rz, err := http.Get(c.Nodes[p].URL() + "/readyz")
			if err != nil {
				return err
			}
			rz.Body.Close()
			if rz.StatusCode == http.StatusOK {
				return fmt.Errorf("/readyz %s while cut off", rz.Status)
			}
			return nil
		})
		// The majority goes on without it.
		id := Submit(t, c.Client(l), "during-partition", Fanout(3, "0.1"))
		runs = append(runs, id)
		c.waitRuns(t, l, 2*time.Minute, id)
		c.Connect(p)
		cut = false
		// A cut-off node's lease may lapse (the cut plus the heal can
		// outlast --node-ttl on a slow machine, and its heartbeats stop
		// before the cut is seen): the leader then rightly declares its
		// worker down, and what it ran runs again elsewhere.
		lost[c.Nodes[p].ID] = true
		c.WaitHealthy(3)
		// The healed node catches up: it serves the run it missed, final.
		c.waitRuns(t, p, time.Minute, id)
	})

	t.Run("rolling restart while runs continue", func(t *testing.T) {
		ch := Submit(t, c.Client(0), "chain-rolling", Chain(24, "0.3"))
		fan := Submit(t, c.Client(0), "fanout-rolling", Fanout(24, "0.5"))
		runs = append(runs, ch, fan)
		rolling[ch], rolling[fan] = true, true
		for i := range c.Nodes {
			if leaderNow() == i {
				lost[c.Nodes[i].ID] = true
			}
			stopped[c.Nodes[i].ID] = true
			c.Stop(i)
			other := (i + 1) % 3
			id := Submit(t, c.Client(other), fmt.Sprintf("while-%s-down", c.Nodes[i].ID), Fanout(2, "0"))
			runs = append(runs, id)
			rolling[id] = true
			c.Restart(i)
			c.WaitHealthy(3)
		}
		c.waitRuns(t, 1, 3*time.Minute, ch, fan)
	})

	t.Run("every run final and every state machine identical", func(t *testing.T) {
		c.waitRuns(t, 2, 2*time.Minute, runs...)
		ds := c.Digests(time.Minute)
		for _, d := range ds[1:] {
			if d.Digest != ds[0].Digest {
				t.Fatalf("state machines differ at index %d: %+v", ds[0].AppliedIndex, ds)
			}
		}
		t.Logf("digests equal on all three nodes at applied index %d", ds[0].AppliedIndex)
	})

	t.Run("no step started twice but as a new attempt after its node went away", func(t *testing.T) {
		byTask := map[[2]string][]StepStart{}
		all := c.Starts(t)
		for _, s := range all {
			k := [2]string{s.Run, s.Task}
			byTask[k] = append(byTask[k], s)
		}
		twice := 0
		for k, ss := range byTask {
			if len(ss) == 1 {
				continue
			}
			twice++
			seen := map[string]bool{}
			for i, s := range ss {
				if seen[s.Attempt] {
					t.Errorf("run %s task %s: attempt %s started twice: %v", k[0], k[1], s.Attempt, ss)
				}
				seen[s.Attempt] = true
				if i < len(ss)-1 && !lost[s.Node] && !(rolling[k[0]] && stopped[s.Node]) {
					t.Errorf("run %s task %s started again although its node %s stayed: %v", k[0], k[1], s.Node, ss)
				}
			}
		}
		t.Logf("%d step starts for %d tasks; %d tasks started again as a new attempt after their leader went away (nodes lost while leading: %v)",
			len(all), len(byTask), twice, lost)
	})
	t.Logf("whole container test: %s", time.Since(begin).Round(time.Second))
}
