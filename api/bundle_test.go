package api_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffml/skiff/api"
)

// tarEntry is one entry of a test bundle.
type tarEntry struct {
	name, body, link string
	typ              byte
	size             int64 // 0: len(body)
}

func makeBundle(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Linkname: e.link}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
			if e.size > 0 {
				h.Size = e.size
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			body := []byte(e.body)
			if e.size > 0 {
				body = make([]byte, e.size)
			}
			if _, err := tw.Write(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRuns_PipelineFilesUnpacked: the files a client sends with a run are
// unpacked into its namespace's workspace, which {{pipeline.dir}} names
// for the run; the same files sent again are unpacked once.
func TestRuns_PipelineFilesUnpacked(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	tok := h.token("team-a", api.RoleEditor)
	bundle := makeBundle(t, tarEntry{name: "data/in.csv", body: "a,b\n1,2\n"}, tarEntry{name: "load.py", body: "print(1)\n"})
	var ids []string
	for range 2 {
		r := h.must(200, "POST", "/apis/v2beta1/runs?namespace=team-a", tok, runBody(simPipeline, map[string]any{"pipeline_files": bundle})).m(t)
		ids = append(ids, r["run_id"].(string))
	}
	var dirs []string
	for _, id := range ids {
		run, err := h.st.GetRun(id)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, run.PipelineDir)
	}
	if dirs[0] != dirs[1] {
		t.Errorf("the same files gave two workspaces: %v", dirs)
	}
	if rel, err := filepath.Rel(filepath.Join(h.workspace, "team-a"), dirs[0]); err != nil || strings.Contains(rel, "..") || rel == "." {
		t.Fatalf("pipeline dir %q is not under team-a's workspace", dirs[0])
	}
	got, err := os.ReadFile(filepath.Join(dirs[0], "data", "in.csv"))
	if err != nil || string(got) != "a,b\n1,2\n" {
		t.Errorf("data/in.csv = %q, %v", got, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(h.workspace, "team-a")); len(ents) != 1 {
		t.Errorf("team-a's workspace holds %d entries, want 1 (no staging left)", len(ents))
	}
}

// TestRuns_PipelineFilesHostile: a bundle with a path leading out, a link,
// a device, a name given twice, too many bytes, or no tar at all is
// refused with an error naming pipeline_files and the entry, and leaves
// nothing behind: no run, no file in or out of the workspace.
func TestRuns_PipelineFilesHostile(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	cases := []struct {
		name   string
		bundle []byte
		status int
		want   string
	}{
		{"dot-dot", makeBundle(t, tarEntry{name: "../escape.txt", body: "x"}), 400, "../escape.txt"},
		{"deep dot-dot", makeBundle(t, tarEntry{name: "a/../../escape.txt", body: "x"}), 400, "a/../../escape.txt"},
		{"absolute", makeBundle(t, tarEntry{name: "/tmp/escape.txt", body: "x"}), 400, "/tmp/escape.txt"},
		{"symlink", makeBundle(t, tarEntry{name: "link", typ: tar.TypeSymlink, link: "/etc/passwd"}), 400, "only regular files"},
		{"hard link", makeBundle(t, tarEntry{name: "a", body: "x"}, tarEntry{name: "b", typ: tar.TypeLink, link: "/etc/passwd"}), 400, `entry \"b\"`},
		{"fifo", makeBundle(t, tarEntry{name: "p", typ: tar.TypeFifo}), 400, `entry \"p\"`},
		{"twice", makeBundle(t, tarEntry{name: "a", body: "x"}, tarEntry{name: "a", body: "y"}), 400, "given twice"},
		{"backslash", makeBundle(t, tarEntry{name: `..\escape`, body: "x"}), 400, "escape"},
		{"too big unpacked", makeBundle(t, tarEntry{name: "zeros", size: api.MaxBundleUnpackedBytes + 1}), 413, "unpacked"},
		{"not a tar", []byte("hello"), 400, "gzip"},
	}
	for _, c := range cases {
		r := h.do("POST", "/apis/v2beta1/runs", h.admin, runBody(simPipeline, map[string]any{"pipeline_files": c.bundle}))
		if r.status != c.status || !strings.Contains(string(r.body), "pipeline_files") || !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s: status %d %s, want %d naming pipeline_files and %s", c.name, r.status, r.body, c.status, c.want)
		}
	}
	var left []string
	_ = filepath.Walk(h.workspace, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() || err == nil && p != h.workspace && p != filepath.Join(h.workspace, "default") {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("refused bundles left files behind: %v", left)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(h.workspace), "escape.txt")); err == nil {
		t.Error("a bundle wrote outside the workspace")
	}
	if runs, err := h.st.ListRuns(); err == nil && len(runs) > 0 {
		t.Errorf("refused bundles created %d runs", len(runs))
	}
}
