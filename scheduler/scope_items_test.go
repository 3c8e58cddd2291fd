package scheduler

import (
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

// TestItemList_ValuesAreTheItems: the compact item list gives back each
// parameter item's JSON and each artifact, and an item's bytes end where
// it does (appending to one cannot write over the next).
func TestItemList_ValuesAreTheItems(t *testing.T) {
	raw := []string{`1`, `"two"`, `{"a":[3]}`, `""`, `null`}
	var l itemList
	for _, r := range raw {
		l.params = append(l.params, r...)
		l.ends = append(l.ends, uint32(len(l.params)))
	}
	for k, r := range raw {
		v := l.at(k)
		if string(v.Param) != r || v.Artifact != nil {
			t.Fatalf("item %d = %+v, want %s", k, v, r)
		}
		_ = append(v.Param, 'x')
	}
	for k, r := range raw {
		if got := string(l.at(k).Param); got != r {
			t.Fatalf("after appends, item %d = %s, want %s", k, got, r)
		}
	}
	arts := itemList{artifacts: true, arts: []spec.ArtifactRef{{Digest: "d1"}, {Digest: "d2"}}}
	if v := arts.at(1); v.Artifact == nil || v.Artifact.Digest != "d2" || v.Param != nil {
		t.Fatalf("artifact item = %+v", v)
	}
	if n := (&itemList{}).len(); n != 0 {
		t.Fatalf("empty list len %d", n)
	}
}
