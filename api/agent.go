package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
)

// The agent routes serve skiff agent, a worker that is not a raft voter
// (worker/agentclient). They take a worker token only (RoleWorker), which
// acts as one node, the token's: every check is made here, on the server.
//
//   - GET  AgentPath/state: the node's record and live assignments; with
//     ?since=VERSION&wait=DURATION it answers once they differ from
//     VERSION (or after wait, at most MaxAgentWait): a long poll.
//   - GET  AgentPath/assignments/{id}/spec: the execution spec of one of
//     the node's assignments.
//   - POST AgentPath/propose: the node's worker commands (AgentProposal):
//     registration, heartbeat, reports, each naming the token's node;
//     committed through the leader like any write.
//   - GET  AgentPath/blobs/{digest}?execution=ID: an input blob of one of
//     the node's live executions.
//   - PUT  AgentPath/blobs/{digest}?execution=ID: an output or log of one
//     of the node's live executions; the answer comes once the blob is
//     stored on this server and, in a cluster, held by a majority of
//     voters with that recorded (Config.Replicator). Served by the server
//     asked (not forwarded to the leader: blobs can be large).
//   - GET  AgentPath/workspaces/{ns}/{digest}: a run's pipeline files
//     (store.PutWorkspace's bundle), when one of the node's live
//     executions reads them (its spec's PipelineFiles names them).
const (
	AgentPath      = "/apis/skiff/v1/agent"
	AgentBlobsPath = AgentPath + "/blobs"
)

// MaxAgentWait bounds the long poll of GET AgentPath/state.
const MaxAgentWait = 30 * time.Second

// maxAgentCommands bounds the commands of one AgentProposal.
const maxAgentCommands = 1024

// AgentState is the body of GET AgentPath/state.
type AgentState struct {
	// NodeID is the node the token acts as.
	NodeID string `json:"node_id"`
	// Index is the applied index the state was read at.
	Index uint64 `json:"index"`
	// Version stands for Node (less its times) and Assignments: pass it
	// back as ?since= to wait for a change.
	Version string `json:"version"`
	// Node is the node's record; nil before it registers.
	Node *store.Node `json:"node,omitempty"`
	// Assignments are the node's live assignments, without their specs.
	Assignments []store.Assignment `json:"assignments"`
}

// AgentCommand is one worker command: exactly one field is set.
type AgentCommand struct {
	Register  *store.RegisterNode    `json:"register,omitempty"`
	Heartbeat *store.Heartbeat       `json:"heartbeat,omitempty"`
	Report    *store.ReportExecution `json:"report,omitempty"`
}

// AgentProposal is the body of POST AgentPath/propose.
type AgentProposal struct {
	Commands []AgentCommand `json:"commands"`
}

// AgentResult is its answer: the commands' raft index and the ones the
// state machine refused (Cmd indexes Commands).
type AgentResult struct {
	Index    uint64            `json:"index"`
	Rejected []store.Rejection `json:"rejected,omitempty"`
}

// BlobReplicator makes blobs durable beyond this server (cluster.Blobs):
// it returns once a majority of voters hold each digest, recorded.
type BlobReplicator interface {
	Replicate(ctx context.Context, digests []string) error
}

func init() {
	extraRoutes = append(extraRoutes, func(s *Server) {
		s.handle("GET "+AgentPath+"/state", RoleWorker, s.agentOnly(s.agentState))
		s.handle("GET "+AgentPath+"/assignments/{id}/spec", RoleWorker, s.agentOnly(s.agentSpec))
		s.handle("POST "+AgentPath+"/propose", RoleWorker, s.agentOnly(s.agentPropose))
		s.handle("GET "+AgentBlobsPath+"/{digest}", RoleWorker, s.agentOnly(s.agentBlob))
		s.handle("PUT "+AgentBlobsPath+"/{digest}", RoleWorker, s.agentOnly(s.agentUpload))
		s.handle("GET "+AgentPath+"/workspaces/{ns}/{digest}", RoleWorker, s.agentOnly(s.agentWorkspace))
	})
}

type agentHandler func(w http.ResponseWriter, r *http.Request, node string) error

// agentOnly lets only worker tokens through: RoleWorker is below every
// role, so handle's check alone would let any token in.
func (s *Server) agentOnly(h agentHandler) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *principal) error {
		if p.role != RoleWorker || p.nodeID == "" {
			return apiErr(codePermissionDenied, "the agent routes take a worker token (skiff token create --role worker --node-id ID)")
		}
		return h(w, r, p.nodeID)
	}
}

