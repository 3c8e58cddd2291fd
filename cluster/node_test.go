package cluster

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/clustertest"
)

type testNode struct {
	*Node
	st  *store.Store
	mux *Mux
}

// startNode opens a store on a fresh cluster port on loopback.
func startNode(tb testing.TB, id string, expect int, join ...string) *testNode {
	tb.Helper()
	return startNodeAt(tb, "127.0.0.1:0", id, expect, join...)
}

func eventually(tb testing.TB, what string, fn func() error) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

func leaderOf(nodes ...*testNode) (*testNode, error) {
	for _, n := range nodes {
		if n.st.IsLeader() {
			return n, nil
		}
	}
	return nil, errors.New("no leader")
}

func TestNode_BootstrapExpectJoinRemoveLeave(t *testing.T) {
	// Three fresh nodes that know each other form one cluster.
	muxes := make([]*Mux, 3)
	addrs := make([]string, 3)
	for i := range muxes {
		m, err := Listen("127.0.0.1:0", "")
		if err != nil {
			t.Fatal(err)
		}
		muxes[i], addrs[i] = m, m.Addr()
		m.Close() // only to reserve distinct addresses below
	}
	nodes := make([]*testNode, 3)
	var wg sync.WaitGroup
	for i := range nodes {
		n := startNodeAt(t, addrs[i], fmt.Sprintf("n%d", i), 3, addrs...)
		nodes[i] = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make([]error, 3)
	for i, n := range nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = n.Form(ctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var leader *testNode
	eventually(t, "a leader", func() (err error) { leader, err = leaderOf(nodes...); return })
	var follower *testNode
	for _, n := range nodes {
		if n != leader {
			follower = n
			break
		}
	}
	// A follower learns the leader's API URL over the cluster port.
	u, err := follower.LeaderURL(ctx)
	if err != nil || u != "http://api-"+leader.ID() {
		t.Fatalf("LeaderURL = %q, %v; want the leader's", u, err)
	}
	ms, err := follower.Members(ctx)
	if err != nil || len(ms) != 3 {
		t.Fatalf("members: %+v %v", ms, err)
	}
	for _, m := range ms {
		if !m.Reachable || !m.Voter || m.APIURL != "http://api-"+m.ID {
			t.Errorf("member %+v", m)
		}
	}

	// A fourth node joins through a follower (forwarded to the leader).
	fourth := startNode(t, "n3", 0, follower.mux.Addr())
	if err := fourth.Form(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "four members on the fourth", func() error {
		if ms, _ := fourth.st.Members(); len(ms) != 4 {
			return fmt.Errorf("members %v", ms)
		}
		return nil
	})

	// Removed through a follower; an unknown id is refused, by the leader
	// (a follower's configuration can lag: its word would be stale).
	if err := follower.Remove(ctx, "nope"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("remove unknown: %v", err)
	}
	if _, err := leader.handle(ctx, rpcRequest{Op: opRemove, ID: "nope", Forwarded: true}); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("the leader took a forwarded remove of an unknown id: %v", err)
	}
	// Retried: on a loaded machine leadership may move while the change
	// commits (then the first try may have removed it already).
	eventually(t, "remove n3", func() error {
		if err := follower.Remove(ctx, "n3"); err != nil && !errors.Is(err, ErrUnknownNode) {
			return err
		}
		return nil
	})
	// The leader leaves: leadership moves, and it is no longer a member.
	if err := leader.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two members", func() error {
		if ms, _ := follower.st.Members(); len(ms) != 2 {
			return fmt.Errorf("members %v", ms)
		}
		return nil
	})
}

// startNodeAt is startNode on a given cluster address.
func startNodeAt(tb testing.TB, addr, id string, expect int, join ...string) *testNode {
	tb.Helper()
	mux, err := Listen(addr, "")
	if err != nil {
		tb.Fatal(err)
	}
	cfg := store.DefaultConfig(filepath.Join(tb.TempDir(), "store"))
	cfg.NoSync = true
	cfg.Raft = clustertest.Timings()
	cfg.Raft.NodeID = id
	cfg.Raft.Transport = mux.Transport(nil)
	st, err := store.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ncfg := DefaultConfig("http://api-" + id)
	ncfg.BootstrapExpect, ncfg.Join = expect, join
	ncfg.RetryInterval = 50 * time.Millisecond
	n, err := New(ncfg, st, mux)
	if err != nil {
		tb.Fatal(err)
	}
	n.Serve()
	tb.Cleanup(func() { n.Close(); _ = st.Close(); _ = mux.Close() })
	return &testNode{Node: n, st: st, mux: mux}
}

func TestListen_RefusesUnroutableAdvertise(t *testing.T) {
	for _, adv := range []string{"0.0.0.0:7000", "127.0.0.1:0", "nohostport"} {
		if m, err := Listen("127.0.0.1:0", adv); !errors.Is(err, ErrInvalidConfig) {
			if m != nil {
				m.Close()
			}
			t.Errorf("Listen advertise %q: %v, want ErrInvalidConfig", adv, err)
		}
	}
}

func TestConfig_Validate(t *testing.T) {
	for name, c := range map[string]Config{
		"no api url":      {RetryInterval: time.Second, RPCTimeout: time.Second},
		"negative expect": {APIURL: "http://x", BootstrapExpect: -1, RetryInterval: time.Second, RPCTimeout: time.Second},
		"no retry":        {APIURL: "http://x", RPCTimeout: time.Second},
		"no rpc timeout":  {APIURL: "http://x", RetryInterval: time.Second},
	} {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := DefaultConfig("http://x").Validate(); err != nil {
		t.Error(err)
	}
}
