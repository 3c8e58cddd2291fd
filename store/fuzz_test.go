package store

import (
	"reflect"
	"testing"
)

// FuzzDecodeBatch feeds arbitrary bytes to the raft entry decoder: it must
// never panic, and what it decodes must encode again to an entry that
// decodes to the same commands (the check Apply makes before proposing).
func FuzzDecodeBatch(f *testing.F) {
	for _, data := range randomLog(f, 3, 8) {
		f.Add(data)
	}
	f.Add([]byte{batchFormat, byte(TypeSetRunState), 1, 24})
	f.Add([]byte(`{"not":"a batch"}`))
	payload := `{"run_id":"r","from":"RUNNING","to":9}`
	f.Add(append([]byte{batchFormat, byte(TypeSetRunState), 1, byte(len(payload))}, payload...))
	f.Fuzz(func(t *testing.T, data []byte) {
		cmds, err := decodeBatch(data)
		if err != nil {
			return
		}
		var known []Command
		for _, dc := range cmds {
			if dc.cmd != nil {
				known = append(known, dc.cmd)
			}
		}
		if len(known) == 0 {
			return
		}
		again, err := encodeBatch(known)
		if err != nil {
			return // e.g. an unknown state: refused at encode, rejected by the FSM
		}
		back, err := decodeBatch(again)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		for i, dc := range back {
			if !reflect.DeepEqual(dc.cmd, known[i]) {
				t.Fatalf("command %d changed in a round trip:\n%#v\n%#v", i, known[i], dc.cmd)
			}
		}
	})
}
