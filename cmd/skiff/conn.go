package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/store"
)

// conn is the one way every command but run's own engine reaches the API,
// whatever serves it: a skiff server (--server), the skiff process serving
// the data dir (through its socket), or the data dir itself, opened in
// this process behind an in-memory transport. Each command thus sees the
// same JSON and the same features in every mode.
type conn struct {
	*api.Client
	// local is set when the API runs on this host as this user (the data
	// dir's socket, or in-process): it reads a run's pipeline dir.
	local bool
	// n is the data dir this process opened (in-process only); its
	// engine does not run unless a command starts it.
	n *node
}

func (k *conn) close() {
	if k.n != nil {
		k.n.close()
	}
}

// where names what the conn talks to, for messages.
func (k *conn) where() string {
	switch {
	case !k.local:
		return "the server at " + k.BaseURL
	case k.n != nil:
		return "data dir " + k.n.dir
	}
	return "the skiff process serving the data dir"
}

// dialLockWait bounds how long a command waits for a data dir that another
// skiff process holds without serving it (a short command, or one
// starting).
const dialLockWait = 5 * time.Second

// dial connects to the API for c's global flags.
func dial(c *cli.Context) (*conn, error) {
	if k := servedConn(c); k != nil {
		return k, nil
	}
	dir, err := filepath.Abs(c.String("data-dir"))
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(dialLockWait)
	for {
		if cl := socketClient(c.Context, dir); cl != nil {
			return &conn{Client: cl, local: true}, nil
		}
		n, err := openNode(c, nodeOptions{noSocket: true})
		if err == nil {
			return inProcess(n)
		}
		if errors.Is(err, store.ErrLocked) && time.Now().After(deadline) {
			return nil, fmt.Errorf("data dir %s is held by a skiff process that does not answer on its socket (a 'skiff server'? then give --server URL): %w", dir, err)
		}
		if !errors.Is(err, store.ErrLocked) {
			return nil, err
		}
		select {
		case <-c.Context.Done():
			return nil, c.Context.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// localAPI is the API over an opened data dir, for this host's user.
func localAPI(n *node, events *api.Events) (*api.Server, error) {
	srv, err := api.New(api.Config{Store: n.store, Engine: n.engine, Blobs: n.blobs, NoAuth: true,
		AllowedHosts: []string{socketHost}, LocalClients: true, Logger: n.log, Version: serverVersion}, events)
	if err != nil {
		return nil, err
	}
	srv.SetReady(true)
	return srv, nil
}

func inProcess(n *node) (*conn, error) {
	srv, err := localAPI(n, nil)
	if err != nil {
		n.close()
		return nil, err
	}
	cl := api.NewClient("http://"+socketHost, "")
	cl.HTTP = &http.Client{Transport: handlerTransport{srv}}
	return &conn{Client: cl, local: true, n: n}, nil
}

// socketClient returns a client for the skiff process serving the data dir
// in dir, when one answers on its socket; else nil.
func socketClient(ctx context.Context, dir string) *api.Client {
	path := filepath.Join(dir, socketName)
	cl := api.NewClient("http://"+socketHost, "")
	cl.HTTP = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+socketHost+"/healthz", nil)
	resp, err := cl.HTTP.Do(req)
	if err != nil {
		return nil
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	return cl
}

// handlerTransport serves requests with an in-process handler, streaming
// the response body (so that followed logs flow).
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	w := &pipeResponse{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			w.WriteHeader(http.StatusOK)
			pw.Close()
		}()
		t.h.ServeHTTP(w, req)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		pr.Close()
		return nil, req.Context().Err()
	}
	return &http.Response{StatusCode: w.status, Status: http.StatusText(w.status), Header: w.header,
		Body: pr, Request: req, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, ContentLength: -1}, nil
}

type pipeResponse struct {
	header http.Header
	pw     *io.PipeWriter
	once   sync.Once
	status int
	ready  chan struct{}
}

func (w *pipeResponse) Header() http.Header { return w.header }

func (w *pipeResponse) WriteHeader(code int) {
	w.once.Do(func() {
		w.status = code
		close(w.ready)
	})
}

func (w *pipeResponse) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.pw.Write(b)
}

func (w *pipeResponse) Flush() {}

// clientErr turns an API error into the CLI's exit codes: 4xx is bad
// input; a server that cannot be reached gets a sentence.
func clientErr(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) && ae.HTTPStatus() >= 400 && ae.HTTPStatus() < 500 && ae.HTTPStatus() != http.StatusNotImplemented {
		return usageError("%s", ae.Message)
	}
	var ue interface{ Unwrap() error }
	if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &ue) && isDialError(err) {
		return cli.Exit(fmt.Sprintf("cannot reach the skiff server (%v); is it running, and are --server and SKIFF_SERVER right?", rootCause(err)), exitRunFail)
	}
	return err
}

func isDialError(err error) bool {
	var oe *net.OpError
	var de *net.DNSError
	return errors.As(err, &oe) && oe.Op == "dial" || errors.As(err, &de)
}

func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// servedConn returns a conn to the server (--server) or to the skiff
// process serving the data dir, when there is one; else nil: the command
// runs the engine itself.
func servedConn(c *cli.Context) *conn {
	if base := c.String("server"); base != "" {
		return &conn{Client: api.NewClient(base, c.String("token"))}
	}
	dir, err := filepath.Abs(c.String("data-dir"))
	if err != nil {
		return nil
	}
	if cl := socketClient(c.Context, dir); cl != nil {
		return &conn{Client: cl, local: true}
	}
	return nil
}

// dialRun connects and reads the run named by id (an id or a unique
// prefix); the caller closes the conn.
func dialRun(c *cli.Context, id string) (*conn, api.RunSummary, error) {
	k, err := dial(c)
	if err != nil {
		return nil, api.RunSummary{}, err
	}
	r, err := k.RunSummary(c.Context, id)
	if err != nil {
		k.close()
		return nil, r, clientErr(err)
	}
	return k, r, nil
}
