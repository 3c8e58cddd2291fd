package ui

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the UI.
type Config struct {
	Store *store.Store
	Blobs *blob.Store // nil = no artifact views or downloads
	// API is the REST API (an *api.Server): every request is
	// authenticated through it, and the browser's actions and streams
	// reach it through the UI's same-origin proxy under /_api/.
	API    http.Handler
	Logger *slog.Logger
	Clock  func() time.Time
	// PageSize is how many runs a runs page shows.
	PageSize int
	// MaxCompare is the most runs Compare takes.
	MaxCompare int
	// PreviewBytes bounds what an artifact view reads of a blob
	// (datasets, Markdown, metrics); the download has everything.
	PreviewBytes int64
	// SecureCookie marks the login cookie Secure even when the request
	// did not come over TLS (behind a TLS-terminating proxy).
	SecureCookie bool
}

// DefaultConfig returns a config over st and the API h.
func DefaultConfig(st *store.Store, blobs *blob.Store, h http.Handler) Config {
	return Config{Store: st, Blobs: blobs, API: h, PageSize: 50, MaxCompare: 20, PreviewBytes: 1 << 20}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("ui: Config.Store is required")
	case c.API == nil:
		return errors.New("ui: Config.API is required")
	case c.PageSize < 1 || c.PageSize > 1000:
		return fmt.Errorf("ui: Config.PageSize %d: want 1..1000", c.PageSize)
	case c.MaxCompare < 2:
		return fmt.Errorf("ui: Config.MaxCompare %d: want at least 2", c.MaxCompare)
	case c.PreviewBytes < 1024:
		return fmt.Errorf("ui: Config.PreviewBytes %d: want at least 1024", c.PreviewBytes)
	}
	return nil
}

// Server serves the UI; it is an http.Handler.
type Server struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	mux   *http.ServeMux
	pages map[string]*template.Template
	// layouts caches DAG layouts by plan digest.
	layoutMu sync.Mutex
	layouts  map[string]*Layout
	// metrics caches final runs' scalar metrics by run id.
	metricsMu sync.Mutex
	metrics   map[string]map[string]string
	// models caches final runs' models (loadRun).
	modelMu sync.Mutex
	models  map[string]*runModel
}

// New returns the UI server.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Clock, mux: http.NewServeMux(), layouts: map[string]*Layout{},
		metrics: map[string]map[string]string{}, models: map[string]*runModel{}}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// contentSecurityPolicy allows only our own scripts and styles: no inline
// script or style, no plugins, no framing of the UI.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// sandboxPolicy is how user HTML is served: a sandbox (no scripts, a
// unique origin), framed only by the UI.
const sandboxPolicy = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameOrigin(r) {
		http.Error(w, "cross-site request refused: the UI's actions must come from its own pages", http.StatusForbidden)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// sameOrigin reports whether a state-changing request comes from a page of
// this origin: its Origin names this host (or, without Origin, the
// browser says the fetch is same-origin).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Sec-Fetch-Site") == "same-origin"
	}
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

func (s *Server) routes() {
	sub, _ := fs.Sub(staticFS, "static")
	static := http.StripPrefix("/static/", http.FileServerFS(sub))
	s.mux.Handle("GET /static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		static.ServeHTTP(w, r)
	}))
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.logout)
	s.mux.HandleFunc("/_api/", s.proxy)
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/runs", http.StatusFound) })
	s.page("GET /runs", s.runsPage)
	s.page("GET /runs/{id}", s.runPage)
	s.page("GET /runs/{id}/state.json", s.runState)
	s.page("GET /runs/{id}/tasks/{task}/outputs/{name}", s.artifactPage)
	s.page("GET /runs/{id}/tasks/{task}/outputs/{name}/raw", s.artifactRaw)
	s.page("GET /experiments", s.experimentsPage)
	s.page("GET /compare", s.comparePage)
	s.page("GET /pipelines", s.pipelinesPage)
	s.page("GET /pipelines/{id}", s.pipelinePage)
	s.page("GET /recurring", s.recurringPage)
	s.page("GET /cluster", s.clusterPage)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, http.StatusNotFound, "error", nil, errorData{Title: "Not found", Message: "No page at " + r.URL.Path})
	})
}

// viewer is the signed-in caller, as the API's whoami sees its token.
type viewer struct {
	token     string
	Namespace string `json:"namespace"`
	Role      string `json:"role"`
}

// sees reports whether the viewer may see objects of namespace ns.
func (v *viewer) sees(ns string) bool { return v.Namespace == "*" || v.Namespace == ns }

// listNamespace is the store filter for lists ("" = every namespace).
func (v *viewer) listNamespace() string {
	if v.Namespace == "*" {
		return ""
	}
	return v.Namespace
}

// CanEdit reports whether the viewer may cancel and retry runs.
func (v *viewer) CanEdit() bool { return v.Role == "editor" || v.Role == "admin" }

