package blob

import (
	"context"
	"io"
	"time"
)

// Backend keeps a Store's compressed objects, each named by the hex part of
// its digest. The Store does the hashing, compression and verification; a
// backend only moves bytes, so it never needs to know what they mean. The
// local directory (OpenConfig without Backend) is one; store/blob/s3 is the
// S3-compatible one.
type Backend interface {
	// Create starts a new object. Its bytes get a name only at Commit,
	// all at once: nothing half-written is ever visible under a name.
	Create(ctx context.Context) (Writer, error)
	// Open returns an object's stored bytes; a missing one is an error
	// wrapping ErrNotFound.
	Open(ctx context.Context, hex string) (io.ReadCloser, error)
	// Stat describes one object; a missing one is an error wrapping
	// ErrNotFound.
	Stat(ctx context.Context, hex string) (Info, error)
	// Delete removes an object; a missing one is not an error.
	Delete(ctx context.Context, hex string) error
	// List calls fn for every object, in no particular order, until fn
	// returns an error (which List returns).
	List(ctx context.Context, fn func(Info) error) error
	// String names the backend in messages: a directory, s3://bucket/prefix.
	String() string
}

// Writer receives a new object's bytes.
type Writer interface {
	io.Writer
	// Commit stores the bytes written under hex, replacing an object of
	// that name. The Writer is finished either way.
	Commit(ctx context.Context, hex string) error
	// Abort drops the bytes written; after Commit it does nothing.
	Abort()
}

// Info describes one stored object.
type Info struct {
	// Digest is the blob's digest, "sha256:<hex>".
	Digest string `json:"digest"`
	// Size is the stored (compressed) size in bytes.
	Size int64 `json:"size"`
	// ModTime is when the object was last written.
	ModTime time.Time `json:"mod_time"`
}

// WholeObjects is implemented by a backend whose objects are written whole
// or not at all and never altered in place afterwards (an object store: a
// PUT is atomic and checked on the way in). When such a backend already
// holds an object of the size the Store is about to write under the same
// digest, the Store keeps it without reading it back: reading a big object
// back costs as much as sending it again. A local disk is not one: there a
// stored copy is read and verified before it is trusted.
type WholeObjects interface {
	WholeObjects()
}

// Toucher is implemented by a backend that can mark a stored object as
// written now without rewriting it. When Put finds the bytes already
// stored, it touches the object, so that a garbage collection running at
// that moment (which spares recently written blobs) does not delete it
// before the new reference to it is committed. Where Touch fails, or a
// backend has none, Put stores the bytes again instead.
type Toucher interface {
	Touch(ctx context.Context, hex string) error
}
