package api_test

import (
	"testing"

	"github.com/skiffml/skiff/api"
)

// TestClusterDigest_IsTheStoresDigestForAdminsOnly: the endpoint answers
// the node's own applied index and state digest (store.Digest), changes
// when the state does, and is refused to a viewer.
func TestClusterDigest_IsTheStoresDigestForAdminsOnly(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	get := func() map[string]any {
		return h.must(200, "GET", "/apis/skiff/v1/cluster/digest", h.admin, nil).m(t)
	}
	got := get()
	idx, digest, err := h.st.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got["digest"] != digest || got["applied_index"] != float64(idx) || got["node_id"] != h.st.ID() || got["leader_id"] != h.st.ID() {
		t.Fatalf("digest answer %v; store says %d %s", got, idx, digest)
	}
	h.token("team-a", api.RoleEditor) // a change of state
	if again := get(); again["digest"] == digest || again["applied_index"].(float64) <= float64(idx) {
		t.Fatalf("digest did not follow a change: %v then %v", got, again)
	}
	h.must(403, "GET", "/apis/skiff/v1/cluster/digest", h.token("team-a", api.RoleViewer), nil)
}
