package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
)

// embeddedRunAction runs `runs wait` and `runs cancel` without --server:
// through the skiff process holding the data dir when there is one (its
// socket), else on the data dir itself.
func embeddedRunAction(c *cli.Context, name string, fn func(*cli.Context, *api.Client, string) error) error {
	n, cl, err := openForRead(c)
	if cl != nil {
		return fn(c, cl, c.Args().First())
	}
	if err != nil {
		return err
	}
	defer n.close()
	r, err := findRun(n, c.Args().First())
	if err != nil {
		return err
	}
	if !r.State.Final() {
		if name == "wait" {
			return usageError("run %s is %s but no skiff process runs it; 'skiff runs resume %s' continues it", r.ID, r.State, short(r.ID))
		}
		// Cancel: record it, then let an engine carry it out (stop what
		// may linger, cancel the rest) and follow it to CANCELED.
		err := n.engine.Cancel(c.Context, r.ID) // before activation: nothing of it starts again
		if err != nil && !errors.Is(err, engine.ErrRunFinished) {
			return err
		}
		err = n.withEngine(c.Context, func() error {
			if _, err := n.engine.Resume(c.Context, r.ID); err != nil {
				return err
			}
			var err error
			r, err = n.engine.Wait(c.Context, r.ID)
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "run %s %s\n", r.ID, r.State)
		return nil
	}
	if name == "cancel" {
		return usageError("run %s already ended %s", r.ID, r.State)
	}
	fmt.Fprintf(os.Stderr, "run %s %s\n", r.ID, r.State)
	if r.State != spec.RunSucceeded {
		return cli.Exit("", exitRunFail)
	}
	return nil
}
