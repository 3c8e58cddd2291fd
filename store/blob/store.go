package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/skiffml/skiff/engine/spec"
)

const digestPrefix = "sha256:"

// DefaultMaxEntrySize is Config.MaxEntrySize's default: 64 GiB.
const DefaultMaxEntrySize int64 = 64 << 30

// Config configures a Store.
type Config struct {
	// Dir is the store's local root directory, created if missing: it
	// holds the blobs themselves when Backend is nil, and the temp files
	// of writes in progress either way.
	Dir string
	// Backend keeps the compressed blobs; nil keeps them under Dir.
	Backend Backend
	// MaxEntrySize bounds the size of one file of a directory artifact
	// that Materialize unpacks; a larger tar entry is refused with an error
	// naming the entry and the limit.
	MaxEntrySize int64
}

// DefaultConfig returns the configuration of a store in dir.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, MaxEntrySize: DefaultMaxEntrySize}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return errors.New("blob: config: Dir: required")
	case c.MaxEntrySize <= 0:
		return fmt.Errorf("blob: config: MaxEntrySize: must be positive, got %d", c.MaxEntrySize)
	}
	return nil
}

// Store is a content-addressed blob store over one Backend (by default a
// local directory). It is safe for concurrent use, also by several
// processes sharing the directory or the bucket.
type Store struct {
	dir          string
	maxEntrySize int64
	be           Backend
	disk         *disk // be, when it is the local directory; else nil
	fetch        fetchHook
}

// Open opens (creating if needed) the store rooted at dir, with
// DefaultConfig.
func Open(dir string) (*Store, error) {
	return OpenConfig(DefaultConfig(dir))
}

// OpenConfig opens (creating if needed) the store cfg describes.
func OpenConfig(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir := cfg.Dir
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", dir, err)
	}
	dirs := []string{abs, filepath.Join(abs, "tmp")}
	if cfg.Backend == nil {
		dirs = append(dirs, filepath.Join(abs, "sha256"))
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("blob: open %s: %w", dir, err)
		}
	}
	st := &Store{dir: abs, maxEntrySize: cfg.MaxEntrySize, be: cfg.Backend}
	if st.be == nil {
		st.disk = &disk{dir: abs, syncDir: syncDir}
		st.be = st.disk
	}
	// The empty blob is always present, so empty files (most step logs)
	// are stored without any I/O.
	if !st.Has(emptyDigest) {
		if _, err := st.put(context.Background(), strings.NewReader("")); err != nil {
			return nil, fmt.Errorf("blob: open %s: %w", st.be, err)
		}
	}
	return st, nil
}

// emptyDigest is the digest of zero bytes.
const emptyDigest = digestPrefix + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// EmptyDigest is the digest of zero bytes, a blob every Store holds.
const EmptyDigest = emptyDigest

// Dir returns the store's local root directory.
func (s *Store) Dir() string { return s.dir }

// Backend returns where the store keeps its blobs.
func (s *Store) Backend() Backend { return s.be }

// parseDigest returns the hex part of a valid digest.
func parseDigest(digest string) (string, error) {
	h, ok := strings.CutPrefix(digest, digestPrefix)
	if !ok || len(h) != 2*sha256.Size {
		return "", fmt.Errorf("%w: %q", ErrInvalidDigest, digest)
	}
	for _, c := range []byte(h) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", fmt.Errorf("%w: %q", ErrInvalidDigest, digest)
		}
	}
	return h, nil
}

// ParseDigest checks that digest is "sha256:" followed by 64 lower-case
// hex digits (else an error wrapping ErrInvalidDigest) and returns the hex.
func ParseDigest(digest string) (string, error) { return parseDigest(digest) }

// Has reports whether the blob with digest is stored. An invalid digest is
// never stored; a backend that cannot be asked (an unreachable S3 server)
// reports false.
func (s *Store) Has(digest string) bool {
	_, err := s.Stat(context.Background(), digest)
	return err == nil
}

// Stat describes the stored blob with digest (Size is its stored,
// compressed size): an error wrapping ErrNotFound when there is none.
func (s *Store) Stat(ctx context.Context, digest string) (Info, error) {
	h, err := parseDigest(digest)
	if err != nil {
		return Info{}, fmt.Errorf("blob: stat: %w", err)
	}
	info, err := s.be.Stat(ctx, h)
	if err != nil {
		return Info{}, fmt.Errorf("blob: stat %s: %w", digest, err)
	}
	return info, nil
}

