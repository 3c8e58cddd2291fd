package blob

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
)

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readAll(t testing.TB, s *Store, digest string) ([]byte, error) {
	t.Helper()
	rc, err := s.Open(context.Background(), digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStore_PutOpenRoundTrip(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"small", []byte("hello\n")},
		{"large", bytes.Repeat([]byte("0123456789abcdef"), 200_000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := s.Put(ctx, bytes.NewReader(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(tc.data)
			if want := "sha256:" + hex.EncodeToString(sum[:]); ref.Digest != want || ref.Size != int64(len(tc.data)) || ref.Dir {
				t.Fatalf("ref = %+v, want digest %s size %d", ref, want, len(tc.data))
			}
			if !s.Has(ref.Digest) {
				t.Fatal("Has = false after Put")
			}
			got, err := readAll(t, s, ref.Digest)
			if err != nil || !bytes.Equal(got, tc.data) {
				t.Fatalf("read back %d bytes, err %v", len(got), err)
			}
			// Idempotent.
			ref2, err := s.Put(ctx, bytes.NewReader(tc.data))
			if err != nil || !reflect.DeepEqual(ref2, ref) {
				t.Fatalf("second put = %+v, %v", ref2, err)
			}
			// Materialize a file.
			dst := filepath.Join(t.TempDir(), "sub", "out")
			if err := s.Materialize(ctx, ref, dst); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(dst); !bytes.Equal(b, tc.data) {
				t.Fatal("materialized file differs")
			}
		})
	}
	// Compressed on disk: the large blob takes far less than 3.2 MB.
	var total int64
	filepath.WalkDir(filepath.Join(s.Dir(), "sha256"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fi, _ := d.Info()
			total += fi.Size()
		}
		return nil
	})
	if total > 1<<20 {
		t.Fatalf("blobs take %d bytes on disk; not compressed?", total)
	}
	if tmp, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(tmp) != 0 {
		t.Fatalf("temp files left: %v", tmp)
	}
}

func TestStore_OpenMissingAndInvalid(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	_, err := s.Open(context.Background(), "sha256:"+strings.Repeat("0", 64))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: err = %v, want ErrNotFound", err)
	}
	for _, d := range []string{"", "sha256:", "md5:abc", "sha256:" + strings.Repeat("G", 64), "sha256:../../etc/passwd"} {
		if _, err := s.Open(context.Background(), d); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("Open(%q) err = %v, want ErrInvalidDigest", d, err)
		}
		if s.Has(d) {
			t.Errorf("Has(%q) = true", d)
		}
	}
}

func TestStore_CorruptBlobDetected(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	good, err := s.Put(ctx, strings.NewReader("the right content"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Put(ctx, strings.NewReader("other content!!!!"))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := parseDigest(good.Digest)
	oh, _ := parseDigest(other.Digest)
	path := s.disk.path(h)

	t.Run("swapped content", func(t *testing.T) {
		b, err := os.ReadFile(s.disk.path(oh))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readAll(t, s, good.Digest); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
		if err := s.Materialize(ctx, good, filepath.Join(t.TempDir(), "x")); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("materialize err = %v, want ErrCorrupt", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		if err := os.WriteFile(path, []byte("not zstd at all"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := readAll(t, s, good.Digest); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v, want ErrCorrupt", err)
		}
	})
}

func TestStore_ConcurrentPutSameContent(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	data := make([]byte, 256<<10)
	rand.Read(data)
	const n = 8
	refs := make([]spec.ArtifactRef, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { refs[i], errs[i] = s.Put(context.Background(), bytes.NewReader(data)) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !reflect.DeepEqual(refs[i], refs[0]) {
			t.Fatalf("put %d: %+v, %v (want %+v)", i, refs[i], errs[i], refs[0])
		}
	}
	got, err := readAll(t, s, refs[0].Digest)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: %v", err)
	}
	if tmp, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(tmp) != 0 {
		t.Fatalf("temp files left: %v", tmp)
	}
}

func TestStore_DirRoundTripAndDeterminism(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	files := map[string]string{
		"a.txt":          "alpha",
		"sub/b.bin":      "beta",
		"sub/deep/c":     "gamma",
		"empty/":         "",
		"z/last":         "",
		"sub/deep/zz.md": "# md",
	}
	t1, t2 := t.TempDir(), t.TempDir()
	writeTree(t, t1, files)
	writeTree(t, t2, files)
	// Different mtimes and permission bits beyond the exec bit must not matter.
	os.Chmod(filepath.Join(t2, "a.txt"), 0o600)
	os.Chtimes(filepath.Join(t2, "sub/b.bin"), epoch.AddDate(5, 0, 0), epoch.AddDate(5, 0, 0))
	os.Chmod(filepath.Join(t1, "sub/deep/c"), 0o755)
	os.Chmod(filepath.Join(t2, "sub/deep/c"), 0o700)

	r1, err := s.PutPath(ctx, t1)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.PutPath(ctx, t2)
	if err != nil {
		t.Fatal(err)
	}
	if !r1.Dir || !reflect.DeepEqual(r1, r2) {
		t.Fatalf("refs differ for the same tree: %+v vs %+v", r1, r2)
	}
	os.WriteFile(filepath.Join(t2, "a.txt"), []byte("alphA"), 0o644)
	if r3, _ := s.PutPath(ctx, t2); r3.Digest == r1.Digest {
		t.Fatal("a changed file kept the digest")
	}

	dst := filepath.Join(t.TempDir(), "out")
	if err := s.Materialize(ctx, r1, dst); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dst, filepath.FromSlash(name))
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.HasSuffix(name, "/") {
			if !fi.IsDir() {
				t.Fatalf("%s is not a dir", name)
			}
			continue
		}
		if b, _ := os.ReadFile(p); string(b) != content {
			t.Fatalf("%s = %q, want %q", name, b, content)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dst, "sub/deep/c")); fi.Mode().Perm()&0o100 == 0 {
		t.Fatal("exec bit lost")
	}
	// Re-putting the materialised tree gives the same digest.
	if r4, err := s.PutPath(ctx, dst); err != nil || !reflect.DeepEqual(r4, r1) {
		t.Fatalf("re-put = %+v, %v", r4, err)
	}
}

func TestStore_PutPathRefusesSymlinks(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"f": "x"})
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutPath(context.Background(), dir); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("dir with symlink: err = %v, want ErrUnsupported", err)
	}
	if _, err := s.PutPath(context.Background(), filepath.Join(dir, "link")); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("symlink itself: err = %v, want ErrUnsupported", err)
	}
	if _, err := s.PutPath(context.Background(), filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: err = %v, want ErrNotExist", err)
	}
}

