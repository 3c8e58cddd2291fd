package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/ui"
)

func uiCommand() *cli.Command {
	return &cli.Command{
		Name:  "ui",
		Usage: "serve the web UI over the local data dir",
		Description: `Serves the web UI (runs, the live DAG, logs, artifacts, experiments,
comparison) and the API over the embedded node in --data-dir, on a loopback
address without login, and prints its URL. It holds the data dir while it
runs: its engine carries out cancels and retries made in the UI; a 'skiff
run' started meanwhile waits for it (see docs/ui.md).

Examples:
  skiff ui
  skiff ui --listen 127.0.0.1:9000 --data-dir ./.skiff`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", Usage: "loopback `ADDR` to listen on"},
		},
		Action: uiAction,
	}
}

func uiAction(c *cli.Context) error {
	addr := c.String("listen")
	if err := checkListen(addr, true); err != nil {
		return err
	}
	events := api.NewEvents()
	n, err := openNode(c, nodeOptions{onUpdate: events.Publish})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("data dir is in use by another skiff process; stop it, or use 'skiff server' for a UI beside running work: %w", err)
	}
	if err != nil {
		return err
	}
	defer n.close()
	apiSrv, err := api.New(api.Config{Store: n.store, Engine: n.engine, Blobs: n.blobs, NoAuth: true, Logger: n.log, Version: serverVersion}, events)
	if err != nil {
		return err
	}
	apiSrv.SetReady(true)
	ucfg := ui.DefaultConfig(n.store, n.blobs, apiSrv)
	ucfg.Logger = n.log
	u, err := ui.New(ucfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return usageError("--listen %q: %v", addr, err)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	engCtx, stopEngine := context.WithCancel(context.Background())
	defer stopEngine()
	wait := n.start(engCtx)
	hs := &http.Server{Handler: ui.Mount(apiSrv, u), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(os.Stderr, "skiff ui: http://%s/ (data dir %s; Ctrl-C stops)\n", ln.Addr(), n.dir)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = hs.Shutdown(sctx)
		cancel()
		_ = hs.Close()
		err = nil
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	stopEngine()
	if werr := wait(); werr != nil && err == nil && !errors.Is(werr, context.Canceled) {
		err = werr
	}
	return err
}
