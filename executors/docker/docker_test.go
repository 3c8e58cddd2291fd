package docker_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/docker"
	"github.com/skiffml/skiff/executors/docker/dockertest"
	"github.com/skiffml/skiff/executors/executortest"
	"github.com/skiffml/skiff/store/blob"
)

const deadline = 90 * time.Second

var (
	seq     atomic.Int32
	badChar = regexp.MustCompile(`[^a-z0-9.-]+`)
)

func testSpec(t *testing.T, script string, args ...string) *executors.Spec {
	n := int(seq.Add(1))
	run := badChar.ReplaceAllString(strings.ToLower(t.Name()), "-")
	return &executors.Spec{
		ID: executors.ExecutionID(run, n, 1), RunID: run, Task: "t", TaskIndex: n, Attempt: 1,
		Image: dockertest.Image, Command: []string{"/bin/sh", "-c", script, "t"}, Args: args,
	}
}

func run(t *testing.T, x *docker.Executor, s *executors.Spec) executors.Event {
	t.Helper()
	rec := executortest.NewRecorder()
	if err := x.Start(context.Background(), s, rec.Report); err != nil {
		t.Fatal(err)
	}
	return rec.Wait(t, s.ID, executors.EventExited, deadline)
}

// TestExecutor_ContainerDefinition checks the container's name, labels,
// mount, user, limits and environment, then its removal.
func TestExecutor_ContainerDefinition(t *testing.T) {
	x, _ := newExecutor(t, t.TempDir(), func(c *docker.Config) {
		c.KeepContainers = true
		c.User = "65534:65534"
		c.ShmSizeBytes = 128 << 20
	})
	s := testSpec(t, `set -e; id -u > "$1"; echo "$SKIFF_EXECUTION_ID $GREETING $(pwd)" > "$2"`,
		"/skiff/outputs/uid", "/skiff/outputs/env")
	s.Env = []spec.EnvVar{{Name: "GREETING", Value: "hi"}}
	s.Outputs = []executors.OutputSpec{{Name: "uid", Type: spec.TypeInt}, {Name: "env", Type: spec.TypeString}}
	s.Resources = spec.Resources{MilliCPU: 500, MemoryBytes: 64 << 20}
	if got := x.Root(s.ID); got != docker.ContainerRoot {
		t.Fatalf("Root = %q, want %q", got, docker.ContainerRoot)
	}
	ev := run(t, x, s)
	if ev.State != spec.TaskSucceeded {
		t.Fatalf("state %s reason %q", ev.State, ev.Reason)
	}
	if got := string(ev.Outputs["uid"].Param); got != "65534" {
		t.Errorf("uid = %s, want 65534 (Config.User)", got)
	}
	if got, want := string(ev.Outputs["env"].Param), `"`+s.ID+` hi /skiff"`; got != want {
		t.Errorf("env = %s, want %s", got, want)
	}
	info, err := x.Client().ContainerInspect(context.Background(), docker.ContainerName(s.ID))
	if err != nil {
		t.Fatalf("KeepContainers: %v", err)
	}
	l := info.Config.Labels
	if l[docker.LabelExecution] != s.ID || l[docker.LabelRun] != s.RunID || l[docker.LabelTask] != "t" || l[docker.LabelAttempt] != "1" {
		t.Errorf("labels %v", l)
	}
	h := info.HostConfig
	if h.NanoCPUs != 500_000_000 || h.Memory != 64<<20 || h.ShmSize != 128<<20 {
		t.Errorf("limits: nanoCPUs %d memory %d shm %d", h.NanoCPUs, h.Memory, h.ShmSize)
	}
	if len(h.Binds) != 1 || !strings.HasSuffix(h.Binds[0], s.ID+":/skiff") {
		t.Errorf("binds %v", h.Binds)
	}
	if err := x.KillLeftover(s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Client().ContainerInspect(context.Background(), docker.ContainerName(s.ID)); !client.IsErrNotFound(err) {
		t.Errorf("container still there after KillLeftover: %v", err)
	}
}

func TestExecutor_RemovesContainerAfterReport(t *testing.T) {
	x, _ := newExecutor(t, t.TempDir(), nil)
	s := testSpec(t, "exit 0")
	if ev := run(t, x, s); ev.State != spec.TaskSucceeded {
		t.Fatalf("state %s reason %q", ev.State, ev.Reason)
	}
	for end := time.Now().Add(deadline); ; time.Sleep(20 * time.Millisecond) {
		_, err := x.Client().ContainerInspect(context.Background(), docker.ContainerName(s.ID))
		if client.IsErrNotFound(err) {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("container not removed: %v", err)
		}
	}
}

func TestExecutor_Failures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy docker.PullPolicy
		mod    func(*executors.Spec)
		want   []string
	}{
		{"image missing, Never", docker.PullNever, func(s *executors.Spec) { s.Image = "skiff-test/absent:1" },
			[]string{docker.ErrImageMissing.Error(), "pull policy is Never"}},
		{"image missing, pull fails", docker.PullIfNotPresent, func(s *executors.Spec) { s.Image = "skiff-test/absent:1" },
			[]string{docker.ErrImageMissing.Error(), "pull failed"}},
		{"gpu without NVIDIA runtime", docker.PullNever, func(s *executors.Spec) { s.Resources.GPU = 1 },
			[]string{"resources.gpu", "NVIDIA"}},
		{"oom killed", docker.PullNever, func(s *executors.Spec) {
			s.Command = []string{"/bin/sh", "-c", "dd if=/dev/zero of=/dev/null bs=256M count=1"}
			s.Resources.MemoryBytes = 16 << 20
		}, []string{"OOMKilled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			x, _ := newExecutor(t, t.TempDir(), func(c *docker.Config) { c.PullPolicy = tc.policy })
			if tc.name == "gpu without NVIDIA runtime" {
				if info, err := x.Client().Info(context.Background()); err == nil {
					if _, ok := info.Runtimes["nvidia"]; ok {
						t.Skip("this engine has an NVIDIA runtime")
					}
				}
			}
			s := testSpec(t, "exit 0")
			tc.mod(s)
			ev := run(t, x, s)
			if ev.State != spec.TaskFailed {
				t.Fatalf("state %s reason %q; want FAILED", ev.State, ev.Reason)
			}
			t.Logf("reason: %s", ev.Reason)
			for _, w := range tc.want {
				if !strings.Contains(ev.Reason, w) {
					t.Errorf("reason %q does not say %q", ev.Reason, w)
				}
			}
		})
	}
}

