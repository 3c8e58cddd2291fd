package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffml/skiff/executors/docker/dockertest"
)

// TestCLI_DockerStepCannotReadHostFilesThroughLinks: through the real
// binary and a real container, a step that makes its parameter output and
// its artifact output symbolic links to host paths fails on those outputs,
// naming them; the host's secret reaches no output, and the host files are
// unchanged.
func TestCLI_DockerStepCannotReadHostFilesThroughLinks(t *testing.T) {
	t.Parallel()
	dockertest.Client(t)
	dir := t.TempDir()
	host := filepath.Join(dir, "host")
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := writeFile(t, host, "secret.txt", "host-secret-42\n")
	for _, tc := range []struct{ name, output, decl string }{
		{"parameter", "leak", "leak: string"},
		{"artifact", "model", "model: Model"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := secret
			if tc.output == "model" {
				target = host // a directory: stored as a directory artifact if followed
			}
			p := writeFile(t, dir, tc.name+".yaml", `
name: hostile
executor: docker
tasks:
  - name: steal
    image: `+dockertest.Image+`
    command: [/bin/sh, -c, 'rm -rf {{outputs.`+tc.output+`}}; ln -s `+target+` {{outputs.`+tc.output+`}}']
    outputs: {`+tc.decl+`}
`)
			data := filepath.Join(dir, "data-"+tc.name)
			cmd := exec.Command(skiffBin, "--data-dir", data, "run", p, "-o", "json", "--progress", "none")
			cmd.Env = skiffEnv(t)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			_ = cmd.Run()
			s := parseSummary(t, result{stdout: out.String(), stderr: errb.String()})
			if s.State != "FAILED" || len(s.Tasks) != 1 {
				t.Fatalf("run %s, want FAILED\n%s\n%s", s.State, out.String(), errb.String())
			}
			if e := s.Tasks[0].Error; !strings.Contains(e, `"`+tc.output+`"`) || !strings.Contains(e, "symbolic link") {
				t.Errorf("task error %q does not name the output %q and the link", e, tc.output)
			}
			if strings.Contains(out.String(), "host-secret-42") {
				t.Errorf("the host's secret reached the run's summary:\n%s", out.String())
			}
			if b, err := os.ReadFile(secret); err != nil || string(b) != "host-secret-42\n" {
				t.Errorf("host file changed: %q %v", b, err)
			}
		})
	}
}
