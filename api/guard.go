package api

import (
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/skiffml/skiff/executors/launch"
)

// AnyHost in Config.AllowedHosts accepts every Host header (a server behind
// a proxy that forwards any name; never with NoAuth).
const AnyHost = "*"

// uploadPaths take multipart/form-data bodies; every other body is JSON.
var uploadPaths = map[string]bool{
	"/apis/v2beta1/pipelines/upload":         true,
	"/apis/v2beta1/pipelines/upload_version": true,
}

// guard refuses what a browser page could send on a user's behalf (a
// cross-site request, or one through a DNS name rebound to the server's
// address) before the request reaches a route: a Host that is not one of
// the server's names, a foreign Origin or a cross-site fetch, and a body
// that is not JSON (multipart on the upload routes).
func (s *Server) guard(r *http.Request) *Error {
	if !s.hostAllowed(r.Host) && !isHealthCheck(r) {
		return apiErr(codePermissionDenied, "Host %q is not a name of this server (loopback names, or one given with --allowed-host): refused, as a DNS-rebinding page would send it", r.Host)
	}
	if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
		return apiErr(codePermissionDenied, "Origin %q is not this server's (%s): cross-site requests are refused", o, r.Host)
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return apiErr(codePermissionDenied, "Sec-Fetch-Site: cross-site: cross-site requests are refused")
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	ct := r.Header.Get("Content-Type")
	want := "application/json"
	if uploadPaths[r.URL.Path] {
		want = "multipart/form-data"
	} else if r.URL.Path == launch.PathBlobs || agentBlobPath(r.URL.Path) {
		want = "application/octet-stream"
	}
	if ct == "" && r.ContentLength == 0 && want == "application/json" {
		return nil // no body at all (:terminate, :retry, ...)
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != want {
		e := badRequest("Content-Type %q: this route takes %s", ct, want)
		e.Status = http.StatusUnsupportedMediaType
		return e
	}
	return nil
}

// isHealthCheck: GET /healthz and /readyz answer whatever the Host (probes
// address the server by any of its addresses; they tell nothing).
func isHealthCheck(r *http.Request) bool {
	return r.Method == http.MethodGet && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz")
}

// hostAllowed reports whether a Host header names this server: a loopback
// name or address, or one of Config.AllowedHosts (any port).
func (s *Server) hostAllowed(hostport string) bool {
	h := hostOnly(hostport)
	if h == "" {
		return false
	}
	if h == "localhost" {
		return true
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, a := range s.cfg.AllowedHosts {
		if a == AnyHost || strings.EqualFold(hostOnly(a), h) {
			return true
		}
	}
	return false
}

// hostOnly returns the host of host[:port], lower case, without brackets
// or a trailing dot.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(h, "]"), "["), ".")
	return strings.ToLower(h)
}

// sameOrigin reports whether origin (scheme://host[:port]) is the server
// the request was sent to: the same host, and the same port unless the
// Host header gives none (a proxy on the default port).
func sameOrigin(origin, reqHost string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
		return false // "null", file://, garbage
	}
	if hostOnly(u.Host) != hostOnly(reqHost) {
		return false
	}
	_, reqPort, err := net.SplitHostPort(reqHost)
	if err != nil {
		return true // no port in Host
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return port == reqPort
}
