package store

import (
	"fmt"
	"reflect"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/skiffml/skiff/engine/spec"
)

func subscribeFSM(f *testFSM, limit int) *Subscription {
	sub := &Subscription{f: &f.feed, limit: limit, notify: make(chan struct{}, 1)}
	f.feed.add(sub)
	return sub
}

func TestFeed_ListsAcceptedChangesOnly(t *testing.T) {
	f := newTestFSM(t)
	sub := subscribeFSM(f, 100)
	defer sub.Close()
	f.mustAccept(t, newRun("r1", 2))
	// A duplicate run is rejected: not listed.
	f.apply(t, newRun("r1", 2), RequestCancel{RunID: "nope", Time: t0})
	// Item 1 is stale (task 1 is PENDING, not RUNNING): only task 0 listed.
	f.apply(t, TransitionTasks{RunID: "r1", Items: []Transition{
		{Task: 0, Attempt: 1, From: spec.TaskPending, To: spec.TaskRunning, Time: t0, ExecutionID: "r1-0-1"},
		{Task: 1, Attempt: 1, From: spec.TaskRunning, To: spec.TaskSucceeded, Time: t0},
	}})
	f.mustAccept(t, RequestCancel{RunID: "r1", Time: t0})
	select {
	case <-sub.Ready():
	default:
		t.Fatal("Ready not signalled")
	}
	got, lagged := sub.Next()
	if lagged {
		t.Fatal("lagged with room to spare")
	}
	want := []Change{
		{Index: 1, RunsCreated: []string{"r1"}},
		{Index: 3, Tasks: []TaskRef{{RunID: "r1", Task: 0}}},
		{Index: 4, RunsCanceled: []string{"r1"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("changes:\n got %+v\nwant %+v", got, want)
	}
	if got, _ := sub.Next(); len(got) != 0 {
		t.Fatalf("Next again: %+v", got)
	}
}

func TestFeed_SlowSubscriberLagsAndNeverBlocksApply(t *testing.T) {
	f := newTestFSM(t)
	slow := subscribeFSM(f, 2)
	defer slow.Close()
	for _, id := range []string{"a", "b", "c", "d"} {
		f.mustAccept(t, newRun(id, 1)) // would block here if publishing waited
	}
	got, lagged := slow.Next()
	if !lagged || len(got) != 0 {
		t.Fatalf("want lagged with nothing queued, got lagged=%v %+v", lagged, got)
	}
	f.mustAccept(t, newRun("e", 1))
	got, lagged = slow.Next()
	if lagged || len(got) != 1 || got[0].RunsCreated[0] != "e" {
		t.Fatalf("after the rescan signal the feed resumes: lagged=%v %+v", lagged, got)
	}
	slow.Close()
	f.mustAccept(t, newRun("f", 1))
	if got, _ := slow.Next(); len(got) != 0 {
		t.Fatalf("closed subscription got %+v", got)
	}
}

func TestFeed_StoreSubscribeSeesRetry(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	sub := s.Subscribe(0)
	defer sub.Close()
	ctx := t.Context()
	if _, err := s.Apply(ctx, newRun("r", 1), SetRunState{RunID: "r", From: spec.RunRunning, To: spec.RunFailed, Time: t0}, RetryRun{RunID: "r", Time: t0}); err != nil {
		t.Fatal(err)
	}
	<-sub.Ready()
	got, _ := sub.Next()
	if len(got) != 1 || !reflect.DeepEqual(got[0].RunsRetried, []string{"r"}) || !reflect.DeepEqual(got[0].RunsCreated, []string{"r"}) {
		t.Fatalf("changes: %+v", got)
	}
}

func TestStore_CancelRequestedFollowsCancelAndRetry(t *testing.T) {
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	ctx := t.Context()
	check := func(want bool) {
		t.Helper()
		if got, err := s.CancelRequested("r"); err != nil || got != want {
			t.Fatalf("CancelRequested = %v, %v; want %v", got, err, want)
		}
	}
	if _, err := s.Apply(ctx, newRun("r", 1)); err != nil {
		t.Fatal(err)
	}
	check(false)
	if _, err := s.Apply(ctx, RequestCancel{RunID: "r", Time: t0}); err != nil {
		t.Fatal(err)
	}
	check(true)
	if _, err := s.Apply(ctx, SetRunState{RunID: "r", From: spec.RunCanceling, To: spec.RunCanceled, Time: t0}, RetryRun{RunID: "r", Time: t0}); err != nil {
		t.Fatal(err)
	}
	check(false)
}

// TestFeed_PublishedFromOutside: a Feed fed by its owner reaches its
// subscriptions like a store's, and Lag makes them rescan.
func TestFeed_PublishedFromOutside(t *testing.T) {
	var f Feed
	sub := f.Subscribe(0)
	defer sub.Close()
	f.Publish(Change{Index: 3, Assignments: []string{"x"}})
	select {
	case <-sub.Ready():
	default:
		t.Fatal("not ready after Publish")
	}
	got, lagged := sub.Next()
	if lagged || len(got) != 1 || got[0].Assignments[0] != "x" {
		t.Fatalf("got %+v lagged=%v", got, lagged)
	}
	f.Lag()
	if _, lagged := sub.Next(); !lagged {
		t.Fatal("Lag did not mark the subscription lagged")
	}
}

// TestFeed_BoundedInBytes: a subscription that lets more than feedBytes
// of changes pile up (the states of big assignments) lags, however few
// the changes; after Next it holds them again.
func TestFeed_BoundedInBytes(t *testing.T) {
	var f Feed
	sub := f.Subscribe(0)
	defer sub.Close()
	big := &Assignment{ExecutionID: "x", Spec: make([]byte, 1<<20)}
	change := func(i int) Change {
		return Change{Index: uint64(i), Assignments: []string{"x"}, AssignmentNodes: []string{"n1"}, AssignmentStates: []*Assignment{big}}
	}
	for i := 1; i <= feedBytes>>20-1; i++ {
		f.Publish(change(i))
	}
	if got, lagged := sub.Next(); lagged || len(got) != feedBytes>>20-1 {
		t.Fatalf("under the bound: lagged=%v, %d changes", lagged, len(got))
	}
	for i := 1; i <= feedBytes>>20+1; i++ {
		f.Publish(change(i))
	}
	if got, lagged := sub.Next(); !lagged || len(got) != 0 {
		t.Fatalf("over the bound: lagged=%v, %d changes; want lagged, none held", lagged, len(got))
	}
	f.Publish(change(1))
	if got, lagged := sub.Next(); lagged || len(got) != 1 {
		t.Fatalf("after Next: lagged=%v, %d changes", lagged, len(got))
	}
}

// TestChange_GetThroughOneCursor: an entry's reads through its kept
// cursor see what the entry wrote between them (new, changed and
// deleted keys), find nothing for a key that is not there (not the next
// key), and read as bucket.Get does without a change.
func TestChange_GetThroughOneCursor(t *testing.T) {
	f := newTestFSM(t)
	err := f.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketNodes)
		ch := &Change{}
		for _, k := range []string{"a", "c"} {
			if err := b.Put([]byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		check := func(step, key, want string) error {
			got := ch.get(tx, bucketNodes, []byte(key))
			if (got == nil) != (want == "") || string(got) != want {
				return fmt.Errorf("%s: get %q = %q, want %q", step, key, got, want)
			}
			var none *Change
			if plain := none.get(tx, bucketNodes, []byte(key)); string(plain) != string(got) {
				return fmt.Errorf("%s: get %q = %q through the cursor, %q without", step, key, got, plain)
			}
			return nil
		}
		steps := []struct {
			step, key, want string
			write           func() error
		}{
			{"first read", "a", "va", nil},
			{"absent key between two", "b", "", nil},
			{"absent key after the last", "d", "", nil},
			{"a key written since", "b", "vb", func() error { return b.Put([]byte("b"), []byte("vb")) }},
			{"a key changed since", "a", "va2", func() error { return b.Put([]byte("a"), []byte("va2")) }},
			{"a key deleted since", "c", "", func() error { return b.Delete([]byte("c")) }},
		}
		for _, s := range steps {
			if s.write != nil {
				if err := s.write(); err != nil {
					return err
				}
			}
			if err := check(s.step, s.key, s.want); err != nil {
				return err
			}
		}
		if len(ch.cursors) != 1 {
			return fmt.Errorf("%d cursors kept for one bucket", len(ch.cursors))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
