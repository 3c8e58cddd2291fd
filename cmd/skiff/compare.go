package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
)

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "show runs' parameters and outputs side by side",
		ArgsUsage: "RUN RUN...",
		Description: `Prints one row per parameter and per pipeline output, one column per run;
"-" where a run has none.

Examples:
  skiff runs compare 3f2a 9b1c
  skiff runs compare 3f2a 9b1c -o json`,
		Flags:  []cli.Flag{outputFlag()},
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
	for _, kind := range []string{"parameter", "output"} {
		pick := func(r api.RunSummary) map[string][]byte {
			m := map[string][]byte{}
			src := r.Parameters
			if kind == "output" {
				src = r.Outputs
			}
			for k, v := range src {
				m[k] = v
			}
			return m
		}
		var names []string
		for _, r := range runs {
			for n := range pick(r) {
				if !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Fprintf(tw, "%s\t%s", kind, n)
			for _, r := range runs {
				v, ok := pick(r)[n]
				cell := "-"
				if ok {
					cell = oneLine(string(v))
				}
				fmt.Fprintf(tw, "\t%s", cell)
			}
			fmt.Fprintln(tw)
		}
	}
	return tw.Flush()
}
