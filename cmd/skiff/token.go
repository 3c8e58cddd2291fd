package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/store"
)

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "manage the server's API bearer tokens (with the server stopped)",
		Subcommands: []*cli.Command{
			{
				Name:  "create",
				Usage: "create a token and print it (it is shown once; only its hash is kept)",
				Description: `Creates a bearer token for one namespace (or "*" for every namespace) with a
role: viewer reads, editor also creates and cancels, admin also sets
namespace policies. With --server it asks the server (an admin token is
needed: one of a namespace creates tokens of that namespace, no higher
than its role); else it edits the data dir, so run it while 'skiff server'
is stopped.

Example:
  export SKIFF_TOKEN=$(skiff token create --namespace team-a --role editor)`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "namespace", Required: true, Usage: "the token's `NAMESPACE` (\"*\" = every namespace)"},
					&cli.StringFlag{Name: "role", Value: "editor", Usage: "viewer, editor or admin"},
					&cli.StringFlag{Name: "description", Usage: "a note kept with the token"},
				},
				Action: func(c *cli.Context) error {
					if cl, _ := newClientFrom(c); cl != nil {
						t, err := cl.CreateToken(c.Context, api.TokenRequest{Namespace: c.String("namespace"), Role: c.String("role"), Description: c.String("description")})
						if err != nil {
							return clientErr(err)
						}
						notice("token %s: %s in namespace %s, on %s (shown once; keep it secret)\n", t.ID, t.Role, t.Namespace, cl.BaseURL)
						fmt.Println(t.Token)
						return nil
					}
					role, err := api.ParseRole(c.String("role"))
					if err != nil {
						return usageError("--role: %v", err)
					}
					text, rec, err := api.NewToken(c.String("namespace"), role, c.String("description"), time.Now())
					if err != nil {
						return usageError("--namespace: %v", err)
					}
					st, _, err := openStoreOnly(c)
					if err != nil {
						return err
					}
					defer st.Close()
					res, err := st.Apply(c.Context, store.CreateToken{Token: rec})
					if err != nil {
						return err
					}
					if len(res.Rejected) > 0 {
						return fmt.Errorf("%s", res.Rejected[0].Reason)
					}
					fmt.Fprintf(os.Stderr, "token %s: %s in namespace %s (shown once; keep it secret)\n", rec.ID, rec.Role, rec.Namespace)
					fmt.Println(text)
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list tokens (ids, namespaces and roles; never secrets)",
				Action: func(c *cli.Context) error {
					st, _, err := openStoreOnly(c)
					if err != nil {
						return err
					}
					defer st.Close()
					toks, err := st.ListTokens()
					if err != nil {
						return err
					}
					tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tNAMESPACE\tROLE\tCREATED\tDESCRIPTION")
					for _, t := range toks {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Namespace, t.Role, t.CreatedAt.Local().Format(time.DateTime), t.Description)
					}
					return tw.Flush()
				},
			},
			{
				Name:      "revoke",
				Usage:     "revoke a token by id",
				ArgsUsage: "ID",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError("token revoke: expected one token ID")
					}
					st, _, err := openStoreOnly(c)
					if err != nil {
						return err
					}
					defer st.Close()
					res, err := st.Apply(c.Context, store.DeleteToken{ID: c.Args().First()})
					if err != nil {
						return err
					}
					if len(res.Rejected) > 0 {
						return usageError("%s", res.Rejected[0].Reason)
					}
					fmt.Fprintf(os.Stderr, "token %s revoked\n", c.Args().First())
					return nil
				},
			},
		},
	}
}
