// Package clustertest runs several stores in one process over raft's
// in-memory transport, for cluster tests: like raft's MakeCluster, with
// Partition and Heal, and a check that every state machine holds the same
// state at the same applied index.
//
// It owns nothing but test scaffolding: no production code imports it.
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/skiffml/skiff/store"
)

// Timings are the raft knobs of a test cluster: short, but long enough for
// a loaded machine running the race detector.
func Timings() store.RaftConfig {
	rc := store.DefaultRaftConfig()
	rc.HeartbeatTimeout = 150 * time.Millisecond
	rc.ElectionTimeout = 150 * time.Millisecond
	rc.LeaderLeaseTimeout = 75 * time.Millisecond
	rc.CommitTimeout = 10 * time.Millisecond
	rc.StaleAfter = 500 * time.Millisecond
	return rc
}

// Node is one member of a Cluster.
type Node struct {
	ID    string
	Dir   string
	Addr  raft.ServerAddress
	Store *store.Store // nil while killed

	trans *raft.InmemTransport
}

// Cluster is a set of in-process nodes.
type Cluster struct {
	tb    testing.TB
	Nodes []*Node

	mu  sync.Mutex
	cut map[int]bool // the nodes on the other side of a partition
}

// WaitTimeout bounds every wait of the harness.
var WaitTimeout = 30 * time.Second

// MakeCluster starts n voters, bootstrapped together, and waits for a
// leader. Every node is closed at the end of the test.
func MakeCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb, cut: map[int]bool{}}
	var members []store.Member
	for i := range n {
		nd := &Node{ID: fmt.Sprintf("node%d", i), Dir: filepath.Join(tb.TempDir(), "store"), Addr: raft.ServerAddress(fmt.Sprintf("inmem-%d", i))}
		c.Nodes = append(c.Nodes, nd)
		members = append(members, store.Member{ID: nd.ID, RaftAddr: string(nd.Addr), Voter: true})
	}
	for i := range c.Nodes {
		c.start(i)
	}
	for _, nd := range c.Nodes {
		// A node a bootstrapped peer already reached has the configuration
		// from it: raft refuses a second bootstrap, which is fine.
		if err := nd.Store.BootstrapCluster(members); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			tb.Fatal(err)
		}
	}
	tb.Cleanup(func() {
		for i := range c.Nodes {
			c.Kill(i)
		}
	})
	c.Leader()
	return c
}

func (c *Cluster) start(i int) {
	c.tb.Helper()
	nd := c.Nodes[i]
	_, nd.trans = raft.NewInmemTransport(nd.Addr)
	cfg := store.DefaultConfig(nd.Dir)
	cfg.NoSync = true
	cfg.Raft = Timings()
	cfg.Raft.NodeID = nd.ID
	cfg.Raft.Transport = nd.trans
	st, err := store.Open(context.Background(), cfg)
	if err != nil {
		c.tb.Fatalf("open %s: %v", nd.ID, err)
	}
	nd.Store = st
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wireLocked()
}

// wireLocked connects every pair of live nodes on the same side.
func (c *Cluster) wireLocked() {
	for i, a := range c.Nodes {
		if a.Store == nil {
			continue
		}
		a.trans.DisconnectAll()
		for j, b := range c.Nodes {
			if i != j && b.Store != nil && c.cut[i] == c.cut[j] {
				a.trans.Connect(b.Addr, b.trans)
			}
		}
	}
}

// Partition cuts the nodes given off from the others (each side keeps
// talking within itself).
func (c *Cluster) Partition(nodes ...int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = map[int]bool{}
	for _, i := range nodes {
		c.cut[i] = true
	}
	c.wireLocked()
}

// Heal reconnects every live node.
func (c *Cluster) Heal() { c.Partition() }

// Kill closes node i's store (its data dir is kept for Restart).
func (c *Cluster) Kill(i int) {
	nd := c.Nodes[i]
	if nd.Store == nil {
		return
	}
	if err := nd.Store.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
		c.tb.Errorf("close %s: %v", nd.ID, err)
	}
	nd.Store = nil
	c.mu.Lock()
	c.wireLocked()
	c.mu.Unlock()
}

