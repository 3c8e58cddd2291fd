package main

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestBundleRefs_NamesWhatThePipelineReads: the paths after
// {{pipeline.dir}} up to a quote, a space or a shell operator; a path that
// goes on with a placeholder stands for its directory; a bare reference
// stands for the whole directory; a path leading out is an error.
func TestBundleRefs_NamesWhatThePipelineReads(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, text string
		want       []string
		bad        bool
	}{
		{"files", `command: [python3, "{{pipeline.dir}}/load.py"]
args: [--src, '{{pipeline.dir}}/data/iris.csv']`, []string{"data/iris.csv", "load.py"}, false},
		{"shell", `command: [sh, -c, "cat {{pipeline.dir}}/a.txt && cp {{pipeline.dir}}/b.txt /tmp"]`, []string{"a.txt", "b.txt"}, false},
		{"placeholder inside", `args: ["{{pipeline.dir}}/shards/{{inputs.n}}.csv"]`, []string{"shards"}, false},
		{"bare", `env: {DIR: "{{pipeline.dir}}"}, args: ["{{pipeline.dir}}/x"]`, []string{"."}, false},
		{"none", `command: [echo, hi]`, []string{}, false},
		{"out", `args: ["{{pipeline.dir}}/../secret"]`, nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := bundleRefs([]byte(c.text))
			if c.bad {
				if err == nil {
					t.Fatalf("refs %v, want an error", got)
				}
				return
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Fatalf("refs %v %v, want %v", got, err, c.want)
			}
		})
	}
}

// FuzzBundleRefs: whatever a pipeline's text holds, bundleRefs never
// panics and names only the directory itself or paths inside it.
func FuzzBundleRefs(f *testing.F) {
	f.Add(`["{{pipeline.dir}}/a/b.py", "{{pipeline.dir}}/../x", "{{pipeline.dir}}"]`)
	f.Add(`{{pipeline.dir}}/{{inputs.x}}/y {{pipeline.dir}}//etc/passwd {{pipeline.dir}}/./a/../../b`)
	f.Fuzz(func(t *testing.T, text string) {
		refs, err := bundleRefs([]byte(text))
		if err != nil {
			return
		}
		for _, r := range refs {
			if r != "." && !filepath.IsLocal(filepath.FromSlash(r)) {
				t.Fatalf("ref %q leads out of the pipeline's directory", r)
			}
		}
	})
}
