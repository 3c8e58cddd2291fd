package store

import (
	"bytes"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Change is what one applied raft entry changed that the engine or a
// worker acts on. Only changes the FSM accepted are listed (a rejected
// command or batch item changed nothing).
type Change struct {
	// Index is the raft index of the entry.
	Index uint64
	// RunsCreated, RunsCanceled and RunsRetried name the runs a CreateRun,
	// RequestCancel or RetryRun of the entry changed.
	RunsCreated  []string
	RunsCanceled []string
	RunsRetried  []string
	// Tasks are the tasks whose record a transition changed.
	Tasks []TaskRef
	// Assignments are the executions whose assignment was made, changed
	// (started, exited, cancel requested, lost) or dropped.
	Assignments []string
	// AssignmentNodes holds the node of each of Assignments, in the same
	// order (a worker skips other nodes' executions without reading
	// them); a Change made elsewhere may leave it empty.
	AssignmentNodes []string
	// AssignmentStates holds each of Assignments as this entry left it,
	// in the same order, so that a subscriber need not read it back: nil
	// where the entry dropped it (its attempt ended). Spec is set only
	// where the entry made the assignment. Shared by every subscriber:
	// read-only. A Change made elsewhere may leave it empty (read the
	// store then).
	AssignmentStates []*Assignment
	// Nodes are the worker nodes registered, heartbeating or marked down.
	Nodes []string

	// memo is the run record the entry's commands last decoded (see
	// assignedRun); cleared before the change is published.
	memo *runMemo
	// nodes are the node records the entry's commands decoded, by id
	// (see Change.node): an entry's assignments and reports alternate
	// between the nodes. Cleared with memo.
	nodes map[string]nodeMemo
	// tasks holds the task records the entry's transitions wrote, by
	// key, with the bytes stored (see Change.task); kept only when
	// memoTasks (the entry assigns executions). Cleared with memo.
	tasks     map[string]taskMemo
	memoTasks bool
	// cursors read the entry's keys, one per bucket (see Change.get).
	cursors map[string]*bolt.Cursor
}

// get is bucket.Get through a cursor kept for the entry: bbolt makes a
// new cursor, and grows its stack, for every Get, and an entry of a
// thousand assignments reads several keys for each. A cursor repositions
// from the root on every Seek, so writes between reads do not stale it.
func (ch *Change) get(tx *bolt.Tx, bucket, key []byte) []byte {
	if ch == nil {
		return tx.Bucket(bucket).Get(key)
	}
	c := ch.cursors[string(bucket)]
	if c == nil {
		if ch.cursors == nil {
			ch.cursors = make(map[string]*bolt.Cursor, 4)
		}
		c = tx.Bucket(bucket).Cursor()
		ch.cursors[string(bucket)] = c
	}
	k, v := c.Seek(key)
	if k == nil || !bytes.Equal(k, key) {
		return nil
	}
	return v
}

// addAssignment notes a's new state; a nil a notes that the assignment
// of execID (on node) was dropped.
func (ch *Change) addAssignment(execID, node string, a *Assignment) {
	ch.Assignments = append(ch.Assignments, execID)
	ch.AssignmentNodes = append(ch.AssignmentNodes, node)
	ch.AssignmentStates = append(ch.AssignmentStates, a)
}

// AssignmentState returns the state of Assignments[i] as the entry left
// it (nil, true: dropped); false when the change does not hold it.
func (ch *Change) AssignmentState(i int) (*Assignment, bool) {
	if len(ch.AssignmentStates) != len(ch.Assignments) {
		return nil, false
	}
	return ch.AssignmentStates[i], true
}

// TaskRef names one task of one run.
type TaskRef struct {
	RunID string
	Task  int
}

// size estimates the memory c holds, for the feed's bound: a little for
// each id, and each assignment state with its spec and its exit's
// parameter values.
func (c *Change) size() int {
	n := 64 * (len(c.RunsCreated) + len(c.RunsCanceled) + len(c.RunsRetried) + len(c.Tasks) + len(c.Assignments) + len(c.Nodes))
	for _, a := range c.AssignmentStates {
		if a == nil {
			continue
		}
		n += 256 + len(a.Spec)
		if a.Exit != nil {
			n += len(a.Exit.Reason)
			for k, v := range a.Exit.Outputs {
				n += 64 + len(k) + len(v.Param) + 128*len(v.Artifacts)
			}
		}
	}
	return n
}

func (c *Change) empty() bool {
	return len(c.RunsCreated)+len(c.RunsCanceled)+len(c.RunsRetried)+len(c.Tasks)+len(c.Assignments)+len(c.Nodes) == 0
}

// DefaultFeedLimit is the number of changes a subscription holds before it
// falls behind.
const DefaultFeedLimit = 16384

// feedBytes bounds, in the changes' estimated size (Change.size), what a
// subscription holds before it falls behind: a change carries the states
// of its entry's assignments (specs, exits), and a subscriber that stalls
// (an agent's long poll, a busy worker) must not keep gigabytes of them.
const feedBytes = 64 << 20

// Subscription receives the changes applied on this node, in log order.
// Publishing never blocks the FSM: a subscriber that lets more than its
// limit of changes pile up loses them all and is told it lagged, and must
// then rescan the store (nothing is lost silently).
type Subscription struct {
	f      *feed
	limit  int
	notify chan struct{}

	mu     sync.Mutex
	queue  []Change
	bytes  int // the queue's estimated size
	lagged bool
	closed bool
}

// Ready is signalled (capacity 1) when Next has something to return.
func (s *Subscription) Ready() <-chan struct{} { return s.notify }

// Next returns the changes queued since the last call, oldest first, and
// whether some were dropped since then (the subscriber fell behind, or the
// state was replaced by a snapshot): then the subscriber must read what it
// needs from the store again.
func (s *Subscription) Next() (changes []Change, lagged bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changes, lagged = s.queue, s.lagged
	s.queue, s.bytes, s.lagged = nil, 0, false
	return changes, lagged
}

// Close ends the subscription. It is safe to call twice.
func (s *Subscription) Close() {
	s.mu.Lock()
	s.closed, s.queue, s.bytes = true, nil, 0
	s.mu.Unlock()
	s.f.remove(s)
}

// push queues cs, of estimated size n (see Change.size).
func (s *Subscription) push(cs []Change, n int) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.lagged || len(s.queue)+len(cs) > s.limit || s.bytes+n > feedBytes {
		s.queue, s.bytes, s.lagged = nil, 0, true
	} else {
		s.queue = append(s.queue, cs...)
		s.bytes += n
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *Subscription) markLagged() {
	s.mu.Lock()
	if !s.closed {
		s.queue, s.bytes, s.lagged = nil, 0, true
	}
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// feed fans applied changes out to the subscriptions.
type feed struct {
	mu   sync.Mutex
	subs map[*Subscription]struct{}
}

func (f *feed) add(s *Subscription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[*Subscription]struct{}{}
	}
	f.subs[s] = struct{}{}
}

func (f *feed) remove(s *Subscription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs, s)
}

