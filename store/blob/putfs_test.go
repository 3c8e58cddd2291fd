package blob

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestStore_PutFSMatchesPutPath(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"out/d/a": "a", "out/d/sub/b": "bb", "out/f": "file", "out/empty": ""})
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, name := range []string{"out/d", "out/f", "out/empty"} {
		want, err := s.PutPath(ctx, filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.PutFS(ctx, root.FS(), name)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("PutFS(%s) = %+v, %v; PutPath gives %+v", name, got, err, want)
		}
	}
}

func TestStore_PutFSNeverLeavesTheRoot(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret": "host secret"})
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"out/d/a": "a"})
	for link, target := range map[string]string{
		"out/abs":      filepath.Join(outside, "secret"),
		"out/rel":      "../../" + filepath.Base(outside) + "/secret",
		"out/d/link":   outside,
		"out/hostdir":  outside,
		"linkedparent": outside,
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, name := range []string{"out/abs", "out/rel", "out/d", "out/hostdir", "linkedparent/secret"} {
		if ref, err := s.PutFS(ctx, root.FS(), name); err == nil {
			t.Errorf("PutFS(%s) = %+v; want an error", name, ref)
		}
	}
	if _, err := s.PutFS(ctx, root.FS(), "out/d/link"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("PutFS of a symlink itself: %v, want ErrUnsupported", err)
	}
}
