package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// disk is the local-directory backend: objects under dir/sha256/<first two
// hex>/<hex>, written to a temp file under dir/tmp (same filesystem),
// fsynced and renamed into place; a new shard directory is fsynced into its
// parent.
type disk struct {
	dir string
	// syncDir fsyncs a directory (syncDir; tests see which ones).
	syncDir func(dir string) error
}

var (
	_ Backend = (*disk)(nil)
	_ Toucher = (*disk)(nil)
)

func (d *disk) String() string { return d.dir }

func (d *disk) path(hex string) string {
	return filepath.Join(d.dir, "sha256", hex[:2], hex)
}

func (d *disk) Create(ctx context.Context) (Writer, error) {
	f, err := os.CreateTemp(filepath.Join(d.dir, "tmp"), "put-*")
	if err != nil {
		return nil, err
	}
	return &diskWriter{d: d, f: f}, nil
}

type diskWriter struct {
	d *disk
	f *os.File // nil once committed or aborted
}

func (w *diskWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (w *diskWriter) Abort() {
	if w.f != nil {
		w.f.Close()
		os.Remove(w.f.Name())
		w.f = nil
	}
}

func (w *diskWriter) Commit(ctx context.Context, hex string) error {
	defer w.Abort()
	if err := w.f.Sync(); err != nil {
		return err
	}
	if err := w.f.Close(); err != nil {
		return err
	}
	final := w.d.path(hex)
	shard := filepath.Dir(final)
	if err := w.d.mkdirSynced(shard); err != nil {
		return err
	}
	if err := os.Rename(w.f.Name(), final); err != nil {
		return err
	}
	w.f = nil
	return w.d.syncDir(shard)
}

func (d *disk) Open(ctx context.Context, hex string) (io.ReadCloser, error) {
	f, err := os.Open(d.path(hex))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

func (d *disk) Stat(ctx context.Context, hex string) (Info, error) {
	fi, err := os.Stat(d.path(hex))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, ErrNotFound
	}
	if err != nil {
		return Info{}, err
	}
	return Info{Digest: digestPrefix + hex, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Touch sets the object's modification time to now.
func (d *disk) Touch(ctx context.Context, hex string) error {
	now := time.Now()
	return os.Chtimes(d.path(hex), now, now)
}

func (d *disk) Delete(ctx context.Context, hex string) error {
	err := os.Remove(d.path(hex))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// List walks dir/sha256; files whose names are not digests in the right
// shard (left there by hand) are skipped.
func (d *disk) List(ctx context.Context, fn func(Info) error) error {
	root := filepath.Join(d.dir, "sha256")
	return filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.IsDir() || !e.Type().IsRegular() {
			return nil
		}
		hex := e.Name()
		if _, err := parseDigest(digestPrefix + hex); err != nil ||
			!strings.HasSuffix(filepath.Dir(p), string(filepath.Separator)+hex[:2]) {
			return nil
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return err
		}
		return fn(Info{Digest: digestPrefix + hex, Size: fi.Size(), ModTime: fi.ModTime()})
	})
}

// mkdirSynced creates dir (and missing parents) if missing, fsyncing the
// parent of each new directory so that its entry survives a crash (the
// blob renamed into dir would otherwise be lost with it).
func (d *disk) mkdirSynced(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrNotExist) { // the parent is gone too
		if err := d.mkdirSynced(filepath.Dir(dir)); err != nil {
			return err
		}
		err = os.Mkdir(dir, 0o755)
	}
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return d.syncDir(filepath.Dir(dir))
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
