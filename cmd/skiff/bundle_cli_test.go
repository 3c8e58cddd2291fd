package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLI_PipelineFilesOverServer: a pipeline that reads files beside it
// ({{pipeline.dir}}) runs on a server: the client sends the files it names
// and the server's steps read them from the run's workspace. A file that is
// missing, a link leading out of the pipeline's directory, or a
// sub-pipeline file (which the server cannot compile from) is refused
// before submission with exit 2, naming it.
func TestCLI_PipelineFilesOverServer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srvData, client := filepath.Join(dir, "server"), filepath.Join(dir, "client")
	if r := skiff(t, srvData, "server", "policy", "--namespace", "default", "--allow-executor", "local"); r.code != 0 {
		t.Fatalf("server policy: exit %d %s", r.code, r.stderr)
	}
	url := startServer(t, srvData, "local")
	pdir := filepath.Join(dir, "pipe")
	if err := os.MkdirAll(filepath.Join(pdir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(pdir, "data"), "in.csv", "sepal,petal\n5.1,1.4\n")
	p := writeFile(t, pdir, "p.yaml", "name: files\nexecutor: local\ntasks:\n  - name: a\n    command: [cat, '{{pipeline.dir}}/data/in.csv']\n")
	run := skiff(t, client, "--server", url, "run", p, "-o", "name", "--progress", "none")
	if run.code != 0 {
		t.Fatalf("run --server with pipeline files: exit %d\n%s", run.code, run.stderr)
	}
	id := strings.TrimSpace(run.stdout)
	logs := skiff(t, client, "--server", url, "logs", id, "a")
	if logs.code != 0 || !strings.Contains(logs.stdout, "5.1,1.4") {
		t.Errorf("the step did not read the sent file: exit %d %q %s", logs.code, logs.stdout, logs.stderr)
	}
	ws, _ := filepath.Glob(filepath.Join(srvData, "workspaces", "default", "*", "data", "in.csv"))
	if len(ws) != 1 {
		t.Errorf("workspace files = %v, want one data/in.csv under the namespace's workspace", ws)
	}

	missing := writeFile(t, pdir, "missing.yaml", "name: m\nexecutor: local\ntasks:\n  - name: a\n    command: [cat, '{{pipeline.dir}}/nope.csv']\n")
	r := skiff(t, client, "--server", url, "run", missing)
	if r.code != 2 || !strings.Contains(r.stderr, "nope.csv") || !strings.Contains(r.stderr, "not found") {
		t.Errorf("missing pipeline file over --server: exit %d %s", r.code, r.stderr)
	}
	writeFile(t, filepath.Join(pdir, "data"), "sub.yaml", "name: sub\ntasks:\n  - name: s\n    command: [echo]\n")
	withSub := writeFile(t, pdir, "top.yaml", "name: top\nexecutor: local\ntasks:\n  - name: train\n    pipeline: data/sub.yaml\n")
	r = skiff(t, client, "--server", url, "run", withSub)
	if r.code != 2 || !strings.Contains(r.stderr, "data/sub.yaml") || !strings.Contains(r.stderr, "without --server") {
		t.Errorf("sub-pipeline file over --server: exit %d %s", r.code, r.stderr)
	}
	secret := writeFile(t, dir, "secret.txt", "do not send\n")
	if err := os.Symlink(secret, filepath.Join(pdir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	linked := writeFile(t, pdir, "linked.yaml", "name: l\nexecutor: local\ntasks:\n  - name: a\n    command: [cat, '{{pipeline.dir}}/link.txt']\n")
	r = skiff(t, client, "--server", url, "run", linked)
	if r.code != 2 || !strings.Contains(r.stderr, "link.txt") || !strings.Contains(r.stderr, "regular files") {
		t.Errorf("symlink out of the pipeline dir over --server: exit %d %s", r.code, r.stderr)
	}
}
