package agentclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
	"github.com/skiffml/skiff/worker"
)

// Config configures a Client.
type Config struct {
	// Servers are the API base URLs of the cluster's servers: a call goes
	// to the one that answered last, and on to the next when it fails.
	Servers []string
	// Token is a worker token (skiff token create --role worker).
	Token string
	// Blobs is the agent's own blob store: inputs are fetched into it
	// (SetFetcher), outputs and logs are read from it to be uploaded.
	Blobs *blob.Store
	// PollWait is how long one watch request waits for a change.
	PollWait time.Duration
	// RetryPause is the longest pause between tries while no server
	// answers.
	RetryPause time.Duration
	// HTTP is the client (nil: one without a timeout; calls are bounded by
	// their contexts).
	HTTP   *http.Client
	Logger *slog.Logger
}

// DefaultConfig returns a Config with the defaults for servers and token.
func DefaultConfig(servers []string, token string, blobs *blob.Store) Config {
	return Config{Servers: servers, Token: token, Blobs: blobs, PollWait: 20 * time.Second, RetryPause: 2 * time.Second}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case len(c.Servers) == 0:
		return fmt.Errorf("%w: Servers: at least one", ErrInvalidConfig)
	case c.Token == "":
		return fmt.Errorf("%w: Token: required", ErrInvalidConfig)
	case c.Blobs == nil:
		return fmt.Errorf("%w: Blobs: required", ErrInvalidConfig)
	case c.PollWait <= 0 || c.PollWait > api.MaxAgentWait:
		return fmt.Errorf("%w: PollWait: must be positive and at most %s", ErrInvalidConfig, api.MaxAgentWait)
	case c.RetryPause <= 0:
		return fmt.Errorf("%w: RetryPause: must be positive", ErrInvalidConfig)
	}
	for i, s := range c.Servers {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: Servers[%d]: %q is not an http(s)://HOST[:PORT] URL", ErrInvalidConfig, i, s)
		}
	}
	return nil
}

// Client is an agent's link to the cluster: its worker's State (a copy
// of the node's record and assignments, kept current by Watch), Proposer
// and Replicator, and its blob store's Fetcher.
type Client struct {
	cfg  Config
	log  *slog.Logger
	http *http.Client

	mu  sync.Mutex
	cur int // the server in use
	// index is the highest applied index seen: reads ask for it
	// (min_index), so a server that lags never answers older state.
	index uint64

	smu     sync.RWMutex
	nodeID  string
	version string
	node    *store.Node
	assigns map[string]store.Assignment
	specs   map[string]json.RawMessage
	feed    store.Feed
}

var (
	_ worker.State               = (*Client)(nil)
	_ worker.Proposer            = (*Client)(nil)
	_ worker.ExecutionReplicator = (*Client)(nil)
	_ worker.Replicator          = (*Client)(nil)
)

// New returns a client; Sync it before use. It becomes cfg.Blobs'
// Fetcher.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, log: cfg.Logger, http: cfg.HTTP, assigns: map[string]store.Assignment{}, specs: map[string]json.RawMessage{}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	for i, s := range cfg.Servers {
		c.cfg.Servers[i] = strings.TrimRight(s, "/")
	}
	cfg.Blobs.SetFetcher(c.Fetch)
	return c, nil
}

// NodeID is the node the token acts as (known after Sync).
func (c *Client) NodeID() string {
	c.smu.RLock()
	defer c.smu.RUnlock()
	return c.nodeID
}

// Server is the URL of the server in use.
func (c *Client) Server() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.Servers[c.cur]
}

// Sync reads the node's state once, trying the servers in turn until one
// answers or ctx ends; a refusal (a bad token) is returned at once.
func (c *Client) Sync(ctx context.Context) error {
	pause := 100 * time.Millisecond
	for {
		st, err := c.fetchState(ctx, "", 0)
		if err == nil {
			c.update(st)
			return nil
		}
		if final(err) || ctx.Err() != nil {
			return err
		}
		c.log.Warn("agent: no server answered", "err", err)
		if !sleep(ctx, pause) {
			return err
		}
		pause = min(2*pause, c.cfg.RetryPause)
	}
}

