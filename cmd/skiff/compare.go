package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine/spec"
)

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "show runs' parameters and outputs side by side",
		ArgsUsage: "RUN RUN...",
		Description: `Prints one row per parameter, per metric (the scalars of the runs' Metrics
artifacts, named TASK.OUTPUT.METRIC) and per pipeline output (an artifact
as its type, size and digest), one column per run; "-" where a run has none.
-o json and yaml print the runs' summaries.

Examples:
  skiff runs compare 3f2a 9b1c
  skiff runs compare 3f2a 9b1c 77d0 --diff       # only what differs
  skiff runs compare 3f2a 9b1c -o json`,
		Flags: []cli.Flag{outputFlag(),
			&cli.BoolFlag{Name: "diff", Usage: "only the rows where the runs differ"}},
		Action: compareAction,
	}
}

func archiveCommand(archived bool) *cli.Command {
	name, done := "archive", "archived"
	if !archived {
		name, done = "unarchive", "unarchived"
	}
	return &cli.Command{
		Name:      name,
		Usage:     "mark runs " + done + " (archived runs stay, out of the UI's default view)",
		ArgsUsage: "RUN...",
		Action: withRuns(name, func(c *cli.Context, k *conn, id string) error {
			r, err := k.RunSummary(c.Context, id)
			if err != nil {
				return clientErr(err)
			}
			if err := k.ArchiveRun(c.Context, r.RunID, archived); err != nil {
				return clientErr(err)
			}
			notice("run %s %s\n", r.RunID, done)
			return nil
		}),
	}
}

func compareAction(c *cli.Context) error {
	if c.NArg() < 2 {
		return usageError("runs compare: expected two or more RUN ids")
	}
	format := c.String("output")
	if err := checkOutput(format); err != nil {
		return err
	}
	k, err := dial(c)
	if err != nil {
		return err
	}
	defer k.close()
	var runs []api.RunSummary
	for _, id := range c.Args().Slice() {
		r, err := k.RunSummary(c.Context, id)
		if err != nil {
			return clientErr(err)
		}
		runs = append(runs, r)
	}
	if ok, err := writeDoc(format, runs); ok {
		return err
	}
	if format == "name" {
		return printRunRows(format, runs)
	}
	tw := newTable(os.Stdout)
	fmt.Fprint(tw, "\t")
	for _, r := range runs {
		fmt.Fprintf(tw, "\t%s", short(r.RunID))
	}
	fmt.Fprint(tw, "\nstate\t")
	for _, r := range runs {
		fmt.Fprintf(tw, "\t%s", r.State)
	}
	fmt.Fprintln(tw)
	metrics := make([]map[string][]byte, len(runs))
	for i, r := range runs {
		if metrics[i], err = runMetrics(c.Context, k, r); err != nil {
			return err
		}
	}
	for _, kind := range []string{"parameter", "metric", "output"} {
		pick := func(i int) map[string][]byte {
			r, m := runs[i], map[string][]byte{}
			switch kind {
			case "parameter":
				for k, v := range r.Parameters {
					m[k] = v
				}
			case "metric":
				maps.Copy(m, metrics[i])
			default:
				for k, v := range r.Outputs {
					m[k] = []byte(compactValue(v))
				}
			}
			return m
		}
		var names []string
		for i := range runs {
			for n := range pick(i) {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
		}
		slices.Sort(names)
		for _, n := range names {
			cells := make([]string, len(runs))
			for i := range runs {
				cells[i] = "-"
				if v, ok := pick(i)[n]; ok {
					cells[i] = oneLine(string(v))
				}
			}
			if c.Bool("diff") && !slices.ContainsFunc(cells, func(x string) bool { return x != cells[0] }) {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", kind, n, strings.Join(cells, "\t"))
		}
	}
	return tw.Flush()
}

// maxMetricsBytes bounds a Metrics artifact read for runs compare.
const maxMetricsBytes = 1 << 20

// runMetrics reads run r's Metrics artifacts (verified against their
// digests) into rows named TASK.OUTPUT.METRIC.
func runMetrics(ctx context.Context, k *conn, r api.RunSummary) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, a := range runArtifacts(r) {
		if a.Ref.Type != spec.TypeMetrics {
			continue
		}
		rc, err := k.Artifact(ctx, a.Ref.Digest)
		if err != nil {
			return nil, clientErr(err)
		}
		data, err := io.ReadAll(io.LimitReader(verifiedBody(rc, a.Ref.Digest), maxMetricsBytes))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("run %s: %s.%s: %w", short(r.RunID), a.Task, a.Output, err)
		}
		for _, kv := range metricRows(a.Ref.Metadata, data) {
			if _, err := strconv.ParseFloat(kv[1], 64); err == nil && !strings.Contains(kv[0], "[") {
				out[a.Task+"."+a.Output+"."+kv[0]] = []byte(kv[1]) // numbers, not tables
			}
		}
	}
	return out, nil
}

// compactValue shows an output: an artifact as its type, size and digest
// prefix, anything else as its JSON on one line.
func compactValue(v json.RawMessage) string {
	var ref spec.ArtifactRef
	if bytes.HasPrefix(bytes.TrimSpace(v), []byte("{")) && json.Unmarshal(v, &ref) == nil && ref.Digest != "" {
		d := strings.TrimPrefix(ref.Digest, "sha256:")
		typ := string(ref.Type)
		if typ == "" {
			typ = "Artifact"
		}
		return fmt.Sprintf("%s %s %s", typ, byteSize(ref.Size), d[:min(12, len(d))])
	}
	return oneLine(string(v))
}
