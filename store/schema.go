package store

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// All bbolt buckets of state.db. Add new ones here and to allBuckets; never
// rename one (it is the on-disk format).
var (
	// bucketMeta holds keyAppliedIndex, keyAppliedTerm and keySchemaVersion.
	bucketMeta = []byte("meta")
	// bucketRuns: run ID -> JSON runRecord (Run without Plan).
	bucketRuns = []byte("runs")
	// bucketPlans: run ID -> the run's plan JSON (immutable, kept apart so
	// run updates do not rewrite it).
	bucketPlans = []byte("plans")
	// bucketRunsByRequest: request ID -> run ID.
	bucketRunsByRequest = []byte("runs_by_request")
	// bucketRunsActive: run ID -> empty, for every run not in a final state.
	bucketRunsActive = []byte("runs_active")
	// bucketTasks: taskKey(run ID, index) -> binary task record
	// (binary.go), or a JSON Task written before schema version 3.
	bucketTasks = []byte("tasks")
)

// Server-mode buckets (api): experiments, tokens, namespaces, run metadata,
// pipelines and recurring runs.
var (
	// bucketExperiments: experiment ID -> JSON Experiment.
	bucketExperiments = []byte("experiments")
	// bucketExperimentsByName: nsKey(namespace, name) -> experiment ID.
	bucketExperimentsByName = []byte("experiments_by_name")
	// bucketTokens: token ID -> JSON Token (secret hashed).
	bucketTokens = []byte("tokens")
	// bucketNamespaces: namespace -> JSON NamespacePolicy.
	bucketNamespaces = []byte("namespaces")
	// bucketRunMeta: request ID -> JSON RunMeta.
	bucketRunMeta = []byte("run_meta")
	// bucketPipelines: pipeline ID -> JSON Pipeline.
	bucketPipelines = []byte("pipelines")
	// bucketPipelinesByName: nsKey(namespace, name) -> pipeline ID.
	bucketPipelinesByName = []byte("pipelines_by_name")
	// bucketPipelineVersions: version ID -> JSON PipelineVersion.
	bucketPipelineVersions = []byte("pipeline_versions")
	// bucketRecurringRuns: recurring run ID -> JSON RecurringRun.
	bucketRecurringRuns = []byte("recurring_runs")
)

// Engine buckets added after the first release.
var (
	// bucketCache: cache key -> JSON CacheEntry (the latest successful
	// execution with that key).
	bucketCache = []byte("cache")
)

// Worker buckets (node.go). Created on open like every bucket, so data
// dirs from before them open unchanged.
var (
	// bucketNodes: node id -> JSON Node.
	bucketNodes = []byte("nodes")
	// bucketAssignments: execution id -> JSON Assignment, while its attempt
	// is live.
	bucketAssignments = []byte("assignments")
	// bucketAssignmentSpecs: execution id -> the assignment's spec (JSON
	// executors.Spec), kept apart from the assignment, which reports
	// rewrite. An assignment written before this bucket holds its spec
	// inline, and still reads.
	bucketAssignmentSpecs = []byte("assignment_specs")
	// bucketRunsCanceled: run ID -> empty, for every run whose
	// cancellation was requested (and not undone by a retry): checked
	// before each start without decoding the run.
	bucketRunsCanceled = []byte("runs_canceled")
)

// Replicated blob store buckets (blobholders.go), created on open like
// every bucket: a data dir from before them opens unchanged.
var (
	// bucketBlobHolders: digest ("sha256:<hex>") -> JSON holderRecord, the
	// nodes that hold the blob, for every blob a node recorded.
	bucketBlobHolders = []byte("blob_holders")
)