// List calls fn for every stored blob, in no particular order.
func (s *Store) List(ctx context.Context, fn func(Info) error) error {
	if err := s.be.List(ctx, fn); err != nil {
		return fmt.Errorf("blob: list %s: %w", s.be, err)
	}
	return nil
}

// Delete removes the blob with digest; a missing one is not an error. The
// empty blob is never removed (OpenConfig puts it there once, and stores
// count on it).
func (s *Store) Delete(ctx context.Context, digest string) error {
	h, err := parseDigest(digest)
	if err != nil {
		return fmt.Errorf("blob: delete: %w", err)
	}
	if digest == emptyDigest {
		return nil
	}
	if err := s.be.Delete(ctx, h); err != nil {
		return fmt.Errorf("blob: delete %s: %w", digest, err)
	}
	return nil
}

// Put stores the bytes of r and returns their reference (Dir false, Type
// unset). The bytes are streamed, never held whole in memory.
func (s *Store) Put(ctx context.Context, r io.Reader) (spec.ArtifactRef, error) {
	ref, err := s.put(ctx, r)
	if err != nil {
		return spec.ArtifactRef{}, fmt.Errorf("blob: put: %w", err)
	}
	return ref, nil
}

func (s *Store) put(ctx context.Context, r io.Reader) (ref spec.ArtifactRef, err error) {
	w, err := s.be.Create(ctx)
	if err != nil {
		return ref, err
	}
	defer w.Abort() // after Commit: nothing
	cw := &countWriter{w: w}
	enc, err := getEncoder(cw)
	if err != nil {
		return ref, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(enc, h), ctxReader{ctx, r})
	if err != nil {
		enc.Close()
		encoders.Put(enc)
		return ref, err
	}
	err = enc.Close()
	encoders.Put(enc)
	if err != nil {
		return ref, err
	}
	hexDigest := hex.EncodeToString(h.Sum(nil))
	ref = spec.ArtifactRef{Digest: digestPrefix + hexDigest, Size: n}
	if info, err := s.be.Stat(ctx, hexDigest); err == nil && s.keepStored(ctx, ref.Digest, info, cw.n) {
		if t, ok := s.be.(Toucher); ok && t.Touch(ctx, hexDigest) == nil {
			return ref, nil // the deferred Abort drops the new copy
		}
	}
	if err := ctx.Err(); err != nil {
		return ref, err
	}
	if err := w.Commit(ctx, hexDigest); err != nil {
		return ref, err
	}
	return ref, nil
}

// keepStored reports whether an already stored copy of digest (info) may
// stand for the new one of size bytes: deduplicate only onto a blob that
// still holds these bytes; a damaged one is replaced by the new copy.
func (s *Store) keepStored(ctx context.Context, digest string, info Info, size int64) bool {
	if _, whole := s.be.(WholeObjects); whole && info.Size == size {
		return true
	}
	return s.verify(ctx, digest) == nil
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// encoders keeps zstd encoders for reuse: making one allocates several
// MiB, which dominated the cost of storing small blobs such as step logs.
var encoders sync.Pool

func getEncoder(w io.Writer) (*zstd.Encoder, error) {
	if enc, ok := encoders.Get().(*zstd.Encoder); ok {
		enc.Reset(w)
		return enc, nil
	}
	return zstd.NewWriter(w, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedDefault))
}

// Verify reads the blob with digest whole: nil if it is stored and its
// bytes have that digest, else an error wrapping ErrNotFound or ErrCorrupt.
func (s *Store) Verify(ctx context.Context, digest string) error { return s.verify(ctx, digest) }

func (s *Store) verify(ctx context.Context, digest string) error {
	rc, err := s.Open(ctx, digest)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, rc)
	return errors.Join(err, rc.Close())
}

