package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// What the replicated blob store (cluster/blobs.go) needs of a node's local
// store: the stored (compressed) bytes of a blob to send, a way to take in
// such bytes from another node, verified, and a hook that fetches a blob
// this node lacks when it is opened.

// Fetcher makes the blob with digest present in the local store (it
// fetches it from a node that holds it and calls PutStored). It returns
// an error wrapping ErrNotFound when no node has it.
type Fetcher func(ctx context.Context, digest string) error

// fetchHook holds a Store's Fetcher (set after open: the cluster node that
// fetches is made after the store).
type fetchHook struct{ p atomic.Pointer[Fetcher] }

// SetFetcher makes Open and Materialize fetch a blob the store lacks with
// f (nil: they do not). A single node needs none.
func (s *Store) SetFetcher(f Fetcher) {
	if f == nil {
		s.fetch.p.Store(nil)
		return
	}
	s.fetch.p.Store(&f)
}

// fetchMissing runs the Fetcher for digest, when there is one: true when
// it made the blob present.
func (s *Store) fetchMissing(ctx context.Context, digest string) (bool, error) {
	f := s.fetch.p.Load()
	if f == nil {
		return false, nil
	}
	if err := (*f)(ctx, digest); err != nil {
		return false, err
	}
	return true, nil
}

// OpenStored returns the stored (zstd-compressed) bytes of the local blob
// with digest and their size, as another node takes them with PutStored.
// It never fetches: a blob not held here is ErrNotFound.
func (s *Store) OpenStored(ctx context.Context, digest string) (io.ReadCloser, int64, error) {
	h, err := parseDigest(digest)
	if err != nil {
		return nil, 0, fmt.Errorf("blob: open stored: %w", err)
	}
	info, err := s.be.Stat(ctx, h)
	if err != nil {
		return nil, 0, fmt.Errorf("blob: open stored %s: %w", digest, err)
	}
	rc, err := s.be.Open(ctx, h)
	if err != nil {
		return nil, 0, fmt.Errorf("blob: open stored %s: %w", digest, err)
	}
	return rc, info.Size, nil
}

// ErrTooLong is returned (wrapped) by PutStored for a stream longer than
// its limit.
var ErrTooLong = errors.New("stream longer than its limit")

// PutStored takes in the stored (zstd-compressed) bytes of the blob with
// digest from r, as OpenStored gives them on another node, reading at most
// limit bytes. It decompresses and hashes them as they arrive and stores
// them under digest only when they decode completely and hash to it
// (temp file, then rename): a truncated, corrupt, oversized or mismatched
// stream is refused (ErrCorrupt, ErrTooLong) and leaves nothing behind. It
// returns the number of stored bytes read.
func (s *Store) PutStored(ctx context.Context, digest string, r io.Reader, limit int64) (int64, error) {
	n, err := s.putStored(ctx, digest, r, limit)
	if err != nil {
		return n, fmt.Errorf("blob: put stored %s: %w", digest, err)
	}
	return n, nil
}

func (s *Store) putStored(ctx context.Context, digest string, r io.Reader, limit int64) (int64, error) {
	want, err := parseDigest(digest)
	if err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, fmt.Errorf("limit: must be positive, got %d", limit)
	}
	w, err := s.be.Create(ctx)
	if err != nil {
		return 0, err
	}
	defer w.Abort() // after Commit: nothing
	lr := &io.LimitedReader{R: ctxReader{ctx, r}, N: limit + 1}
	cw := &countWriter{w: w}
	tee := io.TeeReader(lr, cw)
	dec, err := zstd.NewReader(tee, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return 0, err
	}
	defer dec.Close()
	h := sha256.New()
	_, err = io.Copy(h, dec)
	if err == nil {
		// Whatever follows the last frame is refused with it: the
		// decoder read to the end of the stream.
		_, err = io.Copy(io.Discard, tee)
	}
	switch {
	case cw.n > limit:
		return cw.n, fmt.Errorf("%w: more than %d bytes", ErrTooLong, limit)
	case ctx.Err() != nil:
		return cw.n, ctx.Err()
	case err != nil:
		return cw.n, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return cw.n, fmt.Errorf("%w: content hashes to sha256:%s", ErrCorrupt, got)
	}
	if err := w.Commit(ctx, want); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}
