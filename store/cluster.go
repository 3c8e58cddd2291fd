package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// RaftConfig is the raft side of Config: who this node is, how it talks to
// the others, and every timing knob of the cluster.
type RaftConfig struct {
	// NodeID is this node's raft server ID; "" = "skiff-1", the id of the
	// one-voter cluster of a workstation.
	NodeID string
	// Transport carries raft between nodes. nil = a one-voter cluster on an
	// in-memory transport: Open bootstraps it on first use and returns once
	// this node leads. With a transport, Open starts raft and returns at
	// once; the caller bootstraps (Store.BootstrapCluster) or has a member
	// add this node (Store.AddVoter on the leader).
	Transport raft.Transport

	// HeartbeatTimeout: how long a follower goes without hearing from the
	// leader before it stands for election (randomised up to twice it).
	HeartbeatTimeout time.Duration
	// ElectionTimeout: how long a candidate waits for votes before trying
	// again (randomised up to twice it).
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout: how long a leader keeps leading without hearing
	// from a majority; at most HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout: the longest a follower waits to learn the commit index
	// when nothing else is sent (raft's idle heartbeat interval).
	CommitTimeout time.Duration
	// StaleAfter: a follower that has not heard from the leader for this
	// long says its reads are stale (Store.Stale).
	StaleAfter time.Duration
	// NodeTTL is how long a worker's heartbeat stays valid before the
	// leader declares the node down (its executions end lost). A new
	// leader gives every node a full NodeTTL from its first term tick.
	NodeTTL time.Duration
	// WorkerHeartbeat is how often each worker renews its lease (one
	// command per node, whatever it runs); well under NodeTTL.
	WorkerHeartbeat time.Duration
}

// DefaultRaftConfig returns the timings of a cluster on a LAN: a lost
// leader is replaced within about one second.
func DefaultRaftConfig() RaftConfig {
	return RaftConfig{
		HeartbeatTimeout:   200 * time.Millisecond,
		ElectionTimeout:    200 * time.Millisecond,
		LeaderLeaseTimeout: 150 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		StaleAfter:         time.Second,
		NodeTTL:            10 * time.Second,
		WorkerHeartbeat:    time.Second,
	}
}

// LocalRaftConfig returns the timings of a one-voter cluster (no
// transport): there is no one to wait for, so short timeouts make Open
// return as leader in tens of milliseconds.
func LocalRaftConfig() RaftConfig {
	return RaftConfig{
		HeartbeatTimeout:   20 * time.Millisecond,
		ElectionTimeout:    20 * time.Millisecond,
		LeaderLeaseTimeout: 10 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		StaleAfter:         time.Second,
		NodeTTL:            10 * time.Second,
		WorkerHeartbeat:    time.Second,
	}
}

func (c RaftConfig) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"HeartbeatTimeout", c.HeartbeatTimeout, 5 * time.Millisecond},
		{"ElectionTimeout", c.ElectionTimeout, 5 * time.Millisecond},
		{"LeaderLeaseTimeout", c.LeaderLeaseTimeout, 5 * time.Millisecond},
		{"CommitTimeout", c.CommitTimeout, time.Millisecond},
		{"StaleAfter", c.StaleAfter, time.Millisecond},
		{"NodeTTL", c.NodeTTL, time.Millisecond},
		{"WorkerHeartbeat", c.WorkerHeartbeat, time.Millisecond},
	} {
		if d.v < d.min {
			return fmt.Errorf("%w: Raft.%s: %s is below the minimum %s", ErrInvalidConfig, d.name, d.v, d.min)
		}
	}
	switch {
	case c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return fmt.Errorf("%w: Raft.LeaderLeaseTimeout: %s must not exceed Raft.HeartbeatTimeout (%s)", ErrInvalidConfig, c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return fmt.Errorf("%w: Raft.ElectionTimeout: %s must be at least Raft.HeartbeatTimeout (%s)", ErrInvalidConfig, c.ElectionTimeout, c.HeartbeatTimeout)
	case c.NodeTTL < 2*c.WorkerHeartbeat:
		return fmt.Errorf("%w: Raft.NodeTTL: %s must be at least twice Raft.WorkerHeartbeat (%s)", ErrInvalidConfig, c.NodeTTL, c.WorkerHeartbeat)
	case c.CommitTimeout > c.HeartbeatTimeout:
		return fmt.Errorf("%w: Raft.CommitTimeout: %s must not exceed Raft.HeartbeatTimeout (%s)", ErrInvalidConfig, c.CommitTimeout, c.HeartbeatTimeout)
	}
	return nil
}

