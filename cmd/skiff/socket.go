package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/store"
)

// socketName is the local socket in the data dir through which the skiff
// process holding the data dir answers the others (runs list, runs get,
// logs) while it runs. The socket file is the owner's only (0600): the API
// behind it needs no token.
const socketName = "skiff.sock"

// socketHost is the Host the clients of the socket send.
const socketHost = "skiff"

// serveSocket serves the API on the data dir's socket until the node
// closes. A failure only costs the other processes their view.
func (n *node) serveSocket() {
	path := filepath.Join(n.dir, socketName)
	_ = os.Remove(path) // left by a process that died; we hold the lock
	srv, err := api.New(api.Config{Store: n.store, Engine: n.engine, Blobs: n.blobs, NoAuth: true, AllowedHosts: []string{socketHost}, Logger: n.log}, nil)
	if err != nil {
		n.log.Warn("local socket: api", "err", err)
		return
	}
	srv.SetReady(true)
	ln, err := net.Listen("unix", path)
	if err != nil {
		n.log.Warn("local socket: listen", "err", err)
		return
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	n.closers = append(n.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		_ = os.Remove(path)
	})
}

// busyNodeClient returns a client for the skiff process that holds the
// data dir, when openNode failed because one does and it answers on the
// data dir's socket; else nil.
func busyNodeClient(c *cli.Context, openErr error) *api.Client {
	if !errors.Is(openErr, store.ErrLocked) {
		return nil
	}
	dir, err := filepath.Abs(c.String("data-dir"))
	if err != nil {
		return nil
	}
	path := filepath.Join(dir, socketName)
	cl := api.NewClient("http://"+socketHost, "")
	cl.HTTP = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
	ctx, cancel := context.WithTimeout(c.Context, 2*time.Second)
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

// openForRead opens the data dir for a read-only command. When another
// skiff process holds it, it asks that process through the data dir's
// socket (returning a client), and only when none answers waits a moment
// for the lock.
func openForRead(c *cli.Context) (*node, *api.Client, error) {
	n, err := openNode(c, nodeOptions{})
	if err == nil {
		return n, nil, nil
	}
	if cl := busyNodeClient(c, err); cl != nil {
		return nil, cl, nil
	}
	if !errors.Is(err, store.ErrLocked) {
		return nil, nil, err
	}
	n, err = openNode(c, nodeOptions{wait: 2 * time.Second})
	return n, nil, err
}
