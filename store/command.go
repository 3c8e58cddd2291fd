package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// CommandType identifies a command in the raft log. Numbers only grow: never
// reuse or renumber one. The high bit (ignorableFlag) marks a command that
// older binaries may skip instead of halting.
type CommandType uint8

// Command types. 0 is invalid.
const (
	TypeCreateRun       CommandType = 1
	TypeTransitionTasks CommandType = 2
	TypeSetRunState     CommandType = 3
	TypeRequestCancel   CommandType = 4
)

// ignorableFlag on a type byte in the log means "skip if unknown".
const ignorableFlag CommandType = 0x80

// Command is one state change. Implementations are plain structs carrying
// everything the FSM needs (IDs, times): the FSM adds nothing of its own.
type Command interface {
	Type() CommandType
}

// batchFormat is the first byte of every raft entry this package writes.
const batchFormat byte = 1

// commandDef is one row of the handler table.
type commandDef struct {
	name    string
	version uint8 // current encoding version, written on encode
	encode  func(cmd Command) ([]byte, error)
	decode  func(version uint8, payload []byte) (Command, error)
	// apply applies cmd; a handler that changes what subscribers act on
	// in ways its command alone does not say notes it in ch.
	apply func(tx *bolt.Tx, cmd Command, ch *Change) ([]Rejection, error)
}

var registry = map[CommandType]*commandDef{}

// registerJSON adds a command whose payload is its JSON encoding. It panics
// on a duplicate number: that is a programming error.
func registerJSON[T Command](typ CommandType, name string, version uint8, apply func(tx *bolt.Tx, c T) ([]Rejection, error)) {
	registerJSONNoted(typ, name, version, func(tx *bolt.Tx, c T, _ *Change) ([]Rejection, error) { return apply(tx, c) })
}

// registerJSONNoted is registerJSON for a handler that notes its changes
// for the feed itself.
func registerJSONNoted[T Command](typ CommandType, name string, version uint8, apply func(tx *bolt.Tx, c T, ch *Change) ([]Rejection, error)) {
	if typ == 0 || typ&ignorableFlag != 0 {
		panic(fmt.Sprintf("store: invalid command type %d for %s", typ, name))
	}
	if _, dup := registry[typ]; dup {
		panic(fmt.Sprintf("store: command type %d registered twice (%s)", typ, name))
	}
	registry[typ] = &commandDef{
		name:    name,
		version: version,
		encode: func(cmd Command) ([]byte, error) {
			var c T
			switch v := any(cmd).(type) {
			case T:
				c = v
			case *T: // a pointer to the command also has its Type
				c = *v
			default:
				return nil, fmt.Errorf("%T is not a %s", cmd, name)
			}
			if chk, ok := any(c).(checkStates); ok {
				if err := chk.checkStates(); err != nil {
					return nil, err
				}
			}
			return json.Marshal(storedView(&c))
		},
		decode: func(v uint8, payload []byte) (Command, error) {
			if v == 0 || v > version {
				return nil, fmt.Errorf("%w: %s version %d (this binary knows up to %d)", ErrUnknownCommand, name, v, version)
			}
			var c T
			if err := json.Unmarshal(payload, storedView(&c)); err != nil {
				return nil, fmt.Errorf("decode %s: %w", name, err)
			}
			return c, nil
		},
		apply: func(tx *bolt.Tx, cmd Command, ch *Change) ([]Rejection, error) { return apply(tx, cmd.(T), ch) },
	}
}

// commandName is the metrics label for a type.
func commandName(t CommandType) string {
	if d, ok := registry[t]; ok {
		return d.name
	}
	return fmt.Sprintf("unknown_%d", t)
}

// encodeBatch encodes cmds as one raft entry: the format byte, then for each
// command its type byte, version byte, uvarint payload length and payload.
func encodeBatch(cmds []Command) ([]byte, error) {
	buf, _, err := encodeBatchDecoded(cmds)
	return buf, err
}

