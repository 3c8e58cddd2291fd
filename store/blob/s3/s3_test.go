package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/minio/minio-go/v7"

	"github.com/skiffml/skiff/store/blob"
	"github.com/skiffml/skiff/store/blob/s3"
	"github.com/skiffml/skiff/store/blob/s3/s3test"
)

// open returns a blob store over a fresh bucket of the test server.
func open(t *testing.T, prefix string) (*blob.Store, s3.Config) {
	t.Helper()
	cfg := s3test.Config(t, prefix)
	cfg.PartSize = 5 << 20 // S3's smallest, so a few MiB already go multipart
	b, err := s3.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := blob.OpenConfig(blob.Config{Dir: t.TempDir(), Backend: b, MaxEntrySize: blob.DefaultMaxEntrySize})
	if err != nil {
		t.Fatal(err)
	}
	return st, cfg
}

func readAll(t *testing.T, st *blob.Store, digest string) ([]byte, error) {
	t.Helper()
	rc, err := st.Open(context.Background(), digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestS3_PutOpenMultipart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, cfg := open(t, "runs/")
	big := make([]byte, 12<<20) // incompressible: three 5 MiB parts
	rand.Read(big)
	for _, data := range [][]byte{[]byte("hello"), big} {
		ref, err := st.Put(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(t, st, ref.Digest)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes (err %v), want the %d put", len(got), err, len(data))
		}
		// The object is where the design says: PREFIX/sha256/<hex>.
		key := "runs/sha256/" + strings.TrimPrefix(ref.Digest, "sha256:")
		oi, err := s3test.Client(t, cfg).StatObject(ctx, cfg.Bucket, key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatalf("object %s: %v", key, err)
		}
		if info, err := st.Stat(ctx, ref.Digest); err != nil || info.Size != oi.Size {
			t.Fatalf("Stat = %+v, %v; the server holds %d bytes", info, err, oi.Size)
		}
		if len(data) == len(big) && !strings.Contains(oi.ETag, "-") {
			t.Errorf("ETag %q: a %d-byte blob was not uploaded in parts", oi.ETag, len(data))
		}
	}
	// Temp files of the uploads are gone.
	if left, _ := os.ReadDir(cfg.TempDir); len(left) != 0 {
		t.Fatalf("temp dir keeps %d files", len(left))
	}
}

func TestS3_CorruptObjectIsAnErrorOnRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, cfg := open(t, "")
	ref, err := st.Put(ctx, strings.NewReader("the real bytes"))
	if err != nil {
		t.Fatal(err)
	}
	key := "sha256/" + strings.TrimPrefix(ref.Digest, "sha256:")
	c := s3test.Client(t, cfg)
	put := func(b []byte) {
		t.Helper()
		if _, err := c.PutObject(ctx, cfg.Bucket, key, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	other, _ := zstd.NewWriter(nil)
	for name, b := range map[string][]byte{
		"other content": other.EncodeAll([]byte("other bytes, well compressed"), nil),
		"not zstd":      []byte("bit rot"),
	} {
		put(b)
		if got, err := readAll(t, st, ref.Digest); !errors.Is(err, blob.ErrCorrupt) {
			t.Fatalf("%s: read = %q, %v; want ErrCorrupt", name, got, err)
		}
		if err := st.Verify(ctx, ref.Digest); !errors.Is(err, blob.ErrCorrupt) {
			t.Fatalf("%s: Verify = %v, want ErrCorrupt", name, err)
		}
		if err := st.Materialize(ctx, ref, filepath.Join(t.TempDir(), "x")); !errors.Is(err, blob.ErrCorrupt) {
			t.Fatalf("%s: Materialize = %v, want ErrCorrupt", name, err)
		}
		// Putting the real bytes again replaces the damaged object (its
		// size differs from theirs).
		if _, err := st.Put(ctx, strings.NewReader("the real bytes")); err != nil {
			t.Fatal(err)
		}
		if got, err := readAll(t, st, ref.Digest); err != nil || string(got) != "the real bytes" {
			t.Fatalf("%s: after a new Put: %q, %v", name, got, err)
		}
	}
}

func TestS3_MissingListDeleteAndPrefixes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, cfg := open(t, "a/")
	b, err := s3.New(ctx, func() s3.Config { c := cfg; c.Prefix = "b/"; return c }())
	if err != nil {
		t.Fatal(err)
	}
	sb, err := blob.OpenConfig(blob.Config{Dir: t.TempDir(), Backend: b, MaxEntrySize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	missing := "sha256:" + strings.Repeat("0", 64)
	if _, err := a.Open(ctx, missing); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Open of a missing blob = %v, want ErrNotFound", err)
	}
	if _, err := a.Stat(ctx, missing); !errors.Is(err, blob.ErrNotFound) || a.Has(missing) {
		t.Fatalf("Stat of a missing blob = %v, want ErrNotFound", err)
	}
	ra, _ := a.Put(ctx, strings.NewReader("in a"))
	rb, _ := sb.Put(ctx, strings.NewReader("in b"))
	list := func(st *blob.Store) map[string]bool {
		got := map[string]bool{}
		if err := st.List(ctx, func(i blob.Info) error { got[i.Digest] = true; return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	// Each prefix sees its own blobs (and its empty blob) only.
	if la, lb := list(a), list(sb); len(la) != 2 || !la[ra.Digest] || len(lb) != 2 || !lb[rb.Digest] {
		t.Fatalf("List: a %v, b %v", la, lb)
	}
	if err := a.Delete(ctx, ra.Digest); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, ra.Digest); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if a.Has(ra.Digest) || !sb.Has(rb.Digest) {
		t.Fatal("Delete removed the wrong blob")
	}
	stop := errors.New("stop")
	if err := sb.List(ctx, func(blob.Info) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("List returns %v, want fn's error", err)
	}
}

func TestS3_DirectoryArtifact(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := open(t, "")
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "sub", "f.txt"), []byte("inside"), 0o644)
	ref, err := st.PutPath(ctx, src)
	if err != nil || !ref.Dir {
		t.Fatalf("PutPath = %+v, %v", ref, err)
	}
	dst := filepath.Join(t.TempDir(), "out")
	if err := st.Materialize(ctx, ref, dst); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "sub", "f.txt")); err != nil || string(b) != "inside" {
		t.Fatalf("materialized: %q, %v", b, err)
	}
}

func TestS3_NewRefusesMissingBucketAndBadKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := s3test.Config(t, "")
	missing := cfg
	missing.Bucket = cfg.Bucket + "-none"
	if _, err := s3.New(ctx, missing); err == nil || !strings.Contains(err.Error(), missing.Bucket) {
		t.Fatalf("New with a missing bucket = %v, want an error naming it", err)
	}
	bad := cfg
	bad.SecretAccessKey = "wrong-" + cfg.SecretAccessKey
	if _, err := s3.New(ctx, bad); err == nil {
		t.Fatal("New with a wrong secret key succeeded")
	}
}
