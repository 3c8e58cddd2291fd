package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/skiffml/skiff/cluster"
	"github.com/skiffml/skiff/store"
)

// Headers of the cluster.
const (
	// IndexHeader is the applied raft index a response reflects: a read's
	// state is at least that recent; a write's answer comes once its
	// entry (at or below it) is applied. Pass it back as ?min_index= to
	// read your writes on any node.
	IndexHeader = "X-Skiff-Index"
	// StaleHeader says "true" when the node answering has no current
	// leader: it is cut off, or an election is under way, and its reads
	// may be behind.
	StaleHeader = "X-Skiff-Stale"
	// forwardedHeader marks a request a follower passed to the leader
	// (its value: the follower's id); notLeaderHeader, the answer of a
	// node that no longer leads, so the follower tries the new leader.
	forwardedHeader = "X-Skiff-Forwarded-By"
	// logProxyHeader marks a request for a running step's log that a
	// server passed to the server whose worker runs the step.
	logProxyHeader  = "X-Skiff-Log-Proxied-By"
	notLeaderHeader = "X-Skiff-Not-Leader"
)

// Defaults of the cluster knobs of Config.
const (
	DefaultMaxIndexWait   = 10 * time.Second
	DefaultForwardTimeout = 10 * time.Second
)

// clusterRoutes registers the cluster routes.
func init() {
	extraRoutes = append(extraRoutes, func(s *Server) {
		const sk = "/apis/skiff/v1"
		s.handle("GET "+sk+"/cluster", RoleViewer, s.clusterMembers)
		s.handle("DELETE "+sk+"/cluster/members/{id}", RoleAdmin, s.clusterRemove)
		s.handle("POST "+sk+"/cluster/leave", RoleAdmin, s.clusterLeave)
		s.handle("GET "+sk+"/cluster/digest", RoleAdmin, s.clusterDigest)
	})
}

// ClusterDigest is the body of GET /apis/skiff/v1/cluster/digest: the
// answering node's applied index and a SHA-256 over its whole state
// machine at that index (store.Digest). Two nodes at the same index must
// give the same digest (invariant 6). LeaderID is the leader this node
// knows ("" = none), from its own raft state: a cheap local probe.
type ClusterDigest struct {
	NodeID       string `json:"node_id"`
	LeaderID     string `json:"leader_id"`
	AppliedIndex uint64 `json:"applied_index"`
	Digest       string `json:"digest"`
}

// clusterDigest is read-only and local (never forwarded): each node
// answers for its own state. Admin only: it reads every namespace.
func (s *Server) clusterDigest(w http.ResponseWriter, _ *http.Request, _ *principal) error {
	idx, d, err := s.cfg.Store.Digest()
	if err != nil {
		return err
	}
	leader, _ := s.cfg.Store.Leader()
	writeJSON(w, http.StatusOK, ClusterDigest{NodeID: s.cfg.Store.ID(), LeaderID: leader, AppliedIndex: idx, Digest: d})
	return nil
}

// ClusterMembers is the body of GET /apis/skiff/v1/cluster.
type ClusterMembers struct {
	NodeID   string                 `json:"node_id"`   // the node that answered
	LeaderID string                 `json:"leader_id"` // "" when none is known
	Members  []cluster.MemberStatus `json:"members"`
	// Workers are the registered worker nodes: every server's, and those
	// of agents (skiff agent), which are not members.
	Workers []store.Node `json:"workers"`
}

func (s *Server) clusterMembers(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if s.cfg.Cluster == nil {
		return apiErr(codeUnimplemented, "this server runs without cluster membership")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	ms, err := s.cfg.Cluster.Members(ctx)
	if err != nil {
		return err
	}
	leader, _ := s.cfg.Store.Leader()
	workers, err := s.cfg.Store.Nodes()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ClusterMembers{NodeID: s.cfg.Store.ID(), LeaderID: leader, Members: ms, Workers: workers})
	return nil
}

func (s *Server) clusterRemove(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if s.cfg.Cluster == nil {
		return apiErr(codeUnimplemented, "this server runs without cluster membership")
	}
	id := r.PathValue("id")
	if id == s.cfg.Store.ID() {
		return apiErr(codeFailedPrecondition, "node %s is the leader answering this request: use 'skiff cluster leave' on it instead", id)
	}
	if err := s.cfg.Cluster.Remove(r.Context(), id); err != nil {
		if errors.Is(err, cluster.ErrUnknownNode) {
			return apiErr(codeNotFound, "%v", err)
		}
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"removed": id})
	return nil
}

