package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/skiffml/skiff/engine/spec"
)

// Binary forms of the two hottest records: the task record in state.db and
// the transition_tasks command (version 2) in the raft log. A fan-out of
// 10,000 tasks spent about 60% of its CPU encoding and decoding them as
// JSON. Cold, rarely present fields (outputs, log references, expansions)
// stay JSON inside the binary record; the rest is fixed-order fields:
//
//	string   uvarint length, then the bytes
//	int      zigzag varint
//	state    one byte (its numeric code)
//	time     uvarint length (0: the zero time), then time.MarshalBinary
//	json     uvarint length (0: absent), then the JSON
//
// A task record starts with taskRecordMagic and its version; a JSON record
// (written before this format) starts with '{' and still reads, so no
// migration rewrites state.db.

const (
	// taskRecordMagic is the first byte of a binary task record. It can
	// never start a JSON document.
	taskRecordMagic byte = 0xB7
	// taskRecordVersion is the binary task record's layout version.
	taskRecordVersion byte = 1
)

// errBinaryTruncated is returned when a binary record ends early.
var errBinaryTruncated = errors.New("truncated")

type binWriter struct{ b []byte }

func (w *binWriter) byte1(v byte)      { w.b = append(w.b, v) }
func (w *binWriter) uvarint(v uint64)  { w.b = binary.AppendUvarint(w.b, v) }
func (w *binWriter) int(v int)         { w.b = binary.AppendVarint(w.b, int64(v)) }
func (w *binWriter) str(s string)      { w.uvarint(uint64(len(s))); w.b = append(w.b, s...) }
func (w *binWriter) state(s uint8)     { w.b = append(w.b, s) }
func (w *binWriter) rawBytes(b []byte) { w.uvarint(uint64(len(b))); w.b = append(w.b, b...) }

func (w *binWriter) time(t time.Time) error {
	if t.IsZero() {
		w.uvarint(0)
		return nil
	}
	var buf [16]byte // MarshalBinary's form, without its allocation
	b, err := t.AppendBinary(buf[:0])
	if err != nil {
		return err
	}
	w.rawBytes(b)
	return nil
}

// json writes v as JSON, or an empty field when absent is true.
func (w *binWriter) json(v any, absent bool) error {
	if absent {
		w.uvarint(0)
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.rawBytes(b)
	return nil
}

// binReader reads what binWriter wrote. The first error sticks; every
// length is checked against the bytes left, so no input makes it allocate
// more than the record's own size.
type binReader struct {
	b   []byte
	err error
}

func (r *binReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *binReader) byte1() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail(errBinaryTruncated)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *binReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errBinaryTruncated)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *binReader) int() int {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errBinaryTruncated)
		return 0
	}
	if v < -1<<31 || v > 1<<31-1 {
		r.fail(fmt.Errorf("integer %d out of range", v))
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

// count reads a length and checks that at least min bytes per element
// remain for it.
func (r *binReader) count(min int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/min) {
		r.fail(fmt.Errorf("%d elements in %d bytes: %w", n, len(r.b), errBinaryTruncated))
		return 0
	}
	return int(n)
}

func (r *binReader) raw() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(errBinaryTruncated)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *binReader) str() string { return string(r.raw()) }

func (r *binReader) state() uint8 { return r.byte1() }

func (r *binReader) time() time.Time {
	b := r.raw()
	if r.err != nil || len(b) == 0 {
		return time.Time{}
	}
	var t time.Time
	if err := t.UnmarshalBinary(b); err != nil {
		r.fail(fmt.Errorf("time: %w", err))
	}
	return t
}

// json decodes a JSON field into v when present.
func (r *binReader) json(v any, field string) {
	b := r.raw()
	if r.err != nil || len(b) == 0 {
		return
	}
	if err := json.Unmarshal(b, v); err != nil {
		r.fail(fmt.Errorf("%s: %w", field, err))
	}
}

