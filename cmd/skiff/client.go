package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine/spec/kfp"
)

// clientFlags are the global flags that switch commands to a server.
func clientFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "server", Usage: "talk to the skiff server at `URL` instead of the embedded node", EnvVars: []string{"SKIFF_SERVER"}},
		&cli.StringFlag{Name: "token", Usage: "bearer `TOKEN` for --server", EnvVars: []string{"SKIFF_TOKEN"}},
	}
}

// newClientFrom returns a client when --server (or SKIFF_SERVER) is set,
// else nil.
func newClientFrom(c *cli.Context) (*api.Client, error) {
	base := c.String("server")
	if base == "" {
		return nil, nil
	}
	return api.NewClient(base, c.String("token")), nil
}

// clientErr turns an API error into the CLI's exit codes: 4xx is bad input.
func clientErr(err error) error {
	var ae *api.Error
	if errors.As(err, &ae) && ae.HTTPStatus() >= 400 && ae.HTTPStatus() < 500 && ae.HTTPStatus() != http.StatusNotImplemented {
		return usageError("%s", ae.Message)
	}
	return err
}

func clientRun(c *cli.Context, cl *api.Client, file string) error {
	plan, params, err := loadPipeline(file, c.StringSlice("param"), kfp.Options{})
	if err != nil {
		return err
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return usageError("%v", err)
	}
	in := api.Run{DisplayName: c.String("name"), PipelineSpec: mustJSON(string(data)), ExperimentID: c.String("experiment")}
	if in.DisplayName == "" {
		in.DisplayName = plan.Name
	}
	if len(params) > 0 {
		in.RuntimeConfig = &api.RuntimeConfig{Parameters: params}
	}
	run, err := cl.CreateRun(c.Context, in, c.String("request-id"))
	if err != nil {
		return clientErr(err)
	}
	fmt.Fprintf(os.Stderr, "run %s: %s (%s/apis/v2beta1/runs/%s)\n", run.RunID, filepath.Base(file), cl.BaseURL, run.RunID)
	final, err := clientFollow(c.Context, cl, run.RunID, c.String("progress") != "none")
	if err != nil {
		return err
	}
	return printClientRun(final, c.String("output"), true)
}

// clientFollow waits for the run's end, printing task changes as plain
// lines. The first SIGINT/SIGTERM terminates the run; a second leaves.
func clientFollow(ctx context.Context, cl *api.Client, id string, show bool) (api.Run, error) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-sigs:
		case <-ctx.Done():
			return
		}
		fmt.Fprintln(os.Stderr, "\nskiff: terminating the run (Ctrl-C again to leave it running)")
		if err := cl.TerminateRun(ctx, id); err != nil {
			fmt.Fprintln(os.Stderr, "skiff: terminate:", err)
		}
		select {
		case <-sigs:
			fmt.Fprintf(os.Stderr, "skiff: leaving run %s on the server\n", id)
			cancel()
		case <-ctx.Done():
		}
	}()
	seen := map[string]string{}
	for {
		r, err := cl.GetRun(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return r, cli.Exit("", exitRunFail)
			}
			return r, clientErr(err)
		}
		if show && r.RunDetails != nil {
			for _, t := range r.RunDetails.TaskDetails {
				if seen[t.DisplayName] != t.State {
					seen[t.DisplayName] = t.State
					fmt.Fprintf(os.Stderr, "%s  %-10s %s\n", time.Now().Format("15:04:05"), t.State, t.DisplayName)
				}
			}
		}
		switch r.State {
		case "SUCCEEDED", "FAILED", "CANCELED", "SKIPPED":
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, cli.Exit("", exitRunFail)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func printClientRun(r api.Run, format string, exitOnFail bool) error {
	switch format {
	case "json":
		if err := writeJSON(r); err != nil {
			return err
		}
	case "name":
		fmt.Println(r.RunID)
	case "table", "wide", "":
		fmt.Printf("Run:        %s\nName:       %s\nState:      %s\nExperiment: %s\nCreated:    %s\nFinished:   %s\n",
			r.RunID, r.DisplayName, r.State, r.ExperimentID, r.CreatedAt, r.FinishedAt)
		if r.Error != nil {
			fmt.Printf("Error:      %s\n", r.Error.Message)
		}
		if r.RunDetails != nil {
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "\nTASK\tSTATE\tSTARTED\tENDED\tDETAIL")
			for _, t := range r.RunDetails.TaskDetails {
				detail := ""
				if t.Error != nil {
					detail = oneLine(t.Error.Message)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.DisplayName, t.State, dash(t.StartTime), dash(t.EndTime), detail)
			}
			tw.Flush()
		}
	default:
		return usageError("--output: %q is not one of table, json, name", format)
	}
	if exitOnFail && r.State != "SUCCEEDED" {
		return cli.Exit("", exitRunFail)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clientRunsList(c *cli.Context, cl *api.Client) error {
	var all []api.Run
	opts := api.ListOptions{PageSize: 200, SortBy: "created_at desc", Namespace: c.String("namespace"), ExperimentID: c.String("experiment")}
	for {
		page, err := cl.ListRuns(c.Context, opts)
		if err != nil {
			return clientErr(err)
		}
		all = append(all, page.Runs...)
		if page.NextPageToken == "" {
			break
		}
		opts.PageToken = page.NextPageToken
	}
	switch c.String("output") {
	case "json":
		if all == nil {
			all = []api.Run{}
		}
		return writeJSON(all)
	case "name":
		for _, r := range all {
			fmt.Println(r.RunID)
		}
		return nil
	case "table", "wide":
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN ID\tNAME\tSTATE\tEXPERIMENT\tCREATED")
		for _, r := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.RunID, r.DisplayName, r.State, r.ExperimentID, r.CreatedAt)
		}
		return tw.Flush()
	}
	return usageError("--output: %q is not one of table, json, name", c.String("output"))
}

func clientRunsGet(c *cli.Context, cl *api.Client, id string) error {
	r, err := cl.GetRun(c.Context, id)
	if err != nil {
		return clientErr(err)
	}
	return printClientRun(r, c.String("output"), false)
}

func clientRunsWait(c *cli.Context, cl *api.Client, id string) error {
	r, err := cl.WaitRun(c.Context, id, 500*time.Millisecond)
	if err != nil {
		return clientErr(err)
	}
	return printClientRun(r, c.String("output"), true)
}

func clientRunsCancel(c *cli.Context, cl *api.Client, id string) error {
	if err := cl.TerminateRun(c.Context, id); err != nil {
		return clientErr(err)
	}
	fmt.Fprintf(os.Stderr, "run %s: termination requested\n", id)
	return nil
}

func clientRunsRetry(c *cli.Context, cl *api.Client, id string) error {
	if err := cl.RetryRun(c.Context, id); err != nil {
		return clientErr(err)
	}
	fmt.Fprintf(os.Stderr, "run %s: retrying (follow it with 'skiff runs wait %s')\n", id, id)
	return nil
}

func clientLogs(c *cli.Context, cl *api.Client, runID, task string) error {
	rc, err := cl.TaskLogs(c.Context, runID, task, c.Int("attempt"), c.Bool("follow"))
	if err != nil {
		return clientErr(err)
	}
	defer rc.Close()
	_, err = io.Copy(os.Stdout, rc)
	return err
}

func mustJSON(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}
