package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/skiffml/skiff/store"
)

// Config configures a Node.
type Config struct {
	// APIURL is this node's API base URL as the other nodes reach it
	// (followers forward writes to the leader's).
	APIURL string
	// BootstrapExpect: a fresh node waits until it has found this many
	// fresh nodes (itself included) through Join, and they form the
	// cluster together. 0 or 1 with no Join: a cluster of one.
	BootstrapExpect int
	// Join are cluster addresses of other servers: a fresh node asks them
	// to add it, or finds its bootstrap peers among them.
	Join []string
	// RetryInterval is how often a fresh node tries Join again.
	RetryInterval time.Duration
	// RPCTimeout bounds one node RPC.
	RPCTimeout time.Duration
	Logger     *slog.Logger
}

// DefaultConfig returns a Config with the defaults filled in.
func DefaultConfig(apiURL string) Config {
	return Config{APIURL: apiURL, RetryInterval: 500 * time.Millisecond, RPCTimeout: 2 * time.Second}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.APIURL == "":
		return fmt.Errorf("%w: APIURL: required", ErrInvalidConfig)
	case c.BootstrapExpect < 0:
		return fmt.Errorf("%w: BootstrapExpect: must not be negative", ErrInvalidConfig)
	case c.RetryInterval <= 0:
		return fmt.Errorf("%w: RetryInterval: must be positive", ErrInvalidConfig)
	case c.RPCTimeout <= 0:
		return fmt.Errorf("%w: RPCTimeout: must be positive", ErrInvalidConfig)
	}
	return nil
}

// Info is what a node says about itself.
type Info struct {
	store.RaftStatus
	RaftAddr string         `json:"raft_addr"`
	APIURL   string         `json:"api_url"`
	Members  []store.Member `json:"members,omitempty"` // its raft configuration; empty on a fresh node
	// Blobs is the node's replication figure (nil: it keeps no replicated
	// blobs).
	Blobs *BlobStatus `json:"blobs,omitempty"`
}

// MemberStatus is one member as seen from the node asked: its place in the
// configuration and, when it answered, its own status.
type MemberStatus struct {
	store.Member
	APIURL    string           `json:"api_url,omitempty"`
	Reachable bool             `json:"reachable"`
	Error     string           `json:"error,omitempty"`
	Status    store.RaftStatus `json:"status"`
	Blobs     *BlobStatus      `json:"blobs,omitempty"`
}

// Node is this server's place in the cluster.
type Node struct {
	cfg Config
	st  *store.Store
	mux *Mux // nil: a one-voter cluster without a cluster port
	log *slog.Logger

	mu        sync.Mutex
	leaderURL map[string]string // leader id -> its API URL
	blobs     *Blobs            // the replicated blob store, when NewBlobs made one
	done      chan struct{}
}

// New returns the node of st. mux is the cluster port (nil for a one-voter
// cluster without one). Call Serve to answer other nodes, then Form.
func New(cfg Config, st *store.Store, mux *Mux) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Node{cfg: cfg, st: st, mux: mux, log: cfg.Logger, leaderURL: map[string]string{}, done: make(chan struct{})}, nil
}

// ID is this node's id.
func (n *Node) ID() string { return n.st.ID() }

// Info returns this node's status.
func (n *Node) Info() Info {
	info := Info{RaftStatus: n.st.Status(), APIURL: n.cfg.APIURL}
	if n.mux != nil {
		info.RaftAddr = n.mux.Addr()
	}
	info.Members, _ = n.st.Members()
	n.mu.Lock()
	b := n.blobs
	n.mu.Unlock()
	if b != nil {
		st := b.Status()
		info.Blobs = &st
	}
	return info
}

func (n *Node) isMember() bool {
	ms, err := n.st.Members()
	return err == nil && slices.ContainsFunc(ms, func(m store.Member) bool { return m.ID == n.ID() })
}

