package main

import (
	"reflect"
	"testing"
)

func TestReorderArgs_FlagsAfterPositionals(t *testing.T) {
	app := newApp()
	cases := []struct {
		name     string
		in, want []string
	}{
		{"flags after file", []string{"skiff", "run", "p.yaml", "-p", "k=1", "-o", "json"},
			[]string{"skiff", "run", "-p", "k=1", "-o", "json", "p.yaml"}},
		{"global flag after command", []string{"skiff", "run", "p.yaml", "--data-dir", "d"},
			[]string{"skiff", "--data-dir", "d", "run", "p.yaml"}},
		{"bool global flag", []string{"skiff", "runs", "list", "--debug", "-o", "json"},
			[]string{"skiff", "--debug", "runs", "list", "-o", "json"}},
		{"already ordered", []string{"skiff", "--data-dir", "d", "run", "-p", "a=b", "f"},
			[]string{"skiff", "--data-dir", "d", "run", "-p", "a=b", "f"}},
		{"double dash keeps the rest", []string{"skiff", "logs", "r", "--", "-t"},
			[]string{"skiff", "logs", "r", "--", "-t"}},
		{"global flag after a command with subcommands", []string{"skiff", "server", "--data-dir", "d", "--no-auth"},
			[]string{"skiff", "--data-dir", "d", "server", "--no-auth"}},
		{"global flags after a subcommand", []string{"skiff", "runs", "get", "abc", "--server", "http://x", "--token=t"},
			[]string{"skiff", "--server", "http://x", "--token=t", "runs", "get", "abc"}},
		{"name=value form", []string{"skiff", "run", "f", "--param=a=1"},
			[]string{"skiff", "run", "--param=a=1", "f"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := reorderArgs(app, tc.in); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("reorderArgs(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}
