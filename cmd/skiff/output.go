package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"

	"github.com/skiffml/skiff/api"
)

// outputFormats are what -o takes on every get and list, as with kubectl.
var outputFormats = []string{"table", "wide", "json", "yaml", "name"}

func outputFlag() cli.Flag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "format: " + strings.Join(outputFormats, ", ")}
}

// checkOutput refuses an unknown -o value.
func checkOutput(format string) error {
	if slices.Contains(outputFormats, format) {
		return nil
	}
	return usageError("--output: %q is not one of %s", format, strings.Join(outputFormats, ", "))
}

func writeJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeYAML writes v as YAML with the keys and order of its JSON.
func writeYAML(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return err
	}
	blockStyle(&doc)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	_, err = os.Stdout.Write(out.Bytes())
	return err
}

// blockStyle turns the flow style JSON parses into YAML's block style,
// leaving the scalars' tags (so "8" stays a string).
func blockStyle(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode {
		if n.Tag == "!!str" && !strings.Contains(n.Value, "\n") {
			n.Style = 0
		}
		return
	}
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// writeDoc writes v for -o json and -o yaml and reports whether it did.
func writeDoc(format string, v any) (bool, error) {
	switch format {
	case "json":
		return true, writeJSON(v)
	case "yaml":
		return true, writeYAML(v)
	}
	return false, nil
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// age is how long ago an RFC 3339 time was, as kubectl writes it.
func age(ts string, now time.Time) string {
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < 2*time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

func secs(s float64) string {
	if s == 0 {
		return "-"
	}
	return (time.Duration(s * float64(time.Second)).Round(time.Millisecond)).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine puts a message on one line, whole: a message is never cut (only
// the live view fits its lines to the terminal).
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// printRunList prints runs for runs list.
func printRunList(format string, runs []api.RunSummary) error {
	if ok, err := writeDoc(format, runs); ok {
		return err
	}
	if format == "name" {
		return printRunRows(format, runs)
	}
	return printRunTable(format, runs, true)
}

// printRunRows prints runs as rows of the runs list table, without its
// header (runs list --watch).
func printRunRows(format string, runs []api.RunSummary) error {
	if format == "name" {
		for _, r := range runs {
			fmt.Println(r.RunID)
		}
		return nil
	}
	return printRunTable(format, runs, false)
}

func printRunTable(format string, runs []api.RunSummary, header bool) error {
	wide := format == "wide"
	tw := newTable(os.Stdout)
	head := "RUN ID\tNAME\tSTATE\tTASKS\tAGE\tDURATION"
	if wide {
		head += "\tPIPELINE\tEXPERIMENT\tCREATED\tLABELS"
	}
	if header {
		fmt.Fprintln(tw, head)
	}
	now := time.Now()
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s", r.RunID, r.Name, r.State, r.TaskCount, age(r.CreatedAt, now), runDuration(r, now))
		if wide {
			fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s", dash(r.Pipeline), dash(r.ExperimentID), r.CreatedAt, dash(labelText(r.Labels)))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func runDuration(r api.RunSummary, now time.Time) string {
	switch {
	case r.DurationSecs > 0:
		return secs(r.DurationSecs)
	case r.StartedAt != "" && r.FinishedAt == "":
		t, err := time.Parse(time.RFC3339Nano, r.StartedAt)
		if err == nil {
			return now.Sub(t).Round(time.Second).String() + "…"
		}
	}
	return "-"
}

// printRun prints one run with its tasks (runs get, run, runs wait).
func printRun(format string, r api.RunSummary) error {
	if ok, err := writeDoc(format, r); ok {
		return err
	}
	if format == "name" {
		fmt.Println(r.RunID)
		return nil
	}
	wide := format == "wide"
	fmt.Printf("Run:        %s\nName:       %s\nState:      %s\nDuration:   %s\n", r.RunID, r.Name, r.State, runDuration(r, time.Now()))
	if len(r.Labels) > 0 {
		fmt.Printf("Labels:     %s\n", labelText(r.Labels))
	}
	if r.ExperimentID != "" {
		fmt.Printf("Experiment: %s\n", r.ExperimentID)
	}
	if r.Error != "" {
		fmt.Printf("Error:      %s\n", r.Error)
	}
	tw := newTable(os.Stdout)
	head := "\nTASK\tSTATE\tATTEMPTS\tDURATION\tDETAIL"
	if wide {
		head += "\tSTARTED\tFINISHED"
	}
	fmt.Fprintln(tw, head)
	tasks := r.Tasks
	var folds map[string]*loopFold
	if !wide { // the table folds each loop's iterations into its line
		byName := map[string]api.TaskSummary{}
		names := make([]string, 0, len(tasks))
		for _, t := range tasks {
			byName[t.Name] = t
			names = append(names, t.Name)
		}
		var kept []string
		kept, folds = foldLoops(names, func(n string) string { return summaryState(byName[n]) })
		tasks = tasks[:0:0]
		for _, n := range kept {
			tasks = append(tasks, byName[n])
		}
	}
	for _, t := range tasks {
		state, detail := summaryState(t), oneLine(t.Error)
		if t.Cached {
			detail = "outputs of " + t.CachedFrom
		}
		if f := folds[t.Name]; f != nil {
			detail = f.text()
		}
		attempts := strconv.Itoa(t.Attempts)
		if t.Group {
			attempts = "-" // a group runs its tasks, not a command
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", t.Name, state, attempts, secs(t.DurationSecs), detail)
		if wide {
			fmt.Fprintf(tw, "\t%s\t%s", dash(t.StartedAt), dash(t.FinishedAt))
		}
		fmt.Fprintln(tw)
		if f := folds[t.Name]; f != nil {
			for _, l := range f.failedLines("  ") {
				fmt.Fprintf(tw, "%s\t\t\t\t\n", l)
			}
		}
	}
	tw.Flush()
	if len(r.Outputs) > 0 {
		fmt.Println("\nOutputs:")
		keys := make([]string, 0, len(r.Outputs))
		for k := range r.Outputs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Printf("  %s = %s\n", k, r.Outputs[k])
		}
	}
	return nil
}

// summaryState is a task's state as tables show it.
func summaryState(t api.TaskSummary) string {
	if t.Cached {
		return "CACHED"
	}
	return t.State
}

// finalState reports whether a run state (as the API writes it) is final.
func finalState(s string) bool {
	switch s {
	case "SUCCEEDED", "FAILED", "CANCELED", "SKIPPED":
		return true
	}
	return false
}

// labelText is labels as k=v,k=v, sorted by key.
func labelText(labels map[string]string) string {
	parts := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		parts = append(parts, k+"="+labels[k])
	}
	return strings.Join(parts, ",")
}
