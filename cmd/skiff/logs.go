package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/docker/docker/client"
	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/docker"
	"github.com/skiffml/skiff/store"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print the output (stdout and stderr) of a task",
		ArgsUsage: "RUN TASK",
		Description: `Prints what the task's last attempt wrote to stdout and stderr, as kept in
the data dir. RUN may be a unique prefix of a run id.`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "attempt", Usage: "which attempt (1 is the first; default the last)"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing until the task ends"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError("logs: expected RUN and TASK")
			}
			if cl, err := newClientFrom(c); err != nil || cl != nil {
				if err != nil {
					return err
				}
				return clientLogs(c, cl, c.Args().Get(0), c.Args().Get(1))
			}
			follow := c.Bool("follow")
			n, cl, err := openForRead(c)
			if cl != nil {
				return clientLogs(c, cl, c.Args().Get(0), c.Args().Get(1))
			}
			if errors.Is(err, store.ErrLocked) && follow {
				return followDockerTask(c, c.Args().Get(0), c.Args().Get(1), err)
			}
			if err != nil {
				return err
			}
			defer n.close()
			r, err := findRun(n, c.Args().Get(0))
			if err != nil {
				return err
			}
			tasks, err := n.store.Tasks(r.ID)
			if err != nil {
				return err
			}
			name := c.Args().Get(1)
			for _, t := range tasks {
				if t.Name != name && strconv.Itoa(t.Index) != name {
					continue
				}
				if len(t.Attempts) == 0 {
					return usageError("task %s has not run (%s)", t.Name, t.State)
				}
				a := t.Attempts[len(t.Attempts)-1]
				if k := c.Int("attempt"); k != 0 {
					if k < 1 || k > len(t.Attempts) {
						return usageError("--attempt: task %s has attempts 1..%d", t.Name, len(t.Attempts))
					}
					a = t.Attempts[k-1]
				}
				var rc io.ReadCloser
				switch {
				case a.Logs != nil:
					rc, err = n.blobs.Open(c.Context, a.Logs.Digest)
				case a.Executor == "docker" && n.docker != nil:
					rc, err = n.docker.Logs(c.Context, a.ExecutionID, follow)
				default:
					rc, err = n.local.Logs(c.Context, a.ExecutionID, follow)
				}
				if errors.Is(err, executors.ErrUnknownExecution) {
					return fmt.Errorf("no logs kept for task %s attempt %d", t.Name, a.N)
				}
				if err != nil {
					return err
				}
				defer rc.Close()
				_, err = io.Copy(os.Stdout, rc)
				return err
			}
			return usageError("run %s has no task %q", r.ID, name)
		},
	}
}

// followDockerTask follows a docker task's log from the Docker engine when
// another skiff process holds the data dir (and runs the pipeline).
func followDockerTask(c *cli.Context, run, task string, lockErr error) error {
	dcli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("%w (and no Docker engine to follow from: %v)", lockErr, err)
	}
	defer dcli.Close()
	rc, err := docker.TaskLogs(c.Context, dcli, run, task, true)
	if errors.Is(err, executors.ErrUnknownExecution) {
		return fmt.Errorf("%w; -f can follow only docker tasks while the run holds the data dir, and run %s has no container for task %s", lockErr, run, task)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(os.Stdout, rc)
	return err
}