// taskScratch holds encodeTask's scratch buffers.
var taskScratch = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// encodeTask returns t's binary record.
func encodeTask(t *Task) ([]byte, error) {
	// Encoded in a scratch buffer, returned in one of its exact size:
	// bbolt holds every record a commit writes until it ends (a loop's
	// expansion writes 100,000 at once), and an estimated capacity would
	// be twice the record.
	sp := taskScratch.Get().(*[]byte)
	w := binWriter{b: (*sp)[:0]}
	defer func() {
		if cap(w.b) <= 4096 {
			*sp = w.b
			taskScratch.Put(sp)
		}
	}()
	w.byte1(taskRecordMagic)
	w.byte1(taskRecordVersion)
	w.str(t.RunID)
	w.int(t.Index)
	w.str(t.Name)
	w.state(uint8(t.State))
	w.uvarint(uint64(len(t.Attempts)))
	for i := range t.Attempts {
		a := &t.Attempts[i]
		w.int(a.N)
		w.str(a.ExecutionID)
		w.str(a.Executor)
		w.state(uint8(a.State))
		if err := w.time(a.StartedAt); err != nil {
			return nil, fmt.Errorf("attempts[%d].started_at: %w", i, err)
		}
		if err := w.time(a.FinishedAt); err != nil {
			return nil, fmt.Errorf("attempts[%d].finished_at: %w", i, err)
		}
		w.str(a.Error)
		if err := w.json(a.Logs, a.Logs == nil); err != nil {
			return nil, fmt.Errorf("attempts[%d].logs: %w", i, err)
		}
		w.str(a.Waiting)
	}
	if err := w.json(t.Outputs, len(t.Outputs) == 0); err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	w.str(t.Error)
	if err := w.time(t.StartedAt); err != nil {
		return nil, fmt.Errorf("started_at: %w", err)
	}
	if err := w.time(t.FinishedAt); err != nil {
		return nil, fmt.Errorf("finished_at: %w", err)
	}
	w.str(t.CacheKey)
	w.str(t.CachedFrom)
	return bytes.Clone(w.b), nil
}

// decodeTask reads a task record: binary, or JSON from before it.
func decodeTask(b []byte, t *Task) error {
	if len(b) == 0 || b[0] != taskRecordMagic {
		return json.Unmarshal(b, storedTask(t))
	}
	if len(b) < 2 {
		return fmt.Errorf("task record: %w", errBinaryTruncated)
	}
	if v := b[1]; v != taskRecordVersion {
		return fmt.Errorf("task record version %d: this binary knows %d (use a newer skiff)", v, taskRecordVersion)
	}
	r := binReader{b: b[2:]}
	*t = Task{}
	t.RunID = r.str()
	t.Index = r.int()
	t.Name = r.str()
	t.State = spec.TaskState(r.state())
	if n := r.count(9); n > 0 {
		t.Attempts = make([]Attempt, n)
		for i := range t.Attempts {
			a := &t.Attempts[i]
			a.N = r.int()
			a.ExecutionID = r.str()
			a.Executor = r.str()
			a.State = spec.TaskState(r.state())
			a.StartedAt = r.time()
			a.FinishedAt = r.time()
			a.Error = r.str()
			r.json(&a.Logs, "logs")
			a.Waiting = r.str()
		}
	}
	r.json(&t.Outputs, "outputs")
	t.Error = r.str()
	t.StartedAt = r.time()
	t.FinishedAt = r.time()
	t.CacheKey = r.str()
	t.CachedFrom = r.str()
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Errorf("%d bytes after the record", len(r.b)))
	}
	if r.err != nil {
		return fmt.Errorf("task record: %w", r.err)
	}
	return nil
}

// transitionTasksVersion is transition_tasks' current encoding: 1 is JSON,
// 2 the binary form below.
const transitionTasksVersion = 2

// encodeTransitions is transition_tasks version 2: the run id, the item
// count, then each item's fields in declaration order.
func encodeTransitions(c *TransitionTasks) ([]byte, error) {
	w := binWriter{b: make([]byte, 0, 16+len(c.RunID)+48*len(c.Items))}
	w.str(c.RunID)
	w.uvarint(uint64(len(c.Items)))
	for i := range c.Items {
		it := &c.Items[i]
		w.int(it.Task)
		w.int(it.Attempt)
		w.state(uint8(it.From))
		w.state(uint8(it.To))
		if err := w.time(it.Time); err != nil {
			return nil, fmt.Errorf("items[%d].time: %w", i, err)
		}
		w.str(it.ExecutionID)
		w.str(it.Executor)
		if err := w.json(it.Outputs, len(it.Outputs) == 0); err != nil {
			return nil, fmt.Errorf("items[%d].outputs: %w", i, err)
		}
		w.str(it.Error)
		if err := w.json(it.Logs, it.Logs == nil); err != nil {
			return nil, fmt.Errorf("items[%d].logs: %w", i, err)
		}
		w.str(it.CacheKey)
		w.str(it.CachedFrom)
		if err := w.json(it.Expand, it.Expand == nil); err != nil {
			return nil, fmt.Errorf("items[%d].expand: %w", i, err)
		}
	}
	return w.b, nil
}

