package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/cluster"
	"github.com/skiffml/skiff/ui"
)

// socketName is the local socket in the data dir through which the skiff
// process serving the data dir (skiff run, ui, server) answers the others:
// their lists, logs and cancels, and the runs they submit. The socket file
// is the owner's only (0600): the API behind it needs no token, and it may
// read the pipeline dirs its clients name (they are this host's user).
const socketName = "skiff.sock"

// socketHost is the Host the clients of the socket send.
const socketHost = "skiff"

// socketLinger is how long the serving process keeps answering after the
// last run submitted to it ended, so that its submitter reads the end.
const socketLinger = time.Second

// serveSocket serves the API on the data dir's socket until the node
// closes or unserve is called. A failure only costs the other processes
// their view. The runs unfinished now are not this process's to finish
// (see waitServed).
func (n *node) serveSocket() {
	if un, err := n.store.UnfinishedRuns(); err == nil {
		n.leftover = map[string]bool{}
		for _, r := range un {
			n.leftover[r.ID] = true
		}
	}
	srv, err := localAPI(n, n.events)
	if err != nil {
		n.log.Warn("local socket: api", "err", err)
		return
	}
	n.serveSocketWith(withUI(n, srv))
}

// withUI serves the web UI beside the API, so that 'skiff ui' can show a
// data dir another skiff process serves (it forwards to the socket).
func withUI(n *node, srv *api.Server) http.Handler {
	ucfg := ui.DefaultConfig(n.store, n.blobs, srv)
	ucfg.Logger = n.log
	web, err := ui.New(ucfg)
	if err != nil {
		n.log.Warn("local socket: ui", "err", err)
		return srv
	}
	return ui.Mount(srv, web)
}

// serveSocketWith serves h on the data dir's socket until the node closes
// or unserve is called (skiff server serves its own API there).
func (n *node) serveSocketWith(srv http.Handler) {
	path := filepath.Join(n.dir, socketName)
	_ = os.Remove(path) // left by a process that died; we hold the lock
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
	done := false
	n.unserve = func() {
		if done {
			return
		}
		done = true
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		_ = os.Remove(path)
	}
	n.closers = append(n.closers, n.unserve)
}

// waitServed waits (with the engine running) for the runs other skiff
// processes submitted through the socket, serving them meanwhile, then
// stops serving it, so that the process serving the data dir leaves no
// run it took unfinished. A run submitted as it stops is finished too (its
// submitter waits for the data dir meanwhile). The run skip is not waited
// for.
func (n *node) waitServed(ctx context.Context, skip string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	told := map[string]bool{}
	for {
		un, err := n.store.UnfinishedRuns()
		if err != nil {
			return err
		}
		var ids []string
		for _, r := range un {
			if r.ID != skip && !n.leftover[r.ID] {
				ids = append(ids, r.ID)
			}
		}
		if len(ids) == 0 {
			if n.unserve == nil {
				return nil
			}
			if len(told) > 0 { // let their submitters see them end
				select {
				case <-ctx.Done():
				case <-time.After(socketLinger):
				}
			}
			n.unserve()
			n.unserve = nil
			continue // one more look: a run may have come as it stopped
		}
		var news []string
		for _, id := range ids {
			if !told[id] {
				told[id] = true
				news = append(news, id)
			}
		}
		if len(news) > 0 {
			notice("skiff: finishing %d run(s) other skiff processes submitted to this one: %s (Ctrl-C leaves them to the skiff runs following them, or to 'skiff runs resume')\n", len(news), strings.Join(news, ", "))
		}
		for _, id := range ids {
			if _, err := n.engine.Wait(ctx, id); err != nil {
				if ctx.Err() != nil {
					notice("\nskiff: leaving %s unfinished: a skiff run following one carries it on, else 'skiff runs resume' does\n", strings.Join(ids, ", "))
					return nil
				}
				return err
			}
		}
	}
}

// serveServerSocket serves a skiff server's API on its data dir's socket,
// as a workstation's skiff run does, so that skiff commands given the data
// dir (not --server) reach the server: no token (the socket is the
// owner's only), the server's executor policy, its engine and cluster.
func serveServerSocket(n *node, eng api.Engine, member *cluster.Node, defaultExecutor string, events *api.Events) (*api.Server, error) {
	srv, err := api.New(api.Config{Store: n.store, Engine: eng, Blobs: n.blobs, Cluster: member,
		DefaultExecutor: defaultExecutor, DisabledExecutors: []string{"local"},
		NoAuth: true, AllowedHosts: []string{socketHost}, LocalClients: true, Logger: n.log, Version: serverVersion}, events)
	if err != nil {
		return nil, err
	}
	n.serveSocketWith(withUI(n, srv))
	return srv, nil
}