// Watch keeps the state current until ctx ends: it long-polls the server
// for changes to the node and its assignments and publishes what changed
// to the subscriptions (a worker's feed).
func (c *Client) Watch(ctx context.Context) {
	pause := 100 * time.Millisecond
	for ctx.Err() == nil {
		c.smu.RLock()
		since := c.version
		c.smu.RUnlock()
		st, err := c.fetchState(ctx, since, c.cfg.PollWait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("agent: watch", "server", c.Server(), "err", err)
			if !sleep(ctx, pause) {
				return
			}
			pause = min(2*pause, c.cfg.RetryPause)
			continue
		}
		pause = 100 * time.Millisecond
		c.update(st)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (c *Client) fetchState(ctx context.Context, since string, wait time.Duration) (api.AgentState, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
		q.Set("wait", wait.String())
	}
	var st api.AgentState
	err := c.do(ctx, http.MethodGet, api.AgentPath+"/state", q, nil, "", func(res *http.Response) error {
		return json.NewDecoder(res.Body).Decode(&st)
	})
	if err == nil && st.NodeID == "" {
		err = errors.New("agentclient: the server's state names no node")
	}
	return st, err
}

// update replaces the state with st and publishes what changed.
func (c *Client) update(st api.AgentState) {
	c.noteIndex(st.Index)
	c.smu.Lock()
	ch := store.Change{Index: st.Index}
	if c.nodeID != "" && st.NodeID != c.nodeID {
		c.log.Error("agent: the server says the token is another node's", "was", c.nodeID, "now", st.NodeID)
		c.smu.Unlock()
		return
	}
	c.nodeID, c.version = st.NodeID, st.Version
	if !sameNode(c.node, st.Node) {
		ch.Nodes = []string{st.NodeID}
	}
	c.node = st.Node
	next := make(map[string]store.Assignment, len(st.Assignments))
	for _, a := range st.Assignments {
		next[a.ExecutionID] = a
		if old, ok := c.assigns[a.ExecutionID]; !ok || !sameAssignment(old, a) {
			ch.Assignments = append(ch.Assignments, a.ExecutionID)
		}
	}
	for id := range c.assigns {
		if _, ok := next[id]; !ok {
			ch.Assignments = append(ch.Assignments, id)
			delete(c.specs, id)
		}
	}
	c.assigns = next
	c.smu.Unlock()
	if len(ch.Nodes)+len(ch.Assignments) > 0 {
		slices.Sort(ch.Assignments)
		c.feed.Publish(ch)
	}
}

func sameNode(a, b *store.Node) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Epoch == b.Epoch && a.State == b.State && a.DownReason == b.DownReason
}

func sameAssignment(a, b store.Assignment) bool {
	return a.NodeID == b.NodeID && a.Epoch == b.Epoch && a.StartedAt.Equal(b.StartedAt) &&
		a.CancelRequested == b.CancelRequested && (a.Exit == nil) == (b.Exit == nil) && a.Waiting == b.Waiting
}

func (c *Client) noteIndex(i uint64) {
	c.mu.Lock()
	c.index = max(c.index, i)
	c.mu.Unlock()
}

// Node returns the node's record as last read (worker.State).
func (c *Client) Node(id string) (store.Node, error) {
	c.smu.RLock()
	defer c.smu.RUnlock()
	if id != c.nodeID || c.node == nil {
		return store.Node{}, fmt.Errorf("node %s: %w", id, store.ErrNotFound)
	}
	return *c.node, nil
}

// Assignment returns one live assignment of the node (worker.State).
func (c *Client) Assignment(execID string) (store.Assignment, error) {
	c.smu.RLock()
	defer c.smu.RUnlock()
	a, ok := c.assigns[execID]
	if !ok {
		return store.Assignment{}, fmt.Errorf("assignment %s: %w", execID, store.ErrNotFound)
	}
	return a, nil
}

// Assignments returns the node's live assignments (worker.State).
func (c *Client) Assignments(nodeID string) ([]store.Assignment, error) {
	c.smu.RLock()
	defer c.smu.RUnlock()
	if nodeID != c.nodeID {
		return nil, nil
	}
	out := make([]store.Assignment, 0, len(c.assigns))
	for _, a := range c.assigns {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y store.Assignment) int { return strings.Compare(x.ExecutionID, y.ExecutionID) })
	return out, nil
}