// agentSnapshot reads node's record and live assignments.
func (s *Server) agentSnapshot(node string) (AgentState, error) {
	st := AgentState{NodeID: node, Index: s.cfg.Store.AppliedIndex(), Assignments: []store.Assignment{}}
	n, err := s.cfg.Store.Node(node)
	switch {
	case err == nil:
		st.Node = &n
	case !errors.Is(err, store.ErrNotFound):
		return st, err
	}
	as, err := s.cfg.Store.Assignments(node)
	if err != nil {
		return st, err
	}
	for _, a := range as {
		if a.Live() {
			a.Spec = nil
			st.Assignments = append(st.Assignments, a)
		}
	}
	// The version leaves out the node's times: a heartbeat changes
	// nothing the worker acts on.
	h := sha256.New()
	if st.Node != nil {
		v := *st.Node
		v.LastHeartbeat, v.RegisteredAt = time.Time{}, time.Time{}
		_ = json.NewEncoder(h).Encode(v)
	}
	_ = json.NewEncoder(h).Encode(st.Assignments)
	st.Version = hex.EncodeToString(h.Sum(nil)[:16])
	return st, nil
}

func (s *Server) agentState(w http.ResponseWriter, r *http.Request, node string) error {
	q := r.URL.Query()
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return badRequest("wait: %q is not a duration (like 20s)", v)
		}
		wait = min(d, MaxAgentWait)
	}
	since := q.Get("since")
	sub := s.cfg.Store.Subscribe(1024)
	defer sub.Close()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		st, err := s.agentSnapshot(node)
		if err != nil {
			return err
		}
		if wait == 0 || st.Version != since {
			writeJSON(w, http.StatusOK, st)
			return nil
		}
		mine := map[string]bool{}
		for _, a := range st.Assignments {
			mine[a.ExecutionID] = true
		}
		if !s.awaitAgentChange(r.Context(), sub, timer.C, node, mine) {
			writeJSON(w, http.StatusOK, st)
			return nil
		}
	}
}

// awaitAgentChange waits for a change to node or its assignments (true),
// or for the timer or the request's end (false).
func (s *Server) awaitAgentChange(ctx context.Context, sub *store.Subscription, timer <-chan time.Time, node string, mine map[string]bool) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer:
			return false
		case <-sub.Ready():
		}
		changes, lagged := sub.Next()
		if lagged {
			return true
		}
		for _, ch := range changes {
			if slices.Contains(ch.Nodes, node) {
				return true
			}
			for _, id := range ch.Assignments {
				if mine[id] {
					return true
				}
				if a, err := s.cfg.Store.Assignment(id); err == nil && a.NodeID == node {
					return true
				}
			}
		}
	}
}

// agentAssignment returns execution id's assignment when it is node's.
func (s *Server) agentAssignment(id, node string, live bool) (store.Assignment, error) {
	if id == "" {
		return store.Assignment{}, badRequest("execution: required")
	}
	a, err := s.cfg.Store.Assignment(id)
	if errors.Is(err, store.ErrNotFound) {
		return a, notFound("assignment", id)
	}
	if err != nil {
		return a, err
	}
	if a.NodeID != node {
		return a, apiErr(codePermissionDenied, "execution %s is not assigned to node %s", id, node)
	}
	if live && !a.Live() {
		return a, apiErr(codeFailedPrecondition, "execution %s has ended", id)
	}
	return a, nil
}

func (s *Server) agentSpec(w http.ResponseWriter, r *http.Request, node string) error {
	id := r.PathValue("id")
	if _, err := s.agentAssignment(id, node, false); err != nil {
		return err
	}
	raw, err := s.cfg.Store.AssignmentSpec(id)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(raw)
	return nil
}

func (s *Server) agentPropose(w http.ResponseWriter, r *http.Request, node string) error {
	var in AgentProposal
	if err := decodeJSON(r.Body, &in); err != nil {
		return err
	}
	if len(in.Commands) == 0 || len(in.Commands) > maxAgentCommands {
		return badRequest("commands: want 1 to %d, got %d", maxAgentCommands, len(in.Commands))
	}
	cmds := make([]store.Command, len(in.Commands))
	for i, c := range in.Commands {
		cmd, err := s.agentCommand(c, node)
		if err != nil {
			var ae *Error
			if errors.As(err, &ae) {
				ae.Message = fmt.Sprintf("commands[%d].%s", i, ae.Message)
				return ae
			}
			return err
		}
		cmds[i] = cmd
	}
	res, err := s.cfg.Store.Apply(r.Context(), cmds...)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, AgentResult{Index: res.Index, Rejected: res.Rejected})
	return nil
}

// agentCommand checks one command of node's agent: it must name node, and
// a registration must not claim an API URL (servers pass callers' tokens
// to a worker's API URL to read its logs) nor a server's id.
func (s *Server) agentCommand(c AgentCommand, node string) (store.Command, error) {
	cmd, err := checkAgentCommand(c, node)
	if err == nil && c.Register != nil {
		err = s.notAServer(node)
	}
	return cmd, err
}