func (s *Server) clusterLeave(w http.ResponseWriter, r *http.Request, _ *principal) error {
	if s.cfg.Cluster == nil {
		return apiErr(codeUnimplemented, "this server runs without cluster membership")
	}
	if err := s.cfg.Cluster.Leave(r.Context()); err != nil {
		if errors.Is(err, cluster.ErrInvalidConfig) {
			return apiErr(codeFailedPrecondition, "%v", err)
		}
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"left": s.cfg.Store.ID()})
	if s.cfg.OnLeave != nil {
		go s.cfg.OnLeave()
	}
	return nil
}

// isWrite: a request that changes state, which only the leader serves.
func isWrite(r *http.Request) bool { return r.Method != http.MethodGet && r.Method != http.MethodHead }

// leaderOnly: requests served by the leader whatever their method: writes
// (but leaving, which concerns the node asked), the event stream and
// executor logs and artifacts (steps run on the leader's node), and reads
// that ask to be linearizable (?consistent).
func leaderOnly(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case p == "/apis/skiff/v1/cluster/leave", agentBlobPath(p):
		return false
	case isWrite(r), p == "/apis/skiff/v1/events", strings.HasPrefix(p, "/apis/skiff/v1/artifacts/"):
		return true
	}
	return r.URL.Query().Has("consistent")
}

// serveCluster handles what a cluster adds to a request: it forwards
// leader-only requests from a follower, checks ?consistent on the leader,
// waits for ?min_index, and says which index a response reflects. It
// reports whether it answered the request itself.
func (s *Server) serveCluster(w http.ResponseWriter, r *http.Request) bool {
	st := s.cfg.Store
	if st.Stale() {
		w.Header().Set(StaleHeader, "true")
	}
	if s.cfg.Cluster != nil && leaderOnly(r) && !st.IsLeader() {
		if r.Header.Get(forwardedHeader) != "" {
			w.Header().Set(notLeaderHeader, "true")
			writeError(w, apiErr(codeUnavailable, "node %s is not the leader", st.ID()))
			return true
		}
		s.forward(w, r)
		return true
	}
	if r.URL.Query().Has("consistent") {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ForwardTimeout)
		defer cancel()
		if err := st.VerifyLeader(ctx); err != nil {
			writeError(w, toAPIError(err))
			return true
		}
	}
	if v := r.URL.Query().Get("min_index"); v != "" {
		idx, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, badRequest("min_index: %q is not an index (a decimal number)", v))
			return true
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.MaxIndexWait)
		defer cancel()
		if err := st.WaitIndex(ctx, idx); err != nil {
			writeError(w, apiErr(codeUnavailable, "min_index: index %d not applied on node %s within %s (applied: %d)", idx, st.ID(), s.cfg.MaxIndexWait, st.AppliedIndex()))
			return true
		}
	}
	if !isWrite(r) {
		w.Header().Set(IndexHeader, strconv.FormatUint(st.AppliedIndex(), 10))
	}
	return false
}

// indexWriter sets IndexHeader when a write's answer starts: its entry is
// applied by then.
type indexWriter struct {
	http.ResponseWriter
	st      *store.Store
	written bool
}