func decodeTransitions(b []byte) (TransitionTasks, error) {
	r := binReader{b: b}
	var c TransitionTasks
	c.RunID = r.str()
	if n := r.count(13); n > 0 {
		c.Items = make([]Transition, n)
	}
	for i := range c.Items {
		it := &c.Items[i]
		it.Task = r.int()
		it.Attempt = r.int()
		it.From = spec.TaskState(r.state())
		it.To = spec.TaskState(r.state())
		it.Time = r.time()
		it.ExecutionID = r.str()
		it.Executor = r.str()
		r.json(&it.Outputs, "outputs")
		it.Error = r.str()
		r.json(&it.Logs, "logs")
		it.CacheKey = r.str()
		it.CachedFrom = r.str()
		r.json(&it.Expand, "expand")
		if r.err != nil {
			return TransitionTasks{}, fmt.Errorf("items[%d]: %w", i, r.err)
		}
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Errorf("%d bytes after the command", len(r.b)))
	}
	if r.err != nil {
		return TransitionTasks{}, r.err
	}
	return c, nil
}

// Worker records and commands (node.go) in the same style: a cluster
// commits an assignment, a report and a transition per task, each applied
// on every node, and their JSON dominated a cluster fan-out's CPU.
//
// A record starts with workerRecordMagic and its version; records written
// before (JSON, starting with '{') still read.

const (
	workerRecordMagic   byte = 0xB8
	workerRecordVersion byte = 1
	// assignExecutionVersion and reportExecutionVersion: 1 is JSON, 2
	// binary.
	assignExecutionVersion = 2
	reportExecutionVersion = 2
)

func (w *binWriter) resources(r spec.Resources) {
	w.b = binary.AppendVarint(w.b, r.MilliCPU)
	w.b = binary.AppendVarint(w.b, r.MemoryBytes)
	w.int(r.GPU)
	w.str(r.Accelerator)
}

func (r *binReader) int64() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errBinaryTruncated)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *binReader) resources() spec.Resources {
	return spec.Resources{MilliCPU: r.int64(), MemoryBytes: r.int64(), GPU: r.int(), Accelerator: r.str()}
}

func (w *binWriter) strs(s []string) {
	w.uvarint(uint64(len(s)))
	for _, v := range s {
		w.str(v)
	}
}