func (f *feed) publish(cs []Change) {
	if len(cs) == 0 {
		return
	}
	n := 0
	for i := range cs {
		n += cs[i].size()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		s.push(cs, n)
	}
}

// lagAll tells every subscriber to rescan (the state was replaced).
func (f *feed) lagAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		s.markLagged()
	}
}

// Subscribe returns a subscription to the changes this node applies from
// now on; limit bounds its queue (0 = DefaultFeedLimit). Close it when
// done.
func (s *Store) Subscribe(limit int) *Subscription {
	if limit <= 0 {
		limit = DefaultFeedLimit
	}
	sub := &Subscription{f: &s.fsm.feed, limit: limit, notify: make(chan struct{}, 1)}
	s.fsm.feed.add(sub)
	return sub
}

// Feed is a change feed that is fed from outside a store: an agent's
// copy of its node's state publishes the changes it sees through it, so
// that a worker reads it as it reads a store. The zero value is ready.
type Feed struct{ f feed }

// Subscribe returns a subscription to the changes published from now on;
// limit bounds its queue (0 = DefaultFeedLimit).
func (f *Feed) Subscribe(limit int) *Subscription {
	if limit <= 0 {
		limit = DefaultFeedLimit
	}
	sub := &Subscription{f: &f.f, limit: limit, notify: make(chan struct{}, 1)}
	f.f.add(sub)
	return sub
}

// Publish hands cs to every subscription.
func (f *Feed) Publish(cs ...Change) { f.f.publish(cs) }

// Lag tells every subscription to read its state again (the publisher
// lost track of what changed).
func (f *Feed) Lag() { f.f.lagAll() }

// noteFunc adds what an accepted command changed to ch; rejected lists the
// command's rejected batch items (for batch commands; a command rejected
// as a whole is not noted).
type noteFunc func(cmd Command, rejected map[int]bool, ch *Change)

// notes holds the noteFunc of each command type that changes something
// subscribers act on.
var notes = map[CommandType]noteFunc{
	TypeCreateRun: func(cmd Command, _ map[int]bool, ch *Change) {
		ch.RunsCreated = append(ch.RunsCreated, cmd.(CreateRun).Run.ID)
	},
	TypeRequestCancel: func(cmd Command, _ map[int]bool, ch *Change) {
		ch.RunsCanceled = append(ch.RunsCanceled, cmd.(RequestCancel).RunID)
	},
	TypeRetryRun: func(cmd Command, _ map[int]bool, ch *Change) {
		ch.RunsRetried = append(ch.RunsRetried, cmd.(RetryRun).RunID)
	},
	TypeTransitionTasks: func(cmd Command, rejected map[int]bool, ch *Change) {
		c := cmd.(TransitionTasks)
		for i, it := range c.Items {
			if !rejected[i] {
				ch.Tasks = append(ch.Tasks, TaskRef{RunID: c.RunID, Task: it.Task})
			}
		}
	},
}
