// Command skiff runs machine-learning pipelines: on an embedded single node
// (skiff run), and later as a replicated service (skiff server).
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/store"
)

// Exit codes, as kubectl and argo users expect them.
const (
	exitOK       = 0
	exitRunFail  = 1 // the run failed or was canceled
	exitBadInput = 2 // bad usage or bad input
)

func main() {
	app := newApp()
	if err := app.Run(reorderArgs(app, os.Args)); err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			if msg := err.Error(); msg != "" {
				notice("skiff: %s\n", msg)
			}
			os.Exit(ec.ExitCode())
		}
		notice("skiff: %v\n", err)
		os.Exit(exitRunFail)
	}
}

func newApp() *cli.App {
	app := &cli.App{
		// -p takes JSON lists and objects: no splitting at commas.
		DisableSliceFlagSeparator: true,
		Name:                      "skiff",
		Usage:                     "run machine-learning pipelines on one machine or a cluster",
		Description: `Skiff runs pipelines — DAGs of steps with typed parameters and artifacts —
on an embedded single node whose every state change is kept in a Raft log
and a bbolt database under the data dir, so a crashed run can be resumed.

Start with:  skiff run examples/iris/pipeline.yaml`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{
				Name:    "data-dir",
				Usage:   "where the embedded node keeps its state, artifacts and work dirs",
				Value:   defaultDataDir(),
				EnvVars: []string{"SKIFF_DATA_DIR"},
			},
			&cli.StringFlag{
				Name:    "raft-log-store",
				Usage:   "the Raft log's backend: wal (hashicorp/raft-wal, append-only segments, one fsync per batch) or bolt (raft-boltdb, raft.db); a data dir holding the other one is migrated to it when it opens",
				Value:   store.DefaultLogStore,
				EnvVars: []string{"SKIFF_RAFT_LOG_STORE"},
			},
			&cli.BoolFlag{Name: "debug", Usage: "log engine internals to standard error"},
		}, append(clientFlags(), artifactStoreFlags()...)...),
		Commands: []*cli.Command{
			runCommand(),
			validateCommand(),
			runsCommand(),
			logsCommand(),
			artifactsCommand(),
			serverCommand(),
			agentCommand(),
			uiCommand(),
			clusterCommand(),
			tokenCommand(),
			experimentCommand(),
			pipelineCommand(),
			benchCommand(),
			storeCommand(),
			gcCommand(),
			completionCommand(),
			launchCommand(),
		},
		Version:        version(),
		ExitErrHandler: func(*cli.Context, error) {}, // main prints errors and picks the exit code
		Action:         unknownCommand(""),
		OnUsageError:   onUsageError("skiff"),
	}
	setUsageErrors(app.Commands, "")
	return app
}

// setUsageErrors makes bad usage of every command exit 2 with one line
// and a hint, not the whole help.
func setUsageErrors(cmds []*cli.Command, parent string) {
	for _, c := range cmds {
		c.OnUsageError = onUsageError("skiff " + parent + c.Name)
		if len(c.Subcommands) > 0 && c.Action == nil {
			c.Action = unknownCommand(parent + c.Name + " ")
		}
		setUsageErrors(c.Subcommands, parent+c.Name+" ")
	}
}

func onUsageError(name string) cli.OnUsageErrorFunc {
	return func(_ *cli.Context, err error, _ bool) error {
		return usageError("%v (see '%s --help')", err, name)
	}
}

// unknownCommand is the action of a command that only has subcommands:
// without one it shows the help, with an unknown one it exits 2.
func unknownCommand(path string) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() == 0 {
			return cli.ShowSubcommandHelp(c)
		}
		return usageError("unknown command %q (see 'skiff %s--help')", strings.TrimSpace(path+c.Args().First()), path)
	}
}

// usageError marks bad usage or bad input (exit code 2).
func usageError(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), exitBadInput)
}

// jsonNotices is set by --progress json: then the messages for people on
// standard error are JSON lines too ({"time", "message"}), so that
// standard error holds only JSON lines.
var jsonNotices bool

// notice writes a message for people to standard error.
func notice(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !jsonNotices {
		fmt.Fprint(os.Stderr, msg)
		return
	}
	b, _ := json.Marshal(map[string]string{"time": time.Now().UTC().Format(time.RFC3339Nano), "message": strings.TrimSpace(msg)})
	fmt.Fprintln(os.Stderr, string(b))
}