// Restart reopens a killed node on its data dir.
func (c *Cluster) Restart(i int) { c.tb.Helper(); c.start(i) }

// Leader waits until exactly one live node, on the majority side, leads and
// returns its index.
func (c *Cluster) Leader() int {
	c.tb.Helper()
	var got int
	c.Eventually("one leader", func() error {
		leaders := []int{}
		for i, nd := range c.Nodes {
			if nd.Store != nil && !c.isCut(i) && nd.Store.IsLeader() {
				leaders = append(leaders, i)
			}
		}
		if len(leaders) != 1 {
			return fmt.Errorf("leaders on the majority side: %v", leaders)
		}
		got = leaders[0]
		return nil
	})
	return got
}

func (c *Cluster) isCut(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cut[i]
}

// Apply proposes cmds through the current leader, retrying on a leader
// change until WaitTimeout; it returns the entry's index. A failed attempt
// may still have committed, so after one the commands may be rejected as
// already applied: that is accepted.
func (c *Cluster) Apply(cmds ...store.Command) uint64 {
	c.tb.Helper()
	var idx uint64
	ambiguous := false
	c.Eventually("apply through the leader", func() error {
		nd := c.Nodes[c.Leader()]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res, err := nd.Store.Apply(ctx, cmds...)
		if err != nil {
			ambiguous = true
			return err
		}
		if len(res.Rejected) > 0 && !ambiguous {
			c.tb.Fatalf("apply: rejected: %+v", res.Rejected)
		}
		idx = res.Index
		return nil
	})
	return idx
}

// CheckConverged waits until every live node has applied the same index
// with the same state, and fails the test with the first difference if
// they do not get there.
func (c *Cluster) CheckConverged() uint64 {
	c.tb.Helper()
	var index uint64
	err := c.poll(func() error {
		var first string
		for i, nd := range c.Nodes {
			if nd.Store == nil {
				continue
			}
			idx, dig, err := nd.Store.Digest()
			if err != nil {
				return err
			}
			if first == "" {
				first, index = dig, idx
				continue
			}
			if idx != index || dig != first {
				return fmt.Errorf("%s at index %d differs from %s at index %d", nd.ID, idx, c.Nodes[0].ID, index)
			}
			_ = i
		}
		return nil
	})
	if err != nil {
		c.tb.Fatalf("state machines did not converge: %v\n%s", err, c.firstDiff())
	}
	return index
}

// firstDiff names the first bucket and key where two live nodes differ.
func (c *Cluster) firstDiff() string {
	var base map[string]map[string]string
	var baseID string
	for _, nd := range c.Nodes {
		if nd.Store == nil {
			continue
		}
		d, err := nd.Store.Dump()
		if err != nil {
			return err.Error()
		}
		if base == nil {
			base, baseID = d, nd.ID
			continue
		}
		for b, kv := range base {
			for k, v := range kv {
				if d[b][k] != v {
					return fmt.Sprintf("bucket %s key %q: %s has %q, %s has %q", b, k, baseID, v, nd.ID, d[b][k])
				}
			}
			if len(d[b]) != len(kv) {
				return fmt.Sprintf("bucket %s: %s has %d keys, %s has %d", b, baseID, len(kv), nd.ID, len(d[b]))
			}
		}
	}
	return "no difference in the dumps"
}

// Eventually polls fn until it returns nil, failing the test after
// WaitTimeout with fn's last error.
func (c *Cluster) Eventually(what string, fn func() error) {
	c.tb.Helper()
	if err := c.poll(fn); err != nil {
		c.tb.Fatalf("%s: not within %s: %v", what, WaitTimeout, err)
	}
}

func (c *Cluster) poll(fn func() error) error {
	deadline := time.Now().Add(WaitTimeout)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an event
	}
}
