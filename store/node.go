package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	bolt "go.etcd.io/bbolt"
)

// Worker commands: nodes register and heartbeat, the leader assigns
// executions to them and marks them down, and they report what became of
// what they were assigned. Every report carries a fencing token (node id,
// node epoch, execution id = run/task/attempt) that the FSM checks
// (invariant 3).
const (
	TypeRegisterNode     CommandType = 40
	TypeHeartbeat        CommandType = 41
	TypeMarkNodeDown     CommandType = 42
	TypeAssignExecution  CommandType = 43
	TypeReportExecution  CommandType = 44
	TypeCancelAssignment CommandType = 45
)

// Node states.
const (
	NodeUp   = "up"
	NodeDown = "down"
)

// Node is a worker: a server, or an agent that is not a raft voter.
type Node struct {
	ID string `json:"id"`
	// Epoch grows at each registration (each start of the worker): a
	// report carrying an older one comes from a worker that restarted or
	// was declared down, and is rejected.
	Epoch     uint64            `json:"epoch"`
	State     string            `json:"state"` // NodeUp or NodeDown
	Capacity  spec.Resources    `json:"capacity"`
	GPUKinds  []string          `json:"gpu_kinds,omitempty"`
	Executors []string          `json:"executors"`
	Labels    map[string]string `json:"labels,omitempty"`
	APIURL    string            `json:"api_url,omitempty"`
	// RegisteredAt and LastHeartbeat are the proposers' times.
	RegisteredAt  time.Time `json:"registered_at,omitzero"`
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
	DownReason    string    `json:"down_reason,omitempty"`
	// LowDisk, when set, is the worker's word that its disk is nearly
	// full ("120 MiB free under /data, less than 256 MiB"): the leader
	// places nothing new on it until a heartbeat clears it.
	LowDisk string `json:"low_disk,omitempty"`
}

// Offers reports whether the node runs executor name.
func (n Node) Offers(name string) bool { return slices.Contains(n.Executors, name) }

// Matches reports whether the node has every label of selector.
func (n Node) Matches(selector map[string]string) bool {
	for k, v := range selector {
		if n.Labels[k] != v {
			return false
		}
	}
	return true
}

// Outcomes of an execution, as a worker reports them (or the FSM, for
// "lost").
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeCanceled  = "canceled"
	// OutcomeLost: the worker was declared down, or came back with a new
	// epoch, while the execution was assigned to it.
	OutcomeLost = "lost"
)

// Exit is how an assigned execution ended.
type Exit struct {
	Outcome  string                `json:"outcome"`
	ExitCode int                   `json:"exit_code"`
	Reason   string                `json:"reason,omitempty"`
	Outputs  map[string]spec.Value `json:"outputs,omitempty"`
	Logs     *spec.ArtifactRef     `json:"logs,omitempty"`
	Time     time.Time             `json:"time,omitzero"`
}

// Assignment is one execution the leader gave to a worker. It lives while
// its attempt does: the transition that ends the attempt drops it.
type Assignment struct {
	ExecutionID string         `json:"execution_id"`
	RunID       string         `json:"run_id"`
	Task        int            `json:"task"`
	Attempt     int            `json:"attempt"`
	NodeID      string         `json:"node_id"`
	Epoch       uint64         `json:"epoch"`
	Executor    string         `json:"executor"`
	Resources   spec.Resources `json:"resources"`
	// Spec is the executors.Spec to run, as JSON (opaque here). Stored
	// apart from the rest (bucketAssignmentSpecs); older data dirs hold
	// it inline.
	Spec       json.RawMessage `json:"spec,omitempty"`
	AssignedAt time.Time       `json:"assigned_at,omitzero"`
	StartedAt  time.Time       `json:"started_at,omitzero"`
	// CancelRequested: the leader asked the worker to stop it.
	CancelRequested bool  `json:"cancel_requested,omitempty"`
	Exit            *Exit `json:"exit,omitempty"`
	// Waiting is the worker's latest word on why the execution has not
	// started; cleared when it starts or ends.
	Waiting string `json:"waiting,omitempty"`
}