func (c RaftConfig) serverID() raft.ServerID {
	if c.NodeID == "" {
		return localServerID
	}
	return raft.ServerID(c.NodeID)
}

// Member is one server of the raft configuration.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	Voter    bool   `json:"voter"`
}

// RaftStatus is this node's view of the cluster.
type RaftStatus struct {
	ID           string    `json:"id"`
	State        string    `json:"state"` // Leader, Follower, Candidate, Shutdown
	Term         uint64    `json:"term"`
	CommitIndex  uint64    `json:"commit_index"`
	AppliedIndex uint64    `json:"applied_index"` // of state.db
	LeaderID     string    `json:"leader_id,omitempty"`
	LeaderAddr   string    `json:"leader_addr,omitempty"`
	LastContact  time.Time `json:"last_contact,omitzero"` // with the leader; zero on the leader
	Stale        bool      `json:"stale"`
}

// ID is this node's raft server ID.
func (s *Store) ID() string { return string(s.cfg.Raft.serverID()) }

// IsLeader reports whether this node is the raft leader now.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// Leader returns the current leader's id and raft address ("" when none is
// known).
func (s *Store) Leader() (id, addr string) {
	a, i := s.raft.LeaderWithID()
	return string(i), string(a)
}

// Stale reports whether this node's reads may be behind: it knows no
// leader, or it is a follower that has not heard from the leader for
// Raft.StaleAfter.
func (s *Store) Stale() bool {
	switch s.raft.State() {
	case raft.Leader:
		return false
	case raft.Follower:
		if id, _ := s.Leader(); id == "" {
			return true
		}
		return time.Since(s.raft.LastContact()) > s.cfg.Raft.StaleAfter
	}
	return true
}

// Status returns this node's raft status.
func (s *Store) Status() RaftStatus {
	st := RaftStatus{
		ID:           s.ID(),
		State:        s.raft.State().String(),
		Term:         s.raft.CurrentTerm(),
		CommitIndex:  s.raft.CommitIndex(),
		AppliedIndex: s.AppliedIndex(),
		Stale:        s.Stale(),
	}
	st.LeaderID, st.LeaderAddr = s.Leader()
	if s.raft.State() != raft.Leader {
		st.LastContact = s.raft.LastContact()
	}
	return st
}

// Members returns the servers of the latest raft configuration.
func (s *Store) Members() ([]Member, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("store: raft configuration: %w", err)
	}
	var out []Member
	for _, srv := range f.Configuration().Servers {
		out = append(out, Member{ID: string(srv.ID), RaftAddr: string(srv.Address), Voter: srv.Suffrage == raft.Voter})
	}
	return out, nil
}

// BootstrapCluster makes members the first configuration of a cluster. Every
// node given the same members may call it; a node that already has state
// returns an error wrapping raft.ErrCantBootstrap.
func (s *Store) BootstrapCluster(members []Member) error {
	var cfg raft.Configuration
	for _, m := range members {
		suf := raft.Voter
		if !m.Voter {
			suf = raft.Nonvoter
		}
		cfg.Servers = append(cfg.Servers, raft.Server{Suffrage: suf, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.RaftAddr)})
	}
	if err := s.raft.BootstrapCluster(cfg).Error(); err != nil {
		return fmt.Errorf("store: bootstrap: %w", err)
	}
	return nil
}

// AddVoter adds (or updates the address of) a voting member. Leader only.
func (s *Store) AddVoter(ctx context.Context, id, addr string) error {
	err := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeoutOf(ctx)).Error()
	return s.membershipErr("add voter "+id, err)
}