// Form makes this node part of a cluster: nothing to do for a node with
// state; otherwise it bootstraps (alone, or with BootstrapExpect fresh
// peers found through Join) or asks a member found through Join to add it,
// trying again every RetryInterval until ctx ends.
func (n *Node) Form(ctx context.Context) error {
	if n.mux == nil || n.isMember() {
		return nil
	}
	if len(n.cfg.Join) == 0 {
		if n.cfg.BootstrapExpect > 1 {
			return fmt.Errorf("%w: --bootstrap-expect %d needs --join with the other servers' addresses", ErrInvalidConfig, n.cfg.BootstrapExpect)
		}
		return n.bootstrap([]Info{n.Info()})
	}
	if n.cfg.BootstrapExpect == 1 {
		return n.bootstrap([]Info{n.Info()})
	}
	for {
		done, err := n.tryForm(ctx)
		if done {
			return err
		}
		if err != nil {
			n.log.Info("cluster: not formed yet", "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: joining %v: %w", n.cfg.Join, ctx.Err())
		case <-time.After(n.cfg.RetryInterval):
		}
	}
}

// tryForm is one round of Form.
func (n *Node) tryForm(ctx context.Context) (bool, error) {
	if n.isMember() {
		return true, nil
	}
	self := n.Info()
	fresh := []Info{self}
	var errs []error
	for _, addr := range n.cfg.Join {
		if addr == self.RaftAddr {
			continue
		}
		var peer Info
		if err := n.call(ctx, addr, rpcRequest{Op: opInfo}, &peer); err != nil {
			errs = append(errs, err)
			continue
		}
		if len(peer.Members) > 0 {
			// A formed cluster: ask it to add this node.
			err := n.call(ctx, addr, rpcRequest{Op: opJoin, ID: self.ID, RaftAddr: self.RaftAddr}, nil)
			if err == nil {
				n.log.Info("cluster: joined", "via", addr)
				return true, nil
			}
			errs = append(errs, err)
			continue
		}
		if peer.ID != self.ID && !slices.ContainsFunc(fresh, func(i Info) bool { return i.ID == peer.ID }) {
			fresh = append(fresh, peer)
		}
	}
	if n.cfg.BootstrapExpect > 1 && len(fresh) >= n.cfg.BootstrapExpect {
		return true, n.bootstrap(fresh)
	}
	return false, errors.Join(errs...)
}

