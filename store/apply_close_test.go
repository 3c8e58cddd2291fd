package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestStore_ApplyEndsWhenTheStoreCloses: applies in flight when the store
// closes all return (committed, or ErrClosed), even those raft had queued
// in its buffered apply channel and never answers after a shutdown. Such
// an Apply used to block forever, and with it the engine of a killed
// leader and whoever waited for that engine to stop.
func TestStore_ApplyEndsWhenTheStoreCloses(t *testing.T) {
	for round := range 5 {
		s := openTestStore(t, t.TempDir())
		var wg sync.WaitGroup
		stop := make(chan struct{})
		errs := make(chan error, 64)
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					_, err := s.Apply(context.Background(), newRun(fmt.Sprintf("r%d-%d-%d", round, g, i), 1))
					if err != nil {
						if !errors.Is(err, ErrClosed) {
							errs <- err
						}
						return
					}
				}
			}()
		}
		time.Sleep(30 * time.Millisecond)
		_ = s.Close()
		close(stop)
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: Apply calls still blocked 20s after Close", round)
		}
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
	}
}
