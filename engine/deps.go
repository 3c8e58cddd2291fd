package engine

import (
	"context"
	"time"

	"github.com/skiffml/skiff/store"
)

// Store is what the engine needs of the replicated store; *store.Store is
// one. Tests wrap it to reject or delay commits on purpose.
type Store interface {
	// Apply proposes cmds as one entry and returns what the state machine
	// rejected (see store.Store.Apply).
	Apply(ctx context.Context, cmds ...store.Command) (store.ApplyResult, error)
	GetRun(id string) (store.Run, error)
	FindRun(idOrPrefix string) (store.Run, error)
	RunByRequestID(reqID string) (store.Run, error)
	UnfinishedRuns() ([]store.Run, error)
	Tasks(runID string) ([]store.Task, error)
	Task(runID string, index int) (store.Task, error)
	CacheLookup(key string) (store.CacheEntry, error)
	// Subscribe returns the feed of changes applied from now on: how the
	// engine learns of new runs, cancellations and retries.
	Subscribe(limit int) *store.Subscription
	// CancelRequested reports whether the run's cancellation is committed
	// (checked right before an execution starts).
	CancelRequested(runID string) (bool, error)
}

var _ Store = (*store.Store)(nil)

// Clock is the engine's time source: Now stamps what it records, AfterFunc
// arms retry backoffs. Tests pass a manual clock.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc; *time.Timer is one.
type Timer interface {
	Stop() bool
}

// realClock is the system clock.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
