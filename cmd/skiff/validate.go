package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/engine/spec/kfp"
)

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check a pipeline file and print its plan, or every error",
		ArgsUsage: "FILE",
		Description: `Compiles FILE — Skiff YAML or a pipeline compiled by the kfp SDK (KFP v2
IR, with an optional PlatformSpec) — without running it, and prints the plan:
its parameters, tasks (groups indented under their group) and outputs.
A file Skiff cannot run is reported with every error, each naming its field;
exit code 2. Steps the chosen --executor cannot run (no command: the image's
entrypoint, which only docker and kube run; KFP backend steps such as
kfp.kubernetes' CreatePVC) are warned about on standard error. Steps that
would fail at their start are errors: asking more GPUs (SKIFF_GPUS, else
nvidia-smi) or CPU than this machine has, for steps --executor local runs;
a docker step without an image.

Examples:
  skiff validate pipeline.yaml
  skiff validate --lenient kfp_pipeline.yaml
  skiff validate --executor docker kfp_pipeline.yaml
  skiff validate -o json pipeline.yaml > plan.json`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "lenient", Usage: "KFP IR: report unknown fields and unsupported features as warnings, as skiff run --lenient runs them"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table (a summary) or json (the compiled plan)"},
			&cli.StringFlag{Name: "executor", Value: "local", Usage: "the executor the pipeline would run with (as skiff run --executor): warn about steps it cannot run"},
		},
		Action: validateAction,
	}
}

func validateAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError("validate: expected one pipeline FILE, got %d arguments", c.NArg())
	}
	out := c.String("output")
	if out != "table" && out != "json" {
		return usageError("--output: %q is not one of table, json", out)
	}
	file := c.Args().First()
	data, err := os.ReadFile(file)
	if err != nil {
		return usageError("%v", err)
	}
	plan, warns, err := kfp.Load(data, file, kfp.Options{Lenient: c.Bool("lenient")})
	for _, w := range warns {
		fmt.Fprintf(os.Stderr, "warning: %s\n", w)
	}
	if err != nil {
		var ve *spec.ValidationError
		if errors.As(err, &ve) {
			fmt.Fprintf(os.Stderr, "%s: %d error(s):\n", file, len(ve.Errors))
			hint := false
			for _, fe := range ve.Errors {
				fmt.Fprintf(os.Stderr, "  %s\n", fe.Error())
				hint = hint || strings.HasPrefix(fe.Msg, "unsupported") || strings.HasPrefix(fe.Msg, "unknown field")
			}
			if hint && !c.Bool("lenient") {
				fmt.Fprintln(os.Stderr, "(--lenient ignores unknown fields and unsupported features, with a warning each)")
			}
			return cli.Exit("", exitBadInput)
		}
		return usageError("%s: %v", file, err)
	}
	for _, w := range kfp.Unrunnable(plan, c.String("executor")) {
		fmt.Fprintf(os.Stderr, "warning: %s\n", w)
	}
	if err := checkPreflight(c.Context, file, plan, c.String("executor")); err != nil {
		return err
	}
	if out == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	}
	format := "Skiff YAML"
	if kfp.IsIR(data) {
		format = "KFP IR"
	}
	printPlan(os.Stdout, file, format, plan)
	return nil
}

// printPlan writes a summary of a plan.
func printPlan(w io.Writer, file, format string, p *spec.Plan) {
	fmt.Fprintf(w, "%s: valid %s pipeline %q\n", file, format, p.Name)
	if len(p.Params) > 0 {
		fmt.Fprintln(w, "parameters:")
		for _, prm := range p.Params {
			def := "required"
			if prm.Default != nil {
				def = "default " + string(prm.Default)
			}
			fmt.Fprintf(w, "  %s: %s (%s)\n", prm.Name, prm.Type, def)
		}
	}
	fmt.Fprintln(w, "tasks:")
	printTasks(w, p, "  ")
	if len(p.Outputs) > 0 {
		fmt.Fprintln(w, "outputs:")
		for _, o := range p.Outputs {
			from := o.From.Task + "." + o.From.Output
			if len(o.OneOf) > 0 {
				var alts []string
				for _, r := range o.OneOf {
					alts = append(alts, r.Task+"."+r.Output)
				}
				from = "first of " + strings.Join(alts, ", ")
			}
			fmt.Fprintf(w, "  %s: %s (%s)\n", o.Name, o.Type, from)
		}
	}
}

func printTasks(w io.Writer, p *spec.Plan, indent string) {
	for i := range p.Tasks {
		t := &p.Tasks[i]
		var notes []string
		switch {
		case t.ParallelFor != nil:
			notes = append(notes, "loop")
			if t.ParallelFor.Parallelism > 0 {
				notes = append(notes, fmt.Sprintf("parallelism %d", t.ParallelFor.Parallelism))
			}
		case t.Body != nil:
			notes = append(notes, "group")
		case t.Image != "":
			notes = append(notes, "image "+t.Image)
		}
		if len(t.After) > 0 {
			notes = append(notes, "after "+strings.Join(t.After, ", "))
		}
		if t.When != "" {
			notes = append(notes, "when "+t.When)
		}
		if t.IgnoreUpstreamFailure {
			notes = append(notes, "runs whatever its upstream's outcome")
		}
		if t.Retry != nil && t.Retry.Limit > 0 {
			notes = append(notes, fmt.Sprintf("retries %d", t.Retry.Limit))
		}
		fmt.Fprintf(w, "%s%s", indent, t.Name)
		if len(notes) > 0 {
			fmt.Fprintf(w, "  [%s]", strings.Join(notes, "; "))
		}
		fmt.Fprintln(w)
		if t.Body != nil {
			printTasks(w, t.Body, indent+"  ")
		}
	}
}
