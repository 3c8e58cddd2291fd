package kfp

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/engine/spec/spectest"
)

func TestLoad_BoundedExpansion(t *testing.T) {
	// Not parallel: it times the refusal.
	// The count made before compiling is the compiled plan's.
	plan, _, err := Load(spectest.KFPReuseBomb(3, 4), "", Options{})
	if err != nil {
		t.Fatalf("a small reuse compiles: %v", err)
	}
	var count func(p *spec.Plan) int
	count = func(p *spec.Plan) int {
		n := len(p.Tasks)
		for i := range p.Tasks {
			if b := p.Tasks[i].Body; b != nil {
				n += count(b)
			}
		}
		return n
	}
	doc, _, err := Parse(spectest.KFPReuseBomb(3, 4), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &compiler{doc: doc.Pipeline}
	if got, want := c.countTasks(doc.Pipeline.Root, map[*ComponentSpec]int64{}), int64(count(plan)); got != want || want != 4+16+64 {
		t.Fatalf("counted %d tasks, compiled %d", got, want)
	}
	cases := []struct {
		name string
		doc  []byte
		want string
	}{
		{"yaml alias bomb", spectest.AliasBomb("pipelineInfo: {name: bomb}\n", 4, 10, 64<<10), "YAML expanded size limit of 33554432 bytes"},
		{"component reuse", spectest.KFPReuseBomb(8, 10), fmt.Sprintf("compiled task limit of %d tasks", MaxTasks)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			done := make(chan error, 1)
			go func() { _, _, err := Load(tc.doc, "", Options{}); done <- err }()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("loading a %d-byte file took more than 5s", len(tc.doc))
			}
			var ve *spec.ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, spec.ErrTooLarge) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a *ValidationError unwrapping to ErrTooLarge naming %q", err, tc.want)
			}
			if el := time.Since(start); el > time.Second {
				t.Errorf("refusing took %s", el)
			}
		})
	}
}
