package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sort"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
)

// cacheKeyVersion changes when the key's encoding does, so old entries are
// never matched by a different meaning. Version 2 added the namespace.
const cacheKeyVersion = 2

// cacheKeyDoc is the canonical document a cache key hashes: the run's
// namespace, what the step runs (image, command, args, env, as written,
// before placeholders), the resolved input values (parameter JSON, artifact
// digests and metadata, which a step can read) and the outputs it must
// produce.
type cacheKeyDoc struct {
	Version int `json:"v"`
	// Namespace scopes every key: a run never reuses (or learns of) another
	// namespace's results, even with a custom key.
	Namespace string          `json:"ns"`
	Image     string          `json:"image,omitempty"`
	Command   []string        `json:"command,omitempty"`
	Args      []string        `json:"args,omitempty"`
	Env       []spec.EnvVar   `json:"env,omitempty"`
	Workdir   string          `json:"workingDir,omitempty"`
	Inputs    []cacheKeyInput `json:"inputs,omitempty"`
	Outputs   []spec.Output   `json:"outputs,omitempty"`
	Custom    string          `json:"custom,omitempty"`
	// KFP is a KFP step's container spec (Task.KFP), which its command
	// holds only as placeholders.
	KFP json.RawMessage `json:"kfp,omitempty"`
	// Kubernetes is the step's Kubernetes settings (volumes, secrets...),
	// which change what it sees where they apply.
	Kubernetes json.RawMessage `json:"kubernetes,omitempty"`
}

type cacheKeyInput struct {
	Name   string          `json:"name"`
	Param  json.RawMessage `json:"param,omitempty"`
	Digest string          `json:"digest,omitempty"`
	// Digests: an artifact list, in order.
	Digests []string `json:"digests,omitempty"`
	// Metadata: the artifact's metadata; for a list, each one's in order
	// (when any has some). Absent when there is none, so that keys of
	// artifacts without metadata are unchanged.
	Metadata  json.RawMessage   `json:"metadata,omitempty"`
	Metadatas []json.RawMessage `json:"metadatas,omitempty"`
}

// CacheKey returns the content-addressed cache key of task t run with
// inputs in namespace: "sha256:<hex>". A custom key (cache.key) replaces
// the computed description of the step, so two tasks of one namespace with
// the same custom key share results; it is still combined with the
// namespace, so naming another namespace's key finds nothing.
func CacheKey(namespace string, t *spec.Task, inputs map[string]spec.Value) string {
	doc := cacheKeyDoc{Version: cacheKeyVersion, Namespace: namespace}
	if t.Cache != nil && t.Cache.Key != "" {
		doc.Custom = t.Cache.Key
	} else {
		doc.Image, doc.Command, doc.Args, doc.Env, doc.Workdir = t.Image, t.Command, t.Args, t.Env, t.WorkingDir
		doc.Outputs, doc.KFP, doc.Kubernetes = t.Outputs, t.KFP, t.Kubernetes
		names := make([]string, 0, len(inputs))
		for n := range inputs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			v := inputs[n]
			in := cacheKeyInput{Name: n, Param: v.Param}
			if v.Artifact != nil {
				in.Param, in.Digest, in.Metadata = nil, v.Artifact.Digest, v.Artifact.Metadata
			}
			if v.IsArtifactList() {
				in.Digests = make([]string, len(v.Artifacts))
				metas := make([]json.RawMessage, len(v.Artifacts))
				for k, a := range v.Artifacts {
					in.Digests[k], metas[k] = a.Digest, a.Metadata
					if len(a.Metadata) > 0 {
						in.Metadatas = metas
					}
				}
			}
			doc.Inputs = append(doc.Inputs, in)
		}
	}
	b, _ := json.Marshal(doc) // plain data: cannot fail
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// flight is an execution whose result other tasks with the same cache key
// wait for, rather than running the same thing twice at once.
type flight struct {
	leader    string // the execution the followers wait for
	followers []follower
}

type follower struct {
	run  *activeRun
	task int
}

// startCached starts a PENDING task that caching applies to: a fresh cache
// hit reuses recorded outputs; an identical execution in flight is waited
// for; otherwise the task runs and leads a new flight.
func (e *Engine) startCached(r *activeRun, task int, key string, inputs map[string]spec.Value, b *batch) {
	t := r.sched.Task(task)
	entry, err := e.cfg.Store.CacheLookup(key)
	switch {
	case err == nil && (t.Cache.MaxStaleness == 0 || e.now().Sub(entry.Time) <= t.Cache.MaxStaleness.D()):
		e.m.cache.WithLabelValues("hit").Inc()
		e.cacheHit(r, task, key, entry.ExecutionID, entry.Outputs, b)
		return
	case err != nil && !errors.Is(err, store.ErrNotFound):
		e.log.Warn("cache lookup", "task", t.Name, "err", err)
	}
	if f := e.flights[key]; f != nil {
		e.m.cache.WithLabelValues("wait").Inc()
		f.followers = append(f.followers, follower{run: r, task: task})
		r.cacheWait[task] = key
		return
	}
	e.m.cache.WithLabelValues("miss").Inc()
	f := &flight{}
	e.flights[key] = f
	r.cacheKeys[task] = key
	e.startAttempt(r, task, spec.TaskPending, inputs, "", b)
	f.leader = executors.ExecutionID(r.id, task, r.attempts[task])
}

// landOrphanedFlights resolves the flights whose leader no execution
// follows any more (the store refused its start): their followers try for
// themselves rather than wait forever.
func (e *Engine) landOrphanedFlights(b *batch) {
	var keys []string
	for key, f := range e.flights {
		if e.inflight[f.leader] == nil {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	for _, key := range keys {
		e.landFlight(key, spec.TaskFailed, "", nil, b)
	}
}

// cacheHit records task as SUCCEEDED with the outputs of execution from.
func (e *Engine) cacheHit(r *activeRun, task int, key, from string, outs map[string]spec.Value, b *batch) {
	now := e.now().UTC()
	at := b.transition(r, store.Transition{Task: task, From: spec.TaskPending, To: spec.TaskSucceeded, Time: now,
		Outputs: outs, CacheKey: key, CachedFrom: from})
	b.update(at, Update{RunID: r.id, Task: task, Name: r.sched.Name(task), TaskState: spec.TaskSucceeded,
		Cached: true, Reason: "cached from " + from, Time: now})
	e.decide(r, r.sched.Finished(task, spec.TaskSucceeded, outs), b)
}

// landFlight resolves the tasks waiting on key once its leader ended: on
// success they reuse its outputs; otherwise each tries for itself.
func (e *Engine) landFlight(key string, state spec.TaskState, from string, outs map[string]spec.Value, b *batch) {
	f := e.flights[key]
	if f == nil {
		return
	}
	delete(e.flights, key)
	for _, fl := range f.followers {
		if fl.run.gone() || fl.run.cacheWait[fl.task] != key {
			continue
		}
		delete(fl.run.cacheWait, fl.task)
		if state == spec.TaskSucceeded {
			e.m.cache.WithLabelValues("hit").Inc()
			e.cacheHit(fl.run, fl.task, key, from, outs, b)
			continue
		}
		inputs, err := fl.run.sched.Inputs(fl.task)
		if err != nil {
			e.failBeforeStart(fl.run, fl.task, err.Error(), b)
			continue
		}
		e.startCached(fl.run, fl.task, key, inputs, b)
	}
}

// cacheApplies reports whether caching is on for task in run r.
func (r *activeRun) cacheApplies(task int) bool {
	c := r.sched.Task(task).Cache
	return c != nil && c.Enabled && !r.rec.NoCache
}
