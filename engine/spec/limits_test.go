package spec

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec/spectest"
)

// parseWithin runs parse and fails the test if it takes longer than d
// (the parse is left running: the test binary ends soon after).
func parseWithin(t testing.TB, d time.Duration, parse func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- parse() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("parsing took more than %s", d)
		return nil
	}
}

func TestParseSkiff_AliasBombRefusedFast(t *testing.T) {
	// Not parallel: it times the refusal.
	bomb := spectest.AliasBomb("name: bomb\n", 4, 10, 64<<10)
	if len(bomb) > 70_000 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	start := time.Now()
	err := parseWithin(t, 5*time.Second, func() error { _, err := ParseSkiff(bomb); return err })
	if el := time.Since(start); el > time.Second {
		t.Errorf("refusing took %s", el)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %T %v: want a *ValidationError unwrapping to ErrTooLarge and ErrInvalid", err, err)
	}
	if want := "YAML expanded size limit of 33554432 bytes"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name the limit (%q)", err, want)
	}
}

func TestYAMLDocuments_Limits(t *testing.T) {
	// Not parallel: it times the refusal.
	list := func(item string, n int) string {
		return "[" + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + "]"
	}
	manyAliases := "a: &a x\nb: " + list("*a", MaxYAMLAliases+1) + "\n"
	manyNodes := "a: &a " + list("1", 10_000) + "\nb: " + list("*a", 210) + "\n"
	cases := []struct {
		name, doc, want string
		fast            bool // refused in well under a second (the nodes case parses 20,000 nodes first)
	}{
		{"expanded size", string(spectest.AliasBomb("", 4, 10, 64<<10)), "YAML expanded size limit of 33554432 bytes", true},
		{"aliases", manyAliases, "YAML alias limit of 10000 aliases", true},
		{"nodes", manyNodes, "YAML node limit of 2097152 nodes", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := YAMLDocuments([]byte(tc.doc))
			var le *LimitError
			if !errors.As(err, &le) || !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a *LimitError naming %q", err, tc.want)
			}
			if el := time.Since(start); tc.fast && el > time.Second {
				t.Errorf("refusing took %s", el)
			}
		})
	}
	// Within the limits, aliases still work.
	docs, err := YAMLDocuments([]byte("a: &a {x: 1}\nb: [*a, *a]\n"))
	if err != nil || len(docs) != 1 || len(docs[0].(map[string]any)["b"].([]any)) != 2 {
		t.Fatalf("aliases within the limits: %v %v", docs, err)
	}
}

// FuzzYAMLBudget: under small limits, whatever the input, the conversion
// never panics, fails only with a message, and what it returns stays
// within the byte budget (measured independently on the result).
func FuzzYAMLBudget(f *testing.F) {
	f.Add([]byte("a: &a [x, y]\nb: [*a, *a, *a]\n"))
	f.Add(spectest.AliasBomb("name: p\n", 3, 4, 16))
	f.Add([]byte("a: &a {k: &b [1, 2]}\nc: *b\nd: [*a, *b]\n---\ne: *a\n"))
	f.Add([]byte("{\"x\": [1, 2, {\"y\": \"z\"}]}"))
	lim := yamlLimits{nodes: 200, bytes: 1 << 10, aliases: 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := yamlDocuments(data, lim)
		if err != nil {
			var le *LimitError
			if errors.As(err, &le) && !strings.Contains(err.Error(), " limit of ") {
				t.Fatalf("limit error does not name the limit: %v", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		var size, nodes int64
		for _, d := range docs {
			measure(d, &size, &nodes)
		}
		if size > lim.bytes || nodes > lim.nodes {
			t.Fatalf("result has %d bytes in %d nodes, over the limits %+v", size, nodes, lim)
		}
	})
}

// measure adds v's string bytes (keys included) and nodes, as the budget
// counts them (at least: numbers and booleans count as 0 bytes here).
func measure(v any, size, nodes *int64) {
	*nodes++
	*size++
	switch x := v.(type) {
	case string:
		*size += int64(len(x))
	case []any:
		for _, e := range x {
			measure(e, size, nodes)
		}
	case map[string]any:
		for k, e := range x {
			*size += int64(len(k)) + 1
			measure(e, size, nodes)
		}
	}
}
