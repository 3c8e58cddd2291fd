package docker_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/client"

	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/docker"
	"github.com/skiffml/skiff/store/blob"
)

// TestLogs_ContainerBeingRemovedIsGone: Logs of an execution that ended
// (its log already in the blob store, its work dir gone) while Docker is
// removing its container is ErrUnknownExecution, as for a container not
// found: Docker answers such a logs request with 409 "can not get logs
// from container which is dead or marked for removal". An engine stand-in
// answers here; the conformance suite hit this race on a loaded machine.
func TestLogs_ContainerBeingRemovedIsGone(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.45")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/containers/skiff-gone-1/logs"):
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"message":"can not get logs from container which is dead or marked for removal"}`))
		default:
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"message":"unexpected request ` + r.URL.Path + `"}`))
		}
	}))
	defer srv.Close()
	cli, err := client.NewClientWithOpts(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithVersion("1.45"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := docker.DefaultConfig(filepath.Join(dir, "work"), blobs)
	cfg.Client = cli
	x, err := docker.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = x.Logs(context.Background(), "gone-1", false)
	if !errors.Is(err, executors.ErrUnknownExecution) {
		t.Fatalf("Logs = %v; want ErrUnknownExecution", err)
	}
	// Any other failure of the engine is still an error of its own.
	_, err = x.Logs(context.Background(), "other-1", false)
	if err == nil || errors.Is(err, executors.ErrUnknownExecution) {
		t.Fatalf("Logs of a failing engine = %v; want its error", err)
	}
}
