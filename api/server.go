package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skiffml/skiff/cluster"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/launch"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
)

// Config configures a Server.
type Config struct {
	Store  *store.Store
	Engine Engine      // *engine.Engine, or one that follows raft leadership
	Blobs  *blob.Store // nil = no artifact downloads or stored logs
	// DefaultExecutor runs the tasks that name no executor (the API hands
	// it to the engine with every run it creates, so that the policy is
	// checked on the executor each task will use); "" = the engine's
	// default. Required with DisabledExecutors.
	DefaultExecutor string
	// DisabledExecutors are off for every namespace unless its policy
	// allows them (server mode: "local", which runs commands on the host).
	// They are checked on every task at every depth of a plan, whenever a
	// run is created or retried; a name matching one in another case is
	// refused.
	DisabledExecutors []string
	// NoAuth accepts every request as an admin of every namespace (a
	// workstation server bound to loopback).
	NoAuth bool
	// AllowedHosts are the names (any port) a request's Host header may
	// give besides loopback names and addresses, which are always
	// accepted: the server's own names and addresses. AnyHost accepts
	// every Host (not with NoAuth). With or without auth, a request with
	// another Host, a foreign Origin, a cross-site Sec-Fetch-Site or a
	// body that is not JSON (multipart on the upload routes) is refused.
	AllowedHosts []string
	// Registerer receives the API's metrics; Gatherer serves /metrics.
	// Either may be nil.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	Logger     *slog.Logger
	Clock      func() time.Time
	// LocalClients marks an API whose every client is this host's user
	// (a data dir's owner-only socket, or the CLI in-process): a run may
	// name a pipeline_dir, a directory of this host the engine reads.
	LocalClients bool
	// WorkspaceDir holds the pipeline files that remote clients send with
	// their runs (pipeline_files), one directory per namespace. Empty: such
	// runs are refused.
	WorkspaceDir string
	// StoreWorkspaces also keeps each run's pipeline files in the
	// replicated store (store.PutWorkspace) and has {{pipeline.dir}} name
	// store.WorkspaceRoot: the worker that runs a step, on any node and
	// after any failover, unpacks them into its own data dir (skiff
	// server, whose steps all run through workers). False: the directory
	// unpacked here is {{pipeline.dir}} (an engine with local executors).
	StoreWorkspaces bool
	// Version is reported by healthz.
	Version string

	// Cluster, when set, is this node's cluster membership: a follower
	// forwards writes to the leader, and the cluster routes answer. nil:
	// the store's node serves everything itself.
	Cluster *cluster.Node
	// OnLeave is called after this node left the cluster (POST
	// /apis/skiff/v1/cluster/leave): the server shuts down.
	OnLeave func()
	// MaxIndexWait bounds a ?min_index= wait; ForwardTimeout, a forward to
	// the leader (elections included). 0 = the defaults.
	MaxIndexWait   time.Duration
	ForwardTimeout time.Duration

	// LaunchKeys checks the tokens of in-pod launchers (the kube
	// executor mints them with the same keys); nil = the launch routes
	// refuse every request.
	LaunchKeys *launch.Keys

	// Replicator, when set, makes an agent's uploaded outputs durable
	// beyond this server before the upload is answered (cluster.Blobs);
	// nil: this server's blob store is the durable copy (a cluster of
	// one, or S3).
	Replicator BlobReplicator
}

// Engine is what the API asks of the engine (*engine.Engine has it).
type Engine interface {
	Submit(ctx context.Context, plan *spec.Plan, params map[string]json.RawMessage, opts engine.SubmitOptions) (string, error)
	Cancel(ctx context.Context, runID string) error
	Retry(ctx context.Context, runID string) error
	Executor(name string) (executors.Executor, bool)
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("api: Config.Store is required")
	case c.Engine == nil:
		return errors.New("api: Config.Engine is required")
	case c.NoAuth && slices.Contains(c.AllowedHosts, AnyHost):
		return errors.New("api: Config.AllowedHosts: " + AnyHost + " (any Host) needs authentication: it would let any web page drive a no-auth server through DNS rebinding")
	case len(c.DisabledExecutors) > 0 && c.DefaultExecutor == "":
		return errors.New("api: Config.DefaultExecutor is required with DisabledExecutors (the policy must know where tasks naming no executor run)")
	}
	return nil
}

// Server serves the REST API. Create it with New; it is an http.Handler.
type Server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	mux    *http.ServeMux
	m      *apiMetrics
	events *Events
	ready  atomic.Bool
	// schedMu serialises ScheduleRecurring.
	schedMu sync.Mutex
	// forwardTransport carries requests forwarded to the leader.
	forwardTransport http.RoundTripper
	// launched tracks what each launcher uploaded (launch.go).
	launched launchUploads
}

