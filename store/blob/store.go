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
	// Dir is the store's root directory, created if missing.
	Dir string
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

// Store is a content-addressed blob store in one local directory. It is safe
// for concurrent use, also by several processes sharing the directory.
type Store struct {
	dir          string
	maxEntrySize int64
	// syncDir fsyncs a directory (syncDir; tests see which ones).
	syncDir func(dir string) error
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
	for _, d := range []string{abs, filepath.Join(abs, "sha256"), filepath.Join(abs, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("blob: open %s: %w", dir, err)
		}
	}
	st := &Store{dir: abs, maxEntrySize: cfg.MaxEntrySize, syncDir: syncDir}
	// The empty blob is always present, so empty files (most step logs)
	// are stored without any I/O.
	if !st.Has(emptyDigest) {
		if _, err := st.put(context.Background(), strings.NewReader("")); err != nil {
			return nil, fmt.Errorf("blob: open %s: %w", dir, err)
		}
	}
	return st, nil
}

// emptyDigest is the digest of zero bytes.
const emptyDigest = digestPrefix + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Dir returns the store's root directory.
func (s *Store) Dir() string { return s.dir }

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

func (s *Store) blobPath(hexDigest string) string {
	return filepath.Join(s.dir, "sha256", hexDigest[:2], hexDigest)
}

// Has reports whether the blob with digest is stored. An invalid digest is
// never stored.
func (s *Store) Has(digest string) bool {
	h, err := parseDigest(digest)
	if err != nil {
		return false
	}
	_, err = os.Stat(s.blobPath(h))
	return err == nil
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
	tmp, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "put-*")
	if err != nil {
		return ref, err
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	enc, err := getEncoder(tmp)
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
	if err := tmp.Sync(); err != nil {
		return ref, err
	}
	if err := tmp.Close(); err != nil {
		return ref, err
	}
	hexDigest := hex.EncodeToString(h.Sum(nil))
	ref = spec.ArtifactRef{Digest: digestPrefix + hexDigest, Size: n}
	final := s.blobPath(hexDigest)
	if _, err := os.Stat(final); err == nil {
		// Deduplicate only onto a blob that still holds these bytes; a
		// damaged one is replaced by the new copy.
		if s.verify(ctx, ref.Digest) == nil {
			return ref, nil // the deferred cleanup drops tmp
		}
		if err := ctx.Err(); err != nil {
			return ref, err
		}
	}
	shard := filepath.Dir(final)
	if err := s.mkdirSynced(shard); err != nil {
		return ref, err
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return ref, err
	}
	tmp = nil
	if err := s.syncDir(shard); err != nil {
		return ref, err
	}
	return ref, nil
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

// mkdirSynced creates dir (and missing parents) if missing, fsyncing the
// parent of each new directory so that its entry survives a crash (the
// blob renamed into dir would otherwise be lost with it).
func (s *Store) mkdirSynced(dir string) error {
	err := os.Mkdir(dir, 0o755)
	if errors.Is(err, fs.ErrNotExist) { // the parent is gone too
		if err := s.mkdirSynced(filepath.Dir(dir)); err != nil {
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
	return s.syncDir(filepath.Dir(dir))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
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
// ErrCorrupt instead of io.EOF. A missing blob is ErrNotFound.
func (s *Store) Open(ctx context.Context, digest string) (io.ReadCloser, error) {
	h, err := parseDigest(digest)
	if err != nil {
		return nil, fmt.Errorf("blob: open: %w", err)
	}
	f, err := os.Open(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob: open %s: %w", digest, ErrNotFound)
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
	f      *os.File
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
