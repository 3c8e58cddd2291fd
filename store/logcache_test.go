package store

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	"pgregory.net/rapid"
)

// countingLogStore counts the reads that reach the log store, and fails
// writes while failing is set.
type countingLogStore struct {
	*raft.InmemStore
	reads   int
	failing bool
}

func (s *countingLogStore) GetLog(index uint64, out *raft.Log) error {
	s.reads++
	return s.InmemStore.GetLog(index, out)
}

func (s *countingLogStore) StoreLogs(logs []*raft.Log) error {
	if s.failing {
		// Like a store that wrote part of the batch before failing.
		_ = s.InmemStore.StoreLogs(logs[:len(logs)/2])
		return errors.New("disk full")
	}
	return s.InmemStore.StoreLogs(logs)
}

func entry(index uint64, size int) *raft.Log {
	data := bytes.Repeat([]byte{byte(index)}, size)
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

// checkCache checks the cache's bounds and bookkeeping.
func checkCache(t interface{ Fatalf(string, ...any) }, c *logCache) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	held, sum := 0, 0
	for _, l := range c.ring {
		if l != nil {
			held++
			sum += entrySize(l)
		}
	}
	switch {
	case sum != c.bytes:
		t.Fatalf("cache counts %d bytes, holds %d", c.bytes, sum)
	case sum > c.maxBytes:
		t.Fatalf("cache holds %d bytes, over its bound of %d", sum, c.maxBytes)
	case held > c.capacity:
		t.Fatalf("cache holds %d entries, over its capacity %d", held, c.capacity)
	case c.first == 0 && held != 0, c.first != 0 && uint64(held) != c.last-c.first+1:
		t.Fatalf("cache window %d..%d with %d entries held", c.first, c.last, held)
	}
}

// TestLogCache_BoundedInEntriesAndBytes: the cache keeps the latest
// entries that fit both bounds and serves their reads; an entry larger
// than the byte bound is not kept (one user's megabytes of pipeline files
// cannot pin 512 times their size in the server's memory); everything
// still reads back right.
func TestLogCache_BoundedInEntriesAndBytes(t *testing.T) {
	under := &countingLogStore{InmemStore: raft.NewInmemStore()}
	c, err := newLogCache(under, 8, 1000)
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[uint64]int{}
	store := func(from uint64, n, size int) {
		t.Helper()
		var logs []*raft.Log
		for i := 0; i < n; i++ {
			logs = append(logs, entry(from+uint64(i), size))
			sizes[from+uint64(i)] = size
		}
		if err := c.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
		checkCache(t, c)
	}
	readAll := func() {
		t.Helper()
		for idx, size := range sizes {
			var l raft.Log
			if err := c.GetLog(idx, &l); err != nil {
				t.Fatalf("get %d: %v", idx, err)
			}
			if l.Index != idx || !bytes.Equal(l.Data, entry(idx, size).Data) {
				t.Fatalf("get %d: entry %d with %d bytes, want its own %d", idx, l.Index, len(l.Data), size)
			}
		}
	}
	hits := func(from, to uint64) int {
		t.Helper()
		before := under.reads
		var l raft.Log
		for i := from; i <= to; i++ {
			if err := c.GetLog(i, &l); err != nil {
				t.Fatal(err)
			}
		}
		return int(to-from+1) - (under.reads - before)
	}

	store(1, 20, 100) // the entry bound: 13..20 kept
	if c.first != 13 || c.last != 20 || c.bytes != 800 {
		t.Fatalf("window %d..%d, %d bytes; want 13..20, 800", c.first, c.last, c.bytes)
	}
	if n := hits(13, 20); n != 8 {
		t.Errorf("%d of 8 cached entries read from memory", n)
	}
	if n := hits(1, 12); n != 0 {
		t.Errorf("%d of 12 evicted entries read from memory", n)
	}
	store(21, 5, 300) // the byte bound: 23..25 (900 bytes) kept
	if c.first != 23 || c.last != 25 || c.bytes != 900 {
		t.Fatalf("window %d..%d, %d bytes; want 23..25, 900", c.first, c.last, c.bytes)
	}
	store(26, 1, 5000) // too large to keep: the window empties
	if c.first != 0 || c.bytes != 0 {
		t.Fatalf("window %d..%d, %d bytes after an entry over the bound; want empty", c.first, c.last, c.bytes)
	}
	store(27, 2, 10)
	if c.first != 27 || c.last != 28 {
		t.Fatalf("window %d..%d, want 27..28", c.first, c.last)
	}
	readAll()

	// A failed write keeps nothing: what the store holds is not known.
	under.failing = true
	if err := c.StoreLogs([]*raft.Log{entry(29, 10), entry(30, 10)}); err == nil {
		t.Fatal("a failed write reported no error")
	}
	under.failing = false
	checkCache(t, c)
	if c.first != 0 {
		t.Fatalf("window %d..%d after a failed write, want empty", c.first, c.last)
	}

	// A conflicting suffix is deleted and written again with new data:
	// reads give the new entries.
	if err := c.DeleteRange(27, 30); err != nil {
		t.Fatal(err)
	}
	for i := uint64(27); i <= 30; i++ {
		delete(sizes, i)
	}
	store(27, 3, 7)
	readAll()
}