// New returns a server. Events, when non-nil, is the run-change feed
// (wire Events.Publish into engine.Config.OnUpdate).
func New(cfg Config, events *Events) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if events == nil {
		events = NewEvents()
	}
	if cfg.MaxIndexWait == 0 {
		cfg.MaxIndexWait = DefaultMaxIndexWait
	}
	if cfg.ForwardTimeout == 0 {
		cfg.ForwardTimeout = DefaultForwardTimeout
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Clock, mux: http.NewServeMux(), events: events,
		forwardTransport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second,
			DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext}}
	m, err := newAPIMetrics(cfg.Registerer, cfg.Store)
	if err != nil {
		return nil, err
	}
	s.m = m
	s.routes()
	return s, nil
}

// SetReady marks the server ready (/readyz): call it once unfinished runs
// have been resumed.
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

// ServeHTTP refuses what a browser page could send on a user's behalf
// (see guard), then routes the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e := s.guard(r); e != nil {
		s.m.refused.Inc()
		writeError(w, e)
		return
	}
	if s.serveCluster(w, r) {
		return
	}
	if isWrite(r) {
		w = &indexWriter{ResponseWriter: w, st: s.cfg.Store}
	}
	s.mux.ServeHTTP(w, r)
}

// handlerFunc is an authenticated route's handler.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *principal) error

// handle registers an authenticated route needing role.
func (s *Server) handle(pattern string, role Role, h handlerFunc) {
	s.mux.Handle(pattern, s.instrument(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err == nil {
			err = p.require(role)
		}
		if err == nil {
			err = h(w, r, p)
		}
		if err != nil {
			ae := toAPIError(err)
			if ae.Code == codeInternal {
				s.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			writeError(w, ae)
		}
	})))
}

func (s *Server) routes() {
	s.mux.Handle("GET /healthz", s.instrument("GET /healthz", http.HandlerFunc(s.healthz)))
	s.mux.Handle("GET /readyz", s.instrument("GET /readyz", http.HandlerFunc(s.readyz)))
	s.mux.Handle("GET /apis/v2beta1/healthz", s.instrument("GET /apis/v2beta1/healthz", http.HandlerFunc(s.healthz)))
	if s.cfg.Gatherer != nil {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))
	}

	const v2 = "/apis/v2beta1"
	s.handle("POST "+v2+"/experiments", RoleEditor, s.createExperiment)
	s.handle("GET "+v2+"/experiments", RoleViewer, s.listExperiments)
	s.handle("GET "+v2+"/experiments/{id}", RoleViewer, s.getExperiment)
	s.handle("POST "+v2+"/experiments/{action}", RoleEditor, s.experimentAction) // {id}:archive, {id}:unarchive
	s.handle("DELETE "+v2+"/experiments/{id}", RoleEditor, s.deleteExperiment)

	s.handle("POST "+v2+"/runs", RoleEditor, s.createRun)
	s.handle("GET "+v2+"/runs", RoleViewer, s.listRuns)
	s.handle("GET "+v2+"/runs/{id}", RoleViewer, s.getRun)
	s.handle("POST "+v2+"/runs/{action}", RoleEditor, s.runAction) // {id}:terminate, :archive, :unarchive, :retry
	s.handle("DELETE "+v2+"/runs/{id}", RoleEditor, s.deleteRun)

	const sk = "/apis/skiff/v1"
	s.handle("GET "+sk+"/events", RoleViewer, s.streamEvents)
	s.handle("GET "+sk+"/runs/{id}/tasks/{task}/logs", RoleViewer, s.taskLogs)
	s.handle("GET "+sk+"/runs", RoleViewer, s.listRunSummaries)
	s.handle("POST "+sk+"/tokens", RoleAdmin, s.createToken)
	s.handle("GET "+sk+"/runs/{id}", RoleViewer, s.getRunSummary)
	s.handle("GET "+sk+"/artifacts/{digest}", RoleViewer, s.downloadArtifact)
	s.handle("GET "+sk+"/namespaces/{namespace}/policy", RoleViewer, s.getPolicy)
	s.handle("PUT "+sk+"/namespaces/{namespace}/policy", RoleAdmin, s.putPolicy)
	s.handle("GET "+sk+"/whoami", RoleViewer, s.whoami)
	s.moreRoutes()

	s.mux.Handle("/", s.instrument("other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, apiErr(codeNotFound, "no route for %s %s", r.Method, r.URL.Path))
	})))
}

// moreRoutes is extended by later route files (pipelines, recurring runs).
var extraRoutes []func(s *Server)

func (s *Server) moreRoutes() {
	for _, f := range extraRoutes {
		f(s)
	}
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Healthz{TagName: s.cfg.Version, MultiUser: !s.cfg.NoAuth})
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if ok, why := s.readyState(); !ok {
		writeError(w, apiErr(codeUnavailable, "%s", why))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true, "applied_index": fmt.Sprint(s.cfg.Store.AppliedIndex())})
}

