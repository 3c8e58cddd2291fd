package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/skiffml/skiff/store/blob"
)

// Backend keeps blobs in an S3-compatible bucket.
type Backend struct {
	cfg    Config
	client *minio.Client
}

var (
	_ blob.Backend      = (*Backend)(nil)
	_ blob.WholeObjects = (*Backend)(nil)
	_ blob.Toucher      = (*Backend)(nil)
)

// New returns the backend cfg describes, after checking that the bucket
// exists and the credentials may see it.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !strings.HasSuffix(cfg.Prefix, "/") && cfg.Prefix != "" {
		cfg.Prefix += "/"
	}
	host, secure, _ := cfg.endpoint()
	opts := &minio.Options{Secure: secure, Region: cfg.Region, BucketLookup: minio.BucketLookupAuto}
	if cfg.PathStyle {
		opts.BucketLookup = minio.BucketLookupPath
	}
	if cfg.AccessKeyID != "" {
		opts.Creds = credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)
	} else {
		opts.Creds = credentials.New(&credentials.Static{}) // anonymous
	}
	client, err := minio.New(host, opts)
	if err != nil {
		return nil, fmt.Errorf("s3: %s: %w", cfg.Endpoint, err)
	}
	b := &Backend{cfg: cfg, client: client}
	ok, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3: %s: bucket %q: %w", b, cfg.Bucket, err)
	}
	if !ok {
		return nil, fmt.Errorf("s3: %s: bucket %q does not exist (create it first)", b, cfg.Bucket)
	}
	return b, nil
}

// String returns s3://bucket/prefix.
func (b *Backend) String() string { return "s3://" + b.cfg.Bucket + "/" + b.cfg.Prefix }

// WholeObjects marks S3 objects as written whole (see blob.WholeObjects).
func (b *Backend) WholeObjects() {}

const keyDir = "sha256/"

func (b *Backend) key(hex string) string { return b.cfg.Prefix + keyDir + hex }

// Create spools the new object to a temp file; Commit uploads it.
func (b *Backend) Create(ctx context.Context) (blob.Writer, error) {
	f, err := os.CreateTemp(b.cfg.TempDir, "s3put-*")
	if err != nil {
		return nil, err
	}
	return &writer{b: b, f: f}, nil
}

type writer struct {
	b *Backend
	f *os.File // nil once finished
	n int64
}

func (w *writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *writer) Abort() {
	if w.f != nil {
		w.f.Close()
		os.Remove(w.f.Name())
		w.f = nil
	}
}

func (w *writer) Commit(ctx context.Context, hex string) error {
	defer w.Abort()
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	info, err := w.b.client.PutObject(ctx, w.b.cfg.Bucket, w.b.key(hex), w.f, w.n, minio.PutObjectOptions{
		ContentType:    "application/zstd",
		PartSize:       w.b.cfg.PartSize,
		NumThreads:     w.b.cfg.Threads,
		SendContentMd5: true, // each part (or the whole object) checked by the server
	})
	if err != nil {
		return fmt.Errorf("upload %s: %w", w.b.key(hex), err)
	}
	if info.Size != w.n {
		return fmt.Errorf("upload %s: the server stored %d bytes of %d", w.b.key(hex), info.Size, w.n)
	}
	return nil
}

// Open returns the object's bytes.
func (b *Backend) Open(ctx context.Context, hex string) (io.ReadCloser, error) {
	obj, err := b.client.GetObject(ctx, b.cfg.Bucket, b.key(hex), minio.GetObjectOptions{})
	if err != nil {
		return nil, b.wrap(err)
	}
	// GetObject is lazy: Stat sends the request, so a missing object is
	// found here rather than at the first Read.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, b.wrap(err)
	}
	return obj, nil
}

// Stat describes the object.
func (b *Backend) Stat(ctx context.Context, hex string) (blob.Info, error) {
	oi, err := b.client.StatObject(ctx, b.cfg.Bucket, b.key(hex), minio.StatObjectOptions{})
	if err != nil {
		return blob.Info{}, b.wrap(err)
	}
	return blob.Info{Digest: "sha256:" + hex, Size: oi.Size, ModTime: oi.LastModified}, nil
}

// Touch copies the object onto itself with new metadata, which gives it a
// new LastModified without sending its bytes again. S3 copies objects of
// up to 5 GiB so; a bigger one fails, and the blob Store uploads it anew.
func (b *Backend) Touch(ctx context.Context, hex string) error {
	key := b.key(hex)
	_, err := b.client.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: b.cfg.Bucket, Object: key, ReplaceMetadata: true,
			UserMetadata: map[string]string{"Skiff-Touched": time.Now().UTC().Format(time.RFC3339Nano)}},
		minio.CopySrcOptions{Bucket: b.cfg.Bucket, Object: key})
	if err != nil {
		return b.wrap(err)
	}
	return nil
}

// Delete removes the object; S3 answers a missing one with success too.
func (b *Backend) Delete(ctx context.Context, hex string) error {
	err := b.client.RemoveObject(ctx, b.cfg.Bucket, b.key(hex), minio.RemoveObjectOptions{})
	if err != nil && !errors.Is(b.wrap(err), blob.ErrNotFound) {
		return b.wrap(err)
	}
	return nil
}

// List lists PREFIX/sha256/; keys that are not digests are skipped.
func (b *Backend) List(ctx context.Context, fn func(blob.Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine when fn fails
	dir := b.cfg.Prefix + keyDir
	for oi := range b.client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: true}) {
		if oi.Err != nil {
			return b.wrap(oi.Err)
		}
		hex := strings.TrimPrefix(oi.Key, dir)
		if _, err := blob.ParseDigest("sha256:" + hex); err != nil {
			continue
		}
		if err := fn(blob.Info{Digest: "sha256:" + hex, Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// wrap maps S3's "no such key" to blob.ErrNotFound.
func (b *Backend) wrap(err error) error {
	er := minio.ToErrorResponse(err)
	if er.Code == minio.NoSuchKey || (er.StatusCode == http.StatusNotFound && er.Code != minio.NoSuchBucket) {
		return fmt.Errorf("%w: %s", blob.ErrNotFound, er.Message)
	}
	return err
}