func TestExecutor_BadSpec(t *testing.T) {
	x, _ := newExecutor(t, t.TempDir(), nil)
	for name, mod := range map[string]func(*executors.Spec){
		"no image":      func(s *executors.Spec) { s.Image = "" },
		"bad id":        func(s *executors.Spec) { s.ID = "a/b" },
		"tiny memory":   func(s *executors.Spec) { s.Resources.MemoryBytes = 1 << 20 },
		"absolute name": func(s *executors.Spec) { s.Outputs = []executors.OutputSpec{{Name: "/etc/x", Type: spec.TypeString}} },
	} {
		s := testSpec(t, "exit 0")
		mod(s)
		err := x.Start(context.Background(), s, func(executors.Event) { t.Errorf("%s: reported", name) })
		if !errors.Is(err, executors.ErrBadSpec) {
			t.Errorf("%s: %v, want ErrBadSpec", name, err)
		}
	}
}

func TestConfig_Validate(t *testing.T) {
	if err := (docker.Config{WorkDir: "w", Blobs: &blob.Store{}, MaxOutputBytes: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "MaxOutputBytes") {
		t.Fatalf("negative MaxOutputBytes: %v", err)
	}
	if err := (docker.Config{}).Validate(); err == nil {
		t.Fatal("empty config accepted")
	}
	if _, err := docker.ParsePullPolicy("always"); err != nil {
		t.Fatal(err)
	}
	if _, err := docker.ParsePullPolicy("sometimes"); err == nil {
		t.Fatal("bad pull policy accepted")
	}
}
