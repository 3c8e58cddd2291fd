package kfp

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

// corpusDir is the KFP conformance corpus, relative to this package.
const corpusDir = "../../../../shared/kfp-corpus"

// corpusEntry is one row of the corpus INDEX.tsv.
type corpusEntry struct {
	file          string
	features      map[string]bool
	containerOnly bool
}

func readCorpus(t testing.TB) []corpusEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(corpusDir, "INDEX.tsv"))
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("no KFP corpus at %s", corpusDir)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []corpusEntry
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		cols := strings.Split(sc.Text(), "\t")
		if first || len(cols) < 5 {
			continue
		}
		e := corpusEntry{file: cols[0], features: map[string]bool{}, containerOnly: strings.HasPrefix(cols[4], "yes")}
		for _, ft := range strings.Split(cols[3], ",") {
			e.features[ft] = true
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatal("INDEX.tsv lists no files")
	}
	return out
}

func loadCorpusFile(t testing.TB, name string, opts Options) (*spec.Plan, []Warning, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(corpusDir, name))
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("no KFP corpus file %s", filepath.Join(corpusDir, name))
	}
	if err != nil {
		t.Fatal(err)
	}
	return Load(data, "", opts)
}

// TestCorpus_Conformance compiles every pipeline of the corpus. Strictly,
// every one but the gcpc__* (Google Cloud) ones compiles, and a gcpc__ one
// either compiles or is rejected with errors that each name an unsupported
// feature; leniently, every one but the gcpc__* ones compiles; the
// invalid__* ones are rejected either way. The compiled plans use the
// control flow INDEX.tsv says the IR uses. It prints the counts, why files
// were rejected and the strict warnings by feature.
func TestCorpus_Conformance(t *testing.T) {
	entries := readCorpus(t)
	var compiled, rejected, lenient int
	reasons, warned := map[string]int{}, map[string]int{}
	for _, e := range entries {
		plan, warns, err := loadCorpusFile(t, e.file, Options{})
		invalid := strings.HasPrefix(e.file, "invalid__")
		gcpc := strings.HasPrefix(e.file, "gcpc__")
		switch {
		case invalid:
			if err == nil {
				t.Errorf("%s: compiled, want rejected", e.file)
			} else {
				rejected++
			}
			continue
		case err == nil:
			compiled++
			checkFeatures(t, e, plan)
			for _, w := range warns {
				for _, f := range warningFeatures(w) {
					warned[f]++
				}
			}
		case !gcpc:
			t.Errorf("%s: strict compile: %v", e.file, err)
		default:
			rejected++
			var ve *spec.ValidationError
			if !errors.As(err, &ve) {
				t.Errorf("%s: %v, want a *spec.ValidationError", e.file, err)
				continue
			}
			for _, fe := range ve.Errors {
				if !strings.Contains(fe.Msg, "unsupported") {
					t.Errorf("%s: rejected with %q, which names no unsupported feature", e.file, fe.Error())
				}
				reasons[feature(fe)]++
			}
		}
		plan, warns, err = loadCorpusFile(t, e.file, Options{Lenient: true})
		switch {
		case err == nil:
			lenient++
			checkFeatures(t, e, plan)
		case !gcpc:
			t.Errorf("%s: lenient compile: %v", e.file, err)
		}
		for _, w := range warns {
			if w.Msg == "" {
				t.Errorf("%s: empty warning at %s", e.file, w.Path)
			}
		}
	}
	t.Logf("KFP corpus: %d files (%d gcpc__, %d invalid__); strict: %d compiled, %d rejected; lenient: %d compiled",
		len(entries), countPrefix(entries, "gcpc__"), countPrefix(entries, "invalid__"), compiled, rejected, lenient)
	for _, k := range sortedKeys(reasons) {
		t.Logf("  rejected for %-70s x%d", k, reasons[k])
	}
	for _, k := range sortedKeys(warned) {
		t.Logf("  warned: %-76s x%d", k, warned[k])
	}
}

