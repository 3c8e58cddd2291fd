package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// The raft-wal backend: hashicorp/raft-wal keeps the log in append-only
// segment files and its own metadata (segment list, stable store) in a
// small bbolt file, wal-meta.db. An append of a batch of entries writes
// the frames and one commit frame, then fsyncs the segment once.
//
// Skiff gives it a file layer of its own (syncVFS) that counts every
// fsync of a segment file or of the directory, and skips them under
// Config.NoSync. wal-meta.db is bbolt's: it syncs by itself (NoSync does
// not reach it) and its fsyncs cannot be seen from here; each commit to
// it (a segment rotation, a stable-store write such as a new term) is
// counted as the two fdatasyncs a bbolt commit makes.

// walMetaFile is the name raft-wal gives its metadata database.
const walMetaFile = metadb.FileName

// boltCommitSyncs is the number of fdatasyncs one bbolt commit makes (the
// data pages, then the meta page).
const boltCommitSyncs = 2

// openWAL opens (creating if needed) the raft-wal log in dir. segmentSize
// 0 means raft-wal's default (64 MiB).
func openWAL(dir string, noSync bool, segmentSize int, syncs *atomic.Uint64, logger hclog.Logger) (*walStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	vfs := &syncVFS{noSync: noSync, syncs: syncs}
	meta := &countingMeta{BoltMetaDB: &metadb.BoltMetaDB{}, syncs: syncs}
	w, err := wal.Open(dir,
		wal.WithSegmentFiler(truncatedTailFiler{segment.NewFiler(dir, vfs)}),
		wal.WithMetaStore(meta),
		wal.WithLogger(logger.Named("wal")),
		wal.WithSegmentSize(segmentSizeOr(segmentSize)),
	)
	if err != nil {
		return nil, errors.Join(err, meta.Close())
	}
	return &walStore{WAL: w, meta: meta}, nil
}

// truncatedTailFiler works around a raft-wal v0.4.0 bug (hashicorp/
// raft-wal#31, fixed upstream after the last release the module proxy
// serves): deleting a suffix of the log (raft does so when a follower's
// uncommitted entries conflict with a new leader's) marks the tail
// segment sealed in the metadata without writing its index block, and
// after a restart every read of that segment fails with "sealed segment
// has no index block" -- the node cannot start. Such a segment is opened
// here the way an unsealed tail is recovered: by scanning its frames into
// an in-memory index. Nothing is written to it (raft-wal only reads a
// sealed segment; the scan writes nothing to a file with commits), and
// the metadata still bounds which of its entries are served.
type truncatedTailFiler struct{ *segment.Filer }

func (f truncatedTailFiler) Open(info types.SegmentInfo) (types.SegmentReader, error) {
	if !info.SealTime.IsZero() && info.IndexStart == 0 {
		return f.Filer.RecoverTail(info)
	}
	return f.Filer.Open(info)
}

// walStore is a raft-wal log that closes its metadata database on Close
// (raft-wal's own Close leaves it open, and with it the file's lock).
type walStore struct {
	*wal.WAL
	meta *countingMeta
}

func (w *walStore) Close() error {
	return errors.Join(w.WAL.Close(), w.meta.Close())
}

func segmentSizeOr(n int) int {
	if n <= 0 {
		return wal.DefaultSegmentSize
	}
	return n
}

// syncVFS is raft-wal's default file layer with its fsyncs counted (and
// skipped under noSync).
type syncVFS struct {
	fs.FS
	noSync bool
	syncs  *atomic.Uint64
}

var _ types.VFS = (*syncVFS)(nil)

func (v *syncVFS) sync(f *os.File) error {
	if v.noSync {
		return nil
	}
	if v.syncs != nil {
		v.syncs.Add(1)
	}
	return f.Sync()
}

func (v *syncVFS) syncDir(dir string) error {
	if v.noSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = v.sync(d)
	return errors.Join(err, d.Close())
}

// Create creates and preallocates a segment file (raft-wal's own Create)
// and returns it with counted syncs: the first Sync also syncs the
// directory, so that the new file's entry survives a crash.
func (v *syncVFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	wf, err := v.FS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	f, ok := wf.(*fs.File)
	if !ok {
		_ = wf.Close()
		return nil, fmt.Errorf("raft-wal: unexpected file type %T", wf)
	}
	return &syncFile{File: &f.File, vfs: v, dir: dir, fresh: true}, nil
}

// Delete removes a segment file and syncs the directory.
func (v *syncVFS) Delete(dir, name string) error {
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		return err
	}
	return v.syncDir(dir)
}

// OpenWriter opens an existing segment file (the tail, on recovery).
func (v *syncVFS) OpenWriter(dir, name string) (types.WritableFile, error) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	return &syncFile{File: f, vfs: v, dir: dir}, nil
}

