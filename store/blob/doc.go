// Package blob is Skiff's content-addressed artifact store.
//
// A blob is named by "sha256:<hex>", the SHA-256 of its uncompressed bytes,
// and kept zstd-compressed by a Backend: by default a local directory
// (dir/sha256/<first two hex>/<hex>); store/blob/s3 keeps them in an
// S3-compatible bucket under PREFIX/sha256/<hex>. The Store does all the
// hashing, compressing and verifying, so both backends keep the same bytes
// and every read is verified the same way. On the local disk, writes go
// to a temp file under dir/tmp (same filesystem), are fsynced and renamed
// into place, so a crash never leaves a half-written blob under its final
// name, and a new shard directory is fsynced into its parent; storing
// bytes that are already there is a no-op once the stored copy is verified
// (a damaged copy is replaced; in an object store, where a PUT is whole or
// nothing, a copy of the same stored size is kept unread). Reads are streamed
// and verified: a digest mismatch (or undecodable data) surfaces at EOF as
// an error wrapping ErrCorrupt.
//
// A directory is stored as one deterministic tar stream (entries sorted by
// path, times zeroed, uid/gid and owner names empty, modes normalised to
// 0755 for directories and executables and 0644 for other files), so the
// same tree always has the same digest. Only regular files and directories
// are stored: symbolic links, devices, sockets and pipes are refused by
// PutPath, and Materialize refuses every tar entry but a directory or a
// plain regular file (links, devices, FIFOs, sparse files) and files over
// Config.MaxEntrySize, naming the entry. It refuses entries whose names
// escape the destination (absolute names, "..") and writes through an
// os.Root, so it treats tar streams as untrusted input.
//
// The package owns the bytes only. Artifact metadata (type, producer,
// lineage) lives in the replicated store; this package must not import the
// engine, the store's Raft side or any executor.
package blob