var (
	quotedRE = regexp.MustCompile(`"[^"]*"`)
	uriRE    = regexp.MustCompile(`\S+://\S*`)
)

// warningFeatures names what a warning is about: each Kubernetes setting
// of a "kept for a Kubernetes executor" warning, else its message up to
// the first ": " with quoted values and URIs left out.
func warningFeatures(w Warning) []string {
	if list, ok := strings.CutSuffix(w.Msg, ": "+kubeNotApplied+"them"); ok {
		var out []string
		for _, f := range strings.Split(strings.TrimPrefix(list, "Kubernetes "), ", ") {
			out = append(out, "Kubernetes "+f)
		}
		return out
	}
	if f, ok := strings.CutSuffix(w.Msg, ": "+kubeNotApplied+"it"); ok {
		return []string{f}
	}
	f, _, _ := strings.Cut(w.Msg, ": ")
	return []string{uriRE.ReplaceAllString(quotedRE.ReplaceAllString(f, `"…"`), "URI")}
}

// feature names the unsupported feature of an error: its message after
// "unsupported: ", with the per-executor part of the path dropped.
func feature(fe spec.FieldError) string {
	_, what, ok := strings.Cut(fe.Msg, "unsupported: ")
	if !ok {
		what = fe.Msg
	}
	if i := strings.Index(what, "{{"); i >= 0 {
		what = what[i:]
	}
	return what
}

func countPrefix(entries []corpusEntry, p string) int {
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.file, p) {
			n++
		}
	}
	return n
}

// checkFeatures checks that a compiled plan uses what the IR features of
// its file call for.
func checkFeatures(t *testing.T, e corpusEntry, plan *spec.Plan) {
	t.Helper()
	var has = map[string]bool{}
	var walk func(p *spec.Plan)
	walk = func(p *spec.Plan) {
		for _, o := range p.Outputs {
			if len(o.OneOf) > 0 {
				has["oneof"] = true
			}
		}
		for i := range p.Tasks {
			tk := &p.Tasks[i]
			if tk.Body != nil {
				has["nested_dag"] = true
				walk(tk.Body)
			}
			if tk.ParallelFor != nil {
				has["parallelfor"] = true
				if tk.ParallelFor.Parallelism > 0 {
					has["parallelism_limit"] = true
				}
				if tk.ParallelFor.Items.Type.Kind() == spec.KindArtifactList {
					has["parallelfor(artifactIterator)"] = true
				}
			}
			if tk.When != "" {
				has["condition"] = true
			}
			if tk.IgnoreUpstreamFailure {
				has["all_upstream_completed"] = true
			}
			if tk.Retry != nil {
				has["retry"] = true
			}
			if len(tk.Env) > 0 {
				has["env"] = true
			}
			if tk.Cache != nil && !tk.Cache.Enabled {
				has["caching_off"] = true
			}
			if strings.Contains(string(tk.KFP), `"importer"`) {
				has["importer"] = true
			}
			for _, in := range tk.Inputs {
				if in.UpstreamStatus {
					has["task_final_status"] = true
				}
				if in.Field != "" {
					has["param_expr_selector"] = true
				}
				if in.Type.Kind() == spec.KindArtifactList || in.Type == spec.TypeList && in.From != nil {
					has["collected"] = true
				}
			}
			for _, o := range tk.Outputs {
				if o.Type.Kind() == spec.KindArtifactList {
					has["artifact_list"] = true
				}
			}
			if tk.Resources.GPU > 0 || strings.Contains(string(tk.KFP), `"dynamicResources":true`) {
				has["accelerator"] = true
			}
		}
	}
	walk(plan)
	for _, ft := range []string{"nested_dag", "parallelfor", "parallelism_limit", "condition", "all_upstream_completed",
		"retry", "env", "importer", "task_final_status", "param_expr_selector", "oneof", "accelerator", "parallelfor(artifactIterator)"} {
		if e.features[ft] && !has[ft] {
			t.Errorf("%s: INDEX.tsv lists %s, the compiled plan has none", e.file, ft)
		}
	}
}
