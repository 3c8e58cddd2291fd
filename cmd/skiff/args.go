package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// reorderArgs lets flags follow positional arguments, as kubectl users
// expect (`skiff run FILE -p k=v`), which urfave/cli does not parse by
// itself: after the command path, flags move before the positionals, and
// global flags (such as --data-dir) given after the command move before it.
// Everything after "--" stays positional.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	var global, path, local, pos []string
	i := 1
	for i < len(args) && isFlag(args[i]) {
		i = takeFlag(args, i, app.Flags, &global)
	}
	flags, cmds := []cli.Flag(nil), app.Commands
	for i < len(args) {
		c := findCommand(cmds, args[i])
		if c == nil {
			break
		}
		path = append(path, args[i])
		flags, cmds = c.Flags, c.Subcommands
		i++
		for i < len(args) && isFlag(args[i]) && len(cmds) > 0 {
			if findFlag(flags, args[i]) == nil && findFlag(app.Flags, args[i]) != nil {
				i = takeFlag(args, i, app.Flags, &global)
				continue
			}
			i = takeFlag(args, i, flags, &local)
		}
	}
	for i < len(args) {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i:]...)
			i = len(args)
		case isFlag(a) && findFlag(flags, a) == nil && findFlag(app.Flags, a) != nil:
			i = takeFlag(args, i, app.Flags, &global)
		case isFlag(a):
			i = takeFlag(args, i, flags, &local)
		default:
			pos = append(pos, a)
			i++
		}
	}
	out := append([]string{args[0]}, global...)
	out = append(out, path...)
	out = append(out, local...)
	return append(out, pos...)
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

// takeFlag appends the flag at args[i] (and its value, when it takes one
// and is not written name=value) to dst and returns the next index.
func takeFlag(args []string, i int, flags []cli.Flag, dst *[]string) int {
	a := args[i]
	*dst = append(*dst, a)
	f := findFlag(flags, a)
	if f == nil || strings.Contains(a, "=") {
		return i + 1
	}
	if _, isBool := f.(*cli.BoolFlag); isBool {
		return i + 1
	}
	if i+1 < len(args) {
		*dst = append(*dst, args[i+1])
		return i + 2
	}
	return i + 1
}

func findFlag(flags []cli.Flag, a string) cli.Flag {
	name := strings.TrimLeft(a, "-")
	name, _, _ = strings.Cut(name, "=")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
