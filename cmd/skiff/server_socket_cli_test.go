package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLI_ServerServesItsDataDirSocket: while skiff server runs on a data
// dir, commands given that data dir (no --server, no token) reach it
// through the data dir's socket, as they reach a workstation's skiff run:
// they list its runs and submit to it; the socket is the owner's only.
func TestCLI_ServerServesItsDataDirSocket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	url := startServer(t, data)
	p := writeFile(t, dir, "p.yaml", "name: simmed\ntasks:\n  - name: a\n    command: [echo, hi]\n")
	viaHTTP := skiff(t, dir, "--server", url, "run", p, "-o", "name", "--progress", "none")
	if viaHTTP.code != 0 {
		t.Fatalf("run --server: exit %d %s", viaHTTP.code, viaHTTP.stderr)
	}
	id := strings.TrimSpace(viaHTTP.stdout)
	fi, err := os.Stat(filepath.Join(data, socketName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi, err)
	}
	list := skiff(t, data, "runs", "list", "-o", "name")
	if list.code != 0 || list.stdout != id+"\n" {
		t.Fatalf("runs list --data-dir (server running): exit %d %q %s", list.code, list.stdout, list.stderr)
	}
	// A run submitted through the socket runs on the server.
	viaSock := skiff(t, data, "run", p, "-o", "json", "--progress", "none")
	if viaSock.code != 0 || !strings.Contains(viaSock.stderr, "the skiff process serving the data dir") {
		t.Fatalf("run --data-dir (server running): exit %d %s", viaSock.code, viaSock.stderr)
	}
	sockID := parseSummary(t, viaSock).RunID
	if r := skiff(t, dir, "--server", url, "runs", "get", sockID[:8], "-o", "name"); r.code != 0 || r.stdout != sockID+"\n" {
		t.Errorf("the server does not know the run submitted through its socket: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	// The server's executor policy holds on the socket too.
	local := writeFile(t, dir, "local.yaml", "name: l\nexecutor: local\ntasks:\n  - name: a\n    command: [/bin/true]\n")
	if r := skiff(t, data, "run", local, "--progress", "none"); r.code != 2 || !strings.Contains(r.stderr, "local") {
		t.Errorf("a local step through the server's socket: exit %d %s", r.code, r.stderr)
	}
}
