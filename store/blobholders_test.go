package store

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
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

// TestRecordHolders_MatchesASetModel: any sequence of adds and drops
// leaves each digest's holders equal to a plain set model, sorted, and
// two stores fed the same log hold the same bytes.
func TestRecordHolders_MatchesASetModel(t *testing.T) {
	digests := []string{testDigest("1"), testDigest("2"), testDigest("3")}
	rapid.Check(t, func(rt *rapid.T) {
		f, g := newTestFSM(t), newTestFSM(t)
		model := map[string]map[string]bool{}
		for range rapid.IntRange(1, 30).Draw(rt, "n") {
			node := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(rt, "node")
			ds := rapid.SliceOfN(rapid.SampledFrom(digests), 1, 3).Draw(rt, "digests")
			c := RecordHolders{NodeID: node, Time: t0}
			if rapid.Bool().Draw(rt, "drop") {
				c.Drop = ds
			} else {
				c.Add = ds
			}
			f.mustAccept(rt, c)
			g.mustAccept(rt, c)
			for _, d := range ds {
				if model[d] == nil {
					model[d] = map[string]bool{}
				}
				if c.Add != nil {
					model[d][node] = true
				} else {
					delete(model[d], node)
				}
			}
		}
		st := &Store{fsm: f.fsm}
		for _, d := range digests {
			var want []string
			for n := range model[d] {
				want = append(want, n)
			}
			slices.Sort(want)
			got, err := st.Holders(d)
			if err != nil || !slices.Equal(got, want) {
				rt.Fatalf("holders of %s: %v, want %v (%v)", d, got, want, err)
			}
		}
		if a, b := dumpDB(t, f.db), dumpDB(t, g.db); !reflect.DeepEqual(a, b) {
			rt.Fatalf("two stores fed the same log differ")
		}
	})
}
