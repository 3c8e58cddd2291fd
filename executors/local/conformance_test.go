package local_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/executortest"
	"github.com/skiffml/skiff/executors/local"
	"github.com/skiffml/skiff/store/blob"
)

func TestConformance(t *testing.T) {
	executortest.Run(t, executortest.Harness{
		New: func(t testing.TB, dir string) (executors.Executor, *blob.Store) {
			blobs, err := blob.Open(filepath.Join(dir, "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			cfg := local.DefaultConfig(filepath.Join(dir, "work"), blobs)
			cfg.GPUs = []string{}
			cfg.GracePeriod = time.Second
			x, err := local.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return x, blobs
		},
		Shell: "/bin/sh",
	})
}
