package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store/blob"
)

// Config is one launch.
type Config struct {
	Spec   *Spec
	Client *Client
	// CacheDir holds the launcher's own blob store and the log, outside
	// the step's root.
	CacheDir string
	// TerminationPath receives the report's receipt ("" = none).
	TerminationPath string
	// Stdout receives the step's output as it runs (the pod's log).
	Stdout io.Writer
}

// Run fetches the inputs, runs the step, uploads its outputs and log,
// reports, and returns the step's exit code (1 when the launcher itself
// failed: the reason is in the report when it could be sent).
func Run(ctx context.Context, cfg Config) (int, error) {
	s := cfg.Spec
	local, err := blob.Open(filepath.Join(cfg.CacheDir, "blobs"))
	if err != nil {
		return 1, fmt.Errorf("launch: %w", err)
	}
	rep := &Report{Execution: s.Execution, ExitCode: -1}
	logPath := filepath.Join(cfg.CacheDir, "step.log")
	code, runErr := runStep(ctx, cfg, local, logPath)
	rep.ExitCode = code
	if runErr == nil && code == 0 && len(s.Outputs) > 0 {
		vals, err := executors.CollectOutputs(ctx, s.Root, s.Outputs, local, s.MaxOutputBytes)
		if err == nil {
			err = uploadOutputs(ctx, cfg.Client, local, vals)
		}
		if err != nil {
			runErr = err
		} else {
			rep.Outputs = vals
		}
	}
	if runErr != nil {
		rep.Reason = runErr.Error()
		fmt.Fprintf(cfg.Stdout, "skiff launch: %v\n", runErr)
	} else if code != 0 {
		rep.Reason = fmt.Sprintf("exit code %d", code)
	}
	if f, err := os.Open(logPath); err == nil {
		ref, uerr := cfg.Client.Upload(ctx, f)
		f.Close()
		if uerr == nil {
			rep.Logs = &ref
		}
	}
	rc, err := cfg.Client.Report(ctx, rep)
	if err != nil {
		return exitFor(code, runErr), fmt.Errorf("launch: report: %w", errors.Join(runErr, err))
	}
	if cfg.TerminationPath != "" {
		if err := os.WriteFile(cfg.TerminationPath, []byte(rc.Termination()), 0o644); err != nil {
			return exitFor(code, runErr), fmt.Errorf("launch: termination message: %w", err)
		}
	}
	return exitFor(code, runErr), runErr
}

func exitFor(code int, err error) int {
	if err != nil && code <= 0 {
		return 1
	}
	return code
}

// runStep fetches the inputs and runs the command; its exit code, -1 when
// it did not run.
func runStep(ctx context.Context, cfg Config, local *blob.Store, logPath string) (int, error) {
	s := cfg.Spec
	if err := executors.PrepareRoot(s.Root); err != nil {
		return -1, err
	}
	for _, in := range s.Inputs {
		if in.EmptyDir || local.Has(in.Ref.Digest) {
			continue
		}
		if err := fetch(ctx, cfg.Client, local, in); err != nil {
			return -1, fmt.Errorf("input %q: %w", in.Name, err)
		}
	}
	if err := executors.MaterializeInputs(ctx, s.Root, s.Inputs, local); err != nil {
		return -1, err
	}
	log, err := os.Create(logPath)
	if err != nil {
		return -1, err
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, s.Command[0], append(s.Command[1:], s.Args...)...)
	cmd.Env = stepEnv(os.Environ())
	cmd.Stdout = io.MultiWriter(log, cfg.Stdout)
	cmd.Stderr = cmd.Stdout
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), nil
	case err != nil:
		return -1, fmt.Errorf("command: %w", err)
	}
	return 0, nil
}

// stepEnv is the launcher's environment without its own variables: the
// step never sees the token.
func stepEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "SKIFF_LAUNCH_") {
			out = append(out, kv)
		}
	}
	return out
}

func fetch(ctx context.Context, c *Client, local *blob.Store, in executors.ArtifactInput) error {
	rc, err := c.Blob(ctx, in.Ref.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	ref, err := local.Put(ctx, rc)
	if err != nil {
		return err
	}
	if ref.Digest != in.Ref.Digest {
		return fmt.Errorf("fetched bytes have digest %s, want %s", ref.Digest, in.Ref.Digest)
	}
	return nil
}

// uploadOutputs sends every artifact of vals to the API; it checks that
// the API stored the same bytes.
func uploadOutputs(ctx context.Context, c *Client, local *blob.Store, vals map[string]spec.Value) error {
	for name, v := range vals {
		refs := v.Artifacts
		if v.Artifact != nil {
			refs = append(refs, *v.Artifact)
		}
		for _, ref := range refs {
			if err := upload(ctx, c, local, ref.Digest); err != nil {
				return fmt.Errorf("output %q: upload: %w", name, err)
			}
		}
	}
	return nil
}

func upload(ctx context.Context, c *Client, local *blob.Store, digest string) error {
	rc, err := local.Open(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	got, err := c.Upload(ctx, rc)
	if err != nil {
		return err
	}
	if got.Digest != digest {
		return fmt.Errorf("stored digest %s, sent %s", got.Digest, digest)
	}
	return nil
}