// strs reads a list; absent (0) reads as nil, as JSON's omitempty does.
func (r *binReader) strs() []string {
	n := r.count(1)
	if n == 0 {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

// bool is one byte, 0 or 1.
func (w *binWriter) bool(v bool) {
	if v {
		w.byte1(1)
	} else {
		w.byte1(0)
	}
}

func (r *binReader) bool() bool {
	switch r.byte1() {
	case 0:
		return false
	case 1:
		return true
	}
	r.fail(errors.New("bool: not 0 or 1"))
	return false
}

// exit writes a presence byte, then the exit.
func (w *binWriter) exit(e *Exit) error {
	w.bool(e != nil)
	if e == nil {
		return nil
	}
	w.str(e.Outcome)
	w.int(e.ExitCode)
	w.str(e.Reason)
	if err := w.json(e.Outputs, len(e.Outputs) == 0); err != nil {
		return fmt.Errorf("exit.outputs: %w", err)
	}
	if err := w.json(e.Logs, e.Logs == nil); err != nil {
		return fmt.Errorf("exit.logs: %w", err)
	}
	return w.time(e.Time)
}

func (r *binReader) exit() *Exit {
	if !r.bool() {
		return nil
	}
	e := &Exit{Outcome: r.str(), ExitCode: r.int(), Reason: r.str()}
	r.json(&e.Outputs, "exit.outputs")
	r.json(&e.Logs, "exit.logs")
	e.Time = r.time()
	return e
}

// assignment writes a's fields; the spec only when withSpec (the record
// keeps it in its own bucket).
func (w *binWriter) assignment(a *Assignment, withSpec bool) error {
	w.str(a.ExecutionID)
	w.str(a.RunID)
	w.int(a.Task)
	w.int(a.Attempt)
	w.str(a.NodeID)
	w.uvarint(a.Epoch)
	w.str(a.Executor)
	w.resources(a.Resources)
	if withSpec {
		w.rawBytes(a.Spec)
	}
	if err := w.time(a.AssignedAt); err != nil {
		return fmt.Errorf("assigned_at: %w", err)
	}
	if err := w.time(a.StartedAt); err != nil {
		return fmt.Errorf("started_at: %w", err)
	}
	w.bool(a.CancelRequested)
	if err := w.exit(a.Exit); err != nil {
		return err
	}
	w.str(a.Waiting)
	return nil
}

func (r *binReader) assignment(withSpec bool) Assignment {
	a := Assignment{ExecutionID: r.str(), RunID: r.str(), Task: r.int(), Attempt: r.int(), NodeID: r.str(),
		Epoch: r.uvarint(), Executor: r.str(), Resources: r.resources()}
	if withSpec {
		if s := r.raw(); len(s) > 0 {
			a.Spec = json.RawMessage(s)
		}
	}
	a.AssignedAt = r.time()
	a.StartedAt = r.time()
	a.CancelRequested = r.bool()
	a.Exit = r.exit()
	a.Waiting = r.str()
	return a
}

// done checks that r read everything without error.
func (r *binReader) done(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Errorf("%d bytes after the %s", len(r.b), what))
	}
	if r.err != nil {
		return fmt.Errorf("%s: %w", what, r.err)
	}
	return nil
}

// recordHeader checks a binary record's magic and version; json is true
// for a record written before the binary form.
func recordHeader(b []byte, what string) (rest []byte, isJSON bool, err error) {
	if len(b) == 0 || b[0] != workerRecordMagic {
		return nil, true, nil
	}
	if len(b) < 2 {
		return nil, false, fmt.Errorf("%s record: %w", what, errBinaryTruncated)
	}
	if b[1] != workerRecordVersion {
		return nil, false, fmt.Errorf("%s record version %d: this binary knows %d (use a newer skiff)", what, b[1], workerRecordVersion)
	}
	return b[2:], false, nil
}

func encodeAssignmentRecord(a *Assignment) ([]byte, error) {
	w := binWriter{b: make([]byte, 0, 128)}
	w.byte1(workerRecordMagic)
	w.byte1(workerRecordVersion)
	if err := w.assignment(a, false); err != nil {
		return nil, err
	}
	return w.b, nil
}

func decodeAssignmentRecord(b []byte, a *Assignment) error {
	rest, isJSON, err := recordHeader(b, "assignment")
	if err != nil {
		return err
	}
	if isJSON {
		return json.Unmarshal(b, a)
	}
	r := binReader{b: rest}
	*a = r.assignment(false)
	return r.done("assignment record")
}

// assignmentNodeID reads the node of a stored assignment record without
// decoding the rest (its exit's outputs, mostly): what dropping it needs.
func assignmentNodeID(b []byte) (string, error) {
	rest, isJSON, err := recordHeader(b, "assignment")
	if err != nil {
		return "", err
	}
	if isJSON {
		var a Assignment
		err := json.Unmarshal(b, &a)
		return a.NodeID, err
	}
	r := binReader{b: rest}
	r.raw() // execution id
	r.raw() // run id
	r.int() // task
	r.int() // attempt
	node := r.str()
	if r.err != nil {
		return "", fmt.Errorf("assignment record: %w", r.err)
	}
	return node, nil
}

