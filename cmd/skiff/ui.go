package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
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
address without login, and prints its URL. When no other skiff process
serves the data dir, it holds it: its engine carries out cancels and
retries made in the UI, and a 'skiff run' started meanwhile submits its run
to it. When one does (a skiff run, or a skiff server, in progress), it
shows that process's data dir through the data dir's socket. Either way
'skiff run' on the data dir prints the run's page in the UI first (see
docs/ui.md).

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
	dir, err := filepath.Abs(c.String("data-dir"))
	if err != nil {
		return err
	}
	var h http.Handler
	var wait func() error
	stopEngine := func() {}
	n, err := openNode(c, nodeOptions{})
	switch {
	case errors.Is(err, store.ErrLocked):
		if h = socketProxy(c.Context, dir); h == nil {
			return fmt.Errorf("data dir is in use by a skiff process that does not serve it; stop it, or use 'skiff server' for a UI beside running work: %w", err)
		}
	case err != nil:
		return err
	default:
		defer n.close()
		apiSrv, err := api.New(api.Config{Store: n.store, Engine: n.engine, Blobs: n.blobs, NoAuth: true, Logger: n.log, Version: serverVersion}, n.events)
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
		h = ui.Mount(apiSrv, u)
		var engCtx context.Context
		engCtx, stopEngine = context.WithCancel(context.Background())
		wait = n.start(engCtx)
	}
	defer stopEngine()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return usageError("--listen %q: %v", addr, err)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	base := "http://" + ln.Addr().String() + "/"
	how := "serving it"
	if n == nil {
		how = "shown through the skiff process serving it"
	}
	fmt.Fprintf(os.Stderr, "skiff ui: %s (data dir %s, %s; Ctrl-C stops)\n", base, dir, how)
	if err := writeUIURL(dir, base); err != nil {
		fmt.Fprintf(os.Stderr, "skiff ui: warning: 'skiff run' will not print the UI's address: %v\n", err)
	}
	defer removeUIURL(dir, base)
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
	if wait != nil {
		if werr := wait(); werr != nil && err == nil && !errors.Is(werr, context.Canceled) {
			err = werr
		}
	}
	return err
}

// socketProxy forwards HTTP to the skiff process serving the data dir in
// dir (which serves the UI beside the API on its socket), or is nil when
// none answers. The Host and Origin headers pass unchanged, so the far
// side's same-origin checks judge the browser's request.
func socketProxy(ctx context.Context, dir string) http.Handler {
	cl := socketClient(ctx, dir)
	if cl == nil {
		return nil
	}
	target := &url.URL{Scheme: "http", Host: socketHost}
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		Transport:     cl.HTTP.Transport,
		FlushInterval: -1, // event streams and followed logs flow
	}
}

// uiURLFile, in the data dir, holds the address of the 'skiff ui' showing
// it, for 'skiff run' to print.
const uiURLFile = "ui.url"

func writeUIURL(dir, base string) error {
	tmp, err := os.CreateTemp(dir, ".ui.url-*")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(base + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, uiURLFile))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// removeUIURL removes the file if it still names base (another skiff ui
// may have started since).
func removeUIURL(dir, base string) {
	p := filepath.Join(dir, uiURLFile)
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == base {
		os.Remove(p)
	}
}

// runPageURL is the UI's page of run id when a 'skiff ui' shows the data
// dir in dir (it answers), else "".
func runPageURL(ctx context.Context, dir, id string) string {
	b, err := os.ReadFile(filepath.Join(dir, uiURLFile))
	if err != nil {
		return ""
	}
	base := strings.TrimSpace(string(b))
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/healthz", nil)
	if err != nil {
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return strings.TrimSuffix(base, "/") + "/runs/" + id
}
