package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path"
	"strings"
	"sync"

	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/launch"
)

// The launcher's routes (launch.PathBlobs, launch.PathReport) take only a
// launcher token (launch.Keys), never a user's, and a launcher token is
// refused by every other route (it has not the user tokens' form). A
// token is good while its execution is the live attempt of its task in
// the store, and never after its expiry:
//
//   - GET  blobs/{digest}: an input blob the token lists, nothing else;
//   - POST blobs: stores the body (an output or the log), returns its ref;
//   - POST report: the launcher's Report; every blob it names must have
//     been uploaded with the same execution's token on this server. The
//     report is stored as a blob and the answer carries its digest and
//     an HMAC signature that the kube executor checks before it believes
//     the report (it reads them from the pod's termination message).

func init() {
	extraRoutes = append(extraRoutes, func(s *Server) {
		s.launchRoute("GET "+launch.PathBlobs+"/{digest}", s.launchBlob)
		s.launchRoute("POST "+launch.PathBlobs, s.launchUpload)
		s.launchRoute("POST "+launch.PathReport, s.launchReport)
	})
}

// LaunchHandler serves the launcher routes of s (launch.PathPrefix), each
// guarded as ServeHTTP guards it, and nothing else: every other path,
// /healthz included, is not found. A workstation serves it on a port of
// its own for the kube executor's pods (skiff run --kube-launcher-listen),
// apart from its user API (the launcher routes take launcher tokens only,
// whatever s's auth); s's AllowedHosts must hold the host pods reach it
// by.
func (s *Server) LaunchHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if !strings.HasPrefix(p, launch.PathPrefix) || path.Clean(p) != p {
			writeError(w, apiErr(codeNotFound, "no route for %s %s: this port serves only the kube launchers' routes (%s...)", r.Method, p, launch.PathPrefix))
			return
		}
		s.ServeHTTP(w, r)
	})
}

// maxReportBytes bounds a report's JSON (parameters are inline in it).
const maxReportBytes = 8 << 20

// launchUploads is, per execution, the digests its launcher uploaded. It
// is this process's memory, not the store's: a launcher whose uploads and
// report reach different servers (a failover between them) has its report
// refused, and its step fails (and is retried by its retry policy). An
// execution that never reports leaves its entry until the process ends.
type launchUploads struct {
	mu  sync.Mutex
	set map[string]map[string]bool
}

func (u *launchUploads) add(exec, digest string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.set == nil {
		u.set = map[string]map[string]bool{}
	}
	if u.set[exec] == nil {
		u.set[exec] = map[string]bool{}
	}
	u.set[exec][digest] = true
}

// take checks that exec uploaded every digest and forgets exec.
func (u *launchUploads) take(exec string, digests []string) (missing string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, d := range digests {
		if !u.set[exec][d] {
			return d
		}
	}
	delete(u.set, exec)
	return ""
}

type launchHandler func(w http.ResponseWriter, r *http.Request, c launch.Claims) error

func (s *Server) launchRoute(pattern string, h launchHandler) {
	s.mux.Handle(pattern, s.instrument(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.launchAuth(r)
		if err == nil {
			err = h(w, r, c)
		}
		if err != nil {
			ae := toAPIError(err)
			if ae.Code == codeInternal {
				s.log.Error("api: launcher request failed", "path", r.URL.Path, "err", err)
			}
			writeError(w, ae)
		}
	})))
}

// launchAuth checks a launcher token: signature, expiry, and that its
// execution is the live attempt of its task.
func (s *Server) launchAuth(r *http.Request) (launch.Claims, error) {
	var c launch.Claims
	if s.cfg.LaunchKeys == nil || s.cfg.Blobs == nil {
		return c, apiErr(codeUnimplemented, "this server serves no launchers (no launcher key or no artifact store)")
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return c, apiErr(codeUnauthenticated, "missing launcher token")
	}
	c, err := s.cfg.LaunchKeys.Verify(strings.TrimSpace(tok), s.now())
	if errors.Is(err, launch.ErrTokenExpired) {
		return c, apiErr(codeUnauthenticated, "launcher token of execution %s expired", c.Execution)
	}
	if err != nil {
		return c, apiErr(codeUnauthenticated, "invalid launcher token")
	}
	t, err := s.cfg.Store.Task(c.Run, c.TaskIndex)
	if err != nil || t.State.Final() || len(t.Attempts) != c.Attempt || t.Attempts[c.Attempt-1].State.Final() {
		return c, apiErr(codeUnauthenticated, "launcher token of execution %s: the execution is not running", c.Execution)
	}
	return c, nil
}

func (s *Server) launchBlob(w http.ResponseWriter, r *http.Request, c launch.Claims) error {
	digest := r.PathValue("digest")
	if !c.MayRead(digest) {
		return apiErr(codePermissionDenied, "blob %s is not an input of execution %s", digest, c.Execution)
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

func (s *Server) launchUpload(w http.ResponseWriter, r *http.Request, c launch.Claims) error {
	body := http.MaxBytesReader(w, r.Body, executors.DefaultMaxOutputBytes)
	ref, err := s.cfg.Blobs.Put(r.Context(), body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return badRequest("upload: larger than %d bytes, the limit of one output", tooBig.Limit)
	}
	if err != nil {
		return err
	}
	s.launched.add(c.Execution, ref.Digest)
	writeJSON(w, http.StatusOK, ref)
	return nil
}

func (s *Server) launchReport(w http.ResponseWriter, r *http.Request, c launch.Claims) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxReportBytes+1))
	if err != nil {
		return err
	}
	if len(data) > maxReportBytes {
		return badRequest("report: larger than %d bytes", maxReportBytes)
	}
	var rep launch.Report
	if err := decodeJSONBytes(data, &rep); err != nil {
		return err
	}
	if rep.Execution != c.Execution {
		return badRequest("execution: %q, but the token is for %q", rep.Execution, c.Execution)
	}
	if d := s.launched.take(c.Execution, rep.Digests()); d != "" {
		return badRequest("outputs: blob %s was not uploaded by execution %s", d, c.Execution)
	}
	canon, err := json.Marshal(&rep)
	if err != nil {
		return err
	}
	ref, err := s.cfg.Blobs.Put(r.Context(), bytes.NewReader(canon))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, launch.ReportReceipt{Digest: ref.Digest, Signature: s.cfg.LaunchKeys.SignReport(c.Execution, ref.Digest)})
	return nil
}
