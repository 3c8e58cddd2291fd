package gc_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
	"github.com/skiffml/skiff/store/blob/gc"
	"github.com/skiffml/skiff/store/blob/s3"
	"github.com/skiffml/skiff/store/blob/s3/s3test"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.DefaultConfig(filepath.Join(t.TempDir(), "store")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func apply(t *testing.T, st *store.Store, cmds ...store.Command) {
	t.Helper()
	res, err := st.Apply(context.Background(), cmds...)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) > 0 {
		t.Fatalf("rejected: %+v", res.Rejected)
	}
}

func put(t *testing.T, blobs *blob.Store, s string) spec.ArtifactRef {
	t.Helper()
	ref, err := blobs.Put(context.Background(), strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// runWith records run id with one task whose attempt logged log and output
// out (cache key key, when not empty); finished: the run SUCCEEDED at at.
func runWith(t *testing.T, st *store.Store, id string, out, log spec.ArtifactRef, key string, finished bool, at time.Time) {
	t.Helper()
	apply(t, st, store.CreateRun{Run: store.Run{ID: id, State: spec.RunPending, CreatedAt: at}, TaskNames: []string{"step"}})
	apply(t, st, store.SetRunState{RunID: id, From: spec.RunPending, To: spec.RunRunning, Time: at})
	apply(t, st, store.TransitionTasks{RunID: id, Items: []store.Transition{
		{Task: 0, Attempt: 1, From: spec.TaskPending, To: spec.TaskRunning, Time: at, ExecutionID: id + "-0-1", Executor: "local"},
	}})
	apply(t, st, store.TransitionTasks{RunID: id, Items: []store.Transition{
		{Task: 0, Attempt: 1, From: spec.TaskRunning, To: spec.TaskSucceeded, Time: at, Logs: &log, CacheKey: key,
			Outputs: map[string]spec.Value{"out": {Artifact: &out}}},
	}})
	if finished {
		apply(t, st, store.SetRunState{RunID: id, From: spec.RunRunning, To: spec.RunSucceeded, Time: at})
	}
}

type backend struct {
	name  string
	open  func(t *testing.T) *blob.Store
	local bool // modification times can be set by hand
}

func backends() []backend {
	return []backend{
		{name: "local", local: true, open: func(t *testing.T) *blob.Store {
			b, err := blob.Open(filepath.Join(t.TempDir(), "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{name: "S3", open: func(t *testing.T) *blob.Store {
			cfg := s3test.Config(t, "gc/")
			be, err := s3.New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			b, err := blob.OpenConfig(blob.Config{Dir: t.TempDir(), Backend: be, MaxEntrySize: blob.DefaultMaxEntrySize})
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
	}
}

// TestCollect_S3AndLocal: retention deletes old finished runs; gc then
// deletes exactly the blobs nothing refers to any more and that are older
// than the grace period, in each backend; a dry run reports the same and
// changes nothing.
func TestCollect_S3AndLocal(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, blobs := openStore(t), be.open(t)
			at := time.Now().UTC()
			old := put(t, blobs, "output of an old run")
			oldLog := put(t, blobs, "log of an old run")
			cached := put(t, blobs, "output of an old run that a cache entry keeps")
			live := put(t, blobs, "output of an unfinished run")
			liveLog := put(t, blobs, "log of an unfinished run")
			recent := put(t, blobs, "output of a recent finished run")
			orphan := put(t, blobs, "uploaded, never referred to")
			runWith(t, st, "run-old", old, oldLog, "", true, at)
			runWith(t, st, "run-cached", cached, oldLog, "sha256:key", true, at)
			runWith(t, st, "run-live", live, liveLog, "", false, at)
			runWith(t, st, "run-recent", recent, liveLog, "", true, at.Add(72*time.Hour))
			young := spec.ArtifactRef{}
			if be.local {
				young = put(t, blobs, "uploaded just now, not yet reported")
				// Everything else was written long before the collection.
				for _, r := range []spec.ArtifactRef{old, oldLog, cached, live, liveLog, recent, orphan} {
					h := strings.TrimPrefix(r.Digest, "sha256:")
					p := filepath.Join(blobs.Dir(), "sha256", h[:2], h)
					if err := os.Chtimes(p, at.Add(-time.Hour), at.Add(-time.Hour)); err != nil {
						t.Fatal(err)
					}
				}
			}
			cfg := gc.DefaultConfig(st, blobs)
			// Four days on: run-old and run-cached are past a 2-day retention.
			now := at.Add(96 * time.Hour)
			cfg.Now = func() time.Time { return now }
			cfg.KeepRuns = map[string]time.Duration{"": 48 * time.Hour}
			cfg.Grace = 96*time.Hour + 30*time.Minute // spares the young blob, not those of an hour before
			if !be.local {
				cfg.Grace = time.Hour
			}
			wantGone := []string{old.Digest, oldLog.Digest, orphan.Digest}
			wantKept := []string{cached.Digest, live.Digest, liveLog.Digest, recent.Digest, blob.EmptyDigest}
			if be.local {
				wantKept = append(wantKept, young.Digest)
			}

			cfg.DryRun = true
			dry, err := gc.Collect(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, "dry run", dry, wantGone)
			for _, d := range append(wantGone, wantKept...) {
				if !blobs.Has(d) {
					t.Fatalf("dry run deleted %s", d)
				}
			}
			if _, err := st.GetRun("run-old"); err != nil {
				t.Fatalf("dry run deleted run-old: %v", err)
			}

			cfg.DryRun = false
			rep, err := gc.Collect(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkReport(t, "collection", rep, wantGone)
			for _, d := range wantGone {
				if blobs.Has(d) {
					t.Errorf("%s was not deleted", d)
				}
			}
			for _, d := range wantKept {
				if !blobs.Has(d) {
					t.Errorf("%s was deleted", d)
				}
			}
			for id, want := range map[string]bool{"run-old": false, "run-cached": false, "run-live": true, "run-recent": true} {
				if _, err := st.GetRun(id); (err == nil) != want {
					t.Errorf("run %s: kept = %v, want %v", id, err == nil, want)
				}
			}
			// Nothing is left to collect.
			again, err := gc.Collect(ctx, cfg)
			if err != nil || len(again.Runs)+len(again.Blobs) != 0 {
				t.Fatalf("second collection: %+v, %v", again, err)
			}
		})
	}
}

func checkReport(t *testing.T, what string, rep gc.Report, wantGone []string) {
	t.Helper()
	if len(rep.Runs) != 2 || rep.Runs[0].ID == rep.Runs[1].ID {
		t.Errorf("%s: runs %+v, want run-old and run-cached", what, rep.Runs)
	}
	got := map[string]bool{}
	var sum int64
	for _, b := range rep.Blobs {
		got[b.Digest] = true
		sum += b.Size
		if b.Size <= 0 {
			t.Errorf("%s: blob %s without its size", what, b.Digest)
		}
	}
	if len(got) != len(wantGone) || sum != rep.BytesFreed {
		t.Errorf("%s: blobs %+v (%d bytes, report says %d), want %v", what, rep.Blobs, sum, rep.BytesFreed, wantGone)
	}
	for _, d := range wantGone {
		if !got[d] {
			t.Errorf("%s: %s not collected", what, d)
		}
	}
}

// TestCollect_NoRetentionKeepsEveryRun: without KeepRuns no run goes, and
// only unreferenced old blobs do.
func TestCollect_NoRetentionKeepsEveryRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, blobs := openStore(t), backends()[0].open(t)
	at := time.Now().UTC()
	out, orphan := put(t, blobs, "out"), put(t, blobs, "orphan")
	runWith(t, st, "r1", out, out, "", true, at.Add(-365*24*time.Hour))
	cfg := gc.DefaultConfig(st, blobs)
	cfg.Now = func() time.Time { return at.Add(2 * time.Hour) }
	rep, err := gc.Collect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 0 || len(rep.Blobs) != 1 || rep.Blobs[0].Digest != orphan.Digest || !blobs.Has(out.Digest) {
		t.Fatalf("report %+v", rep)
	}
}

func TestConfig_ValidateNamesField(t *testing.T) {
	t.Parallel()
	st, blobs := openStore(t), backends()[0].open(t)
	for field, cfg := range map[string]gc.Config{
		"Store":    {Blobs: blobs},
		"Blobs":    {Store: st},
		"Grace":    {Store: st, Blobs: blobs, Grace: -time.Second},
		"KeepRuns": {Store: st, Blobs: blobs, KeepRuns: map[string]time.Duration{"team": -time.Hour}},
	} {
		_, err := gc.Collect(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("bad %s: %v", field, err)
		}
	}
	_ = errors.New
}
