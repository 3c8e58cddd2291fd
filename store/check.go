package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hashicorp/raft"
	"github.com/klauspost/compress/zstd"
	"github.com/skiffml/skiff/engine/spec"
	bolt "go.etcd.io/bbolt"
)

// Finding is one line of a Check: what was looked at and what was found.
type Finding struct {
	// File is the part of the data dir: raft-wal or raft.db (the raft
	// log), state.db, snapshots/ID, or "blob sha256:...".
	File string `json:"file"`
	OK   bool   `json:"ok"`
	// Message says what was found; for a problem, also the way out when
	// there is one.
	Message string `json:"message"`
}

// CheckReport is what Check found, in order.
type CheckReport struct {
	Findings []Finding `json:"findings"`
}

// Healthy reports whether every finding is OK.
func (r CheckReport) Healthy() bool {
	return !slices.ContainsFunc(r.Findings, func(f Finding) bool { return !f.OK })
}

func (r *CheckReport) add(file string, err error, okMsg string, args ...any) {
	if err != nil {
		r.Findings = append(r.Findings, Finding{File: file, Message: err.Error()})
		return
	}
	r.Findings = append(r.Findings, Finding{File: file, OK: true, Message: fmt.Sprintf(okMsg, args...)})
}

// BlobChecker verifies the stored bytes of one blob (a missing or corrupt
// blob is an error). The blob store lives in store/blob, which this package
// does not import: the caller passes its check.
type BlobChecker func(digest string) error

// Check verifies the stopped data dir dir without changing it: the raft
// log (every entry reads and decodes), each snapshot (checksum, and the
// state it holds), state.db (readable, the state of this raft.db, reached
// by the log from the newest snapshot) and, when blobs is not nil, every
// blob a run or task refers to (outputs, logs). It fails (ErrLocked) while a
// store has the dir open; damage is reported in the findings, not as an
// error.
func Check(dir string, blobs BlobChecker) (CheckReport, error) {
	var r CheckReport
	if _, err := os.Stat(filepath.Join(dir, "state.db")); err != nil && len(presentLogs(dir)) == 0 {
		return r, fmt.Errorf("store: check %s: not a data dir (no %s, %s or state.db): %w", dir, walLogDir, boltLogFile, err)
	}
	lock, err := lockDir(dir, toolLockWait)
	if err != nil {
		return r, fmt.Errorf("store: check %s: %w (stop the skiff using it first)", dir, err)
	}
	defer lock.unlock()

	logs, err := openLogStore(dir)
	var log logRange
	logFile := "raft log"
	if kinds := presentLogs(dir); len(kinds) == 1 {
		logFile = logFileOf(kinds[0])
	}
	if err == nil {
		defer logs.Close()
		logFile = logs.file
		log, err = checkLog(logs)
	}
	if err != nil {
		r.add(logFile, err, "")
		logs = nil
	} else {
		r.add(logFile, checkEntries(logs, log), "entries %d..%d read and decode (%s)", log.First, log.Last, logs.kind)
	}
	metas := checkSnapshots(&r, dir)
	at, stateID := checkStateFile(&r, dir, blobs)
	switch {
	case logs == nil:
	case at.Index == 0:
		r.add(logFile, checkLogCoverage(log, metas), "reaches back to the newest snapshot")
	default:
		err := checkPairing(at, stateID, logs, log, metas)
		if err == nil {
			err = checkLogCoverage(log, metas)
		}
		r.add("state.db", err, "is the state of %s up to entry %d (term %d)", logFile, at.Index, at.Term)
	}
	return r, nil
}

// checkEntries decodes every command entry of the log.
func checkEntries(logs *raftLog, log logRange) error {
	var bad []error
	for i := log.First; i != 0 && i <= log.Last; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return err
		}
		if l.Type != raft.LogCommand {
			continue
		}
		if _, err := decodeBatch(l.Data); err != nil {
			bad = append(bad, fmt.Errorf("entry %d cannot be decoded: %w; if a newer skiff wrote it, use that one, "+
				"otherwise `skiff store skip-entry %d` drops it", i, err, i))
		}
	}
	return errors.Join(bad...)
}