func (s *Server) whoami(w http.ResponseWriter, _ *http.Request, p *principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"namespace": p.namespace, "role": p.role.String(), "token_id": p.tokenID})
	return nil
}

// NamespacePolicy is the body of the namespace policy routes.
type NamespacePolicy struct {
	Namespace        string   `json:"namespace,omitempty"`
	AllowedExecutors []string `json:"allowed_executors"`
	// KubeNamespace is the Kubernetes namespace of the namespace's pods on
	// the kube executor ("" = the executor's --kube-namespace). In a PUT,
	// absent keeps the stored one; only an admin of every namespace may
	// change it (a namespace's admin could otherwise point its pods at
	// another tenant's Kubernetes namespace).
	KubeNamespace *string `json:"kube_namespace,omitempty"`
}

// policyBody is the API form of a stored policy.
func policyBody(ns string, pol store.NamespacePolicy) NamespacePolicy {
	out := NamespacePolicy{Namespace: ns, AllowedExecutors: pol.AllowedExecutors}
	if pol.KubeNamespace != "" {
		k := pol.KubeNamespace
		out.KubeNamespace = &k
	}
	return out
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request, p *principal) error {
	ns, err := p.namespaceFor(r.PathValue("namespace"))
	if err != nil {
		return err
	}
	pol, err := s.cfg.Store.GetNamespacePolicy(ns)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, policyBody(ns, pol))
	return nil
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request, p *principal) error {
	ns, err := p.namespaceFor(r.PathValue("namespace"))
	if err != nil {
		return err
	}
	var body NamespacePolicy
	if err := decodeJSON(r.Body, &body); err != nil {
		return err
	}
	if body.Namespace != "" && body.Namespace != ns {
		return badRequest("namespace: %q does not match the path's %q", body.Namespace, ns)
	}
	for i, x := range body.AllowedExecutors {
		if _, ok := s.cfg.Engine.Executor(x); !ok {
			return badRequest("allowed_executors[%d]: %q: %v", i, x, engine.ErrUnknownExecutor)
		}
	}
	old, err := s.cfg.Store.GetNamespacePolicy(ns)
	if err != nil {
		return err
	}
	pol := store.NamespacePolicy{Namespace: ns, AllowedExecutors: body.AllowedExecutors, KubeNamespace: old.KubeNamespace}
	if k := body.KubeNamespace; k != nil && *k != old.KubeNamespace {
		if *k != "" && !store.ValidKubeNamespace(*k) {
			return badRequest("kube_namespace: %q: use lowercase letters, digits and '-' (at most 63)", *k)
		}
		if p.namespace != AllNamespaces {
			return apiErr(codePermissionDenied, "kube_namespace: only an admin of every namespace may change it (this token is for namespace %q)", p.namespace)
		}
		pol.KubeNamespace = *k
	}
	if err := s.apply(r.Context(), store.SetNamespacePolicy{Policy: pol}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, policyBody(ns, pol))
	return nil
}

// apply proposes one command; a rejection becomes a FailedPrecondition.
func (s *Server) apply(ctx context.Context, c store.Command) error {
	res, err := s.cfg.Store.Apply(ctx, c)
	if err != nil {
		return err
	}
	if len(res.Rejected) > 0 {
		return apiErr(codeFailedPrecondition, "%s", res.Rejected[0].Reason)
	}
	return nil
}

// logsOf opens an attempt's logs: the stored blob, else the executor's.
func (s *Server) logsOf(ctx context.Context, a store.Attempt, follow bool) (io.ReadCloser, error) {
	if a.Logs != nil && s.cfg.Blobs != nil {
		rc, err := s.cfg.Blobs.Open(ctx, a.Logs.Digest)
		if errors.Is(err, blob.ErrNotFound) {
			return nil, apiErr(codeNotFound, "the log of execution %s (%s) is not stored on this server, nor on any server it asked", a.ExecutionID, a.Logs.Digest)
		}
		return rc, err
	}
	if as, err := s.cfg.Store.Assignment(a.ExecutionID); err == nil && as.Live() && as.NodeID != s.cfg.Store.ID() {
		if n, err := s.cfg.Store.Node(as.NodeID); err == nil && n.APIURL == "" {
			return nil, apiErr(codeNotFound, "the log of execution %s is on worker %s, which serves no API (a skiff agent): it is readable once the step ends", a.ExecutionID, as.NodeID)
		}
	}
	x, ok := s.cfg.Engine.Executor(a.Executor)
	if !ok {
		return nil, apiErr(codeNotFound, "no logs kept for execution %s", a.ExecutionID)
	}
	rc, err := x.Logs(ctx, a.ExecutionID, follow)
	if errors.Is(err, executors.ErrUnknownExecution) {
		return nil, apiErr(codeNotFound, "no logs kept for execution %s", a.ExecutionID)
	}
	return rc, err
}
