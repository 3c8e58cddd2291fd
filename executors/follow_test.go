package executors

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestFollowFile_TailsUntilExitThenDrains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "output.log")
	exited := make(chan struct{})
	r := FollowFile(context.Background(), path, nil, exited) // the file does not exist yet
	defer r.Close()
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r)
		got <- string(b)
	}()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("one\n")
	f.WriteString("two\n")
	f.Close()
	close(exited)
	if s := <-got; s != "one\ntwo\n" {
		t.Errorf("followed %q", s)
	}
}

func TestFollowFile_CloseAndContextEndIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "output.log")
	ctx, cancel := context.WithCancel(context.Background())
	r := FollowFile(ctx, path, nil, make(chan struct{}))
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(r); done <- err }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("read after ctx end: %v", err)
	}
	r.Close()
}
