package leader_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/leader"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.DefaultConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestLeader_RunsAnEngineWhileLeading: a one-voter store leads at once;
// the Leader starts an engine (OnElected, then OnChange with it, then
// OnReady once), runs submit through it, and stopping Follow stops it
// (OnChange nil, Engine nil, requests refused).
func TestLeader_RunsAnEngineWhileLeading(t *testing.T) {
	st := openStore(t)
	var mu sync.Mutex
	var events []string
	note := func(s string) { mu.Lock(); events = append(events, s); mu.Unlock() }
	ecfg := engine.DefaultConfig(st, sim.New(sim.Config{}))
	l, err := leader.New(leader.Config{Engine: ecfg, Store: st, EngineWait: 100 * time.Millisecond,
		OnElected: func() { note("elected") },
		OnChange: func(e *engine.Engine) {
			if e != nil {
				note("engine")
			} else {
				note("stopped")
			}
		},
		OnReady: func(int) { note("ready") }})
	if err != nil {
		t.Fatal(err)
	}
	stop := l.Follow()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := l.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, err := spec.ParseSkiff([]byte("name: two\nexecutor: sim\ntasks:\n  - {name: a, command: [x]}\n  - {name: b, command: [x], after: [a]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := l.Submit(ctx, p, map[string]json.RawMessage{}, engine.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := e.Wait(ctx, id); err != nil || r.State != spec.RunSucceeded {
		t.Fatalf("run: %v %v", r.State, err)
	}
	stop()
	stop() // idempotent
	if l.Engine() != nil {
		t.Fatal("an engine still runs after Follow stopped")
	}
	mu.Lock()
	got := append([]string(nil), events...)
	mu.Unlock()
	want := []string{"elected", "engine", "ready", "stopped"}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("events %v, want %v", got, want)
		}
	}
	if _, err := l.Current(ctx); !errors.Is(err, store.ErrNotLeader) && !errors.Is(err, engine.ErrStopped) {
		t.Errorf("Current after stop: %v", err)
	}
}

func TestNew_RequiresAStore(t *testing.T) {
	if _, err := leader.New(leader.Config{}); !errors.Is(err, leader.ErrInvalidConfig) {
		t.Fatalf("got %v", err)
	}
}
