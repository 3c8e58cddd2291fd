package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TypePutWorkspace stores a run's pipeline files (the bundle `skiff run
// --server` sends) in the replicated state, so that whichever node runs a
// step, and whichever node leads after a failover, can unpack them.
// Numbers only grow.
const TypePutWorkspace CommandType = 47

// MaxWorkspaceBytes bounds a PutWorkspace's Data (the API's bundle limit is
// lower).
const MaxWorkspaceBytes = 8 << 20

// bucketWorkspaces: nsKey(namespace, digest) -> the bundle's bytes.
var bucketWorkspaces = []byte("workspaces")

// PutWorkspace records namespace Namespace's bundle Data (a gzip-compressed
// tar of a pipeline's files) under Digest, the lower-case hex SHA-256 of
// Data, which the FSM checks. The same bundle again changes nothing.
type PutWorkspace struct {
	Namespace string    `json:"namespace"`
	Digest    string    `json:"digest"`
	Data      []byte    `json:"data"`
	Time      time.Time `json:"time"`
}

func (PutWorkspace) Type() CommandType { return TypePutWorkspace }

// WorkspaceDigest is the digest PutWorkspace expects for data.
func WorkspaceDigest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// WorkspaceRoot is the directory {{pipeline.dir}} names for a run whose
// files are in workspace (ns, digest): not a path of any host; the worker
// that runs a step unpacks the files into its own data dir and rebases
// the step's spec onto them.
func WorkspaceRoot(ns, digest string) string {
	return path.Join("/.skiff-workspace", ns, digest)
}

// ValidWorkspace reports whether ns and digest may name a workspace (and
// so a directory under a node's data dir): a namespace with no path
// separator or dot-dot, and a hex SHA-256.
func ValidWorkspace(ns, digest string) bool {
	if ns == "" || len(ns) > 63 || ns == "." || ns == ".." || bytes.ContainsAny([]byte(ns), "/\\\x00") {
		return false
	}
	if len(digest) != 64 {
		return false
	}
	for _, c := range []byte(digest) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func init() {
	registerJSON(TypePutWorkspace, "put_workspace", 1, applyPutWorkspace)
	// Binary from the first version: the bundle is bytes, not base64.
	setBinaryCodec(TypePutWorkspace, 1, encodePutWorkspace, decodePutWorkspace)
}

func encodePutWorkspace(c *PutWorkspace) ([]byte, error) {
	w := binWriter{b: make([]byte, 0, 96+len(c.Data))}
	w.str(c.Namespace)
	w.str(c.Digest)
	w.rawBytes(c.Data)
	if err := w.time(c.Time); err != nil {
		return nil, fmt.Errorf("time: %w", err)
	}
	return w.b, nil
}

func decodePutWorkspace(b []byte) (PutWorkspace, error) {
	r := binReader{b: b}
	c := PutWorkspace{Namespace: r.str(), Digest: r.str()}
	if d := r.raw(); len(d) > 0 {
		c.Data = bytes.Clone(d)
	}
	c.Time = r.time()
	return c, r.done("put_workspace")
}

func applyPutWorkspace(tx *bolt.Tx, c PutWorkspace) ([]Rejection, error) {
	switch {
	case !ValidWorkspace(c.Namespace, c.Digest):
		return reject("put workspace: namespace %q, digest %q: not a valid workspace name", c.Namespace, c.Digest), nil
	case len(c.Data) == 0:
		return reject("put workspace %s/%s: data: empty", c.Namespace, c.Digest), nil
	case len(c.Data) > MaxWorkspaceBytes:
		return reject("put workspace %s/%s: data: %d bytes, more than %d", c.Namespace, c.Digest, len(c.Data), MaxWorkspaceBytes), nil
	case WorkspaceDigest(c.Data) != c.Digest:
		return reject("put workspace %s/%s: digest does not match the data", c.Namespace, c.Digest), nil
	}
	b := tx.Bucket(bucketWorkspaces)
	k := nsKey(c.Namespace, c.Digest)
	if b.Get(k) != nil {
		return nil, nil
	}
	return nil, b.Put(k, c.Data)
}

// Workspace returns the bundle stored under (ns, digest): ErrNotFound if
// there is none.
func (s *Store) Workspace(ns, digest string) ([]byte, error) {
	if !ValidWorkspace(ns, digest) {
		return nil, fmt.Errorf("workspace %q/%q: %w", ns, digest, ErrNotFound)
	}
	var data []byte
	err := s.fsm.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketWorkspaces).Get(nsKey(ns, digest))
		if v == nil {
			return fmt.Errorf("workspace %s/%s: %w", ns, digest, ErrNotFound)
		}
		data = bytes.Clone(v)
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return data, err
}

// ParseWorkspaceRoot is the inverse of WorkspaceRoot: ok is false for any
// other directory.
func ParseWorkspaceRoot(dir string) (ns, digest string, ok bool) {
	rest, found := strings.CutPrefix(dir, "/.skiff-workspace/")
	if !found {
		return "", "", false
	}
	ns, digest, found = strings.Cut(rest, "/")
	if !found || !ValidWorkspace(ns, digest) {
		return "", "", false
	}
	return ns, digest, true
}