func (w *indexWriter) WriteHeader(code int) {
	if !w.written {
		w.written = true
		w.Header().Set(IndexHeader, strconv.FormatUint(w.st.AppliedIndex(), 10))
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *indexWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *indexWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// forwardBodyLimit bounds the body a follower buffers to forward (the
// largest the leader accepts, with room for multipart framing).
const forwardBodyLimit = maxBodyBytes + maxUploadBytes

// forward passes r to the leader with the caller's credentials and copies
// the answer back. While no leader is known (an election), it waits up to
// ForwardTimeout; a leader that cannot be reached, or that says it no
// longer leads, is tried again after the next election.
func (s *Server) forward(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		body, err = readLimited(r.Body, forwardBodyLimit)
		if err != nil {
			writeError(w, toAPIError(err))
			return
		}
	}
	deadline := time.Now().Add(s.cfg.ForwardTimeout)
	for {
		ctx, cancel := context.WithDeadline(r.Context(), deadline)
		base, err := s.cfg.Cluster.LeaderURL(ctx)
		cancel()
		if err != nil {
			s.m.forwards.WithLabelValues("no_leader").Inc()
			writeError(w, apiErr(codeUnavailable, "no cluster leader within %s: %v", s.cfg.ForwardTimeout, err))
			return
		}
		target, err := url.Parse(base)
		if err != nil {
			writeError(w, apiErr(codeInternal, "leader API URL %q: %v", base, err))
			return
		}
		retry := false
		proxy := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = target.Host
				dropBrowserHeaders(pr.Out.Header) // checked here; the leader would see them as foreign
				pr.Out.Header.Set(forwardedHeader, s.cfg.Store.ID())
				pr.Out.Body = newBody(body)
				pr.Out.ContentLength = int64(len(body))
			},
			FlushInterval: -1,
			Transport:     s.forwardTransport,
			ModifyResponse: func(res *http.Response) error {
				if res.StatusCode == http.StatusServiceUnavailable && res.Header.Get(notLeaderHeader) != "" {
					retry = true
					return errors.New("the leader stepped down")
				}
				return nil
			},
			ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
				var op *net.OpError
				if retry || errors.As(err, &op) && op.Op == "dial" {
					retry = true // nothing reached the leader: safe to send again
					return
				}
				writeError(w, apiErr(codeUnavailable, "forwarding to the leader at %s: %v", base, err))
			},
		}
		proxy.ServeHTTP(w, r)
		if !retry {
			s.m.forwards.WithLabelValues("ok").Inc()
			return
		}
		s.m.forwards.WithLabelValues("retry").Inc()
		if id, _ := s.cfg.Store.Leader(); id != "" {
			s.cfg.Cluster.ForgetLeader(id)
		}
		if time.Now().After(deadline) {
			writeError(w, apiErr(codeUnavailable, "no cluster leader answered within %s", s.cfg.ForwardTimeout))
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// dropBrowserHeaders removes the cross-site headers of a request this
// server checked before passing it to another server, which would see
// them as foreign.
func dropBrowserHeaders(h http.Header) {
	for _, k := range []string{"Origin", "Referer", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest"} {
		h.Del(k)
	}
}

// logHolder returns the API URL of the server whose worker runs attempt
// a, when that is another server and a's log is not stored yet (a step
// still running); "" to serve the log here. Any server answers for a
// stored log (a blob, fetched from a holder if need be). A request
// already proxied is served here, whatever it finds, so that proxies
// never loop.
func (s *Server) logHolder(r *http.Request, a store.Attempt) string {
	if a.Logs != nil || r.Header.Get(logProxyHeader) != "" || a.ExecutionID == "" {
		return ""
	}
	as, err := s.cfg.Store.Assignment(a.ExecutionID)
	if err != nil || !as.Live() || as.NodeID == s.cfg.Store.ID() {
		return ""
	}
	n, err := s.cfg.Store.Node(as.NodeID)
	if err != nil || n.APIURL == "" {
		return ""
	}
	return n.APIURL
}

// proxyLogs streams a running step's log from the server that runs it,
// with the caller's credentials (that server checks them again).
func (s *Server) proxyLogs(w http.ResponseWriter, r *http.Request, base string) error {
	target, err := url.Parse(base)
	if err != nil {
		return apiErr(codeInternal, "worker API URL %q: %v", base, err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
			dropBrowserHeaders(pr.Out.Header)
			pr.Out.Header.Del(forwardedHeader)
			pr.Out.Header.Set(logProxyHeader, s.cfg.Store.ID())
		},
		FlushInterval: -1, // a followed log streams as it comes
		Transport:     s.forwardTransport,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, apiErr(codeUnavailable, "reading the log from the server that runs the step (%s): %v", base, err))
		},
	}
	proxy.ServeHTTP(w, r)
	return nil
}

func (s *Server) readyState() (bool, string) {
	switch {
	case !s.ready.Load():
		return false, "not ready: starting"
	case s.cfg.Store.Stale():
		return false, fmt.Sprintf("not ready: node %s has no current leader (its reads may be stale)", s.cfg.Store.ID())
	}
	return true, ""
}

// readLimited reads r whole, refusing more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, badRequest("read body: %v", err)
	}
	if int64(len(data)) > limit {
		return nil, tooLarge("request body is larger than the limit of %d bytes", limit)
	}
	return data, nil
}

// newBody is a fresh reader over body for one forwarding attempt.
func newBody(body []byte) io.ReadCloser {
	if body == nil {
		return http.NoBody
	}
	return io.NopCloser(bytes.NewReader(body))
}
