package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/skiffml/skiff/engine/spec"
)

const benchBatch = 256

// BenchmarkApplyTransitions measures committed task transitions per second
// on a durable store (fsync on): each Apply carries 256 transitions (256
// tasks PENDING->RUNNING, or the same 256 RUNNING->SUCCEEDED).
func BenchmarkApplyTransitions(b *testing.B) {
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", workers), func(b *testing.B) { benchTransitions(b, workers) })
	}
}

func benchTransitions(b *testing.B, workers int) {
	cfg := DefaultConfig(b.TempDir())
	s, err := Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	pairs := (b.N + 1) / 2
	for i := 0; i < pairs; i += 16 {
		var cmds []Command
		for j := i; j < min(i+16, pairs); j++ {
			cmds = append(cmds, newRun(fmt.Sprintf("bench-%d", j), benchBatch))
		}
		if _, err := s.Apply(ctx, cmds...); err != nil {
			b.Fatal(err)
		}
	}
	batch := func(run string, attempt int, from, to spec.TaskState) TransitionTasks {
		tt := TransitionTasks{RunID: run, Items: make([]Transition, benchBatch)}
		for i := range tt.Items {
			tt.Items[i] = Transition{Task: i, Attempt: 1, From: from, To: to, Time: t0, ExecutionID: "exec"}
		}
		return tt
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r := int(next.Add(1) - 1)
				if r >= pairs {
					return
				}
				run := fmt.Sprintf("bench-%d", r)
				for _, tt := range []TransitionTasks{batch(run, 1, pend, runn), batch(run, 1, runn, succ)} {
					res, err := s.Apply(ctx, tt)
					if err == nil && len(res.Rejected) > 0 {
						err = fmt.Errorf("rejected: %s", res.Rejected[0].Reason)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(pairs*2*benchBatch)/elapsed.Seconds(), "transitions/s")
}

// BenchmarkEncodeBatch measures encoding one entry of 256 transitions,
// including the check that it decodes before it is proposed.
func BenchmarkEncodeBatch(b *testing.B) {
	tt := TransitionTasks{RunID: "bench"}
	for i := range benchBatch {
		tt.Items = append(tt.Items, Transition{Task: i, Attempt: 1, From: spec.TaskPending, To: spec.TaskRunning, Time: t0, ExecutionID: fmt.Sprintf("bench-%d-1", i), Executor: "local"})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeBatch([]Command{tt}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWAL_GetLog reads back 4,096 entries of 300 bytes, as raft does
// when it replays a log at a restart.
func BenchmarkWAL_GetLog(b *testing.B) {
	l, err := openRaftLog(b.TempDir(), LogStoreWAL, logOptions{noSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	const n = 4096
	var logs []*raft.Log
	for i := 1; i <= n; i++ {
		logs = append(logs, &raft.Log{Index: uint64(i), Term: 1, Type: raft.LogCommand, Data: make([]byte, 300)})
	}
	if err := l.StoreLogs(logs); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		for i := uint64(1); i <= n; i++ {
			var got raft.Log
			if err := l.GetLog(i, &got); err != nil {
				b.Fatal(err)
			}
		}
	}
}