// checkSnapshots checks every snapshot directory and returns the metas of
// those raft will list, newest first.
func checkSnapshots(r *CheckReport, dir string) []*raft.SnapshotMeta {
	snaps, err := raft.NewFileSnapshotStore(dir, snapshotsRetained, io.Discard)
	if err != nil {
		r.add("snapshots", err, "")
		return nil
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
	metas, _ := snaps.List()
	if len(ents) == 0 {
		r.add("snapshots", nil, "none yet")
	}
	listed := map[string]bool{}
	for _, m := range metas {
		listed[m.ID] = true
	}
	for _, e := range ents {
		if !e.IsDir() || filepath.Ext(e.Name()) == ".tmp" {
			continue
		}
		name := "snapshots/" + e.Name()
		if !listed[e.Name()] {
			r.add(name, fmt.Errorf("%w: meta.json unreadable; raft ignores this snapshot", ErrDamaged), "")
			continue
		}
		at, err := checkSnapshot(snaps, e.Name())
		r.add(name, err, "state up to entry %d reads", at)
	}
	return metas
}

// checkSnapshot opens a snapshot (raft verifies its checksum) and checks
// the state.db it holds.
func checkSnapshot(snaps *raft.FileSnapshotStore, id string) (uint64, error) {
	meta, rc, err := snaps.Open(id)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp("", "skiff-check-*.db")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	zr, err := zstd.NewReader(rc)
	if err == nil {
		_, err = io.Copy(tmp, zr)
		zr.Close()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("%w: decompress: %w", ErrDamaged, err)
	}
	if err := checkBoltFile(tmp.Name(), time.Second); err != nil {
		return 0, fmt.Errorf("%w: the state it holds: %w", ErrDamaged, err)
	}
	return meta.Index, nil
}

// checkStateFile checks state.db and the blobs it refers to, and returns
// its applied position and log id.
func checkStateFile(r *CheckReport, dir string, blobs BlobChecker) (logPosition, []byte) {
	path := filepath.Join(dir, "state.db")
	var at logPosition
	var id []byte
	if _, err := os.Stat(path + ".clean"); err != nil {
		r.add("state.db", nil, "%s", uncleanState(path))
		return at, nil
	}
	if err := checkBoltFile(path, time.Nanosecond); err != nil {
		r.add("state.db", err, "")
		return at, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Nanosecond})
	if err != nil {
		r.add("state.db", err, "")
		return at, nil
	}
	defer db.Close()
	var refs map[string]string // digest -> who refers to it
	err = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return nil
		}
		at, id = appliedTx(tx), slices.Clone(tx.Bucket(bucketMeta).Get(keyLogID))
		var err error
		refs, err = blobRefsTx(tx, nil)
		return err
	})
	r.add("state.db", err, "reads: applied entry %d (term %d)", at.Index, at.Term)
	if blobs != nil {
		checkBlobs(r, refs, blobs)
	}
	return at, id
}

// uncleanState says what the next open does with a state.db that was not
// closed cleanly (see fsm.checkClean).
func uncleanState(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "is missing: the next open rebuilds it from snapshots/ and the raft log"
	}
	switch stamp := bootStamp(fi); {
	case stamp != "" && readBootMarker(path+".boot") == stamp:
		return "was not closed cleanly (its process died, on this boot of the machine): the next open keeps it if it opens whole, else rebuilds it from snapshots/ and the raft log"
	default:
		return "was not closed cleanly, and the machine restarted since (or it is a copy, or the boot is unknown): the next open rebuilds it from snapshots/ and the raft log"
	}
}

// checkBlobs reports each referenced blob that is missing or damaged, and
// one line for those that verify.
func checkBlobs(r *CheckReport, refs map[string]string, blobs BlobChecker) {
	digests := make([]string, 0, len(refs))
	for d := range refs {
		digests = append(digests, d)
	}
	slices.Sort(digests)
	good := 0
	for _, d := range digests {
		if err := blobs(d); err != nil {
			r.add("blob "+d, fmt.Errorf("%s: %w", refs[d], err), "")
			continue
		}
		good++
	}
	r.add("blobs", nil, "%d of %d referenced blobs verify", good, len(digests))
}

// blobRefsTx collects the digest of every artifact and log a run, task or
// cache entry refers to, with the first place that refers to it; runs for
// which skipRun (when not nil) is true, and their tasks, are left out.
func blobRefsTx(tx *bolt.Tx, skipRun func(id string) bool) (map[string]string, error) {
	refs := map[string]string{}
	note := func(where string, vals map[string]spec.Value) {
		for name, v := range vals {
			for _, a := range append(slices.Clone(v.Artifacts), derefArtifact(v.Artifact)...) {
				if _, seen := refs[a.Digest]; !seen {
					refs[a.Digest] = where + " output " + name
				}
			}
		}
	}
	if b := tx.Bucket(bucketRuns); b != nil {
		err := b.ForEach(func(k, v []byte) error {
			var run Run
			if err := json.Unmarshal(v, storedRun(&run)); err != nil {
				return fmt.Errorf("run %q: %w", k, err)
			}
			if skipRun != nil && skipRun(run.ID) {
				return nil
			}
			note("run "+run.ID, run.Outputs)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if b := tx.Bucket(bucketTasks); b != nil {
		err := b.ForEach(func(k, v []byte) error {
			var t Task
			if err := decodeTask(v, &t); err != nil {
				return fmt.Errorf("task %q: %w", k, err)
			}
			if skipRun != nil && skipRun(t.RunID) {
				return nil
			}
			where := fmt.Sprintf("run %s task %s", t.RunID, t.Name)
			note(where, t.Outputs)
			for _, a := range t.Attempts {
				if a.Logs != nil && refs[a.Logs.Digest] == "" {
					refs[a.Logs.Digest] = fmt.Sprintf("%s attempt %d log", where, a.N)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return refs, nil
}

func derefArtifact(a *spec.ArtifactRef) []spec.ArtifactRef {
	if a == nil {
		return nil
	}
	return []spec.ArtifactRef{*a}
}