// tarOf builds a tar stream from headers (file bodies are "x" repeated Size).
func tarOf(t testing.TB, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func TestStore_MaterializeRefusesEscapes(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := context.Background()
	reg := func(name string) *tar.Header {
		return &tar.Header{Name: name, Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}
	}
	for _, tc := range []struct {
		name string
		hdrs []*tar.Header
	}{
		{"dotdot", []*tar.Header{reg("../evil")}},
		{"nested dotdot", []*tar.Header{reg("a/../../evil")}},
		{"absolute", []*tar.Header{reg("/tmp/evil")}},
		{"symlink", []*tar.Header{{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}}},
		{"hardlink", []*tar.Header{{Name: "l", Typeflag: tar.TypeLink, Linkname: "../x"}}},
		{"device", []*tar.Header{{Name: "d", Typeflag: tar.TypeChar}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := s.Put(ctx, bytes.NewReader(tarOf(t, tc.hdrs...)))
			if err != nil {
				t.Fatal(err)
			}
			ref.Dir = true
			base := t.TempDir()
			dst := filepath.Join(base, "a", "dst")
			if err := s.Materialize(ctx, ref, dst); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("err = %v, want ErrUnsupported", err)
			}
			assertOnlyUnder(t, base, dst)
		})
	}
}

// assertOnlyUnder fails when base holds anything outside dst (and dst's
// parents).
func assertOnlyUnder(t testing.TB, base, dst string) {
	t.Helper()
	filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == base {
			return nil
		}
		rel, _ := filepath.Rel(dst, p)
		inside := filepath.IsLocal(rel) || rel == "."
		parent := strings.HasPrefix(dst, p+string(filepath.Separator))
		if !inside && !parent {
			t.Errorf("entry escaped the destination: %s", p)
		}
		return nil
	})
}

func TestStore_ContextCanceled(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestPutPath_EmptyFileNeedsNoWrite(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ref, err := s.PutPath(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(nil)
	if ref.Digest != "sha256:"+hex.EncodeToString(want[:]) || ref.Size != 0 {
		t.Fatalf("ref = %+v", ref)
	}
	rc, err := s.Open(context.Background(), ref.Digest)
	if err != nil {
		t.Fatalf("open the empty blob: %v", err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v", b, err)
	}
}

func TestStore_ListStatDelete(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Put(ctx, strings.NewReader("alpha"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Put(ctx, strings.NewReader(strings.Repeat("beta", 1000)))
	if err != nil {
		t.Fatal(err)
	}
	// A stray file in the tree is not a blob.
	if err := os.WriteFile(filepath.Join(s.Dir(), "sha256", "stray"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	list := func() map[string]Info {
		got := map[string]Info{}
		if err := s.List(ctx, func(i Info) error { got[i.Digest] = i; return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := list()
	if len(got) != 3 || got[a.Digest].Size <= 0 || got[b.Digest].ModTime.IsZero() || got[EmptyDigest].Digest == "" {
		t.Fatalf("List = %v, want alpha, beta and the empty blob", got)
	}
	if info, err := s.Stat(ctx, b.Digest); err != nil || info != got[b.Digest] {
		t.Fatalf("Stat = %v, %v; List said %v", info, err, got[b.Digest])
	}
	if err := s.Delete(ctx, a.Digest); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, a.Digest); err != nil {
		t.Fatalf("deleting a missing blob: %v", err)
	}
	if err := s.Delete(ctx, EmptyDigest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, a.Digest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stat of a deleted blob = %v, want ErrNotFound", err)
	}
	if _, err := s.Open(ctx, a.Digest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of a deleted blob = %v, want ErrNotFound", err)
	}
	if got := list(); len(got) != 2 || got[EmptyDigest].Digest == "" {
		t.Fatalf("after Delete: List = %v, want beta and the (never deleted) empty blob", got)
	}
	if err := s.Delete(ctx, "sha256:nothex"); !errors.Is(err, ErrInvalidDigest) {
		t.Fatalf("Delete of a bad digest = %v, want ErrInvalidDigest", err)
	}
}

// TestStore_PutOfStoredBytesTouchesThem: storing bytes already there makes
// the blob look new, so a gc running meanwhile (which spares recent blobs)
// cannot delete it before the new reference to it is committed.
func TestStore_PutOfStoredBytesTouchesThem(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := s.Put(ctx, strings.NewReader("same bytes"))
	if err != nil {
		t.Fatal(err)
	}
	h, _ := parseDigest(ref.Digest)
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(s.disk.path(h), old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, strings.NewReader("same bytes")); err != nil {
		t.Fatal(err)
	}
	info, err := s.Stat(ctx, ref.Digest)
	if err != nil || info.ModTime.Before(time.Now().Add(-time.Hour)) {
		t.Fatalf("after a second Put: %+v, %v; want a fresh modification time", info, err)
	}
}