// TestLogCache_ReadsMatchTheLogStore: under random writes (batches of
// random sizes, some over the byte bound), failed writes, and deletions of
// a prefix (compaction) or a suffix (a follower's conflict), every read
// through the cache gives what the log store holds, and the bounds hold.
func TestLogCache_ReadsMatchTheLogStore(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		under := &countingLogStore{InmemStore: raft.NewInmemStore()}
		capacity := rapid.IntRange(1, 16).Draw(t, "capacity")
		maxBytes := rapid.IntRange(1, 400).Draw(t, "max_bytes")
		c, err := newLogCache(under, capacity, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		next := uint64(1)
		gen := 0
		for step := 0; step < 40; step++ {
			switch rapid.IntRange(0, 5).Draw(t, "op") {
			case 0, 1, 2: // write a batch
				n := rapid.IntRange(1, 6).Draw(t, "n")
				var logs []*raft.Log
				for i := 0; i < n; i++ {
					l := entry(next, rapid.IntRange(0, 120).Draw(t, "size"))
					l.Term = uint64(gen)
					logs = append(logs, l)
					next++
				}
				under.failing = rapid.IntRange(0, 9).Draw(t, "fail") == 0
				if err := c.StoreLogs(logs); err != nil {
					next = logs[0].Index + uint64(len(logs)/2)
				}
				under.failing = false
			case 3: // a follower's conflict: delete a suffix, write anew
				last, _ := under.LastIndex()
				first, _ := under.FirstIndex()
				if last == 0 {
					continue
				}
				from := rapid.Uint64Range(first, last).Draw(t, "suffix_from")
				if err := c.DeleteRange(from, last); err != nil {
					t.Fatal(err)
				}
				next = from
				gen++
			case 4: // compaction: delete a prefix
				last, _ := under.LastIndex()
				first, _ := under.FirstIndex()
				if last == 0 || first == last {
					continue
				}
				to := rapid.Uint64Range(first, last-1).Draw(t, "prefix_to")
				if err := c.DeleteRange(first, to); err != nil {
					t.Fatal(err)
				}
			case 5: // reads
			}
			checkCache(t, c)
			first, _ := under.FirstIndex()
			last, _ := under.LastIndex()
			for i := first; i <= last && last > 0; i++ {
				var want, got raft.Log
				werr := under.InmemStore.GetLog(i, &want)
				gerr := c.GetLog(i, &got)
				if (werr == nil) != (gerr == nil) {
					t.Fatalf("get %d: cache %v, store %v", i, gerr, werr)
				}
				if werr == nil && (got.Index != want.Index || got.Term != want.Term || !bytes.Equal(got.Data, want.Data)) {
					t.Fatalf("get %d: cache gives %s, store %s", i, describe(&got), describe(&want))
				}
			}
		}
	})
}

func describe(l *raft.Log) string {
	return fmt.Sprintf("index %d term %d with %d bytes", l.Index, l.Term, len(l.Data))
}
