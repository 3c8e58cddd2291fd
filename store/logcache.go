package store

import (
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
)

// logCacheBytes bounds the bytes of the entries logCache holds. An entry
// can carry megabytes (a run's pipeline files, a workspace): a cache
// bounded only in entries would let a user who submits large ones keep
// gigabytes of the server's memory. Usual entries are far smaller, and
// the latest of them all fit.
const logCacheBytes = 64 << 20

// logCache keeps the latest raft entries in memory for raft's reads (each
// entry a follower applies, each the leader sends to a follower), at most
// capacity entries and maxBytes bytes of their data. It holds a window
// of consecutive indexes, the newest stored; an entry larger than
// maxBytes is not kept (its reads go to the log store).
type logCache struct {
	raft.LogStore

	capacity int
	maxBytes int

	mu    sync.RWMutex
	ring  []*raft.Log // slot index % capacity, for first..last
	first uint64      // 0: empty
	last  uint64
	bytes int // entrySize of the entries held
}

var _ raft.MonotonicLogStore = (*logCache)(nil)

func newLogCache(store raft.LogStore, capacity, maxBytes int) (*logCache, error) {
	if capacity <= 0 || maxBytes <= 0 {
		return nil, fmt.Errorf("log cache: capacity %d and size %d must be positive", capacity, maxBytes)
	}
	return &logCache{LogStore: store, capacity: capacity, maxBytes: maxBytes, ring: make([]*raft.Log, capacity)}, nil
}

// entrySize is what an entry costs the cache beyond its fixed fields.
func entrySize(l *raft.Log) int { return len(l.Data) + len(l.Extensions) }

// IsMonotonic is the log store's answer (raft-wal's is true).
func (c *logCache) IsMonotonic() bool {
	m, ok := c.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (c *logCache) GetLog(index uint64, out *raft.Log) error {
	c.mu.RLock()
	if c.first != 0 && index >= c.first && index <= c.last {
		*out = *c.ring[index%uint64(c.capacity)]
		c.mu.RUnlock()
		return nil
	}
	c.mu.RUnlock()
	return c.LogStore.GetLog(index, out)
}

func (c *logCache) StoreLog(l *raft.Log) error { return c.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores logs, then keeps them: only what the log store holds
// is ever read from the cache.
func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.LogStore.StoreLogs(logs); err != nil {
		c.reset() // what the store kept of them is not known
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		c.add(l)
	}
	return nil
}

// add appends l to the window, dropping the oldest entries to make room;
// an entry out of sequence starts a new window.
func (c *logCache) add(l *raft.Log) {
	size := entrySize(l)
	if c.first != 0 && l.Index != c.last+1 {
		c.clear()
	}
	if size > c.maxBytes {
		c.clear() // the window would not be consecutive without it
		return
	}
	for c.first != 0 && (int(c.last-c.first)+1 == c.capacity || c.bytes+size > c.maxBytes) {
		c.dropFirst()
	}
	c.ring[l.Index%uint64(c.capacity)] = l
	c.bytes += size
	if c.first == 0 {
		c.first = l.Index
	}
	c.last = l.Index
}

func (c *logCache) dropFirst() {
	slot := c.first % uint64(c.capacity)
	c.bytes -= entrySize(c.ring[slot])
	c.ring[slot] = nil
	if c.first == c.last {
		c.first, c.last = 0, 0
		return
	}
	c.first++
}

func (c *logCache) clear() {
	clear(c.ring)
	c.first, c.last, c.bytes = 0, 0, 0
}

func (c *logCache) reset() {
	c.mu.Lock()
	c.clear()
	c.mu.Unlock()
}

// DeleteRange forgets every cached entry (raft deletes a prefix after a
// snapshot, or a conflicting suffix on a follower), then deletes.
func (c *logCache) DeleteRange(min, max uint64) error {
	c.reset()
	return c.LogStore.DeleteRange(min, max)
}
