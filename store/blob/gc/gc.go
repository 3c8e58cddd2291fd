package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
)

// DefaultGrace is Config.Grace's default.
const DefaultGrace = time.Hour

// deleteBatch is how many DeleteRun commands go in one proposal.
const deleteBatch = 100

// Config configures a collection.
type Config struct {
	Store *store.Store
	Blobs *blob.Store
	// KeepRuns is how long a finished run is kept after it finished, by
	// namespace; the "" entry applies to namespaces not listed. A
	// namespace with no entry (and no "" entry), or 0, keeps runs forever.
	KeepRuns map[string]time.Duration
	// Grace keeps blobs written less than this long ago (uploads in
	// flight, outputs not yet reported).
	Grace time.Duration
	// DryRun reports what would be deleted and deletes nothing.
	DryRun bool
	// Dropped, when set, is told the blobs a collection deleted, after it
	// deleted them: a cluster node records that it no longer holds them
	// (cluster.Blobs.Dropped), so that repair does not fetch them again.
	Dropped func(ctx context.Context, digests []string) error
	// Now is the clock (time.Now when nil).
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultConfig returns a configuration over st and blobs with the default
// grace and no run retention.
func DefaultConfig(st *store.Store, blobs *blob.Store) Config {
	return Config{Store: st, Blobs: blobs, Grace: DefaultGrace, Now: time.Now, Logger: slog.New(slog.DiscardHandler)}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("gc: config: Store: required")
	case c.Blobs == nil:
		return errors.New("gc: config: Blobs: required")
	case c.Grace < 0:
		return fmt.Errorf("gc: config: Grace: must not be negative, got %s", c.Grace)
	}
	for ns, d := range c.KeepRuns {
		if d < 0 {
			return fmt.Errorf("gc: config: KeepRuns[%q]: must not be negative, got %s", ns, d)
		}
	}
	return nil
}

// Run is a run that retention deletes.
type Run struct {
	ID         string    `json:"id"`
	Namespace  string    `json:"namespace"`
	FinishedAt time.Time `json:"finished_at"`
}

// Report is what a collection did (or, dry, would do).
type Report struct {
	DryRun bool `json:"dry_run"`
	// Store names the blob backend.
	Store string `json:"store"`
	// Runs are the runs deleted by retention.
	Runs []Run `json:"runs"`
	// Blobs are the blobs deleted, by digest; Size is the stored size.
	Blobs []blob.Info `json:"blobs"`
	// BytesFreed adds up the deleted blobs' stored sizes.
	BytesFreed int64 `json:"bytes_freed"`
	// Referenced counts the stored blobs kept because the state refers to
	// them; Young those kept for being younger than the grace period.
	Referenced int `json:"referenced"`
	Young      int `json:"young"`
}