func encodeNodeRecord(n *Node) ([]byte, error) {
	w := binWriter{b: make([]byte, 0, 128)}
	w.byte1(workerRecordMagic)
	w.byte1(workerRecordVersion)
	w.str(n.ID)
	w.uvarint(n.Epoch)
	w.str(n.State)
	w.resources(n.Capacity)
	w.strs(n.GPUKinds)
	w.strs(n.Executors)
	keys := make([]string, 0, len(n.Labels))
	for k := range n.Labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	w.uvarint(uint64(len(keys)))
	for _, k := range keys {
		w.str(k)
		w.str(n.Labels[k])
	}
	w.str(n.APIURL)
	if err := w.time(n.RegisteredAt); err != nil {
		return nil, fmt.Errorf("registered_at: %w", err)
	}
	if err := w.time(n.LastHeartbeat); err != nil {
		return nil, fmt.Errorf("last_heartbeat: %w", err)
	}
	w.str(n.DownReason)
	w.str(n.LowDisk)
	return w.b, nil
}

func decodeNodeRecord(b []byte, n *Node) error {
	rest, isJSON, err := recordHeader(b, "node")
	if err != nil {
		return err
	}
	if isJSON {
		return json.Unmarshal(b, n)
	}
	r := binReader{b: rest}
	*n = Node{ID: r.str(), Epoch: r.uvarint(), State: r.str(), Capacity: r.resources(), GPUKinds: r.strs()}
	// Executors is not omitempty in JSON: an empty list reads back
	// non-nil there, and here.
	n.Executors = r.strs()
	if n.Executors == nil {
		n.Executors = []string{}
	}
	if k := r.count(2); k > 0 {
		n.Labels = make(map[string]string, k)
		for range k {
			key := r.str()
			n.Labels[key] = r.str()
		}
	}
	n.APIURL = r.str()
	n.RegisteredAt = r.time()
	n.LastHeartbeat = r.time()
	n.DownReason = r.str()
	n.LowDisk = r.str()
	return r.done("node record")
}

func encodeAssignExecution(c *AssignExecution) ([]byte, error) {
	if len(c.Assignment.Spec) > 0 && !json.Valid(c.Assignment.Spec) {
		return nil, errors.New("assignment.spec: not JSON")
	}
	w := binWriter{b: make([]byte, 0, 128+len(c.Assignment.Spec))}
	if err := w.assignment(&c.Assignment, true); err != nil {
		return nil, err
	}
	return w.b, nil
}

func decodeAssignExecution(b []byte) (AssignExecution, error) {
	r := binReader{b: b}
	c := AssignExecution{Assignment: r.assignment(true)}
	return c, r.done("assign_execution")
}

func encodeReportExecution(c *ReportExecution) ([]byte, error) {
	w := binWriter{b: make([]byte, 0, 64+len(c.Waiting))}
	w.str(c.ExecutionID)
	w.str(c.NodeID)
	w.uvarint(c.Epoch)
	w.bool(c.Started)
	if err := w.exit(c.Exit); err != nil {
		return nil, err
	}
	w.str(c.Waiting)
	if err := w.time(c.Time); err != nil {
		return nil, fmt.Errorf("time: %w", err)
	}
	return w.b, nil
}

func decodeReportExecution(b []byte) (ReportExecution, error) {
	r := binReader{b: b}
	c := ReportExecution{ExecutionID: r.str(), NodeID: r.str(), Epoch: r.uvarint(), Started: r.bool(), Exit: r.exit(), Waiting: r.str(), Time: r.time()}
	return c, r.done("report_execution")
}

// setBinaryCodec replaces a registered command's encoding from version on
// with enc/dec; older versions decode as before.
func setBinaryCodec[T Command](typ CommandType, version uint8, enc func(*T) ([]byte, error), dec func([]byte) (T, error)) {
	def := registry[typ]
	if def == nil || def.version != version {
		panic(fmt.Sprintf("store: binary codec for command %d: registered at another version", typ))
	}
	older := def.decode
	name := def.name
	def.encode = func(cmd Command) ([]byte, error) {
		var c T
		switch v := any(cmd).(type) {
		case T:
			c = v
		case *T:
			c = *v
		default:
			return nil, fmt.Errorf("%T is not a %s", cmd, name)
		}
		if chk, ok := any(c).(checkStates); ok {
			if err := chk.checkStates(); err != nil {
				return nil, err
			}
		}
		return enc(&c)
	}
	def.decode = func(v uint8, payload []byte) (Command, error) {
		if v != version {
			return older(v, payload)
		}
		c, err := dec(payload)
		if err != nil {
			return nil, fmt.Errorf("decode %s: %w", name, err)
		}
		return c, nil
	}
}