var allBuckets = [][]byte{bucketWorkspaces, bucketBlobHolders, bucketCache, bucketNodes, bucketAssignments, bucketAssignmentSpecs, bucketRunsCanceled, bucketMeta, bucketRuns, bucketPlans, bucketRunsByRequest, bucketRunsActive, bucketTasks,
	bucketExperiments, bucketExperimentsByName, bucketTokens, bucketNamespaces, bucketRunMeta,
	bucketPipelines, bucketPipelinesByName, bucketPipelineVersions, bucketRecurringRuns}

var (
	keyAppliedIndex = []byte("applied_index")
	// keyAppliedTerm is the raft term of the entry at keyAppliedIndex: the
	// pair names a position in one particular log (raft's log matching),
	// so Open can tell a state.db that belongs to another (or a lost) log.
	// Absent in data dirs written before it; then only the index is checked.
	keyAppliedTerm = []byte("applied_term")
	// keyLogID names the raft.db this state.db is the state of (the same
	// id is in raft.db's stable store under raftKeyLogID). It is node-local,
	// not replicated state: the store writes it outside the log, and a
	// restore keeps the node's own.
	keyLogID         = []byte("log_id")
	keySchemaVersion = []byte("schema_version")
)

// schemaVersion is written on creation and by migrations; Open refuses a
// newer one (an older binary would misread the data).
//
//	1  the first release: enums (run and task states) stored as names
//	2  enums stored as numeric codes (codec.go); version 1 data still
//	   decodes, so the migration rewrites nothing
//	3  task records binary (binary.go); JSON records still decode and
//	   become binary when next written, so the migration rewrites
//	   nothing, but an older binary must not open the data dir
const schemaVersion = 3

// migrations[v] upgrades a state.db from version v-1 to v, in the
// transaction that records v.
var migrations = map[uint64]func(tx *bolt.Tx) error{
	2: func(*bolt.Tx) error { return nil }, // the decoders read names and codes
	3: func(*bolt.Tx) error { return nil }, // decodeTask reads JSON and binary records
}

// initSchemaTx creates every bucket, checks the schema version and
// migrates an older one.
func initSchemaTx(tx *bolt.Tx) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	v := meta.Get(keySchemaVersion)
	if v == nil {
		return meta.Put(keySchemaVersion, u64(schemaVersion))
	}
	if len(v) != 8 {
		return fmt.Errorf("state.db schema version: %d bytes, want 8", len(v))
	}
	got := binary.BigEndian.Uint64(v)
	if got > schemaVersion {
		return fmt.Errorf("state.db schema version %d is newer than this binary's %d: use a newer skiff", got, schemaVersion)
	}
	for next := got + 1; next <= schemaVersion; next++ {
		m, ok := migrations[next]
		if !ok {
			return fmt.Errorf("state.db schema version %d: no migration to %d", got, next)
		}
		if err := m(tx); err != nil {
			return fmt.Errorf("state.db: migrate schema %d to %d: %w", next-1, next, err)
		}
	}
	if got == schemaVersion {
		return nil
	}
	return meta.Put(keySchemaVersion, u64(schemaVersion))
}

// logPosition is a raft log position: an entry's index and term.
type logPosition struct{ Index, Term uint64 }

func appliedTx(tx *bolt.Tx) logPosition {
	meta := tx.Bucket(bucketMeta)
	return logPosition{Index: getU64(meta.Get(keyAppliedIndex)), Term: getU64(meta.Get(keyAppliedTerm))}
}

func putAppliedTx(tx *bolt.Tx, p logPosition) error {
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keyAppliedIndex, u64(p.Index)); err != nil {
		return err
	}
	return meta.Put(keyAppliedTerm, u64(p.Term))
}

func getU64(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// taskKey is runID, a 0 byte, then the task index as big-endian uint32, so a
// run's tasks are contiguous and ordered by index.
func taskKey(runID string, index int) []byte {
	k := make([]byte, 0, len(runID)+5)
	k = append(k, runID...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(index))
}

func taskPrefix(runID string) []byte {
	k := make([]byte, 0, len(runID)+1)
	k = append(k, runID...)
	return append(k, 0)
}
