package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
)

func experimentCommand() *cli.Command {
	return &cli.Command{
		Name:  "experiment",
		Usage: "create and list experiments (on a server, or in the data dir)",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create an experiment",
				ArgsUsage: "NAME",
				Description: `Examples:
  skiff experiment create tuning --description "learning rate sweep"
  skiff run pipeline.yaml --experiment tuning`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "description"},
					&cli.StringFlag{Name: "namespace", Usage: "default: the token's namespace"},
					outputFlag(),
				},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError("experiment create: expected one NAME")
					}
					if err := checkOutput(c.String("output")); err != nil {
						return err
					}
					cl, err := dial(c)
					if err != nil {
						return err
					}
					defer cl.close()
					e, err := cl.CreateExperiment(c.Context, api.Experiment{DisplayName: c.Args().First(), Description: c.String("description"), Namespace: c.String("namespace")})
					if err != nil {
						return clientErr(err)
					}
					return printExperiments(c.String("output"), []api.Experiment{e})
				},
			},
			{
				Name:  "list",
				Usage: "list experiments",
				Description: `Examples:
  skiff experiment list
  skiff experiment list -o yaml`,
				Flags: []cli.Flag{&cli.StringFlag{Name: "namespace"}, outputFlag()},
				Action: func(c *cli.Context) error {
					if err := checkOutput(c.String("output")); err != nil {
						return err
					}
					cl, err := dial(c)
					if err != nil {
						return err
					}
					defer cl.close()
					var all []api.Experiment
					opts := api.ListOptions{PageSize: 200, Namespace: c.String("namespace")}
					for {
						page, err := cl.ListExperiments(c.Context, opts)
						if err != nil {
							return clientErr(err)
						}
						all = append(all, page.Experiments...)
						if page.NextPageToken == "" {
							break
						}
						opts.PageToken = page.NextPageToken
					}
					return printExperiments(c.String("output"), all)
				},
			},
		},
	}
}

func printExperiments(format string, es []api.Experiment) error {
	if es == nil {
		es = []api.Experiment{}
	}
	if ok, err := writeDoc(format, es); ok {
		return err
	}
	switch format {
	case "name":
		for _, e := range es {
			fmt.Println(e.ExperimentID)
		}
		return nil
	case "table", "wide":
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "EXPERIMENT ID\tNAME\tNAMESPACE\tSTATE\tCREATED")
		for _, e := range es {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.ExperimentID, e.DisplayName, e.Namespace, e.StorageState, e.CreatedAt)
		}
		return tw.Flush()
	}
	return checkOutput(format)
}
