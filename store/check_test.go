package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

// findingFor returns the first problem found in file (a prefix), or "".
func findingFor(r CheckReport, file string) string {
	for _, f := range r.Findings {
		if !f.OK && strings.HasPrefix(f.File, file) {
			return f.Message
		}
	}
	return ""
}

func TestCheck_ReportsWhatItFinds(t *testing.T) {
	t.Parallel()
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	withBlob := func(tb testing.TB, kind string) damagedDir {
		d := newDamagedDirOf(tb, kind)
		s := openTestStoreOf(tb, d.dir, kind)
		defer s.Close()
		out := map[string]spec.Value{"model": {Artifact: &spec.ArtifactRef{Digest: digest, Size: 1}}}
		res, err := s.Apply(context.Background(), TransitionTasks{RunID: "aa", Items: []Transition{
			{Task: 0, Attempt: 1, From: runn, To: succ, Outputs: out, Time: t0},
		}})
		if err != nil || len(res.Rejected) > 0 {
			tb.Fatalf("%+v %v", res, err)
		}
		return d
	}
	okBlobs := func(string) error { return nil }
	cases := []struct {
		name   string
		damage func(tb testing.TB, d damagedDir)
		blobs  BlobChecker
		file   string // "" for a healthy dir
		want   string
	}{
		{"healthy", func(testing.TB, damagedDir) {}, okBlobs, "", ""},
		{"snapshot garbage", func(tb testing.TB, d damagedDir) { overwrite(tb, filepath.Join(d.snaps[1], "state.bin")) }, okBlobs, "snapshots/", "CRC"},
		{"log replaced", func(tb testing.TB, d damagedDir) { replaceLog(tb, newDamagedDirOf(tb, d.kind), d) }, okBlobs, "state.db", "does not match"},
		{"log garbage", func(tb testing.TB, d damagedDir) {
			if d.kind == LogStoreWAL {
				overwrite(tb, walSegments(tb, d)[0])
				return
			}
			overwrite(tb, d.logPath())
		}, okBlobs, "raft", "damaged"},
		{"state.db garbage", func(tb testing.TB, d damagedDir) { overwrite(tb, filepath.Join(d.dir, "state.db")) }, okBlobs, "state.db", "damaged"},
		{"blob missing", func(testing.TB, damagedDir) {}, func(string) error { return errors.New("blob not found") }, "blob " + digest, "run aa task task-0 output model: blob not found"},
	}
	for _, kind := range LogStores {
		for _, c := range cases {
			t.Run(kind+" "+c.name, func(t *testing.T) {
				t.Parallel()
				d := withBlob(t, kind)
				c.damage(t, d)
				r, err := Check(d.dir, c.blobs)
				if err != nil {
					t.Fatal(err)
				}
				if c.file == "" {
					if !r.Healthy() {
						t.Fatalf("healthy dir reported: %+v", r.Findings)
					}
					if len(r.Findings) < 5 {
						t.Errorf("too few findings: %+v", r.Findings)
					}
					return
				}
				if r.Healthy() {
					t.Fatalf("damage not found: %+v", r.Findings)
				}
				if msg := findingFor(r, c.file); !strings.Contains(msg, c.want) {
					t.Fatalf("finding for %s: %q, want %q; all: %+v", c.file, msg, c.want, r.Findings)
				}
			})
		}
	}
}

func TestCheck_RefusesAnOpenDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	defer s.Close()
	if _, err := Check(dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("check of an open dir: %v", err)
	}
}

// TestCheck_SaysWhatOpenDoesWithAnUncleanState: for a state.db not closed
// cleanly, store check says whether the next open keeps it (stamped on
// this boot, this file) or rebuilds it.
func TestCheck_SaysWhatOpenDoesWithAnUncleanState(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	if got := uncleanState(path); !strings.Contains(got, "is missing") {
		t.Errorf("missing: %q", got)
	}
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := uncleanState(path); !strings.Contains(got, "rebuilds it") || strings.Contains(got, "keeps it") {
		t.Errorf("no stamp: %q", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if bootStamp(fi) == "" {
		t.Skip("no boot id here: never kept")
	}
	if err := os.WriteFile(path+".boot", []byte(bootStamp(fi)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := uncleanState(path); !strings.Contains(got, "keeps it if it opens whole") {
		t.Errorf("stamped on this boot: %q", got)
	}
}
