package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/docker/docker/client"
	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/executors/docker"
)

func logsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logs",
		Usage:     "print the output (stdout and stderr) of a run's tasks",
		ArgsUsage: "RUN [TASK]",
		Description: `Prints what a task's last attempt wrote to stdout and stderr; without TASK,
every task's, each line prefixed with its task (as 'argo logs' does). RUN
may be a unique prefix of a run id. With -f it keeps printing until the
tasks end, waiting for those not started yet.

--since keeps the logs of task attempts that were running at or after the
given time (a duration back from now, or a time): steps' log lines carry no
timestamps of their own, so the unit is an attempt, from its start to its
end (a running attempt is always kept).

Examples:
  skiff logs 3f2a train
  skiff logs 3f2a -f
  skiff logs 3f2a train --attempt 1
  skiff logs 3f2a --grep accuracy --tail 20
  skiff logs 3f2a --since 10m`,
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "attempt", Usage: "which attempt (1 is the first; default the last); needs TASK"},
			&cli.BoolFlag{Name: "follow", Aliases: []string{"f"}, Usage: "keep printing until the task (or the run) ends"},
			&cli.StringFlag{Name: "grep", Usage: "only lines matching the regular expression `RE`"},
			&cli.IntFlag{Name: "tail", Value: -1, Usage: "only the last `N` lines of each task (before following)"},
			&cli.StringFlag{Name: "since", Usage: "only tasks whose attempt ran at or after `DURATION|TIME` (10m, 2h, 2026-01-02T15:04:05Z, 2026-01-02 15:04 local time)"},
		},
		Action: logsAction,
	}
}

func logsAction(c *cli.Context) error {
	if c.NArg() < 1 || c.NArg() > 2 {
		return usageError("logs: expected RUN and an optional TASK (see skiff logs --help)")
	}
	if c.Bool("follow") && c.Int("tail") >= 0 {
		return usageError("--tail: not with -f (it keeps the last lines of a finished log)")
	}
	if c.NArg() == 1 && c.Int("attempt") != 0 {
		return usageError("--attempt: give the TASK too")
	}
	var since time.Time
	if c.IsSet("since") {
		var err error
		if since, err = parseSince(c.String("since"), time.Now(), time.Local); err != nil {
			return usageError("--since: %v", err)
		}
	}
	k, r, err := dialRun(c, c.Args().Get(0))
	if err != nil {
		return err
	}
	defer k.close()
	// On a data dir no process serves, no run goes on, but a docker step
	// may outlive the skiff that started it: one task's log is followed.
	follow := c.Bool("follow")
	f, err := newLogFilter(c.String("grep"), c.Int("tail"))
	if err != nil {
		return err
	}
	out := &lineWriter{w: os.Stdout, f: f}
	if c.NArg() == 2 {
		task := c.Args().Get(1)
		for _, t := range r.Tasks {
			if t.Name == task && endedBefore(t.FinishedAt, since) {
				notice("skiff: %s: its last attempt ended at %s, before --since\n", task, t.FinishedAt)
				return nil
			}
		}
		if follow && k.n == nil {
			if r, err = waitStarted(c.Context, k, r, task); err != nil {
				return err
			}
		}
		rc, err := k.TaskLogs(c.Context, r.RunID, task, c.Int("attempt"), follow)
		if err != nil {
			return clientErr(err)
		}
		defer rc.Close()
		n, err := f.copy(os.Stdout, rc, "")
		if follow && k.n == nil && k.local {
			// The serving process may have died mid-stream: a docker step
			// runs on, and its log can be followed from the Docker engine.
			if _, gerr := k.RunSummary(c.Context, r.RunID); gerr != nil && isDialError(gerr) {
				return followDockerTask(c, r.RunID, task, n)
			}
		}
		return err
	}
	follow = follow && k.n == nil
	started := map[string]bool{}
	var wg sync.WaitGroup
	for {
		for _, t := range r.Tasks {
			if t.Group || t.Attempts == 0 || started[t.Name] || endedBefore(t.FinishedAt, since) {
				continue
			}
			started[t.Name] = true
			if !follow {
				printTaskLog(c.Context, k, r.RunID, t.Name, false, out)
				continue
			}
			wg.Add(1)
			go func(name string) {
				defer wg.Done()
				printTaskLog(c.Context, k, r.RunID, name, true, out)
			}(t.Name)
		}
		if !follow || finalState(r.State) {
			break
		}
		select {
		case <-c.Context.Done():
			return c.Context.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if r, err = k.RunSummary(c.Context, r.RunID); err != nil {
			return clientErr(err)
		}
	}
	wg.Wait()
	return nil
}

// waitStarted polls until the task has an attempt (or the run ended).
func waitStarted(ctx context.Context, k *conn, r api.RunSummary, task string) (api.RunSummary, error) {
	for {
		for _, t := range r.Tasks {
			if t.Name == task && (t.Attempts > 0 || t.Group) {
				return r, nil
			}
		}
		if finalState(r.State) {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
		var err error
		if r, err = k.RunSummary(ctx, r.RunID); err != nil {
			return r, clientErr(err)
		}
	}
}

// printTaskLog copies a task's log to out, each line prefixed with the
// task's name.
func printTaskLog(ctx context.Context, k *conn, runID, task string, follow bool, out *lineWriter) {
	rc, err := k.TaskLogs(ctx, runID, task, 0, follow)
	if err != nil {
		fmt.Fprintf(os.Stderr, "skiff: %s: %v\n", task, clientErr(err))
		return
	}
	defer rc.Close()
	_, _ = out.f.copy(out, rc, task)
}

// lineWriter writes whole prefixed lines from several goroutines.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
	f  *logFilter
}

func (l *lineWriter) line(prefix, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "%s: %s\n", prefix, text)
}

