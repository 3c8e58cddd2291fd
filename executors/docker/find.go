package docker

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/skiffml/skiff/executors"
)

// TaskLogs finds, by its labels, the container of the last attempt of task
// (a name or an index) in the run whose id starts with run, and returns its
// log from the engine, following it while it runs. It needs no store, so
// `skiff logs -f` works beside the skiff process that runs the pipeline.
// No such container is executors.ErrUnknownExecution.
func TaskLogs(ctx context.Context, cli *client.Client, run, task string, follow bool) (io.ReadCloser, error) {
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", LabelManaged+"=true"),
	)})
	if err != nil {
		return nil, fmt.Errorf("docker: list containers: %w", err)
	}
	var best *container.Summary
	bestAttempt, runs := -1, map[string]bool{}
	for i, c := range cs {
		l := c.Labels
		if !strings.HasPrefix(l[LabelRun], run) || (l[LabelTask] != task && l[LabelTaskIndex] != task) {
			continue
		}
		runs[l[LabelRun]] = true
		if a, _ := strconv.Atoi(l[LabelAttempt]); a > bestAttempt {
			best, bestAttempt = &cs[i], a
		}
	}
	switch {
	case len(runs) > 1:
		return nil, fmt.Errorf("docker: run prefix %q matches %d runs; give more of the id", run, len(runs))
	case best == nil:
		return nil, fmt.Errorf("docker: no container for run %s task %s: %w", run, task, executors.ErrUnknownExecution)
	}
	e := &Executor{cli: cli}
	return e.containerLogs(ctx, best.ID, follow && best.State == "running")
}
