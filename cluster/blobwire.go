package cluster

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/skiffml/skiff/store/blob"
)

// The blob transfer protocol, one transfer per connection on the cluster
// port (connBlob). Each side's messages are frames: a two-byte big-endian
// length, then that many bytes of JSON.
//
//	get: -> {op: get, digest}          <- {size} then size stored bytes
//	put: -> {op: put, digest, size}    <- {have: true} (done), or
//	                                   <- {send: true} -> size stored bytes
//	                                   <- {} (stored) or {error}
//
// Stored bytes are the blob's zstd stream (blob.OpenStored); the side that
// receives them verifies them by digest before it keeps them
// (blob.PutStored).

// maxFrame bounds one frame.
const maxFrame = 4096

const (
	blobGet = "get"
	blobPut = "put"
)

// blobRequest opens a transfer.
type blobRequest struct {
	Op     string `json:"op"`
	Digest string `json:"digest"`
	// Size is the stored size a put sends.
	Size int64 `json:"size,omitempty"`
}

// blobReply answers a request (and ends a put).
type blobReply struct {
	Error string `json:"error,omitempty"`
	// Size is the stored size a get sends next.
	Size int64 `json:"size,omitempty"`
	// Have: the receiver of a put holds the blob already.
	Have bool `json:"have,omitempty"`
	// Send: the receiver of a put wants the bytes.
	Send bool `json:"send,omitempty"`
}

func writeFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxFrame {
		return fmt.Errorf("frame of %d bytes, at most %d", len(b), maxFrame)
	}
	buf := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(b)), uint16(len(b)))
	_, err = w.Write(append(buf, b...))
	return err
}

func readFrame(r io.Reader, v any) error {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	size := binary.BigEndian.Uint16(n[:])
	if size > maxFrame {
		return fmt.Errorf("frame of %d bytes, at most %d", size, maxFrame)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// decodeBlobRequest reads and checks a request frame: a known op, a valid
// digest, and for a put a size within 1..maxSize.
func decodeBlobRequest(r io.Reader, maxSize int64) (blobRequest, error) {
	var req blobRequest
	if err := readFrame(r, &req); err != nil {
		return req, fmt.Errorf("blob request: %w", err)
	}
	if _, err := blob.ParseDigest(req.Digest); err != nil {
		return req, fmt.Errorf("blob request: digest: %w", err)
	}
	switch req.Op {
	case blobGet:
		if req.Size != 0 {
			return req, errors.New("blob request: size: not allowed on get")
		}
	case blobPut:
		if req.Size <= 0 || req.Size > maxSize {
			return req, fmt.Errorf("blob request: size: %d, want 1 to %d bytes", req.Size, maxSize)
		}
	default:
		return req, fmt.Errorf("blob request: op: %q, want get or put", req.Op)
	}
	return req, nil
}

// idleConn extends its deadline on every read and write: a transfer that
// makes progress may take as long as it needs, one that stalls for idle
// ends.
type idleConn struct {
	net.Conn
	idle time.Duration
}

func (c idleConn) Read(p []byte) (int, error) {
	_ = c.Conn.SetDeadline(time.Now().Add(c.idle))
	return c.Conn.Read(p)
}

func (c idleConn) Write(p []byte) (int, error) {
	_ = c.Conn.SetDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(p)
}

// exactly reads exactly n bytes of r: fewer, and the read that meets the
// early end fails with io.ErrUnexpectedEOF (a receiver then refuses the
// stream even when what came is a whole blob).
func exactly(r io.Reader, n int64) io.Reader { return &exactReader{r: r, left: n} }

type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