func (n *Node) bootstrap(infos []Info) error {
	var ms []store.Member
	for _, i := range infos {
		ms = append(ms, store.Member{ID: i.ID, RaftAddr: i.RaftAddr, Voter: true})
	}
	slices.SortFunc(ms, func(a, b store.Member) int { return cmpString(a.ID, b.ID) })
	n.log.Info("cluster: bootstrapping", "members", ms)
	return n.st.BootstrapCluster(ms)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// LeaderURL returns the leader's API URL, waiting (until ctx ends) for a
// leader to be known. It is this node's own URL when it leads.
func (n *Node) LeaderURL(ctx context.Context) (string, error) {
	for {
		id, addr := n.st.Leader()
		if id == n.ID() {
			return n.cfg.APIURL, nil
		}
		if id != "" {
			n.mu.Lock()
			u, ok := n.leaderURL[id]
			n.mu.Unlock()
			if ok {
				return u, nil
			}
			var info Info
			err := n.call(ctx, addr, rpcRequest{Op: opInfo}, &info)
			if err == nil && info.ID == id {
				n.mu.Lock()
				n.leaderURL[id] = info.APIURL
				n.mu.Unlock()
				return info.APIURL, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ForgetLeader drops the cached API URL of leader id (it did not answer).
func (n *Node) ForgetLeader(id string) {
	n.mu.Lock()
	delete(n.leaderURL, id)
	n.mu.Unlock()
}

// Members returns every member of the configuration with its own status
// (asked over the cluster port, in parallel; one that does not answer
// within RPCTimeout is listed as unreachable).
func (n *Node) Members(ctx context.Context) ([]MemberStatus, error) {
	ms, err := n.st.Members()
	if err != nil {
		return nil, err
	}
	out := make([]MemberStatus, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		out[i].Member = m
		if m.ID == n.ID() {
			info := n.Info()
			out[i].Reachable, out[i].Status, out[i].APIURL, out[i].Blobs = true, info.RaftStatus, info.APIURL, info.Blobs
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var info Info
			if err := n.call(ctx, m.RaftAddr, rpcRequest{Op: opInfo}, &info); err != nil {
				out[i].Error = err.Error()
				return
			}
			out[i].Reachable, out[i].Status, out[i].APIURL, out[i].Blobs = true, info.RaftStatus, info.APIURL, info.Blobs
		}()
	}
	wg.Wait()
	return out, nil
}

// Remove takes member id out of the cluster (through the leader). The
// leader checks that id is a member: a follower's configuration can lag a
// join it has not received yet, and its "no such member" would be stale.
func (n *Node) Remove(ctx context.Context, id string) error {
	if n.st.IsLeader() {
		return n.removeMember(ctx, id)
	}
	_, addr := n.st.Leader()
	if addr == "" {
		return ErrNoLeader
	}
	return n.call(ctx, addr, rpcRequest{Op: opRemove, ID: id}, nil)
}

// removeMember removes id, a member in this (the leader's) configuration;
// ErrUnknownNode if it is none.
func (n *Node) removeMember(ctx context.Context, id string) error {
	ms, err := n.st.Members()
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(ms, func(m store.Member) bool { return m.ID == id }) {
		return fmt.Errorf("%w: %q", ErrUnknownNode, id)
	}
	n.log.Info("cluster: removing member", "id", id)
	return n.st.RemoveServer(ctx, id)
}

// Leave takes this node out of the cluster: a leader first hands
// leadership to another voter. The node stops taking part in raft
// decisions; the caller then shuts it down.
func (n *Node) Leave(ctx context.Context) error {
	if n.mux == nil {
		return fmt.Errorf("%w: a server without --raft is a cluster of one and cannot leave it", ErrInvalidConfig)
	}
	if ms, _ := n.st.Members(); len(ms) <= 1 {
		return fmt.Errorf("%w: the last member cannot leave the cluster (stop the server instead)", ErrInvalidConfig)
	}
	if n.st.IsLeader() {
		if err := n.st.TransferLeadership(); err != nil {
			return err
		}
	}
	for {
		// Retried: leadership may be moving (the transfer above).
		// ErrUnknownNode: an earlier try committed although its answer
		// was lost; this node is out, which is what was asked.
		err := n.Remove(ctx, n.ID())
		if err == nil || errors.Is(err, ErrUnknownNode) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: leave: %w", errors.Join(err, ctx.Err()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Node RPC: one JSON request and one JSON response per connection.
const (
	opInfo   = "info"
	opJoin   = "join"
	opRemove = "remove"
	// opPropose passes a worker's commands (store.WorkerCommand) to the
	// leader.
	opPropose = "propose"
)

type rpcRequest struct {
	Op       string `json:"op"`
	ID       string `json:"id,omitempty"`
	RaftAddr string `json:"raft_addr,omitempty"`
	// Forwarded is set on a request a follower passed to the leader, which
	// must not pass it on again.
	Forwarded bool `json:"forwarded,omitempty"`
	// Commands: store.EncodeCommands of opPropose's commands.
	Commands []byte `json:"commands,omitempty"`
}

type rpcResponse struct {
	Error string `json:"error,omitempty"`
	// Code names a sentinel Error stands for (codeUnknownNode), so that
	// the caller's error matches it too; "" for any other.
	Code string          `json:"code,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
}

// codeUnknownNode: the error is ErrUnknownNode.
const codeUnknownNode = "unknown_node"

// maxRPCBytes bounds one RPC message.
const maxRPCBytes = 1 << 20

// call sends req to the cluster port at addr and decodes the answer into
// out (when not nil).
func (n *Node) call(ctx context.Context, addr string, req rpcRequest, out any) error {
	if n.mux == nil {
		return fmt.Errorf("%w: a cluster of one has no cluster port", ErrInvalidConfig)
	}
	conn, err := n.mux.dial(addr, connRPC, n.cfg.RPCTimeout)
	if err != nil {
		return fmt.Errorf("cluster: %s: %w", addr, err)
	}
	defer conn.Close()
	dl := time.Now().Add(n.cfg.RPCTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	if req.Op == opJoin || req.Op == opRemove {
		dl = dl.Add(n.cfg.RPCTimeout) // a configuration change commits first
	}
	_ = conn.SetDeadline(dl)
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return fmt.Errorf("cluster: %s: %w", addr, err)
	}
	var resp rpcResponse
	if err := json.NewDecoder(io.LimitReader(conn, maxRPCBytes)).Decode(&resp); err != nil {
		return fmt.Errorf("cluster: %s %s: %w", addr, req.Op, err)
	}
	if resp.Error != "" {
		if resp.Code == codeUnknownNode {
			return fmt.Errorf("%w: %w: %s %s: %s", ErrRPC, ErrUnknownNode, addr, req.Op, resp.Error)
		}
		return fmt.Errorf("%w: %s %s: %s", ErrRPC, addr, req.Op, resp.Error)
	}
	if out != nil {
		return json.Unmarshal(resp.Body, out)
	}
	return nil
}

// Serve answers other nodes' RPCs until Close.
func (n *Node) Serve() {
	if n.mux == nil {
		return
	}
	go func() {
		for {
			select {
			case conn := <-n.mux.rpcCh:
				go n.serveConn(conn)
			case <-n.mux.closed:
				return
			case <-n.done:
				return
			}
		}
	}()
}

// Close stops answering RPCs (the caller closes the Mux and the store).
func (n *Node) Close() {
	select {
	case <-n.done:
	default:
		close(n.done)
	}
}

func (n *Node) serveConn(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * n.cfg.RPCTimeout))
	var req rpcRequest
	if err := json.NewDecoder(io.LimitReader(conn, maxRPCBytes)).Decode(&req); err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*n.cfg.RPCTimeout)
	defer cancel()
	body, err := n.handle(ctx, req)
	resp := rpcResponse{}
	if err != nil {
		resp.Error = err.Error()
		if errors.Is(err, ErrUnknownNode) {
			resp.Code = codeUnknownNode
		}
	} else if body != nil {
		resp.Body, _ = json.Marshal(body)
	}
	_ = json.NewEncoder(conn).Encode(resp)
}

func (n *Node) handle(ctx context.Context, req rpcRequest) (any, error) {
	switch req.Op {
	case opInfo:
		return n.Info(), nil
	case opJoin, opRemove:
		if req.ID == "" || (req.Op == opJoin && req.RaftAddr == "") {
			return nil, fmt.Errorf("%s: id and raft_addr are required", req.Op)
		}
		if !n.st.IsLeader() {
			_, addr := n.st.Leader()
			if req.Forwarded || addr == "" {
				return nil, ErrNoLeader
			}
			req.Forwarded = true
			return nil, n.call(ctx, addr, req, nil)
		}
		if req.Op == opJoin {
			n.log.Info("cluster: adding voter", "id", req.ID, "addr", req.RaftAddr)
			return nil, n.st.AddVoter(ctx, req.ID, req.RaftAddr)
		}
		return nil, n.removeMember(ctx, req.ID)
	case opPropose:
		cmds, err := store.DecodeCommands(req.Commands)
		if err != nil {
			return nil, err
		}
		if !n.st.IsLeader() && req.Forwarded {
			return nil, ErrNoLeader
		}
		return n.ProposeWorker(ctx, cmds...)
	}
	return nil, fmt.Errorf("unknown op %q", req.Op)
}

// ProposeWorker commits a worker's commands (registration, heartbeat,
// reports: store.WorkerCommand) through the leader: here when this node
// leads, else over the cluster port.
func (n *Node) ProposeWorker(ctx context.Context, cmds ...store.Command) (store.ApplyResult, error) {
	for _, c := range cmds {
		if !store.WorkerCommand(c) {
			return store.ApplyResult{}, fmt.Errorf("cluster: propose: %T is not a worker command", c)
		}
	}
	id, addr := n.st.Leader()
	if n.mux == nil || id == n.ID() {
		return n.st.Apply(ctx, cmds...)
	}
	if addr == "" {
		return store.ApplyResult{}, ErrNoLeader
	}
	data, err := store.EncodeCommands(cmds...)
	if err != nil {
		return store.ApplyResult{}, err
	}
	var res store.ApplyResult
	err = n.call(ctx, addr, rpcRequest{Op: opPropose, Commands: data, Forwarded: true}, &res)
	return res, err
}
