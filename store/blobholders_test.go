package store

import (
	"reflect"
	"strings"
	"testing"
)

func testDigest(c string) string { return "sha256:" + strings.Repeat(c, 64) }

// TestRecordHolders_AddDrop: holders are a sorted set per digest; a drop
// of the last holder removes the record; a hostile digest rejects the
// whole command, which then changes nothing.
func TestRecordHolders_AddDrop(t *testing.T) {
	f := newTestFSM(t)
	st := &Store{fsm: f.fsm}
	a, b := testDigest("a"), testDigest("b")
	f.mustAccept(t, RecordHolders{NodeID: "n2", Add: []string{a, b}, Time: t0})
	f.mustAccept(t, RecordHolders{NodeID: "n1", Add: []string{a, a}, Time: t0})
	if got, _ := st.Holders(a); !reflect.DeepEqual(got, []string{"n1", "n2"}) {
		t.Fatalf("holders of a: %v", got)
	}
	f.mustAccept(t, RecordHolders{NodeID: "n2", Drop: []string{b, testDigest("c")}, Time: t0})
	if got, _ := st.Holders(b); got != nil {
		t.Fatalf("holders of b after the last drop: %v", got)
	}
	for name, c := range map[string]RecordHolders{
		"traversal": {NodeID: "n3", Add: []string{a, "sha256:../../etc/passwd"}},
		"upper hex": {NodeID: "n3", Add: []string{"sha256:" + strings.Repeat("A", 64)}},
		"no prefix": {NodeID: "n3", Drop: []string{strings.Repeat("a", 64)}},
		"no node":   {Add: []string{a}},
	} {
		r := f.apply(t, c)
		if len(r.rejected) != 1 {
			t.Fatalf("%s: accepted: %+v", name, r)
		}
	}
	if got, _ := st.Holders(a); !reflect.DeepEqual(got, []string{"n1", "n2"}) {
		t.Fatalf("a rejected command changed the holders of a: %v", got)
	}
	var seen []string
	if err := st.EachHeld(func(d string, hs []string) error { seen = append(seen, d); return nil }); err != nil || !reflect.DeepEqual(seen, []string{a}) {
		t.Fatalf("EachHeld: %v, %v", seen, err)
	}
}
