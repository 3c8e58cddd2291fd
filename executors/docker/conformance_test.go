package docker_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/docker"
	"github.com/skiffml/skiff/executors/docker/dockertest"
	"github.com/skiffml/skiff/executors/executortest"
	"github.com/skiffml/skiff/store/blob"
)

// newExecutor is a docker executor over dir with the test image.
func newExecutor(t testing.TB, dir string, mod func(*docker.Config)) (*docker.Executor, *blob.Store) {
	t.Helper()
	cli := dockertest.Client(t)
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := docker.DefaultConfig(filepath.Join(dir, "work"), blobs)
	cfg.Client = cli
	cfg.Logger = nil
	cfg.GracePeriod = time.Second
	cfg.PullPolicy = docker.PullNever
	cfg.ShmSizeBytes = -1
	if mod != nil {
		mod(&cfg)
	}
	x, err := docker.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeContainers(t, x) })
	return x, blobs
}

// removeContainers removes what a test left in the engine.
func removeContainers(t testing.TB, x *docker.Executor) {
	ids, _ := x.Running(context.Background())
	for _, id := range ids {
		_ = x.Cancel(context.Background(), id)
		_ = x.KillLeftover(id)
	}
}

func TestConformance(t *testing.T) {
	executortest.Run(t, executortest.Harness{
		New: func(t testing.TB, dir string) (executors.Executor, *blob.Store) {
			return newExecutor(t, dir, nil)
		},
		Detach:      func(x executors.Executor) { x.(*docker.Executor).Detach() },
		Image:       dockertest.Image,
		Shell:       "/bin/sh",
		Concurrency: 6,
		Deadline:    90 * time.Second,
	})
}