// Subscribe returns a subscription to the changes Watch sees
// (worker.State).
func (c *Client) Subscribe(limit int) *store.Subscription { return c.feed.Subscribe(limit) }

// AssignmentSpec returns the execution spec of one of the node's
// assignments, asking the server the first time (worker.State).
func (c *Client) AssignmentSpec(execID string) (json.RawMessage, error) {
	c.smu.RLock()
	raw, ok := c.specs[execID]
	c.smu.RUnlock()
	if ok {
		return raw, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.do(ctx, http.MethodGet, api.AgentPath+"/assignments/"+url.PathEscape(execID)+"/spec", nil, nil, "", func(res *http.Response) error {
		var err error
		raw, err = io.ReadAll(io.LimitReader(res.Body, 64<<20))
		return err
	})
	if err != nil {
		return nil, err
	}
	c.smu.Lock()
	if _, live := c.assigns[execID]; live {
		c.specs[execID] = raw
	}
	c.smu.Unlock()
	return raw, nil
}

// Workspace returns a run's pipeline files (worker.WorkspaceState): the
// server hands them over only while one of this node's executions reads
// them.
func (c *Client) Workspace(ns, digest string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var data []byte
	err := c.do(ctx, http.MethodGet, api.AgentPath+"/workspaces/"+url.PathEscape(ns)+"/"+url.PathEscape(digest), nil, nil, "", func(res *http.Response) error {
		var err error
		data, err = io.ReadAll(io.LimitReader(res.Body, store.MaxWorkspaceBytes+1))
		if err == nil && len(data) > store.MaxWorkspaceBytes {
			err = fmt.Errorf("workspace %s/%s: more than %d bytes", ns, digest, store.MaxWorkspaceBytes)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if store.WorkspaceDigest(data) != digest {
		return nil, fmt.Errorf("workspace %s/%s: the server's bytes do not match the digest", ns, digest)
	}
	return data, nil
}

// Apply commits the worker's commands through the cluster's leader
// (worker.Proposer): the server checks that each names this node.
func (c *Client) Apply(ctx context.Context, cmds ...store.Command) (store.ApplyResult, error) {
	in := api.AgentProposal{Commands: make([]api.AgentCommand, len(cmds))}
	for i, cmd := range cmds {
		switch x := cmd.(type) {
		case store.RegisterNode:
			in.Commands[i].Register = &x
		case store.Heartbeat:
			in.Commands[i].Heartbeat = &x
		case store.ReportExecution:
			in.Commands[i].Report = &x
		default:
			return store.ApplyResult{}, fmt.Errorf("agentclient: %T is not an agent's command", cmd)
		}
	}
	body, err := json.Marshal(in)
	if err != nil {
		return store.ApplyResult{}, err
	}
	var out api.AgentResult
	err = c.do(ctx, http.MethodPost, api.AgentPath+"/propose", nil, func() io.Reader { return bytes.NewReader(body) }, "application/json",
		func(res *http.Response) error { return json.NewDecoder(res.Body).Decode(&out) })
	if err != nil {
		return store.ApplyResult{}, err
	}
	c.noteIndex(out.Index)
	return store.ApplyResult{Index: out.Index, Rejected: out.Rejected}, nil
}

// Replicate is refused: an agent's uploads name their execution
// (ReplicateExecution), which the worker uses.
func (c *Client) Replicate(context.Context, []string) error {
	return errors.New("agentclient: an agent uploads blobs for an execution (ReplicateExecution)")
}

// ReplicateExecution uploads execution execID's outputs and log from the
// agent's blob store to a server, which answers once each is held by a
// majority of voters (worker.ExecutionReplicator). A server that fails is
// left for the next; it tries again until ctx ends; a refusal is final.
func (c *Client) ReplicateExecution(ctx context.Context, execID string, digests []string) error {
	pause := 100 * time.Millisecond
	for _, d := range digests {
		if d == blob.EmptyDigest {
			continue
		}
		for {
			err := c.upload(ctx, execID, d)
			if err == nil {
				break
			}
			if final(err) || ctx.Err() != nil {
				return err
			}
			c.log.Warn("agent: upload; trying again", "execution", execID, "digest", d, "err", err)
			if !sleep(ctx, pause) {
				return err
			}
			pause = min(2*pause, c.cfg.RetryPause)
		}
	}
	return nil
}

func (c *Client) upload(ctx context.Context, execID, digest string) error {
	var open []io.Closer
	defer func() {
		for _, rc := range open {
			rc.Close()
		}
	}()
	var openErr error
	body := func() io.Reader {
		rc, err := c.cfg.Blobs.Open(ctx, digest)
		if err != nil {
			openErr = err
			return errReader{err}
		}
		open = append(open, rc)
		return rc
	}
	q := url.Values{"execution": {execID}}
	err := c.do(ctx, http.MethodPut, api.AgentBlobsPath+"/"+url.PathEscape(digest), q, body, "application/octet-stream", func(*http.Response) error { return nil })
	if openErr != nil {
		return &finalError{fmt.Errorf("agentclient: upload %s: %w", digest, openErr)}
	}
	return err
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// Fetch makes input blob digest present in the agent's blob store: it
// downloads it for the live execution whose spec lists it (the server
// gives an agent only its executions' inputs). blob.Fetcher.
func (c *Client) Fetch(ctx context.Context, digest string) error {
	exec := c.inputOf(digest)
	if exec == "" {
		return fmt.Errorf("%w: %s: no execution of this agent takes it as an input", blob.ErrNotFound, digest)
	}
	q := url.Values{"execution": {exec}}
	return c.do(ctx, http.MethodGet, api.AgentBlobsPath+"/"+url.PathEscape(digest), q, nil, "", func(res *http.Response) error {
		ref, err := c.cfg.Blobs.Put(ctx, res.Body)
		if err != nil {
			return err
		}
		if ref.Digest != digest {
			return fmt.Errorf("%w: %s: the server sent a blob whose digest is %s", blob.ErrCorrupt, digest, ref.Digest)
		}
		return nil
	})
}

// inputOf returns a live execution whose spec lists digest as an input.
func (c *Client) inputOf(digest string) string {
	c.smu.RLock()
	defer c.smu.RUnlock()
	for id, raw := range c.specs {
		var s executors.Spec
		if json.Unmarshal(raw, &s) != nil {
			continue
		}
		for _, in := range s.Inputs {
			if in.Ref.Digest == digest {
				return id
			}
		}
	}
	return ""
}

// finalError is an answer that trying another server would not change.
type finalError struct{ err error }

func (e *finalError) Error() string { return e.err.Error() }
func (e *finalError) Unwrap() error { return e.err }

func final(err error) bool {
	var fe *finalError
	return errors.As(err, &fe)
}

// do sends one request, to the server in use and then to each other one
// while they fail (no answer, or 5xx); a 4xx answer is a finalError
// wrapping the server's *api.Error. read gets a 2xx response.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body func() io.Reader, ctype string, read func(*http.Response) error) error {
	c.mu.Lock()
	start, index := c.cur, c.index
	c.mu.Unlock()
	if q == nil {
		q = url.Values{}
	}
	if method == http.MethodGet && index > 0 {
		q.Set("min_index", strconv.FormatUint(index, 10))
	}
	var errs []error
	for k := range c.cfg.Servers {
		i := (start + k) % len(c.cfg.Servers)
		err := c.try(ctx, c.cfg.Servers[i], method, path, q, body, ctype, read)
		if err == nil || final(err) {
			if k > 0 && err == nil {
				c.mu.Lock()
				c.cur = i
				c.mu.Unlock()
				c.log.Info("agent: now talking to", "server", c.cfg.Servers[i])
			}
			return err
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

func (c *Client) try(ctx context.Context, base, method, path string, q url.Values, body func() io.Reader, ctype string, read func(*http.Response) error) error {
	u := base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = body()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return &finalError{err}
	}
	req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", base, err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 == 2 {
		if err := read(res); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		return nil
	}
	data, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	ae := &api.Error{}
	if json.Unmarshal(data, ae) != nil || ae.Message == "" {
		ae.Message = strings.TrimSpace(string(data))
	}
	ae.Status = res.StatusCode
	if res.StatusCode >= 500 {
		return fmt.Errorf("%s: %w", base, ae)
	}
	return &finalError{fmt.Errorf("%s: %w", base, ae)}
}
