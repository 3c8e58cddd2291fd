package api

import (
	"strings"
	"testing"
)

func TestParseSelector_MatchesAsKubectl(t *testing.T) {
	t.Parallel()
	labels := map[string]string{"team": "vision", "stage": "dev", "gpu": ""}
	cases := []struct {
		sel  string
		want bool
	}{
		{"", true},
		{"team=vision", true},
		{"team==vision", true},
		{"team=nlp", false},
		{"team!=nlp", true},
		{"team!=vision", false},
		{"owner!=bob", true}, // absent: != holds, as in kubectl
		{"gpu", true},
		{"owner", false},
		{"!owner", true},
		{"!team", false},
		{"team=vision, stage=dev", true},
		{"team=vision,stage=prod", false},
		{"gpu=", true},
	}
	for _, c := range cases {
		sel, err := ParseSelector(c.sel)
		if err != nil {
			t.Fatalf("%q: %v", c.sel, err)
		}
		if got := sel.Matches(labels); got != c.want {
			t.Errorf("%q matches %v = %v, want %v", c.sel, labels, got, c.want)
		}
	}
}

func TestParseSelector_BadInputNamesTheRequirement(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"team=vision,":                 "requirement 2",
		"=x":                           "empty key",
		"te am=x":                      `key "te am"`,
		"team=a b":                     `value "a b"`,
		"!team=x":                      `key "!team"`,
		"-team=x":                      "starting and ending",
		"team in (a,b)":                "requirement 1",
		strings.Repeat("k", 64) + "=v": "longer than 63",
	}
	for in, want := range cases {
		_, err := ParseSelector(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseSelector(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

func TestParseLabels_Checks(t *testing.T) {
	t.Parallel()
	got, err := ParseLabels([]string{"team=vision", "example.com/stage=dev", "empty="})
	if err != nil || len(got) != 3 || got["example.com/stage"] != "dev" || got["empty"] != "" {
		t.Fatalf("ParseLabels = %v, %v", got, err)
	}
	for _, bad := range [][]string{{"novalue"}, {"a=1", "a=2"}, {"a=b/c"}, {"/a=b"}} {
		if _, err := ParseLabels(bad); err == nil {
			t.Errorf("ParseLabels(%q) accepted", bad)
		}
	}
}

// FuzzParseSelector: the selector parser never panics; what it accepts
// prints back to a selector that parses to the same requirements.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"team=vision", "a!=b,c", "!x", "k==v, k2 = v2", "a=,b", "=", "!", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := ParseSelector(s)
		if err != nil {
			return
		}
		again, err := ParseSelector(sel.String())
		if err != nil {
			t.Fatalf("%q -> %q does not parse: %v", s, sel.String(), err)
		}
		if again.String() != sel.String() {
			t.Fatalf("%q -> %q -> %q", s, sel.String(), again.String())
		}
		for _, r := range sel {
			if checkLabelKey(r.Key) != nil || checkLabelValue(r.Value) != nil {
				t.Fatalf("%q accepted a bad requirement %+v", s, r)
			}
		}
	})
}
