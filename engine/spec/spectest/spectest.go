// Package spectest holds test inputs for the packages that parse
// pipelines (engine/spec, engine/spec/kfp, api). It is imported by tests
// only.
package spectest

import (
	"fmt"
	"strings"
)

// AliasBomb returns a small YAML document that expands enormously: head
// (a first line or two making it look like one format or the other),
// then one string of leaf bytes behind levels levels of aliases, each
// naming the level below fanout times. AliasBomb("name: p\n", 4, 10,
// 64<<10) is 66 KB and expands to 10^4 copies of the 64 KiB string
// (655 MB).
func AliasBomb(head string, levels, fanout, leaf int) []byte {
	var b strings.Builder
	b.WriteString(head)
	fmt.Fprintf(&b, "l0: &l0 %q\n", strings.Repeat("x", leaf))
	for i := 1; i <= levels; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), fanout), ", ")
		fmt.Fprintf(&b, "l%d: &l%d [%s]\n", i, i, refs)
	}
	return []byte(b.String())
}

// KFPReuseBomb is a small compiled KFP pipeline whose sub-DAG components
// each use the one below fanout times, levels deep: it compiles to
// fanout^levels steps (KFPReuseBomb(8, 10) is 5.6 KB and would compile
// to 10^8 steps).
func KFPReuseBomb(levels, fanout int) []byte {
	var b strings.Builder
	b.WriteString("pipelineInfo: {name: reuse}\nschemaVersion: 2.1.0\ncomponents:\n  comp-0: {executorLabel: exec-0}\n")
	dag := func(indent string, below int) {
		fmt.Fprintf(&b, "%sdag:\n%s  tasks:\n", indent, indent)
		for j := range fanout {
			fmt.Fprintf(&b, "%s    t%d: {componentRef: {name: comp-%d}, taskInfo: {name: t%d}}\n", indent, j, below, j)
		}
	}
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&b, "  comp-%d:\n", i)
		dag("    ", i-1)
	}
	b.WriteString("root:\n")
	dag("  ", levels-1)
	b.WriteString("deploymentSpec:\n  executors:\n    exec-0: {container: {image: alpine, command: [echo, hi]}}\n")
	return []byte(b.String())
}