// OpenReader opens a sealed segment file for reading, with read-ahead.
func (v *syncVFS) OpenReader(dir, name string) (types.ReadableFile, error) {
	rf, err := v.FS.OpenReader(dir, name)
	if err != nil {
		return nil, err
	}
	return &frameReader{ReadableFile: rf}, nil
}

// raft-wal v0.4.0 reads each entry (GetLog) with a pread into a 64 KiB
// buffer, whatever the entry's size. A restart reads every entry after
// the last snapshot three times (checkLog, raft's scan for configuration
// entries, and the replay into the FSM): 12,000 preads of 64 KiB for a
// log of 4,000 entries of a few hundred bytes, a third of the time to
// reopen a data dir. Its reader takes a shorter read ending in io.EOF as
// the file's end, uses the frame when the frame fits in it, and otherwise
// reads the frame again at its exact size. So a read of exactly that
// buffer's size (walFrameBuffer) is answered with up to walFrameWindow
// bytes, io.EOF, from a walReadAhead block read ahead of it; every other
// read (headers, indexes, recovery scans, exact-size frame reads) is
// passed through. TestWAL_FrameReadsOfEverySize holds raft-wal's reader
// to this (entries below, at and above the window, sealed and tail
// segments, after a restart).
const (
	walFrameBuffer = 64 << 10
	walFrameWindow = 16 << 10
	walReadAhead   = 256 << 10
)

// readAhead is the last block read of a segment file. The tail segment is
// written while it is read (and raft-wal preallocates it: unwritten bytes
// read as zeros): every write ends the block, and a block read while a
// write happened (gen changed) is used for that read only.
type readAhead struct {
	mu  sync.Mutex
	gen uint64
	// fillGen is gen at the last fill; quiet, that there was one.
	fillGen uint64
	quiet   bool
	blk     []byte // the allocation
	buf     []byte // the file's bytes at [off, off+len(buf))
	off     int64
}

func (c *readAhead) readAt(r io.ReaderAt, p []byte, off int64) (int, error) {
	if len(p) != walFrameBuffer {
		return r.ReadAt(p, off)
	}
	c.mu.Lock()
	if off >= c.off && off+walFrameWindow <= c.off+int64(len(c.buf)) {
		n := copy(p[:walFrameWindow], c.buf[off-c.off:])
		c.mu.Unlock()
		return n, io.EOF
	}
	gen := c.gen
	// Read ahead only while nothing is written between reads (a replay
	// at a restart); reads of the tail between writes take the window.
	size := walFrameWindow
	if c.quiet && c.fillGen == gen {
		size = walReadAhead
	}
	c.quiet, c.fillGen = true, gen
	blk := c.blk
	c.blk, c.buf = nil, nil // this read owns the allocation until it is back
	c.mu.Unlock()
	if blk == nil {
		blk = make([]byte, walReadAhead)
	}
	got, err := r.ReadAt(blk[:size], off)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	n := copy(p[:walFrameWindow], blk[:got])
	c.mu.Lock()
	if c.blk == nil { // else another read's block took its place
		c.blk = blk
		if c.gen == gen {
			c.buf, c.off = blk[:got], off
		}
	}
	c.mu.Unlock()
	return n, io.EOF
}

// written ends the block (the file changed).
func (c *readAhead) written() {
	c.mu.Lock()
	c.gen++
	c.buf = nil
	c.mu.Unlock()
}

// frameReader is a sealed segment's file with read-ahead.
type frameReader struct {
	types.ReadableFile
	ra readAhead
}

func (f *frameReader) ReadAt(p []byte, off int64) (int, error) {
	return f.ra.readAt(f.ReadableFile, p, off)
}

// syncFile is a segment file whose Sync goes through its syncVFS.
type syncFile struct {
	*os.File
	vfs   *syncVFS
	dir   string
	fresh bool // created by this process: the first Sync also syncs dir
	ra    readAhead
}

func (f *syncFile) ReadAt(p []byte, off int64) (int, error) {
	return f.ra.readAt(f.File, p, off)
}

func (f *syncFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	f.ra.written()
	return n, err
}

func (f *syncFile) Sync() error {
	if err := f.vfs.sync(f.File); err != nil {
		return err
	}
	if f.fresh {
		// raft-wal calls Sync from its single writer only.
		f.fresh = false
		return f.vfs.syncDir(f.dir)
	}
	return nil
}

// countingMeta is raft-wal's bbolt metadata store with its commits counted.
type countingMeta struct {
	*metadb.BoltMetaDB
	syncs *atomic.Uint64
}

func (m *countingMeta) count() {
	if m.syncs != nil {
		m.syncs.Add(boltCommitSyncs)
	}
}

func (m *countingMeta) CommitState(s types.PersistentState) error {
	m.count()
	return m.BoltMetaDB.CommitState(s)
}

func (m *countingMeta) SetStable(key, value []byte) error {
	m.count()
	return m.BoltMetaDB.SetStable(key, value)
}