// encodeBatchDecoded is encodeBatch, also returning the entry as the
// FSM decodes it (the check's work, kept for the leader's own apply).
func encodeBatchDecoded(cmds []Command) ([]byte, []decodedCmd, error) {
	payloads := make([][]byte, len(cmds))
	size := 1
	for i, c := range cmds {
		if c == nil {
			return nil, nil, fmt.Errorf("store: command %d is nil", i)
		}
		def, ok := registry[c.Type()]
		if !ok {
			return nil, nil, fmt.Errorf("store: command %d (%T): %w %d", i, c, ErrUnknownCommand, c.Type())
		}
		payload, err := def.encode(c)
		if err != nil {
			return nil, nil, fmt.Errorf("store: command %d (%s): %w", i, def.name, err)
		}
		payloads[i] = payload
		size += 2 + binary.MaxVarintLen64 + len(payload)
	}
	// One allocation: an engine's entry is a command of up to thousands
	// of transitions, which appending would copy several times over.
	buf := make([]byte, 1, size)
	buf[0] = batchFormat
	for i, c := range cmds {
		buf = append(buf, byte(c.Type()), registry[c.Type()].version)
		buf = binary.AppendUvarint(buf, uint64(len(payloads[i])))
		buf = append(buf, payloads[i]...)
	}
	// An entry that cannot be decoded would halt every node's FSM at it:
	// check before it is proposed.
	decoded, err := decodeBatch(buf)
	if err != nil {
		return nil, nil, fmt.Errorf("store: the encoded commands do not decode, not proposing them: %w", err)
	}
	return buf, decoded, nil
}

// decodedCmd is a command read from the log; cmd is nil for an unknown
// command marked ignorable.
type decodedCmd struct {
	typ CommandType
	cmd Command
}

// decodeBatch is the inverse of encodeBatch. An unknown type that is not
// marked ignorable, an unknown version, or a malformed entry is an error.
func decodeBatch(data []byte) ([]decodedCmd, error) {
	if len(data) == 0 || data[0] != batchFormat {
		return nil, fmt.Errorf("%w: batch format byte %v", ErrUnknownCommand, data[:min(1, len(data))])
	}
	var out []decodedCmd
	rest := data[1:]
	for len(rest) > 0 {
		if len(rest) < 3 {
			return nil, fmt.Errorf("truncated command header at command %d", len(out))
		}
		typ, version := CommandType(rest[0]), rest[1]
		n, w := binary.Uvarint(rest[2:])
		if w <= 0 || uint64(len(rest)-2-w) < n {
			return nil, fmt.Errorf("truncated command payload at command %d", len(out))
		}
		payload := rest[2+w : 2+w+int(n)]
		rest = rest[2+w+int(n):]
		def, ok := registry[typ&^ignorableFlag]
		if !ok {
			if typ&ignorableFlag != 0 {
				out = append(out, decodedCmd{typ: typ})
				continue
			}
			return nil, fmt.Errorf("%w %d at command %d", ErrUnknownCommand, typ, len(out))
		}
		c, err := def.decode(version, payload)
		if err != nil {
			return nil, err
		}
		out = append(out, decodedCmd{typ: typ &^ ignorableFlag, cmd: c})
	}
	return out, nil
}

// registeredTypes lists the known types in order (for tests and docs).
func registeredTypes() []CommandType {
	var ts []CommandType
	for t := range registry {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

// EncodeCommands encodes cmds as one log entry's payload, for a node that
// passes them to the leader (cluster RPC); DecodeCommands reverses it.
func EncodeCommands(cmds ...Command) ([]byte, error) { return encodeBatch(cmds) }

// DecodeCommands decodes what EncodeCommands made. Unknown ignorable
// commands are dropped.
func DecodeCommands(data []byte) ([]Command, error) {
	dcs, err := decodeBatch(data)
	if err != nil {
		return nil, err
	}
	out := make([]Command, 0, len(dcs))
	for _, dc := range dcs {
		if dc.cmd != nil {
			out = append(out, dc.cmd)
		}
	}
	return out, nil
}