// logFilter keeps the lines matching grep (all when nil), the last tail of
// them (all when negative) from what is there before following.
type logFilter struct {
	grep *regexp.Regexp
	tail int
}

func newLogFilter(grep string, tail int) (*logFilter, error) {
	f := &logFilter{tail: tail}
	if grep != "" {
		re, err := regexp.Compile(grep)
		if err != nil {
			return nil, usageError("--grep: %v", err)
		}
		f.grep = re
	}
	return f, nil
}

// lineSink takes whole lines.
type lineSink interface{ line(prefix, text string) }

type plainSink struct{ w io.Writer }

func (p plainSink) line(_, text string) { fmt.Fprintln(p.w, text) }

// copy writes r's lines that pass the filter to w (prefixed, when w is a
// lineWriter) and returns the bytes read. Without a filter the bytes are
// copied as they are.
func (f *logFilter) copy(w any, r io.Reader, prefix string) (int64, error) {
	sink, ok := w.(lineSink)
	if !ok {
		if f.grep == nil && f.tail < 0 {
			return io.Copy(w.(io.Writer), r)
		}
		sink = plainSink{w.(io.Writer)}
	}
	cr := &countReader{r: r}
	sc := bufio.NewScanner(cr)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var kept []string
	for sc.Scan() {
		if f.grep != nil && !f.grep.MatchString(sc.Text()) {
			continue
		}
		if f.tail < 0 {
			sink.line(prefix, sc.Text())
			continue
		}
		kept = append(kept, sc.Text())
		if len(kept) > f.tail {
			kept = kept[1:]
		}
	}
	for _, l := range kept {
		sink.line(prefix, l)
	}
	return cr.n, sc.Err()
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// followDockerTask follows a docker task's log from the Docker engine,
// after the first skip bytes (already printed), when the skiff process
// serving the data dir stopped.
func followDockerTask(c *cli.Context, run, task string, skip int64) error {
	gone := fmt.Errorf("the skiff process serving the data dir stopped; 'skiff runs resume %s' continues the run", short(run))
	dcli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return gone
	}
	defer dcli.Close()
	rc, err := docker.TaskLogs(c.Context, dcli, run, task, true)
	if err != nil {
		return gone
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, skip); err != nil {
		return nil // the log ended before where it had been read to
	}
	_, err = io.Copy(os.Stdout, rc)
	return err
}