// Live reports whether the execution has not ended.
func (a Assignment) Live() bool { return a.Exit == nil }

// RegisterNode (re)registers a worker at Epoch, which must be above the
// node's stored epoch. What the node held at an older epoch is lost.
type RegisterNode struct {
	Node  Node      `json:"node"`
	Epoch uint64    `json:"epoch"`
	Time  time.Time `json:"time"`
}

// Heartbeat renews a node's lease: rejected unless the node is up at
// Epoch (a worker told so must register again).
type Heartbeat struct {
	NodeID string    `json:"node_id"`
	Epoch  uint64    `json:"epoch"`
	Time   time.Time `json:"time"`
	// LowDisk replaces the node's LowDisk ("" clears it).
	LowDisk string `json:"low_disk,omitempty"`
}

// MaxLowDiskReason bounds Node.LowDisk, in bytes.
const MaxLowDiskReason = 256

// MarkNodeDown declares a node down (its heartbeat lapsed, as the
// proposer judged by its clock): rejected unless the node is up at Epoch
// with LastHeartbeat as given (a heartbeat committed meanwhile wins). Its
// live assignments end lost.
type MarkNodeDown struct {
	NodeID        string    `json:"node_id"`
	Epoch         uint64    `json:"epoch"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	Time          time.Time `json:"time"`
	Reason        string    `json:"reason"`
}

// AssignExecution gives the attempt's execution to a node: rejected
// unless the node is up at the epoch and offers the executor, the run is
// not cancelled or final (invariant 8), and the attempt is the task's
// current, RUNNING one with no assignment yet.
type AssignExecution struct {
	Assignment Assignment `json:"assignment"`
}

// ReportExecution is a worker's word on an assigned execution: Started,
// Exit, or (before it starts) why it Waits. Rejected unless the node is up at Epoch and holds the
// assignment at that epoch (the fencing token), and the execution has not
// already ended.
type ReportExecution struct {
	ExecutionID string `json:"execution_id"`
	NodeID      string `json:"node_id"`
	Epoch       uint64 `json:"epoch"`
	Started     bool   `json:"started,omitempty"`
	Exit        *Exit  `json:"exit,omitempty"`
	// Waiting: the execution is not running yet, and why (the executor's
	// word: "0/3 nodes: Insufficient nvidia.com/gpu").
	Waiting string    `json:"waiting,omitempty"`
	Time    time.Time `json:"time"`
}

// MaxWaitingReason bounds ReportExecution.Waiting, in bytes.
const MaxWaitingReason = 1024

// CancelAssignment asks the worker holding a live execution to stop it.
type CancelAssignment struct {
	ExecutionID string    `json:"execution_id"`
	Time        time.Time `json:"time"`
}

func (RegisterNode) Type() CommandType     { return TypeRegisterNode }
func (Heartbeat) Type() CommandType        { return TypeHeartbeat }
func (MarkNodeDown) Type() CommandType     { return TypeMarkNodeDown }
func (AssignExecution) Type() CommandType  { return TypeAssignExecution }
func (ReportExecution) Type() CommandType  { return TypeReportExecution }
func (CancelAssignment) Type() CommandType { return TypeCancelAssignment }

// WorkerCommand reports whether a worker (not the leader) may propose c:
// what a node's worker sends through another node or the API.
func WorkerCommand(c Command) bool {
	switch c.Type() {
	case TypeRegisterNode, TypeHeartbeat, TypeReportExecution, TypeRecordHolders:
		return true
	}
	return false
}

func init() {
	registerJSONNoted(TypeRegisterNode, "register_node", 1, applyRegisterNode)
	registerJSONNoted(TypeHeartbeat, "heartbeat", 1, applyHeartbeat)
	registerJSONNoted(TypeMarkNodeDown, "mark_node_down", 1, applyMarkNodeDown)
	registerJSONNoted(TypeAssignExecution, "assign_execution", assignExecutionVersion, applyAssignExecution)
	registerJSONNoted(TypeReportExecution, "report_execution", reportExecutionVersion, applyReportExecution)
	// Version 2 of both is binary (binary.go); version 1 (JSON) still decodes.
	setBinaryCodec(TypeAssignExecution, assignExecutionVersion, encodeAssignExecution, decodeAssignExecution)
	setBinaryCodec(TypeReportExecution, reportExecutionVersion, encodeReportExecution, decodeReportExecution)
	registerJSONNoted(TypeCancelAssignment, "cancel_assignment", 1, applyCancelAssignment)
}

func validID(id string) bool { return id != "" && strings.IndexByte(id, 0) < 0 && len(id) <= 256 }

func applyRegisterNode(tx *bolt.Tx, c RegisterNode, ch *Change) ([]Rejection, error) {
	n := c.Node
	switch {
	case !validID(n.ID):
		return reject("register node: node.id %q is not a valid id", n.ID), nil
	case c.Epoch == 0:
		return reject("register node %s: epoch: must be at least 1", n.ID), nil
	case n.Capacity.MilliCPU < 0 || n.Capacity.MemoryBytes < 0 || n.Capacity.GPU < 0:
		return reject("register node %s: node.capacity: must not be negative", n.ID), nil
	case len(n.LowDisk) > MaxLowDiskReason:
		return reject("register node %s: node.low_disk: %d bytes, more than %d", n.ID, len(n.LowDisk), MaxLowDiskReason), nil
	}
	old, found, err := getNodeTx(tx, n.ID)
	if err != nil {
		return nil, err
	}
	if found && c.Epoch <= old.Epoch {
		return reject("register node %s: stale epoch %d: the node is at epoch %d", n.ID, c.Epoch, old.Epoch), nil
	}
	if found {
		reason := fmt.Sprintf("lost: node %s restarted (epoch %d -> %d)", n.ID, old.Epoch, c.Epoch)
		if err := loseAssignmentsTx(tx, n.ID, reason, c.Time, ch); err != nil {
			return nil, err
		}
	}
	n.Epoch, n.State, n.RegisteredAt, n.LastHeartbeat, n.DownReason = c.Epoch, NodeUp, c.Time, c.Time, ""
	ch.Nodes = append(ch.Nodes, n.ID)
	return nil, putNodeTx(tx, &n)
}

func applyHeartbeat(tx *bolt.Tx, c Heartbeat, ch *Change) ([]Rejection, error) {
	n, found, err := getNodeTx(tx, c.NodeID)
	if err != nil {
		return nil, err
	}
	if why := fenceNode(n, found, c.NodeID, c.Epoch); why != "" {
		return reject("heartbeat: %s", why), nil
	}
	if len(c.LowDisk) > MaxLowDiskReason {
		return reject("heartbeat: low_disk: %d bytes, more than %d", len(c.LowDisk), MaxLowDiskReason), nil
	}
	if c.Time.After(n.LastHeartbeat) {
		n.LastHeartbeat = c.Time
	}
	if n.LowDisk != c.LowDisk {
		// Placement changes: the dispatcher looks again.
		n.LowDisk = c.LowDisk
		ch.Nodes = append(ch.Nodes, n.ID)
	}
	return nil, putNodeTx(tx, &n)
}

// fenceNode says why a command from node id at epoch is refused ("" = it
// is not): the node must be registered, up, at that epoch.
func fenceNode(n Node, found bool, id string, epoch uint64) string {
	switch {
	case !found:
		return fmt.Sprintf("node %s is not registered", id)
	case n.Epoch != epoch:
		return fmt.Sprintf("stale epoch: node %s is at epoch %d, not %d", id, n.Epoch, epoch)
	case n.State != NodeUp:
		return fmt.Sprintf("node %s is down (%s): register again", id, n.DownReason)
	}
	return ""
}

func applyMarkNodeDown(tx *bolt.Tx, c MarkNodeDown, ch *Change) ([]Rejection, error) {
	n, found, err := getNodeTx(tx, c.NodeID)
	if err != nil {
		return nil, err
	}
	if why := fenceNode(n, found, c.NodeID, c.Epoch); why != "" {
		return reject("mark node down: %s", why), nil
	}
	if !n.LastHeartbeat.Equal(c.LastHeartbeat) {
		return reject("mark node down %s: stale: it heartbeat at %s since", c.NodeID, n.LastHeartbeat.Format(time.RFC3339Nano)), nil
	}
	n.State, n.DownReason = NodeDown, c.Reason
	if err := loseAssignmentsTx(tx, n.ID, "lost: node "+n.ID+" down: "+c.Reason, c.Time, ch); err != nil {
		return nil, err
	}
	ch.Nodes = append(ch.Nodes, n.ID)
	return nil, putNodeTx(tx, &n)
}

// loseAssignmentsTx ends every live assignment of node id as lost.
func loseAssignmentsTx(tx *bolt.Tx, nodeID, reason string, at time.Time, ch *Change) error {
	as, err := assignmentsTx(tx, nodeID)
	if err != nil {
		return err
	}
	for i := range as {
		a := &as[i]
		if !a.Live() {
			continue
		}
		a.Exit = &Exit{Outcome: OutcomeLost, ExitCode: -1, Reason: reason, Time: at}
		if err := putAssignmentTx(tx, a); err != nil {
			return err
		}
		ch.addAssignment(a.ExecutionID, a.NodeID, a)
	}
	return nil
}

func applyAssignExecution(tx *bolt.Tx, c AssignExecution, ch *Change) ([]Rejection, error) {
	a := c.Assignment
	if !validID(a.ExecutionID) {
		return reject("assign execution: execution_id %q is not a valid id", a.ExecutionID), nil
	}
	if b := ch.get(tx, bucketAssignments, []byte(a.ExecutionID)); b != nil {
		return reject("assign execution %s: already assigned", a.ExecutionID), nil
	}
	n, found, err := ch.node(tx, a.NodeID)
	if err != nil {
		return nil, err
	}
	if why := fenceNode(n, found, a.NodeID, a.Epoch); why != "" {
		return reject("assign execution %s: %s", a.ExecutionID, why), nil
	}
	if !n.Offers(a.Executor) {
		return reject("assign execution %s: node %s does not offer executor %q", a.ExecutionID, n.ID, a.Executor), nil
	}
	r, err := ch.run(tx, a.RunID)
	if err != nil {
		return reject("assign execution %s: %v", a.ExecutionID, err), nil
	}
	if r.CancelRequested || r.State.Final() {
		return reject("assign execution %s: run %s is cancelled or final: nothing starts", a.ExecutionID, r.ID), nil
	}
	if a.Task < 0 || a.Task >= r.TaskCount {
		return reject("assign execution %s: run %s has no task %d", a.ExecutionID, r.ID, a.Task), nil
	}
	t, err := ch.task(tx, a.RunID, a.Task)
	if err != nil {
		return nil, err
	}
	cur := len(t.Attempts)
	if t.State != spec.TaskRunning || cur == 0 || cur != a.Attempt || t.Attempts[cur-1].ExecutionID != a.ExecutionID || t.Attempts[cur-1].State != spec.TaskRunning {
		return reject("assign execution %s: not the current running attempt of task %d (task is %s, attempt %d)", a.ExecutionID, a.Task, t.State, cur), nil
	}
	a.StartedAt, a.CancelRequested, a.Exit = time.Time{}, false, nil
	ch.addAssignment(a.ExecutionID, a.NodeID, &a)
	return nil, putAssignmentTx(tx, &a)
}

func applyReportExecution(tx *bolt.Tx, c ReportExecution, ch *Change) ([]Rejection, error) {
	n, found, err := ch.node(tx, c.NodeID)
	if err != nil {
		return nil, err
	}
	if why := fenceNode(n, found, c.NodeID, c.Epoch); why != "" {
		return reject("report execution %s: %s", c.ExecutionID, why), nil
	}
	a, found, err := ch.assignment(tx, c.ExecutionID)
	if err != nil {
		return nil, err
	}
	switch {
	case !found || a.NodeID != c.NodeID || a.Epoch != c.Epoch:
		return reject("report execution %s: node %s (epoch %d) does not hold its assignment", c.ExecutionID, c.NodeID, c.Epoch), nil
	case !a.Live():
		return reject("report execution %s: it already ended (%s)", c.ExecutionID, a.Exit.Outcome), nil
	case c.Exit == nil && !c.Started && c.Waiting == "":
		return reject("report execution %s: reports neither a start, an exit nor a wait", c.ExecutionID), nil
	case len(c.Waiting) > MaxWaitingReason:
		return reject("report execution %s: waiting reason of %d bytes, more than %d", c.ExecutionID, len(c.Waiting), MaxWaitingReason), nil
	}
	if c.Exit != nil {
		switch c.Exit.Outcome {
		case OutcomeSucceeded, OutcomeFailed, OutcomeCanceled:
		default:
			return reject("report execution %s: exit.outcome %q: want succeeded, failed or canceled", c.ExecutionID, c.Exit.Outcome), nil
		}
	}
	was := a.Waiting
	if c.Waiting != "" && a.StartedAt.IsZero() {
		if a.Waiting == c.Waiting && !c.Started && c.Exit == nil {
			return nil, nil // nothing new
		}
		a.Waiting = c.Waiting
	}
	if c.Started && a.StartedAt.IsZero() {
		a.StartedAt = c.Time
	}
	if c.Started || c.Exit != nil {
		a.Waiting = ""
	}
	if c.Exit != nil {
		e := *c.Exit
		a.Exit = &e
	}
	if a.Waiting != was {
		if err := setAttemptWaitingTx(tx, a); err != nil {
			return nil, err
		}
	}
	ch.addAssignment(a.ExecutionID, a.NodeID, &a)
	return nil, putAssignmentTx(tx, &a)
}

// setAttemptWaitingTx copies the assignment's waiting reason onto its
// attempt in the task record, so that every reader of tasks (the API's
// task views, the UI) sees it, after a restart too. A task that moved on
// (another attempt, or none) is left alone.
func setAttemptWaitingTx(tx *bolt.Tx, a Assignment) error {
	t, err := getTaskTx(tx, a.RunID, a.Task)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	i := a.Attempt - 1
	if i < 0 || i >= len(t.Attempts) || t.Attempts[i].ExecutionID != a.ExecutionID || t.Attempts[i].State != spec.TaskRunning {
		return nil
	}
	t.Attempts[i].Waiting = a.Waiting
	return putTaskTx(tx, &t)
}

func applyCancelAssignment(tx *bolt.Tx, c CancelAssignment, ch *Change) ([]Rejection, error) {
	a, found, err := getAssignmentTx(tx, c.ExecutionID)
	if err != nil {
		return nil, err
	}
	switch {
	case !found:
		return reject("cancel assignment %s: no such assignment", c.ExecutionID), nil
	case !a.Live():
		return reject("cancel assignment %s: it already ended", c.ExecutionID), nil
	case a.CancelRequested:
		return nil, nil
	}
	a.CancelRequested = true
	ch.addAssignment(a.ExecutionID, a.NodeID, &a)
	return nil, putAssignmentTx(tx, &a)
}

// dropAssignmentTx deletes the assignment of an attempt that ended.
func dropAssignmentTx(tx *bolt.Tx, execID string, ch *Change) error {
	if execID == "" {
		return nil
	}
	// One seek: the cursor that finds the record deletes it.
	c := tx.Bucket(bucketAssignments).Cursor()
	k, v := c.Seek([]byte(execID))
	if k == nil || string(k) != execID {
		return nil
	}
	if ch != nil {
		node, err := assignmentNodeID(v)
		if err != nil {
			return fmt.Errorf("assignment %s: %w", execID, err)
		}
		ch.addAssignment(execID, node, nil)
	}
	if err := c.Delete(); err != nil {
		return err
	}
	return tx.Bucket(bucketAssignmentSpecs).Delete([]byte(execID))
}

func putNodeTx(tx *bolt.Tx, n *Node) error {
	b, err := encodeNodeRecord(n)
	if err != nil {
		return fmt.Errorf("encode node %q: %w", n.ID, err)
	}
	return tx.Bucket(bucketNodes).Put([]byte(n.ID), b)
}

// nodeMemo is a node record decoded while applying one entry, with the
// stored bytes it came from.
type nodeMemo struct {
	raw  []byte
	node Node
}

// node reads node id for a command that only looks at it (fencing, the
// executors it offers): an entry of many assignments or reports decodes
// each node's record once. As with the run memo, a node's memo holds
// while its record's stored bytes are the very same, inside one entry.
func (ch *Change) node(tx *bolt.Tx, id string) (Node, bool, error) {
	v := ch.get(tx, bucketNodes, []byte(id))
	if v == nil {
		return Node{}, false, nil
	}
	if m, ok := ch.nodes[id]; ok && sameBytes(m.raw, v) {
		return m.node, true, nil
	}
	var n Node
	if err := decodeNodeRecord(v, &n); err != nil {
		return Node{}, false, fmt.Errorf("decode node %q: %w", id, err)
	}
	if ch.nodes == nil {
		ch.nodes = make(map[string]nodeMemo)
	}
	ch.nodes[id] = nodeMemo{raw: v, node: n}
	return n, true, nil
}

func getNodeTx(tx *bolt.Tx, id string) (Node, bool, error) {
	v := tx.Bucket(bucketNodes).Get([]byte(id))
	if v == nil {
		return Node{}, false, nil
	}
	var n Node
	if err := decodeNodeRecord(v, &n); err != nil {
		return Node{}, false, fmt.Errorf("decode node %q: %w", id, err)
	}
	return n, true, nil
}

// putAssignmentTx writes an assignment. Its spec, the bulk of it, lives in
// its own bucket, written once at assignment: the reports and cancels
// that rewrite the assignment then neither decode nor encode it.
func putAssignmentTx(tx *bolt.Tx, a *Assignment) error {
	rec := *a
	if len(rec.Spec) > 0 {
		if err := tx.Bucket(bucketAssignmentSpecs).Put([]byte(a.ExecutionID), rec.Spec); err != nil {
			return err
		}
		rec.Spec = nil
	}
	b, err := encodeAssignmentRecord(&rec)
	if err != nil {
		return fmt.Errorf("encode assignment %q: %w", a.ExecutionID, err)
	}
	return tx.Bucket(bucketAssignments).Put([]byte(a.ExecutionID), b)
}

// getAssignmentTx reads an assignment without its spec (unless a data dir
// from before bucketAssignmentSpecs holds it inline).
func getAssignmentTx(tx *bolt.Tx, id string) (Assignment, bool, error) {
	return assignmentOf(tx.Bucket(bucketAssignments).Get([]byte(id)), id)
}

// assignment is getAssignmentTx for an entry's command.
func (ch *Change) assignment(tx *bolt.Tx, id string) (Assignment, bool, error) {
	return assignmentOf(ch.get(tx, bucketAssignments, []byte(id)), id)
}

// assignmentOf decodes the stored record v of execution id's assignment
// (nil: there is none).
func assignmentOf(v []byte, id string) (Assignment, bool, error) {
	if v == nil {
		return Assignment{}, false, nil
	}
	var a Assignment
	if err := decodeAssignmentRecord(v, &a); err != nil {
		return Assignment{}, false, fmt.Errorf("decode assignment %q: %w", id, err)
	}
	return a, true, nil
}

// withSpecTx fills a's spec from bucketAssignmentSpecs.
func withSpecTx(tx *bolt.Tx, a *Assignment) {
	if len(a.Spec) == 0 {
		if v := tx.Bucket(bucketAssignmentSpecs).Get([]byte(a.ExecutionID)); v != nil {
			a.Spec = bytes.Clone(v)
		}
	}
}

// assignmentsTx returns the assignments of node nodeID ("" = all),
// ordered by execution id, without their specs.
func assignmentsTx(tx *bolt.Tx, nodeID string) ([]Assignment, error) {
	var out []Assignment
	err := tx.Bucket(bucketAssignments).ForEach(func(k, v []byte) error {
		var a Assignment
		if err := decodeAssignmentRecord(v, &a); err != nil {
			return fmt.Errorf("decode assignment %q: %w", bytes.Clone(k), err)
		}
		if nodeID == "" || a.NodeID == nodeID {
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// Nodes returns every registered worker node, ordered by id.
func (s *Store) Nodes() ([]Node, error) {
	var out []Node
	err := s.fsm.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNodes).ForEach(func(k, v []byte) error {
			var n Node
			if err := decodeNodeRecord(v, &n); err != nil {
				return fmt.Errorf("decode node %q: %w", bytes.Clone(k), err)
			}
			out = append(out, n)
			return nil
		})
	})
	return out, err
}

// Node returns one worker node (ErrNotFound).
func (s *Store) Node(id string) (Node, error) {
	var n Node
	err := s.fsm.view(func(tx *bolt.Tx) error {
		var found bool
		var err error
		n, found, err = getNodeTx(tx, id)
		if err == nil && !found {
			err = fmt.Errorf("node %q: %w", id, ErrNotFound)
		}
		return err
	})
	return n, err
}

// Assignment returns the assignment of one execution (ErrNotFound),
// without its spec (AssignmentSpec).
func (s *Store) Assignment(execID string) (Assignment, error) {
	var a Assignment
	err := s.fsm.view(func(tx *bolt.Tx) error {
		var found bool
		var err error
		a, found, err = getAssignmentTx(tx, execID)
		if err == nil && !found {
			err = fmt.Errorf("assignment %q: %w", execID, ErrNotFound)
		}
		a.Spec = nil // AssignmentSpec reads it (only its worker needs it)
		return err
	})
	return a, err
}

// Assignments returns the assignments of node nodeID ("" = every node),
// ordered by execution id, without their specs.
func (s *Store) Assignments(nodeID string) ([]Assignment, error) {
	var out []Assignment
	err := s.fsm.view(func(tx *bolt.Tx) (err error) {
		out, err = assignmentsTx(tx, nodeID)
		for i := range out {
			out[i].Spec = nil
		}
		return
	})
	return out, err
}

// AssignmentSpec returns the spec of an execution's assignment
// (ErrNotFound): every worker reads each assignment that changes, but
// only the one holding it reads its spec, once, to start it.
func (s *Store) AssignmentSpec(execID string) (json.RawMessage, error) {
	var spec json.RawMessage
	err := s.fsm.view(func(tx *bolt.Tx) error {
		// A spec is there only with its assignment (dropAssignmentTx
		// deletes both): one lookup, without decoding the assignment.
		if v := tx.Bucket(bucketAssignmentSpecs).Get([]byte(execID)); v != nil {
			spec = bytes.Clone(v)
			return nil
		}
		a, found, err := getAssignmentTx(tx, execID)
		if err == nil && !found {
			err = fmt.Errorf("assignment %q: %w", execID, ErrNotFound)
		}
		if err != nil {
			return err
		}
		withSpecTx(tx, &a)
		spec = a.Spec
		return nil
	})
	return spec, err
}