// RemoveServer removes a member. Leader only.
func (s *Store) RemoveServer(ctx context.Context, id string) error {
	err := s.raft.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx)).Error()
	return s.membershipErr("remove "+id, err)
}

// TransferLeadership asks another voter to take over. Leader only.
func (s *Store) TransferLeadership() error {
	return s.membershipErr("transfer leadership", s.raft.LeadershipTransfer().Error())
}

// VerifyLeader confirms with a majority that this node still leads, then
// waits until every entry committed so far is applied here (a linearizable
// read may follow).
func (s *Store) VerifyLeader(ctx context.Context) error {
	if err := s.membershipErr("verify leader", s.raft.VerifyLeader().Error()); err != nil {
		return err
	}
	return s.membershipErr("barrier", s.raft.Barrier(timeoutOf(ctx)).Error())
}

func (s *Store) membershipErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("store: %s: %w: %w", op, ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("store: %s: %w", op, ErrClosed)
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// WaitIndex waits until this node has applied index, or ctx ends.
func (s *Store) WaitIndex(ctx context.Context, index uint64) error {
	if s.AppliedIndex() >= index {
		return nil
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.AppliedIndex() < index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: waiting for index %d (applied %d): %w", index, s.AppliedIndex(), ctx.Err())
		case <-s.closed:
			return ErrClosed
		case <-tick.C:
		}
	}
	return nil
}

// WatchLeadership calls fn(true) when this node becomes leader and
// fn(false) when it stops leading, in order, from one goroutine, starting
// with the current state; it is driven by raft's observer. stop ends the
// watch and waits for fn to return.
func (s *Store) WatchLeadership(fn func(leader bool)) (stop func()) {
	obsCh := make(chan raft.Observation, 16)
	obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.RaftState, raft.LeaderObservation:
			return true
		}
		return false
	})
	s.raft.RegisterObserver(obs)
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		// A periodic check as well: the observer drops observations when
		// its channel is full.
		tick := time.NewTicker(s.cfg.Raft.HeartbeatTimeout)
		defer tick.Stop()
		was := false
		for {
			if now := s.IsLeader(); now != was {
				was = now
				fn(now)
			}
			select {
			case <-quit:
				if was {
					fn(false)
				}
				return
			case <-s.closed:
				if was {
					fn(false)
				}
				return
			case <-obsCh:
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.raft.DeregisterObserver(obs)
			close(quit)
			<-done
		})
	}
}

// Digest returns the applied index and a SHA-256 over every bucket, key
// and value of state.db, read in one transaction, but for the node's own
// log id: two nodes whose state machines agree give the same pair.
func (s *Store) Digest() (index uint64, digest string, err error) {
	h := sha256.New()
	err = s.fsm.view(func(tx *bolt.Tx) error {
		index = appliedTx(tx).Index
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			writeLenPrefixed(h, name)
			return b.ForEach(func(k, v []byte) error {
				if nodeLocal(name, k) {
					return nil
				}
				writeLenPrefixed(h, k)
				writeLenPrefixed(h, v)
				return nil
			})
		})
	})
	return index, hex.EncodeToString(h.Sum(nil)), err
}

// Dump returns every bucket's keys and values but for the node's own log
// id (for tests that show where two nodes differ).
func (s *Store) Dump() (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	err := s.fsm.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			m := map[string]string{}
			out[string(name)] = m
			return b.ForEach(func(k, v []byte) error {
				if !nodeLocal(name, k) {
					m[string(k)] = string(v)
				}
				return nil
			})
		})
	})
	return out, err
}

// nodeLocal reports whether key k of bucket name is this node's own (the
// id of its raft log), not part of the replicated state.
func nodeLocal(name, k []byte) bool {
	return bytes.Equal(name, bucketMeta) && bytes.Equal(k, keyLogID)
}

func writeLenPrefixed(h interface{ Write([]byte) (int, error) }, b []byte) {
	_, _ = h.Write(binary.AppendUvarint(nil, uint64(len(b))))
	_, _ = h.Write(b)
}

// timeoutOf turns ctx's deadline into raft's timeout argument (0 = none).
func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return 0
}
