package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
)

// docBlock returns the fenced block that follows marker in docs/cluster.md.
func docBlock(t *testing.T, marker string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "docs", "cluster.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "<!-- "+marker+" -->\n```")
	if !ok {
		t.Fatalf("docs/cluster.md has no %q block", marker)
	}
	_, rest, _ = strings.Cut(rest, "\n") // the fence's language
	block, _, ok := strings.Cut(rest, "\n```")
	if !ok {
		t.Fatalf("the %q block is not closed", marker)
	}
	return block
}

// knownServerFlags are the names 'skiff [global flags] server [flags]'
// accepts.
func knownServerFlags() map[string]bool {
	known := map[string]bool{}
	add := func(fs []cli.Flag) {
		for _, f := range fs {
			for _, n := range f.Names() {
				known["--"+n] = true
			}
		}
	}
	add(newApp().Flags)
	add(serverCommand().Flags)
	return known
}

// checkServerArgs fails on a flag skiff server does not have.
func checkServerArgs(t *testing.T, where string, args []string) {
	t.Helper()
	known := knownServerFlags()
	if !containsArg(args, "server") {
		t.Errorf("%s: no server command in %v", where, args)
	}
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if strings.HasPrefix(name, "--") && !known[name] {
			t.Errorf("%s: skiff server has no flag %s", where, name)
		}
	}
}

func containsArg(args []string, s string) bool {
	for _, a := range args {
		if a == s {
			return true
		}
	}
	return false
}

// TestDocs_SystemdUnitParses: the unit in docs/cluster.md has its three
// sections, and its ExecStart uses only flags skiff server has.
func TestDocs_SystemdUnitParses(t *testing.T) {
	unit := docBlock(t, "systemd-unit")
	sections := map[string]map[string]string{}
	var cur map[string]string
	joined := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(unit, " ")
	for i, line := range strings.Split(joined, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			cur = map[string]string{}
			sections[line] = cur
		case cur != nil && strings.Contains(line, "="):
			k, v, _ := strings.Cut(line, "=")
			cur[k] = v
		default:
			t.Errorf("unit line %d: %q is neither a section nor key=value", i+1, line)
		}
	}
	for _, s := range []string{"[Unit]", "[Service]", "[Install]"} {
		if sections[s] == nil {
			t.Errorf("unit has no %s section", s)
		}
	}
	exec := strings.Fields(sections["[Service]"]["ExecStart"])
	if len(exec) < 3 || !strings.HasSuffix(exec[0], "/skiff") {
		t.Fatalf("ExecStart %v", exec)
	}
	checkServerArgs(t, "systemd ExecStart", exec[1:])
}

// TestDocs_ComposeFileParses: the compose file in docs/cluster.md is YAML
// with three server services using only flags skiff server has, and
// docker compose (or docker-compose) accepts it when installed.
func TestDocs_ComposeFileParses(t *testing.T) {
	text := docBlock(t, "compose")
	var doc struct {
		Services map[string]struct {
			Command []string `yaml:"command"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("compose YAML: %v", err)
	}
	for _, n := range []string{"node1", "node2", "node3", "bootstrap"} {
		s, ok := doc.Services[n]
		if !ok {
			t.Errorf("no service %s", n)
			continue
		}
		checkServerArgs(t, "compose "+n, s.Command)
	}
	path := filepath.Join(t.TempDir(), "docker-compose.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	switch {
	case exec.Command("docker", "compose", "version").Run() == nil:
		cmd = exec.Command("docker", "compose", "-f", path, "--profile", "bootstrap", "config", "-q")
	case commandExists("docker-compose"):
		cmd = exec.Command("docker-compose", "-f", path, "--profile", "bootstrap", "config", "-q")
	default:
		t.Skip("neither docker compose nor docker-compose is installed: only the YAML and its flags were checked")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
	}
}

func commandExists(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}
