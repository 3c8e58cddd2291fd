package docker

import (
	"bytes"
	"encoding/binary"
	"io"
)

// CutFollowedLogs makes every followed log stream of x end after n bytes,
// as a busy Docker engine may end it early.
func CutFollowedLogs(x *Executor, n int64) {
	x.followFilter = func(r io.Reader) io.Reader { return io.LimitReader(r, n) }
}

// RepeatFollowedLogs makes every followed log stream of x deliver its first
// whole frames (at least n bytes of them) twice, as a busy Docker engine
// following a log file may.
func RepeatFollowedLogs(x *Executor, n int) {
	x.followFilter = func(r io.Reader) io.Reader {
		var head bytes.Buffer
		hdr := make([]byte, 8) // stream type, 3 zero bytes, big-endian size
		for head.Len() < n {
			if _, err := io.ReadFull(r, hdr); err != nil {
				break
			}
			head.Write(hdr)
			if _, err := io.CopyN(&head, r, int64(binary.BigEndian.Uint32(hdr[4:]))); err != nil {
				break
			}
		}
		return io.MultiReader(bytes.NewReader(head.Bytes()), bytes.NewReader(head.Bytes()), r)
	}
}
