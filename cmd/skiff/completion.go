package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// commit is the VCS commit the binary was built from, set by the
// Makefile's build (-ldflags "-X main.commit=...") when Go's own VCS
// stamping is off.
var commit string

// version is what skiff --version prints: the module version and the VCS
// commit the binary was built from, when the build recorded them.
func version() string {
	v := "dev"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
		v = mv
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if rev == "" {
		rev = commit
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v += " (commit " + rev + dirty + ")"
	}
	return v + " " + bi.GoVersion
}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: `Examples:
  source <(skiff completion bash)                 # in ~/.bashrc
  skiff completion zsh > "${fpath[1]}/_skiff"     # then restart zsh
  skiff completion fish > ~/.config/fish/completions/skiff.fish`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("completion: expected one shell: bash, zsh or fish")
			}
			tree := commandTree(c.App.Commands, "", nil)
			tree[""] = append(tree[""], flagNames(c.App.Flags)...)
			switch c.Args().First() {
			case "bash":
				return writeBash(os.Stdout, tree)
			case "zsh":
				fmt.Fprintln(os.Stdout, "#compdef skiff\nautoload -U +X bashcompinit && bashcompinit")
				return writeBash(os.Stdout, tree)
			case "fish":
				return writeFish(os.Stdout, c.App.Commands, c.App.Flags)
			}
			return usageError("completion: %q is not one of bash, zsh, fish", c.Args().First())
		},
	}
}

// commandTree maps each command path ("", "runs", "runs list") to the
// words that may follow it: subcommands and flags.
func commandTree(cmds []*cli.Command, path string, tree map[string][]string) map[string][]string {
	if tree == nil {
		tree = map[string][]string{}
	}
	for _, c := range cmds {
		if c.Hidden || c.Name == "help" {
			continue
		}
		tree[path] = append(tree[path], c.Name)
		p := strings.TrimSpace(path + " " + c.Name)
		tree[p] = append(tree[p], flagNames(c.Flags)...)
		commandTree(c.Subcommands, p, tree)
	}
	return tree
}

func flagNames(flags []cli.Flag) []string {
	var out []string
	for _, f := range flags {
		for _, n := range f.Names() {
			if len(n) == 1 {
				out = append(out, "-"+n)
			} else {
				out = append(out, "--"+n)
			}
		}
	}
	return out
}

func writeBash(w io.Writer, tree map[string][]string) error {
	paths := make([]string, 0, len(tree))
	for p := range tree {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	b.WriteString(`_skiff() {
  local cur path w i
  cur="${COMP_WORDS[COMP_CWORD]}"
  path=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    case " $(_skiff_words "$path") " in *" $w "*) path="${path:+$path }$w" ;; esac
  done
  COMPREPLY=($(compgen -W "$(_skiff_words "$path")" -- "$cur"))
  if [ ${#COMPREPLY[@]} -eq 0 ]; then COMPREPLY=($(compgen -f -- "$cur")); fi
}
_skiff_words() {
  case "$1" in
`)
	for _, p := range paths {
		fmt.Fprintf(&b, "    %q) echo %q ;;\n", p, strings.Join(tree[p], " "))
	}
	b.WriteString("  esac\n}\ncomplete -F _skiff skiff\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeFish(w io.Writer, cmds []*cli.Command, global []cli.Flag) error {
	var b strings.Builder
	b.WriteString("complete -c skiff -f\n")
	for _, f := range global {
		fishFlag(&b, "", f)
	}
	var walk func(cmds []*cli.Command, parents []string)
	walk = func(cmds []*cli.Command, parents []string) {
		cond := "__fish_use_subcommand"
		if len(parents) > 0 {
			cond = "__fish_seen_subcommand_from " + parents[len(parents)-1]
		}
		for _, c := range cmds {
			if c.Hidden || c.Name == "help" {
				continue
			}
			fmt.Fprintf(&b, "complete -c skiff -n %q -a %s -d %q\n", cond, c.Name, c.Usage)
			for _, f := range c.Flags {
				fishFlag(&b, c.Name, f)
			}
			walk(c.Subcommands, append(parents, c.Name))
		}
	}
	walk(cmds, nil)
	_, err := io.WriteString(w, b.String())
	return err
}

func fishFlag(b *strings.Builder, cmd string, f cli.Flag) {
	fmt.Fprint(b, "complete -c skiff")
	if cmd != "" {
		fmt.Fprintf(b, " -n %q", "__fish_seen_subcommand_from "+cmd)
	}
	for _, n := range f.Names() {
		if len(n) == 1 {
			fmt.Fprintf(b, " -s %s", n)
		} else {
			fmt.Fprintf(b, " -l %s", n)
		}
	}
	if df, ok := f.(cli.DocGenerationFlag); ok && df.TakesValue() {
		fmt.Fprint(b, " -r")
	}
	b.WriteString("\n")
}
