package main

import (
	"strings"
	"testing"
)

// skiff server policy --kube-namespace sets, keeps and clears a
// namespace's Kubernetes namespace in the data dir, and refuses a bad
// name without changing anything.
func TestCLI_PolicyKubeNamespace(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	r := skiff(t, data, "server", "policy", "--namespace", "team-a", "--kube-namespace", "tenant-a")
	if r.code != 0 || !strings.Contains(r.stdout, "kube namespace: tenant-a") {
		t.Fatalf("set: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = skiff(t, data, "server", "policy", "--namespace", "team-a", "--allow-executor", "local")
	if r.code != 0 || !strings.Contains(r.stdout, "kube namespace: tenant-a") || !strings.Contains(r.stdout, "local") {
		t.Fatalf("--allow-executor alone changed the kube namespace: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = skiff(t, data, "server", "policy", "--namespace", "team-a", "--kube-namespace", "Tenant_B")
	if r.code != 2 || !strings.Contains(r.stderr, "--kube-namespace") {
		t.Fatalf("bad name: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = skiff(t, data, "server", "policy", "--namespace", "team-a")
	if r.code != 0 || !strings.Contains(r.stdout, "kube namespace: tenant-a") {
		t.Fatalf("after a refused change: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = skiff(t, data, "server", "policy", "--namespace", "team-a", "--kube-namespace", "")
	if r.code != 0 || !strings.Contains(r.stdout, "kube namespace: the kube executor's own") {
		t.Fatalf("clear: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
