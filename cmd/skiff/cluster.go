package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/cluster"
)

func clusterCommand() *cli.Command {
	output := &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "format: table or json"}
	return &cli.Command{
		Name:  "cluster",
		Usage: "show and change the servers of a cluster (needs --server)",
		Description: `Talks to any server of a cluster (--server URL): the node asked answers
members and status from its own view (each member is asked for its own
state over the cluster port); remove goes to the leader; leave makes the
node asked leave the cluster and stop.

Examples:
  skiff --server http://10.0.0.1:8888 cluster members
  skiff --server http://10.0.0.1:8888 cluster remove node-3
  skiff --server http://10.0.0.3:8888 cluster leave`,
		Subcommands: []*cli.Command{
			{
				Name:   "members",
				Usage:  "list the servers (id, cluster address, API URL, role, voter, last contact, applied index), then the workers, servers' and agents' (state, epoch, last heartbeat, executors, labels)",
				Flags:  []cli.Flag{output},
				Action: func(c *cli.Context) error { return clusterShow(c, false) },
			},
			{
				Name:   "status",
				Usage:  "show the leader and term, and each server's commit and applied index and replicated blob figures (repairs pending, repaired, bytes sent and received)",
				Flags:  []cli.Flag{output},
				Action: func(c *cli.Context) error { return clusterShow(c, true) },
			},
			{
				Name:      "remove",
				Usage:     "remove server NODE from the cluster (admin)",
				ArgsUsage: "NODE",
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError("cluster remove takes one NODE id (see 'skiff cluster members')")
					}
					cl, err := clusterClient(c)
					if err != nil {
						return err
					}
					if err := cl.ClusterRemove(c.Context, c.Args().First()); err != nil {
						return clientErr(err)
					}
					fmt.Fprintf(os.Stderr, "removed %s from the cluster\n", c.Args().First())
					return nil
				},
			},
			{
				Name:  "leave",
				Usage: "make the server at --server leave the cluster (handing over leadership first) and stop (admin)",
				Action: func(c *cli.Context) error {
					cl, err := clusterClient(c)
					if err != nil {
						return err
					}
					if err := cl.ClusterLeave(c.Context); err != nil {
						return clientErr(err)
					}
					fmt.Fprintln(os.Stderr, "the server left the cluster and is stopping")
					return nil
				},
			},
		},
	}
}

func clusterClient(c *cli.Context) (*api.Client, error) {
	cl, err := newClientFrom(c)
	if err != nil {
		return nil, err
	}
	if cl == nil {
		return nil, usageError("skiff cluster needs --server URL (or SKIFF_SERVER): it talks to a running server")
	}
	return cl, nil
}

func clusterShow(c *cli.Context, status bool) error {
	out := c.String("output")
	if out != "table" && out != "json" {
		return usageError("--output: %q is not one of table, json", out)
	}
	cl, err := clusterClient(c)
	if err != nil {
		return err
	}
	ms, err := cl.ClusterMembers(c.Context)
	if err != nil {
		return clientErr(err)
	}
	if out == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(ms)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	if status {
		var term uint64
		for _, m := range ms.Members {
			term = max(term, m.Status.Term)
		}
		leader := ms.LeaderID
		if leader == "" {
			leader = "(none known)"
		}
		fmt.Fprintf(tw, "leader: %s\tterm: %d\tasked: %s\n\n", leader, term, ms.NodeID)
		fmt.Fprintln(tw, "ID\tROLE\tCOMMIT\tAPPLIED\tSTALE\tBLOBS PENDING\tREPAIRED\tSENT\tRECEIVED")
		for _, m := range ms.Members {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%v\t%s\n", m.ID, role(m), m.Status.CommitIndex, m.Status.AppliedIndex, m.Status.Stale, blobFigures(m.Blobs))
		}
		return tw.Flush()
	}
	fmt.Fprintln(tw, "ID\tRAFT ADDRESS\tAPI\tROLE\tVOTER\tLAST CONTACT\tAPPLIED")
	for _, m := range ms.Members {
		contact := "-"
		if !m.Status.LastContact.IsZero() {
			contact = time.Since(m.Status.LastContact).Round(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%d\n", m.ID, m.RaftAddr, m.APIURL, role(m), m.Voter, contact, m.Status.AppliedIndex)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return showWorkers(ms)
}

// showWorkers lists the registered workers: every server's and every
// agent's (KIND agent: not a member of the raft cluster).
func showWorkers(ms api.ClusterMembers) error {
	if len(ms.Workers) == 0 {
		return nil
	}
	member := map[string]bool{}
	for _, m := range ms.Members {
		member[m.ID] = true
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tKIND\tSTATE\tEPOCH\tLAST HEARTBEAT\tEXECUTORS\tLABELS")
	for _, w := range ms.Workers {
		kind := "agent"
		if member[w.ID] {
			kind = "server"
		}
		beat := "-"
		if !w.LastHeartbeat.IsZero() {
			beat = time.Since(w.LastHeartbeat).Round(time.Millisecond).String() + " ago"
		}
		var labels []string
		for _, k := range slices.Sorted(maps.Keys(w.Labels)) {
			labels = append(labels, k+"="+w.Labels[k])
		}
		state := w.State
		if w.DownReason != "" {
			state += " (" + w.DownReason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", w.ID, kind, state, w.Epoch, beat, strings.Join(w.Executors, ","), listOrNone(labels))
	}
	return tw.Flush()
}

// blobFigures is a member's replicated blob store figures: blobs it
// should hold and lacks (repair pending), blobs repaired, stored bytes
// sent and received; "-" for a member that keeps none (S3, unreachable).
func blobFigures(b *cluster.BlobStatus) string {
	if b == nil {
		return "-\t-\t-\t-"
	}
	return fmt.Sprintf("%d\t%d\t%s\t%s", b.Pending, b.Repaired, byteSize(b.BytesSent), byteSize(b.BytesReceived))
}

// role is a member's raft state in lower case, or "unreachable".
func role(m cluster.MemberStatus) string {
	if !m.Reachable {
		return "unreachable"
	}
	return strings.ToLower(m.Status.State)
}