// checkAgentCommand is agentCommand's check of the command alone.
func checkAgentCommand(c AgentCommand, node string) (store.Command, error) {
	n := 0
	for _, set := range []bool{c.Register != nil, c.Heartbeat != nil, c.Report != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, badRequest("want exactly one of register, heartbeat, report")
	}
	other := func(field, id string) error {
		return apiErr(codePermissionDenied, "%s: %q: this token acts as node %q only", field, id, node)
	}
	switch {
	case c.Register != nil:
		nd := c.Register.Node
		if nd.ID != node {
			return nil, other("register.node.id", nd.ID)
		}
		if nd.APIURL != "" {
			return nil, badRequest("register.node.api_url: an agent serves no API (got %q)", nd.APIURL)
		}
		for k, v := range nd.Labels {
			if err := spec.CheckLabel(k, v); err != nil {
				return nil, badRequest("register.node.labels: %v", err)
			}
		}
		return *c.Register, nil
	case c.Heartbeat != nil:
		if c.Heartbeat.NodeID != node {
			return nil, other("heartbeat.node_id", c.Heartbeat.NodeID)
		}
		return *c.Heartbeat, nil
	default:
		if c.Report.NodeID != node {
			return nil, other("report.node_id", c.Report.NodeID)
		}
		return *c.Report, nil
	}
}

func (s *Server) agentBlob(w http.ResponseWriter, r *http.Request, node string) error {
	if s.cfg.Blobs == nil {
		return apiErr(codeUnimplemented, "this server keeps no artifacts")
	}
	digest, id := r.PathValue("digest"), r.URL.Query().Get("execution")
	if _, err := s.agentAssignment(id, node, true); err != nil {
		return err
	}
	raw, err := s.cfg.Store.AssignmentSpec(id)
	if err != nil {
		return err
	}
	var sp executors.Spec
	if err := json.Unmarshal(raw, &sp); err != nil {
		return fmt.Errorf("execution %s: decode its spec: %w", id, err)
	}
	if !slices.ContainsFunc(sp.Inputs, func(in executors.ArtifactInput) bool { return in.Ref.Digest == digest && !in.EmptyDir }) {
		return apiErr(codePermissionDenied, "blob %s is not an input of execution %s", digest, id)
	}
	rc, err := s.cfg.Blobs.Open(r.Context(), digest)
	if err != nil {
		return notFound("blob", digest)
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	copyFlushing(w, rc)
	return nil
}

func (s *Server) agentUpload(w http.ResponseWriter, r *http.Request, node string) error {
	if s.cfg.Blobs == nil {
		return apiErr(codeUnimplemented, "this server keeps no artifacts")
	}
	digest, id := r.PathValue("digest"), r.URL.Query().Get("execution")
	if _, err := blob.ParseDigest(digest); err != nil {
		return badRequest("digest: %v", err)
	}
	if _, err := s.agentAssignment(id, node, true); err != nil {
		return err
	}
	body := http.MaxBytesReader(w, r.Body, executors.DefaultMaxOutputBytes)
	ref, err := s.cfg.Blobs.Put(r.Context(), body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return tooLarge("upload: larger than %d bytes, the limit of one output", tooBig.Limit)
	}
	if err != nil {
		return err
	}
	if ref.Digest != digest {
		return badRequest("digest: %s, but the body's is %s", digest, ref.Digest)
	}
	if s.cfg.Replicator != nil {
		if err := s.cfg.Replicator.Replicate(r.Context(), []string{digest}); err != nil {
			return apiErr(codeUnavailable, "blob %s: not replicated to a majority of servers: %v", digest, err)
		}
	}
	writeJSON(w, http.StatusOK, ref)
	return nil
}

// agentWorkspace serves a run's pipeline files to the node that runs one
// of its steps: a worker token reads no other namespace's files, nor a
// run's it has no live step of.
func (s *Server) agentWorkspace(w http.ResponseWriter, r *http.Request, node string) error {
	ns, digest := r.PathValue("ns"), r.PathValue("digest")
	if !store.ValidWorkspace(ns, digest) {
		return badRequest("workspace %q/%q: not a namespace and a hex SHA-256", ns, digest)
	}
	root := store.WorkspaceRoot(ns, digest)
	as, err := s.cfg.Store.Assignments(node)
	if err != nil {
		return err
	}
	reads := false
	for _, a := range as {
		if !a.Live() {
			continue
		}
		raw, err := s.cfg.Store.AssignmentSpec(a.ExecutionID)
		if err != nil {
			continue // ended meanwhile
		}
		var sp executors.Spec
		if json.Unmarshal(raw, &sp) == nil && sp.PipelineFiles == root {
			reads = true
			break
		}
	}
	if !reads {
		return apiErr(codePermissionDenied, "no live execution of node %s reads workspace %s/%s", node, ns, digest)
	}
	data, err := s.cfg.Store.Workspace(ns, digest)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("workspace", ns+"/"+digest)
	}
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(data)
	return nil
}

// agentBlobPath reports whether path is an agent blob route (served by
// the server asked, never forwarded).
func agentBlobPath(path string) bool { return strings.HasPrefix(path, AgentBlobsPath+"/") }
