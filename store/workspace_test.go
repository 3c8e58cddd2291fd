package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPutWorkspace_StoresCheckedBundles: a bundle is stored under its own
// digest and namespace; a wrong digest, a hostile namespace, an empty or
// oversized bundle is rejected and stores nothing; the same bundle again
// changes nothing.
func TestPutWorkspace_StoresCheckedBundles(t *testing.T) {
	t.Parallel()
	st := openTestStore(t, t.TempDir())
	data := []byte("a bundle")
	d := WorkspaceDigest(data)
	now := time.Now().UTC()
	for _, tc := range []struct {
		name string
		cmd  PutWorkspace
		want string
	}{
		{"wrong digest", PutWorkspace{Namespace: "team", Digest: WorkspaceDigest([]byte("other")), Data: data, Time: now}, "digest does not match"},
		{"dot-dot namespace", PutWorkspace{Namespace: "..", Digest: d, Data: data, Time: now}, "not a valid workspace name"},
		{"slash namespace", PutWorkspace{Namespace: "a/b", Digest: d, Data: data, Time: now}, "not a valid workspace name"},
		{"digest not hex", PutWorkspace{Namespace: "team", Digest: strings.Repeat("G", 64), Data: data, Time: now}, "not a valid workspace name"},
		{"empty", PutWorkspace{Namespace: "team", Digest: WorkspaceDigest(nil), Time: now}, "empty"},
		{"too big", PutWorkspace{Namespace: "team", Digest: WorkspaceDigest(make([]byte, MaxWorkspaceBytes+1)), Data: make([]byte, MaxWorkspaceBytes+1), Time: now}, "more than"},
	} {
		res, err := st.Apply(t.Context(), tc.cmd)
		if err != nil || len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Reason, tc.want) {
			t.Errorf("%s: %+v %v; want a rejection saying %q", tc.name, res.Rejected, err, tc.want)
		}
	}
	if _, err := st.Workspace("team", d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after rejections only: %v", err)
	}
	for range 2 {
		res, err := st.Apply(t.Context(), PutWorkspace{Namespace: "team", Digest: d, Data: data, Time: now})
		if err != nil || len(res.Rejected) != 0 {
			t.Fatalf("put: %+v %v", res.Rejected, err)
		}
	}
	got, err := st.Workspace("team", d)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Workspace: %q %v", got, err)
	}
	if _, err := st.Workspace("other", d); !errors.Is(err, ErrNotFound) {
		t.Errorf("another namespace reads team's bundle: %v", err)
	}
	root := WorkspaceRoot("team", d)
	if ns, dg, ok := ParseWorkspaceRoot(root); !ok || ns != "team" || dg != d {
		t.Errorf("ParseWorkspaceRoot(%q) = %q %q %v", root, ns, dg, ok)
	}
	for _, bad := range []string{"/tmp/x", "/.skiff-workspace/team", "/.skiff-workspace/../" + d, "/.skiff-workspace/team/" + d + "/x"} {
		if _, _, ok := ParseWorkspaceRoot(bad); ok {
			t.Errorf("ParseWorkspaceRoot(%q) accepted", bad)
		}
	}
}