// pageFunc renders one authenticated page.
type pageFunc func(w http.ResponseWriter, r *http.Request, v *viewer) error

// page registers an authenticated page: without a valid login it
// redirects to /login (or answers 401 to a JSON request).
func (s *Server) page(pattern string, h pageFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		v, status := s.authenticate(r)
		if status == http.StatusUnauthorized {
			if strings.HasSuffix(r.URL.Path, ".json") {
				http.Error(w, "sign in first", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if v == nil {
			s.render(w, r, http.StatusBadGateway, "error", nil, errorData{Title: "API unavailable", Message: fmt.Sprintf("the API answered %d", status)})
			return
		}
		if err := h(w, r, v); err != nil {
			s.fail(w, r, v, err)
		}
	})
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, v *viewer, err error) {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, store.ErrNotFound):
		s.render(w, r, http.StatusNotFound, "error", v, errorData{Title: "Not found", Message: err.Error()})
	case errors.Is(err, ErrBadFilter), errors.Is(err, errBadRequest):
		s.render(w, r, http.StatusBadRequest, "error", v, errorData{Title: "Bad request", Message: err.Error()})
	default:
		s.log.Error("ui: page failed", "path", r.URL.Path, "err", err)
		s.render(w, r, http.StatusInternalServerError, "error", v, errorData{Title: "Something went wrong", Message: err.Error()})
	}
}

var errBadRequest = errors.New("bad request")

type errorData struct{ Title, Message string }

// cookieName holds the API token of a signed-in browser.
const cookieName = "skiff_token"

// authenticate asks the API who the request's token (its cookie) is:
// the viewer and 200, or nil and the API's status.
func (s *Server) authenticate(r *http.Request) (*viewer, int) {
	tok := ""
	if c, err := r.Cookie(cookieName); err == nil {
		tok = c.Value
	}
	return s.whoami(r, tok)
}

func (s *Server) whoami(r *http.Request, tok string) (*viewer, int) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "/apis/skiff/v1/whoami", nil)
	if err != nil {
		return nil, http.StatusInternalServerError
	}
	req.Host = r.Host
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	rec := &recorder{hdr: http.Header{}, status: http.StatusOK}
	s.cfg.API.ServeHTTP(rec, req)
	if rec.status != http.StatusOK {
		return nil, rec.status
	}
	v := &viewer{token: tok}
	if err := json.Unmarshal(rec.body.Bytes(), v); err != nil {
		return nil, http.StatusBadGateway
	}
	return v, http.StatusOK
}

// recorder captures an in-process API response.
type recorder struct {
	hdr    http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.hdr }
func (r *recorder) WriteHeader(code int)        { r.status = code }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// proxy forwards /_api/PATH to the API as PATH with the cookie's token as
// the bearer token. State-changing calls must be same-origin (checked in
// ServeHTTP) and carry JSON, so that no form of another site can drive
// them.
func (s *Server) proxy(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		ct := r.Header.Get("Content-Type")
		if mt, _, _ := strings.Cut(ct, ";"); strings.TrimSpace(mt) != "application/json" {
			http.Error(w, "Content-Type: the UI's actions send application/json", http.StatusUnsupportedMediaType)
			return
		}
	}
	req := r.Clone(r.Context())
	req.URL.Path = strings.TrimPrefix(r.URL.Path, "/_api")
	req.URL.RawPath = ""
	req.RequestURI = ""
	req.Header.Del("Authorization")
	req.Header.Del("Cookie")
	if c, err := r.Cookie(cookieName); err == nil && c.Value != "" {
		req.Header.Set("Authorization", "Bearer "+c.Value)
	}
	// the API's answers are JSON, text or streams: never a page to frame
	w.Header().Set("Content-Security-Policy", "default-src 'none'; sandbox")
	s.cfg.API.ServeHTTP(w, req)
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login", nil, loginData{Next: safeNext(r.URL.Query().Get("next"))})
}

type loginData struct {
	Next, Error string
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/runs"
	}
	return next
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "form: "+err.Error(), http.StatusBadRequest)
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	next := safeNext(r.PostForm.Get("next"))
	if v, _ := s.whoami(r, tok); v == nil || tok == "" {
		s.render(w, r, http.StatusUnauthorized, "login", nil, loginData{Next: next, Error: "That token is not valid here. Create one with 'skiff token create'."})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || s.cfg.SecureCookie, MaxAge: 7 * 24 * 3600,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// Mount serves the API's routes (/apis/, /healthz, /readyz, /metrics)
// from apiH and every other path from the UI.
func Mount(apiH, uiH http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, "/apis/") || p == "/healthz" || p == "/readyz" || p == "/metrics" {
			apiH.ServeHTTP(w, r)
			return
		}
		uiH.ServeHTTP(w, r)
	})
}

// SignedIn reports whether the viewer came with a token (not --no-auth).
func (v *viewer) SignedIn() bool { return v.token != "" }