// Collect applies run retention, then deletes the blobs nothing refers to.
func Collect(ctx context.Context, cfg Config) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now()
	cutoff := now.Add(-cfg.Grace)
	rep := Report{DryRun: cfg.DryRun, Store: cfg.Blobs.Backend().String(), Runs: []Run{}, Blobs: []blob.Info{}}

	expired, err := expiredRuns(cfg, now)
	if err != nil {
		return rep, err
	}
	skip := map[string]bool{}
	for _, r := range expired {
		skip[r.ID] = true
	}
	if !cfg.DryRun {
		if expired, err = deleteRuns(ctx, cfg.Store, expired); err != nil {
			return rep, err
		}
	}
	rep.Runs = expired

	// List first, read the references second: a blob referred to by a
	// commit made while listing is then in the references.
	var stored []blob.Info
	if err := cfg.Blobs.List(ctx, func(i blob.Info) error { stored = append(stored, i); return nil }); err != nil {
		return rep, fmt.Errorf("gc: %w", err)
	}
	var skipRun func(string) bool
	if cfg.DryRun {
		skipRun = func(id string) bool { return skip[id] }
	}
	refs, err := cfg.Store.BlobRefs(skipRun)
	if err != nil {
		return rep, fmt.Errorf("gc: %w", err)
	}
	sort.Slice(stored, func(i, j int) bool { return stored[i].Digest < stored[j].Digest })
	for _, info := range stored {
		switch {
		case info.Digest == blob.EmptyDigest:
			continue // always there, never deleted
		case refs[info.Digest] != "":
			rep.Referenced++
			continue
		case !info.ModTime.Before(cutoff):
			rep.Young++
			continue
		}
		if !cfg.DryRun {
			gone, err := deleteBlob(ctx, cfg.Blobs, info.Digest, cutoff)
			if err != nil {
				return rep, err
			}
			if !gone {
				rep.Young++
				continue
			}
		}
		rep.Blobs = append(rep.Blobs, info)
		rep.BytesFreed += info.Size
	}
	if cfg.Dropped != nil && !cfg.DryRun && len(rep.Blobs) > 0 {
		ds := make([]string, len(rep.Blobs))
		for i, b := range rep.Blobs {
			ds[i] = b.Digest
		}
		if err := cfg.Dropped(ctx, ds); err != nil {
			return rep, fmt.Errorf("gc: %w", err)
		}
	}
	cfg.Logger.Info("gc", "dry_run", cfg.DryRun, "runs", len(rep.Runs), "blobs", len(rep.Blobs),
		"bytes_freed", rep.BytesFreed, "referenced", rep.Referenced, "young", rep.Young)
	return rep, nil
}

// deleteBlob deletes digest unless it was written (or re-stored) at or
// after cutoff since it was listed; it reports whether it deleted it.
func deleteBlob(ctx context.Context, blobs *blob.Store, digest string, cutoff time.Time) (bool, error) {
	info, err := blobs.Stat(ctx, digest)
	if errors.Is(err, blob.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("gc: %w", err)
	}
	if !info.ModTime.Before(cutoff) {
		return false, nil
	}
	if err := blobs.Delete(ctx, digest); err != nil {
		return false, fmt.Errorf("gc: %w", err)
	}
	return true, nil
}

// expiredRuns returns the finished runs past their namespace's retention,
// oldest first.
func expiredRuns(cfg Config, now time.Time) ([]Run, error) {
	if len(cfg.KeepRuns) == 0 {
		return nil, nil
	}
	runs, err := cfg.Store.ListRuns()
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	var out []Run
	for _, r := range runs {
		ns := store.RunNamespace(r)
		keep, ok := cfg.KeepRuns[ns]
		if !ok {
			keep = cfg.KeepRuns[""]
		}
		if keep <= 0 || !r.State.Final() || r.FinishedAt.IsZero() || !r.FinishedAt.Before(now.Add(-keep)) {
			continue
		}
		out = append(out, Run{ID: r.ID, Namespace: ns, FinishedAt: r.FinishedAt})
	}
	slices.SortFunc(out, func(a, b Run) int { return a.FinishedAt.Compare(b.FinishedAt) })
	return out, nil
}

// deleteRuns proposes DeleteRun for each run, in batches; it returns the
// runs the store deleted (a run deleted meanwhile is rejected, not an
// error).
func deleteRuns(ctx context.Context, st *store.Store, runs []Run) ([]Run, error) {
	var done []Run
	for len(runs) > 0 {
		n := min(len(runs), deleteBatch)
		cmds := make([]store.Command, n)
		for i, r := range runs[:n] {
			cmds[i] = store.DeleteRun{RunID: r.ID}
		}
		res, err := st.Apply(ctx, cmds...)
		if err != nil {
			return done, fmt.Errorf("gc: delete runs: %w", err)
		}
		rejected := map[int]bool{}
		for _, rj := range res.Rejected {
			rejected[rj.Cmd] = true
		}
		for i, r := range runs[:n] {
			if !rejected[i] {
				done = append(done, r)
			}
		}
		runs = runs[n:]
	}
	return done, nil
}
