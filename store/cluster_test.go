package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/clustertest"
)

var created = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func createRun(id string) store.CreateRun {
	return store.CreateRun{
		Run:       store.Run{ID: id, Name: "run " + id, State: spec.RunRunning, CreatedAt: created, Plan: []byte(`{"name":"p"}`)},
		TaskNames: []string{"a", "b"},
	}
}

// checkRuns fails unless every live node holds every run in ids.
func checkRuns(tb testing.TB, c *clustertest.Cluster, ids []string) {
	tb.Helper()
	for _, nd := range c.Nodes {
		if nd.Store == nil {
			continue
		}
		for _, id := range ids {
			if _, err := nd.Store.GetRun(id); err != nil {
				tb.Fatalf("%s: acknowledged run %s: %v", nd.ID, id, err)
			}
		}
	}
}

func TestCluster_FailoverPartitionHealConverges(t *testing.T) {
	c := clustertest.MakeCluster(t, 3)
	var ids []string
	write := func(n int) {
		for range n {
			id := fmt.Sprintf("run-%03d", len(ids))
			c.Apply(createRun(id))
			ids = append(ids, id)
		}
	}
	write(10)

	// The leader is cut off: the two others elect a new one and go on.
	old := c.Leader()
	c.Partition(old)
	leader := c.Leader()
	if leader == old {
		t.Fatalf("node %d still leads from the minority side", old)
	}
	write(10)
	// The cut-off leader cannot commit anything.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	_, err := c.Nodes[old].Store.Apply(ctx, createRun("lost"))
	cancel()
	if err == nil {
		t.Fatal("a leader cut off from the majority committed an entry")
	}
	if !c.Nodes[old].Store.Stale() {
		t.Error("the cut-off node does not say it is stale")
	}

	// Heal: the old leader catches up.
	c.Heal()
	write(5)
	c.CheckConverged()
	checkRuns(t, c, ids)
	for _, nd := range c.Nodes {
		if _, err := nd.Store.GetRun("lost"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: the entry proposed on the minority side is there: %v", nd.ID, err)
		}
	}

	// Kill the leader: the others go on; it comes back and catches up.
	killed := c.Leader()
	c.Kill(killed)
	c.Leader()
	write(10)
	c.Restart(killed)
	write(1)
	c.CheckConverged()
	checkRuns(t, c, ids)
}

func TestCluster_StatusAndMembers(t *testing.T) {
	c := clustertest.MakeCluster(t, 3)
	l := c.Nodes[c.Leader()].Store
	ms, err := l.Members()
	if err != nil || len(ms) != 3 {
		t.Fatalf("members: %v, %v", ms, err)
	}
	st := l.Status()
	if st.State != "Leader" || st.LeaderID != l.ID() || st.Stale || st.Term == 0 {
		t.Errorf("leader status: %+v", st)
	}
	// A member removed by the leader is no longer in the configuration.
	var follower int
	for i := range c.Nodes {
		if c.Nodes[i].Store != l {
			follower = i
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Nodes[follower].Store.RemoveServer(ctx, c.Nodes[follower].ID); !errors.Is(err, store.ErrNotLeader) {
		t.Errorf("remove on a follower: %v, want ErrNotLeader", err)
	}
	if err := l.RemoveServer(ctx, c.Nodes[follower].ID); err != nil {
		t.Fatal(err)
	}
	if ms, _ := l.Members(); len(ms) != 2 {
		t.Errorf("after remove: %v", ms)
	}
}

// TestCluster_RandomFaults is a property test: random writes, partitions,
// kills and restarts; once every fault heals, every acknowledged write is
// on every node and every state machine is identical at the same index.
func TestCluster_RandomFaults(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			c := clustertest.MakeCluster(t, 3)
			var ids []string
			cut := false // at most one fault at a time: a majority stays
			for op := range 25 {
				switch k := rng.IntN(10); {
				case k < 6:
					id := fmt.Sprintf("s%d-op%d", seed, op)
					c.Apply(createRun(id))
					ids = append(ids, id)
				case k < 8 && live(c) == 3:
					c.Partition(rng.IntN(3))
					cut = true
				case k < 9:
					c.Heal()
					cut = false
				default:
					i := rng.IntN(3)
					if c.Nodes[i].Store != nil && live(c) == 3 && !cut {
						c.Kill(i)
					} else if c.Nodes[i].Store == nil {
						c.Restart(i)
					}
				}
			}
			c.Heal()
			for i, nd := range c.Nodes {
				if nd.Store == nil {
					c.Restart(i)
				}
			}
			c.Apply(createRun("final"))
			c.CheckConverged()
			checkRuns(t, c, ids)
		})
	}
}

func live(c *clustertest.Cluster) int {
	n := 0
	for _, nd := range c.Nodes {
		if nd.Store != nil {
			n++
		}
	}
	return n
}

func TestRaftConfig_Validate(t *testing.T) {
	for name, mut := range map[string]func(*store.RaftConfig){
		"zero heartbeat":        func(r *store.RaftConfig) { r.HeartbeatTimeout = 0 },
		"lease over heartbeat":  func(r *store.RaftConfig) { r.LeaderLeaseTimeout = 2 * r.HeartbeatTimeout },
		"election under hb":     func(r *store.RaftConfig) { r.ElectionTimeout = r.HeartbeatTimeout / 2 },
		"commit over heartbeat": func(r *store.RaftConfig) { r.CommitTimeout = 2 * r.HeartbeatTimeout },
		"zero node ttl":         func(r *store.RaftConfig) { r.NodeTTL = 0 },
		"zero stale after":      func(r *store.RaftConfig) { r.StaleAfter = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := store.DefaultConfig("x")
			cfg.Raft = store.DefaultRaftConfig()
			mut(&cfg.Raft)
			if err := cfg.Validate(); !errors.Is(err, store.ErrInvalidConfig) {
				t.Errorf("Validate = %v, want ErrInvalidConfig", err)
			}
		})
	}
	cfg := store.DefaultConfig("x")
	if err := cfg.Validate(); err != nil {
		t.Errorf("DefaultConfig: %v", err)
	}
	cfg.Raft = store.DefaultRaftConfig()
	if err := cfg.Validate(); err != nil {
		t.Errorf("DefaultRaftConfig: %v", err)
	}
	if d := store.DefaultRaftConfig(); 2*d.HeartbeatTimeout+2*d.ElectionTimeout > 2*time.Second || d.ElectionTimeout > time.Second {
		t.Errorf("LAN defaults too slow for a one-second failover: %+v", d)
	}
}
