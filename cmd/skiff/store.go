package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/store"
)

func storeCommand() *cli.Command {
	return &cli.Command{
		Name:  "store",
		Usage: "check or repair a stopped data dir",
		Description: `Work on the state kept in --data-dir while no skiff uses it (each command
takes the data dir's lock and refuses a dir that is in use).`,
		Subcommands: []*cli.Command{
			{
				Name:  "check",
				Usage: "verify the raft log, snapshots, state and referenced artifacts",
				Description: `Reads the whole data dir without changing it: every raft log entry must
read and decode, every snapshot must match its checksum and hold a readable
state, state.db must be readable and be the state of this raft log (reached
by the log from the newest snapshot), and every artifact and log a run
refers to must be stored with the right digest. Prints one line per part
("ok" or "FAIL", the file, what was found and, for a problem, the way out).
Exit code 0 when everything is healthy, 1 when something is not, 2 when
the data dir is in use or not a data dir.

Examples:
  skiff store check
  skiff --data-dir /srv/skiff store check -o json`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json"},
				},
				Action: storeCheckAction,
			},
			{
				Name:      "skip-entry",
				Usage:     "drop a raft log entry the state machine cannot decode",
				ArgsUsage: "INDEX",
				Description: `Use when skiff stops with "raft entry INDEX cannot be decoded" and no newer
skiff can read it: the entry becomes empty (the change it carried is
lost; its bytes are kept under damaged/). An entry that decodes is refused.`,
				Action: storeSkipEntryAction,
			},
			{
				Name:  "reset-log",
				Usage: "start a new raft log from state.db (raft.db lost or damaged)",
				Description: `Use when skiff refuses to open because state.db does not match the raft
log (raft.db deleted, emptied or replaced) or raft.db is damaged, and
state.db is intact: the old raft.db and snapshots move to damaged/, and a
new log starts from what state.db holds. Needs a state.db that was closed
cleanly.`,
				Action: storeResetLogAction,
			},
		},
	}
}

// storeDir is the store's directory inside the data dir.
func storeDir(c *cli.Context) (string, error) {
	dir, err := filepath.Abs(c.String("data-dir"))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "store"), nil
}

func storeCheckAction(c *cli.Context) error {
	out := c.String("output")
	if out != "table" && out != "json" {
		return usageError("--output: %q is not one of table, json", out)
	}
	dir, err := storeDir(c)
	if err != nil {
		return err
	}
	var check store.BlobChecker
	blobDir := filepath.Join(filepath.Dir(dir), "blobs")
	if _, err := os.Stat(blobDir); err == nil {
		blobs, err := openBlobs(c, filepath.Dir(dir))
		if err != nil {
			return err
		}
		ctx := c.Context
		if ctx == nil {
			ctx = context.Background()
		}
		check = func(digest string) error { return blobs.Verify(ctx, digest) }
	}
	rep, err := store.Check(dir, check)
	if err != nil {
		return cli.Exit(err.Error(), exitBadInput)
	}
	if out == "json" {
		if err := writeJSON(rep); err != nil {
			return err
		}
	} else {
		for _, f := range rep.Findings {
			status := "ok  "
			if !f.OK {
				status = "FAIL"
			}
			fmt.Printf("%s  %s: %s\n", status, f.File, f.Message)
		}
	}
	if !rep.Healthy() {
		return cli.Exit("", exitRunFail)
	}
	return nil
}

func storeSkipEntryAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError("store skip-entry: expected one raft entry INDEX, got %d arguments", c.NArg())
	}
	index, err := strconv.ParseUint(c.Args().First(), 10, 64)
	if err != nil || index == 0 {
		return usageError("store skip-entry: INDEX: %q is not a raft entry index", c.Args().First())
	}
	return storeRepair(c, func(dir string) (string, error) { return store.SkipEntry(dir, index) })
}

func storeResetLogAction(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageError("store reset-log: takes no arguments")
	}
	return storeRepair(c, store.ResetLog)
}

func storeRepair(c *cli.Context, repair func(dir string) (string, error)) error {
	dir, err := storeDir(c)
	if err != nil {
		return err
	}
	msg, err := repair(dir)
	if errors.Is(err, store.ErrLocked) {
		return cli.Exit(err.Error(), exitBadInput)
	}
	if err != nil {
		return err
	}
	fmt.Println(msg)
	return nil
}