// PutPath stores the file or directory at path. A directory is stored as a
// deterministic tar stream and its ref has Dir set. Symbolic links (also at
// path itself), devices, pipes and sockets are refused with ErrUnsupported.
func (s *Store) PutPath(ctx context.Context, path string) (spec.ArtifactRef, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return spec.ArtifactRef{}, fmt.Errorf("blob: put %s: %w", path, err)
	}
	switch {
	case fi.Mode().IsRegular() && fi.Size() == 0:
		return spec.ArtifactRef{Digest: emptyDigest}, nil
	case fi.Mode().IsRegular():
		f, err := os.Open(path)
		if err != nil {
			return spec.ArtifactRef{}, fmt.Errorf("blob: put %s: %w", path, err)
		}
		defer f.Close()
		ref, err := s.put(ctx, f)
		if err != nil {
			return spec.ArtifactRef{}, fmt.Errorf("blob: put %s: %w", path, err)
		}
		return ref, nil
	case fi.IsDir():
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeTar(ctx, pw, os.DirFS(path), ".")) }()
		ref, err := s.put(ctx, pr)
		pr.CloseWithError(errors.New("blob: put aborted")) // unblocks the writer on error
		if err != nil {
			return spec.ArtifactRef{}, fmt.Errorf("blob: put %s: %w", path, err)
		}
		ref.Dir = true
		return ref, nil
	default:
		return spec.ArtifactRef{}, fmt.Errorf("blob: put %s: %w: %s", path, ErrUnsupported, fileKind(fi.Mode()))
	}
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "irregular file"
}

// Open returns the uncompressed bytes of the blob with digest. The reader
// verifies the digest: at EOF, a mismatch returns an error wrapping
// ErrCorrupt instead of io.EOF. A missing blob is fetched with the
// store's Fetcher (SetFetcher) when it has one, else ErrNotFound.
func (s *Store) Open(ctx context.Context, digest string) (io.ReadCloser, error) {
	h, err := parseDigest(digest)
	if err != nil {
		return nil, fmt.Errorf("blob: open: %w", err)
	}
	f, err := s.be.Open(ctx, h)
	if errors.Is(err, ErrNotFound) {
		// Not here: a cluster node fetches it from one that holds it.
		var fetched bool
		if fetched, err = s.fetchMissing(ctx, digest); fetched {
			f, err = s.be.Open(ctx, h)
		} else if err == nil {
			err = ErrNotFound
		}
	}
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", digest, err)
	}
	dec, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blob: open %s: %w: %v", digest, ErrCorrupt, err)
	}
	return &verifyReader{ctx: ctx, digest: digest, want: h, f: f, dec: dec, h: sha256.New()}, nil
}

// verifyReader decompresses and hashes a blob as it is read.
type verifyReader struct {
	ctx    context.Context // the Open call's context, checked on each Read
	digest string
	want   string
	f      io.ReadCloser
	dec    *zstd.Decoder
	h      hash.Hash
	err    error // sticky
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if err := v.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := v.dec.Read(p)
	v.h.Write(p[:n])
	switch {
	case err == io.EOF:
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			v.err = fmt.Errorf("blob: read %s: %w: content hashes to sha256:%s", v.digest, ErrCorrupt, got)
		} else {
			v.err = io.EOF
		}
		return n, v.err
	case err != nil:
		v.err = fmt.Errorf("blob: read %s: %w: %v", v.digest, ErrCorrupt, err)
		return n, v.err
	}
	return n, nil
}

func (v *verifyReader) Close() error {
	v.dec.Close()
	if v.err == nil {
		v.err = errors.New("blob: read after close")
	}
	return v.f.Close()
}

// Materialize writes the artifact ref at dst: the file, or the directory
// unpacked (dst is created and must not already hold entries the artifact
// has). Parent directories of dst are created.
func (s *Store) Materialize(ctx context.Context, ref spec.ArtifactRef, dst string) error {
	if err := s.materialize(ctx, ref, dst); err != nil {
		return fmt.Errorf("blob: materialize %s at %s: %w", ref.Digest, dst, err)
	}
	return nil
}

func (s *Store) materialize(ctx context.Context, ref spec.ArtifactRef, dst string) error {
	rc, err := s.Open(ctx, ref.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if ref.Dir {
		return untar(ctx, rc, dst, s.maxEntrySize)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".materialize-*")
	if err != nil {
		return err
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, rc); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	tmp = nil
	return nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
