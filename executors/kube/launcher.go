package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/launch"
	"github.com/skiffml/skiff/store/blob"
)

// A step with input artifacts or outputs runs under the launcher: the
// init container InstallContainerName copies /bin/skiff from the Skiff
// image into the emptyDir LauncherDir, and the main container runs
// `LauncherDir/skiff launch` in the step's image instead of the step's
// command, which the launcher then runs (see package launch).
const (
	InstallContainerName = "skiff-install"
	LauncherDir          = "/skiff-launcher"
	launcherVolume       = "skiff-launcher"
	// DefaultTokenTTL bounds a launcher token's life; it also ends with
	// its execution.
	DefaultTokenTTL = 24 * time.Hour
	maxReportBytes  = 8 << 20
)

// Launcher configures the launcher of the steps that move artifacts.
type Launcher struct {
	// Image is the Skiff image the init container copies the skiff binary
	// from (its /bin/skiff, as `make image` builds it).
	Image string
	// API is the Skiff API's base URL as pods reach it.
	API string
	// Keys mint the per-execution tokens; the API checks them with the
	// same keys (api.Config.LaunchKeys).
	Keys *launch.Keys
	// Blobs is the artifact store the API stores uploads and reports in;
	// the executor reads reports from it.
	Blobs *blob.Store
	// TokenTTL bounds a token's life (0 = DefaultTokenTTL).
	TokenTTL time.Duration
}

func (l *Launcher) validate() error {
	var errs []error
	if l.Image == "" {
		errs = append(errs, errors.New("kube: config: Launcher.Image: required"))
	}
	if l.API == "" {
		errs = append(errs, errors.New("kube: config: Launcher.API: required"))
	}
	if l.Keys == nil || l.Blobs == nil {
		errs = append(errs, errors.New("kube: config: Launcher.Keys and Launcher.Blobs: required"))
	}
	if l.TokenTTL < 0 {
		errs = append(errs, fmt.Errorf("kube: config: Launcher.TokenTTL: must not be negative, got %s", l.TokenTTL))
	}
	return errors.Join(errs...)
}

// needsLauncher: the step moves artifacts or output parameters.
func needsLauncher(s *executors.Spec) bool { return len(s.Inputs) > 0 || len(s.Outputs) > 0 }

// launcher wraps the main container in the launcher.
func (b *podBuilder) launcher() error {
	s, l := b.s, b.cfg.Launcher
	if !needsLauncher(s) {
		return nil
	}
	if l == nil {
		what := "inputs"
		if len(s.Inputs) == 0 {
			what = "outputs"
		}
		return fmt.Errorf("%s: moving artifacts and output parameters needs the launcher, and this kube executor has none (give --kube-launcher-image, with --kube-launcher-listen on skiff run or --kube-launcher-api on skiff server)", what)
	}
	if len(s.Command) == 0 {
		return fmt.Errorf("command: required for a step with inputs or outputs (the launcher runs it in place of the image's entrypoint)")
	}
	ls := launch.Spec{Execution: s.ID, Root: PodRoot, Command: s.Command, Args: s.Args, Inputs: s.Inputs, Outputs: s.Outputs}
	specJSON, err := json.Marshal(ls)
	if err != nil {
		return err
	}
	ttl := l.TokenTTL
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	c := launch.Claims{Execution: s.ID, Run: s.RunID, TaskIndex: s.TaskIndex, Attempt: s.Attempt, Expires: b.cfg.Clock().Add(ttl).UTC()}
	for _, in := range s.Inputs {
		if !in.EmptyDir {
			c.Inputs = append(c.Inputs, in.Ref.Digest)
		}
	}
	tok, err := l.Keys.Mint(c)
	if err != nil {
		return err
	}
	if b.volumes[launcherVolume] {
		return fmt.Errorf("volume %q is the launcher's", launcherVolume)
	}
	b.volumes[launcherVolume] = true
	b.pod.Spec.Volumes = append(b.pod.Spec.Volumes, corev1.Volume{Name: launcherVolume,
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	mount := corev1.VolumeMount{Name: launcherVolume, MountPath: LauncherDir}
	b.pod.Spec.InitContainers = append(b.pod.Spec.InitContainers, corev1.Container{
		Name: InstallContainerName, Image: l.Image, ImagePullPolicy: b.cfg.ImagePullPolicy,
		Command:      []string{"/bin/skiff", "launch", "--install", LauncherDir + "/skiff"},
		VolumeMounts: []corev1.VolumeMount{mount},
	})
	b.main.Command, b.main.Args = []string{LauncherDir + "/skiff", "launch"}, nil
	b.main.VolumeMounts = append(b.main.VolumeMounts, mount)
	b.main.Env = append(b.main.Env,
		corev1.EnvVar{Name: launch.EnvSpec, Value: string(specJSON)},
		corev1.EnvVar{Name: launch.EnvAPI, Value: l.API},
		corev1.EnvVar{Name: launch.EnvToken, Value: tok})
	return nil
}

// withReport completes ev, the exit of a launcher pod, from the report
// its termination message names: outputs and the log on success, the
// launcher's reason on failure. A report that is missing, unsigned, of
// another execution or without every declared output fails a zero exit.
func (e *Executor) withReport(ctx context.Context, s *executors.Spec, p *corev1.Pod, ev executors.Event) executors.Event {
	rep, err := e.readReport(ctx, s.ID, p)
	if err != nil {
		if ev.State == spec.TaskSucceeded {
			ev.State, ev.ExitCode, ev.Reason = spec.TaskFailed, -1, "launcher: "+err.Error()
		}
		return ev
	}
	ev.Logs = rep.Logs
	switch {
	case ev.State == spec.TaskSucceeded && rep.Reason != "":
		ev.State, ev.Reason = spec.TaskFailed, rep.Reason
	case ev.State == spec.TaskSucceeded:
		if name := missingOutput(s, rep.Outputs); name != "" {
			ev.State, ev.Reason = spec.TaskFailed, fmt.Sprintf("launcher: the report lacks declared output %q", name)
			return ev
		}
		ev.Outputs = rep.Outputs
	case rep.Reason != "" && rep.Reason != fmt.Sprintf("exit code %d", ev.ExitCode):
		ev.Reason = joinReason(ev.Reason, rep.Reason)
	}
	return ev
}

// missingOutput is the first output s declares that outs lacks, or "".
func missingOutput(s *executors.Spec, outs map[string]spec.Value) string {
	for _, o := range s.Outputs {
		if _, ok := outs[o.Name]; !ok {
			return o.Name
		}
	}
	return ""
}

func (e *Executor) readReport(ctx context.Context, id string, p *corev1.Pod) (*launch.Report, error) {
	cs := mainStatus(p)
	if cs == nil || cs.State.Terminated == nil {
		return nil, errors.New("no termination message")
	}
	rc, ok := launch.ParseTermination(cs.State.Terminated.Message)
	if !ok {
		return nil, errors.New("no report (the termination message names none)")
	}
	l := e.cfg.Launcher
	if l == nil || !l.Keys.CheckReport(id, rc.Digest, rc.Signature) {
		return nil, errors.New("the report's signature does not check")
	}
	r, err := l.Blobs.Open(ctx, rc.Digest)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxReportBytes))
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	var rep launch.Report
	if err := json.Unmarshal(data, &rep); err != nil || rep.Execution != id {
		return nil, fmt.Errorf("report %s is not one of execution %s", rc.Digest, id)
	}
	return &rep, nil
}
