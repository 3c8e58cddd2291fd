package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
)

func pipelineCommand() *cli.Command {
	needServer := func(c *cli.Context) (*conn, error) {
		if c.IsSet("output") {
			if err := checkOutput(c.String("output")); err != nil {
				return nil, err
			}
		}
		return dial(c)
	}
	nsFlag := &cli.StringFlag{Name: "namespace", Usage: "default: the token's namespace"}
	return &cli.Command{
		Name:  "pipeline",
		Usage: "upload, list and inspect pipelines (on a server, or in the data dir)",
		Subcommands: []*cli.Command{
			{
				Name:      "upload",
				Usage:     "upload a pipeline file as a new pipeline (its first version has the same name)",
				ArgsUsage: "FILE",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "name", Usage: "the pipeline's name (default: the file name without its extension)"},
					&cli.StringFlag{Name: "description"},
					nsFlag,
					outputFlag(),
				},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError("pipeline upload: expected one FILE")
					}
					cl, err := needServer(c)
					if err != nil {
						return err
					}
					defer cl.close()
					file := c.Args().First()
					data, err := os.ReadFile(file)
					if err != nil {
						return usageError("pipeline upload: %v", err)
					}
					name := c.String("name")
					if name == "" {
						name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
					}
					p, err := cl.UploadPipeline(c.Context, name, c.String("description"), c.String("namespace"), filepath.Base(file), data)
					if err != nil {
						return clientErr(err)
					}
					return printPipelines(c.String("output"), []api.Pipeline{p})
				},
			},
			{
				Name:  "list",
				Usage: "list pipelines",
				Flags: []cli.Flag{nsFlag, outputFlag()},
				Action: func(c *cli.Context) error {
					cl, err := needServer(c)
					if err != nil {
						return err
					}
					defer cl.close()
					var all []api.Pipeline
					opts := api.ListOptions{PageSize: 200, Namespace: c.String("namespace")}
					for {
						page, err := cl.ListPipelines(c.Context, opts)
						if err != nil {
							return clientErr(err)
						}
						all = append(all, page.Pipelines...)
						if page.NextPageToken == "" {
							break
						}
						opts.PageToken = page.NextPageToken
					}
					return printPipelines(c.String("output"), all)
				},
			},
			{
				Name:      "get",
				Usage:     "show a pipeline (by id or name) and its versions",
				ArgsUsage: "PIPELINE",
				Flags:     []cli.Flag{nsFlag, outputFlag()},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError("pipeline get: expected one PIPELINE id or name")
					}
					cl, err := needServer(c)
					if err != nil {
						return err
					}
					defer cl.close()
					return pipelineGet(c, cl.Client, c.Args().First())
				},
			},
		},
	}
}

func pipelineGet(c *cli.Context, cl *api.Client, ref string) error {
	p, err := cl.GetPipeline(c.Context, ref)
	var ae *api.Error
	if errors.As(err, &ae) && ae.HTTPStatus() == 404 {
		p, err = cl.PipelineByName(c.Context, c.String("namespace"), ref)
	}
	if err != nil {
		return clientErr(err)
	}
	var versions []api.PipelineVersion
	opts := api.ListOptions{PageSize: 200, SortBy: "created_at"}
	for {
		page, err := cl.ListPipelineVersions(c.Context, p.PipelineID, opts)
		if err != nil {
			return clientErr(err)
		}
		versions = append(versions, page.PipelineVersions...)
		if page.NextPageToken == "" {
			break
		}
		opts.PageToken = page.NextPageToken
	}
	if versions == nil {
		versions = []api.PipelineVersion{}
	}
	if ok, err := writeDoc(c.String("output"), struct {
		api.Pipeline
		Versions []api.PipelineVersion `json:"versions"`
	}{p, versions}); ok {
		return err
	}
	switch c.String("output") {
	case "name":
		fmt.Println(p.PipelineID)
		return nil
	case "table", "wide", "":
		fmt.Printf("Pipeline:    %s\nName:        %s\nNamespace:   %s\nCreated:     %s\n", p.PipelineID, p.DisplayName, p.Namespace, p.CreatedAt)
		if p.Description != "" {
			fmt.Printf("Description: %s\n", p.Description)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\nVERSION ID\tNAME\tDIGEST\tCREATED")
		for _, v := range versions {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.PipelineVersionID, v.DisplayName, dash(v.Digest), v.CreatedAt)
		}
		return tw.Flush()
	}
	return checkOutput(c.String("output"))
}

func printPipelines(format string, ps []api.Pipeline) error {
	if ps == nil {
		ps = []api.Pipeline{}
	}
	if ok, err := writeDoc(format, ps); ok {
		return err
	}
	switch format {
	case "name":
		for _, p := range ps {
			fmt.Println(p.PipelineID)
		}
		return nil
	case "table", "wide", "":
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PIPELINE ID\tNAME\tNAMESPACE\tCREATED")
		for _, p := range ps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.PipelineID, p.DisplayName, p.Namespace, p.CreatedAt)
		}
		return tw.Flush()
	}
	return checkOutput(format)
}
