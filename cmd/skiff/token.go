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

--role worker makes a skiff agent's token (docs/cluster.md): it acts as
the worker node --node-id only, through the agent routes, and can do
nothing else (no run, no namespace's data, no other node). Only an admin
of every namespace makes one; its namespace is "*" (the agent runs the
steps of any namespace placed on it).

Examples:
  export SKIFF_TOKEN=$(skiff token create --namespace team-a --role editor)
  skiff --server http://10.0.0.1:8888 token create --role worker --node-id gpu-1`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "namespace", Usage: "the token's `NAMESPACE` (\"*\" = every namespace); required but for --role worker"},
					&cli.StringFlag{Name: "role", Value: "editor", Usage: "viewer, editor, admin or worker"},
					&cli.StringFlag{Name: "node-id", Usage: "with --role worker: the worker node `ID` the token acts as (skiff agent)"},
					&cli.StringFlag{Name: "description", Usage: "a note kept with the token"},
				},
				Action: func(c *cli.Context) error {
					role, err := api.ParseRole(c.String("role"))
					if err != nil {
						return usageError("--role: %v", err)
					}
					ns, nodeID := c.String("namespace"), c.String("node-id")
					switch {
					case role == api.RoleWorker && nodeID == "":
						return usageError("--role worker needs --node-id ID (the node the agent acts as)")
					case role != api.RoleWorker && nodeID != "":
						return usageError("--node-id: only a worker token (--role worker) acts as a node")
					case role != api.RoleWorker && ns == "":
						return usageError("--namespace: required (\"*\" = every namespace)")
					}
					if cl, _ := newClientFrom(c); cl != nil {
						t, err := cl.CreateToken(c.Context, api.TokenRequest{Namespace: ns, Role: role.String(), NodeID: nodeID, Description: c.String("description")})
						if err != nil {
							return clientErr(err)
						}
						if t.NodeID != "" {
							notice("token %s: worker for node %s, on %s (shown once; keep it secret)\n", t.ID, t.NodeID, cl.BaseURL)
						} else {
							notice("token %s: %s in namespace %s, on %s (shown once; keep it secret)\n", t.ID, t.Role, t.Namespace, cl.BaseURL)
						}
						fmt.Println(t.Token)
						return nil
					}
					var text string
					var rec store.Token
					if role == api.RoleWorker {
						if ns != "" && ns != api.AllNamespaces {
							return usageError("--namespace %q: a worker token is for every namespace (give \"*\" or none)", ns)
						}
						text, rec, err = api.NewWorkerToken(nodeID, c.String("description"), time.Now())
						if err != nil {
							return usageError("--node-id: %v", err)
						}
					} else if text, rec, err = api.NewToken(ns, role, c.String("description"), time.Now()); err != nil {
						return usageError("--namespace: %v", err)
					}
					st, _, err := openStoreOnly(c)
					if err != nil {
						return err
					}
					defer st.Close()
					if rec.NodeID != "" {
						ms, err := st.Members()
						if err != nil {
							return err
						}
						for _, m := range ms {
							if m.ID == rec.NodeID {
								return usageError("--node-id %q: a server of this cluster, not an agent", rec.NodeID)
							}
						}
					}
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
					fmt.Fprintln(tw, "ID\tNAMESPACE\tROLE\tNODE\tCREATED\tDESCRIPTION")
					for _, t := range toks {
						node := t.NodeID
						if node == "" {
							node = "-"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Namespace, t.Role, node, t.CreatedAt.Local().Format(time.DateTime), t.Description)
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
