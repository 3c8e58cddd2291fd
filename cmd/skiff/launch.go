package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/executors/launch"
)

// launchCommand is the in-pod launcher: the kube executor makes it the
// entrypoint of a step that moves artifacts. It is not meant to be run by
// hand.
func launchCommand() *cli.Command {
	return &cli.Command{
		Name:  "launch",
		Usage: "run one step inside a Kubernetes pod: fetch inputs, run it, upload outputs (the kube executor's launcher)",
		Description: `The kube executor runs a step that has input artifacts or outputs as
'skiff launch' in the step's image: an init container first copies the skiff
binary from the Skiff image (--kube-launcher-image) into an emptyDir with
'skiff launch --install PATH'. The launcher then reads its environment:

  ` + launch.EnvSpec + `   the step: command, args, inputs, outputs (JSON)
  ` + launch.EnvAPI + `    the Skiff API's URL (--kube-launcher-api)
  ` + launch.EnvToken + `  a token good only for this execution's input
                      artifacts and its uploads, while it runs
  ` + launch.EnvTermination + `  where to write the report's reference
                      (default ` + launch.DefaultTerminationPath + `)

It fetches the inputs through the API, runs the command with the root laid
out as the local executor lays it out (inputs/, outputs/, tmp/), uploads
the outputs and the log, reports them, and exits with the step's exit code
(1 when it failed to move an artifact). The step's command never sees the
SKIFF_LAUNCH_ variables.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "install", Usage: "copy this skiff binary to `PATH` and exit (the init container)"},
		},
		Action: func(c *cli.Context) error {
			if dst := c.String("install"); dst != "" {
				return installSelf(dst)
			}
			s, err := launch.ParseSpec([]byte(os.Getenv(launch.EnvSpec)))
			if err != nil {
				return cli.Exit(err.Error(), exitBadInput)
			}
			api, tok := os.Getenv(launch.EnvAPI), os.Getenv(launch.EnvToken)
			if api == "" || tok == "" {
				return cli.Exit(fmt.Sprintf("skiff launch: %s and %s are required", launch.EnvAPI, launch.EnvToken), exitBadInput)
			}
			term := os.Getenv(launch.EnvTermination)
			if term == "" {
				term = launch.DefaultTerminationPath
			}
			cache, err := launchCacheDir()
			if err != nil {
				return err
			}
			defer os.RemoveAll(cache)
			code, err := launch.Run(c.Context, launch.Config{
				Spec: s, Client: &launch.Client{Base: api, Token: tok},
				CacheDir: cache, TerminationPath: term, Stdout: os.Stdout,
			})
			if err != nil {
				return cli.Exit(err.Error(), max(code, 1))
			}
			if code != 0 {
				return cli.Exit("", code)
			}
			return nil
		},
	}
}

// launchCacheDir is a new directory for the launcher's blobs and log:
// beside the installed binary (the pod's launcher emptyDir, there in any
// image), else under the temp dir.
func launchCacheDir() (string, error) {
	if self, err := os.Executable(); err == nil {
		if d, err := os.MkdirTemp(filepath.Dir(self), ".launch-"); err == nil {
			return d, nil
		}
	}
	return os.MkdirTemp("", "skiff-launch-")
}

// installSelf copies the running binary to dst (a temp name, then a
// rename), executable.
func installSelf(dst string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	in, err := os.Open(self)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".skiff-*")
	if err != nil {
		return fmt.Errorf("install: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("install: %w", err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
