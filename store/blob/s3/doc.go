// Package s3 is the S3-compatible backend of the blob store: Skiff's
// compressed blobs kept as objects in one bucket, under PREFIX/sha256/<hex>
// (the digest is the key), through github.com/minio/minio-go/v7. It works
// with AWS S3 and with S3-compatible servers (SeaweedFS, MinIO, Ceph RGW)
// given an endpoint and, usually, path-style addressing.
//
// A new blob is spooled (compressed, by the blob Store) to a temp file in
// Config.TempDir, then uploaded under its digest in one PUT, multipart above
// Config.PartSize, each part checked by the server against its Content-MD5.
// An object appears under its key whole or not at all, and the Store
// verifies every read against the digest, so an object whose content does
// not match its key is an error on read.
//
// The package owns the bucket's objects only: it knows nothing of runs,
// artifacts' metadata or the replicated store.
package s3
