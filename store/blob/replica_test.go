package blob

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// storedBytes puts content in s and returns its digest and stored bytes.
func storedBytes(t testing.TB, s *Store, content string) (string, []byte) {
	t.Helper()
	ref, err := s.Put(context.Background(), strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.OpenStored(context.Background(), ref.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return ref.Digest, b
}

// tmpEmpty fails unless the store's temp directory is empty (a refused
// stream leaves nothing behind).
func tmpEmpty(t testing.TB, s *Store) {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
	if err != nil || len(es) != 0 {
		t.Fatalf("temp dir after a refused stream: %v, %v", es, err)
	}
}

// TestPutStored_VerifiesWhatArrives: the stored bytes of a blob move to
// another store intact; a truncated, corrupted, oversized or mismatched
// stream, or a hostile digest, is refused and stores nothing.
func TestPutStored_VerifiesWhatArrives(t *testing.T) {
	ctx := context.Background()
	src := newStore(t)
	content := strings.Repeat("replicated bytes ", 5000)
	digest, raw := storedBytes(t, src, content)
	other, otherRaw := storedBytes(t, src, "other content")

	flipped := bytes.Clone(raw)
	flipped[len(flipped)/2] ^= 0x40
	cases := []struct {
		name   string
		digest string
		data   []byte
		limit  int64
		want   error
	}{
		{"truncated", digest, raw[:len(raw)-7], 1 << 20, ErrCorrupt},
		{"corrupted", digest, flipped, 1 << 20, ErrCorrupt},
		{"another blob's bytes", digest, otherRaw, 1 << 20, ErrCorrupt},
		{"trailing garbage", digest, append(bytes.Clone(raw), "junk"...), 1 << 20, ErrCorrupt},
		{"not zstd", digest, []byte(content), 1 << 20, ErrCorrupt},
		{"over the limit", digest, raw, int64(len(raw)) - 1, ErrTooLong},
		{"traversal digest", "sha256:../../../etc/passwd", raw, 1 << 20, ErrInvalidDigest},
		{"upper-case digest", strings.ToUpper(digest), raw, 1 << 20, ErrInvalidDigest},
		{"empty digest", "", raw, 1 << 20, ErrInvalidDigest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := newStore(t)
			_, err := dst.PutStored(ctx, c.digest, bytes.NewReader(c.data), c.limit)
			if !errors.Is(err, c.want) {
				t.Fatalf("PutStored: %v, want %v", err, c.want)
			}
			if dst.Has(digest) || dst.Has(other) {
				t.Fatal("a refused stream was stored")
			}
			tmpEmpty(t, dst)
		})
	}

	dst := newStore(t)
	n, err := dst.PutStored(ctx, digest, bytes.NewReader(raw), int64(len(raw)))
	if err != nil || n != int64(len(raw)) {
		t.Fatalf("PutStored: %d, %v", n, err)
	}
	if got, err := readAll(t, dst, digest); err != nil || string(got) != content {
		t.Fatalf("read back: %d bytes, %v", len(got), err)
	}
}

// TestOpen_FetchesWhatIsMissing: Open of a blob the store lacks runs the
// Fetcher, then reads what it stored; without one, or when it finds
// nothing, the blob is ErrNotFound.
func TestOpen_FetchesWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	src, dst := newStore(t), newStore(t)
	digest, raw := storedBytes(t, src, "fetched on demand")
	if _, err := dst.Open(ctx, digest); !errors.Is(err, ErrNotFound) {
		t.Fatalf("without a fetcher: %v", err)
	}
	calls := 0
	dst.SetFetcher(func(ctx context.Context, d string) error {
		calls++
		if d != digest {
			return ErrNotFound
		}
		_, err := dst.PutStored(ctx, d, bytes.NewReader(raw), 1<<20)
		return err
	})
	if got, err := readAll(t, dst, digest); err != nil || string(got) != "fetched on demand" {
		t.Fatalf("fetched: %q, %v", got, err)
	}
	if got, err := readAll(t, dst, digest); err != nil || string(got) != "fetched on demand" || calls != 1 {
		t.Fatalf("second read (cached, %d fetches): %q, %v", calls, got, err)
	}
	if _, err := dst.Open(ctx, "sha256:"+strings.Repeat("0", 64)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a blob no node has: %v", err)
	}
}

// FuzzPutStored: whatever bytes arrive for a digest, PutStored never
// panics, and stores them only when they are that digest's blob.
func FuzzPutStored(f *testing.F) {
	src := newStore(f)
	digest, raw := storedBytes(f, src, "fuzzed content")
	f.Add(raw)
	f.Add(raw[:len(raw)/2])
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		dst := newStore(t)
		_, err := dst.PutStored(context.Background(), digest, bytes.NewReader(data), 1<<16)
		if err != nil {
			if dst.Has(digest) {
				t.Fatal("refused bytes were stored")
			}
			return
		}
		if got, err := readAll(t, dst, digest); err != nil || string(got) != "fuzzed content" {
			t.Fatalf("accepted bytes do not read back: %q, %v", got, err)
		}
	})
}
