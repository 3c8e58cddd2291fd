package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The KFP conformance run (make test-kfp) runs every pipeline of the KFP
// corpus that can run on this machine through `skiff run` with the local
// executor and compares the outcome with testdata/kfp_conformance.tsv.
// It is not part of make test (it takes minutes): it runs only when
// SKIFF_KFP_CONFORMANCE is set.
//
//	SKIFF_KFP_CONFORMANCE=1          run and compare
//	SKIFF_KFP_CONFORMANCE_RECORD=F   also write what each run gave to F (TSV)
//	SKIFF_KFP_CONFORMANCE_BIN=B      run the skiff binary B instead of this tree's
//	                                 (to measure an older commit with today's table)

// conformanceFile is the expectation file, one row per corpus file.
const conformanceFile = "testdata/kfp_conformance.tsv"

// An expectation is one row of the expectation file: the corpus file,
// what it must give (SUCCEEDED, FAILED, REJECTED or skip:REASON), a
// detail (SUCCEEDED: the run outputs to compare, as a JSON object, or
// empty; FAILED and REJECTED: text the error must hold; skip: why) and
// a free note.
type expectation struct {
	file, expect, detail, note string
	line                       int
}

// skipped reports the reason class when the pipeline cannot run here.
func (e expectation) skipped() (string, bool) {
	return strings.CutPrefix(e.expect, "skip:")
}

// skipReasons are the reasons a pipeline may not run here.
var skipReasons = map[string]string{
	"network":      "installs packages or downloads data from the network",
	"gpu":          "needs a GPU",
	"image-only":   "runs a command (or an entrypoint) only its image holds",
	"kubernetes":   "needs a Kubernetes backend step (CreatePVC/DeletePVC) or object",
	"google-cloud": "needs Google Cloud (gs:// URIs, Vertex AI)",
	"long":         "runs for minutes on purpose",
	"resources":    "asks more CPUs or memory than a test machine has",
}

// readExpectations parses the expectation file; every error names its line.
func readExpectations(path string) ([]expectation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var exps []expectation
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 2 || len(cols) > 4 {
			return nil, fmt.Errorf("%s:%d: want 2 to 4 tab-separated columns (file, expect, detail, note), got %d", path, n, len(cols))
		}
		cols = append(cols, "", "")
		e := expectation{file: cols[0], expect: cols[1], detail: cols[2], note: cols[3], line: n}
		if prev, dup := seen[e.file]; dup {
			return nil, fmt.Errorf("%s:%d: %s: already on line %d", path, n, e.file, prev)
		}
		seen[e.file] = n
		switch reason, skip := e.skipped(); {
		case skip:
			if _, ok := skipReasons[reason]; !ok {
				return nil, fmt.Errorf("%s:%d: %s: unknown reason %q", path, n, e.file, reason)
			}
		case e.expect == "SUCCEEDED":
			if e.detail != "" && !json.Valid([]byte(e.detail)) {
				return nil, fmt.Errorf("%s:%d: %s: outputs: not JSON", path, n, e.file)
			}
		case e.expect == "FAILED" || e.expect == "REJECTED":
			if e.detail == "" {
				return nil, fmt.Errorf("%s:%d: %s: %s needs the text its error holds", path, n, e.file, e.expect)
			}
		default:
			return nil, fmt.Errorf("%s:%d: %s: expect: want SUCCEEDED, FAILED, REJECTED or skip:REASON, got %q", path, n, e.file, e.expect)
		}
		exps = append(exps, e)
	}
	return exps, sc.Err()
}

// kfpPin is a pinned kfp in a lightweight component's pip install.
var kfpPin = regexp.MustCompile(`kfp==[0-9][0-9a-z.]*`)

// sdkPinned rewrites every kfp pin to the offline SDK's version (2.15.2),
// the only one the offline mirror holds: on a machine with a package
// index the step would install the pinned one, unchanged.
func sdkPinned(ir []byte) []byte {
	return kfpPin.ReplaceAll(ir, []byte("kfp==2.15.2"))
}

// requiredParams fills each required pipeline parameter (no default, not
// optional) with a value of its type, and each required pipeline artifact
// input with the local file artifact, as -p arguments.
func requiredParams(ir []byte, artifact string) ([]string, error) {
	var doc struct {
		Root struct {
			InputDefinitions struct {
				Artifacts map[string]struct {
					IsOptional bool `yaml:"isOptional"`
				} `yaml:"artifacts"`
				Parameters map[string]struct {
					ParameterType string `yaml:"parameterType"`
					Type          string `yaml:"type"`
					DefaultValue  any    `yaml:"defaultValue"`
					IsOptional    bool   `yaml:"isOptional"`
				} `yaml:"parameters"`
			} `yaml:"inputDefinitions"`
		} `yaml:"root"`
	}
	if err := yaml.NewDecoder(strings.NewReader(string(ir))).Decode(&doc); err != nil {
		return nil, err
	}
	var ps []string
	for name, p := range doc.Root.InputDefinitions.Parameters {
		if p.DefaultValue != nil || p.IsOptional {
			continue
		}
		v := map[string]string{
			"STRING": "skiff", "NUMBER_INTEGER": "1", "INT": "1", "NUMBER_DOUBLE": "0.5", "DOUBLE": "0.5",
			"BOOLEAN": "true", "LIST": "[]", "STRUCT": "{}",
		}[p.ParameterType+p.Type]
		ps = append(ps, name+"="+v)
	}
	for name, a := range doc.Root.InputDefinitions.Artifacts {
		if !a.IsOptional {
			ps = append(ps, name+"="+artifact)
		}
	}
	sort.Strings(ps)
	return ps, nil
}

// conformanceOutcome is what one corpus pipeline gave.
type conformanceOutcome struct {
	file, state, errText, outputs string
	log                           string // the first failed step's last lines
	took                          time.Duration
}

// runConformance runs one corpus file (pins rewritten, required
// parameters filled) and says what it gave.
func runConformance(t *testing.T, env []string, file string) conformanceOutcome {
	ir, err := os.ReadFile(filepath.Join(kfpCorpus, file))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := writeFile(t, dir, file, string(sdkPinned(ir)))
	args := []string{"run", p, "-o", "json", "--progress", "none"}
	params, err := requiredParams(ir, writeFile(t, dir, "artifact.txt", "skiff\n"))
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for _, prm := range params {
		args = append(args, "-p", prm)
	}
	start := time.Now()
	r := skiffWithEnv(t, env, filepath.Join(dir, "data"), args...)
	o := conformanceOutcome{file: file, took: time.Since(start)}
	if r.code == 2 {
		o.state, o.errText = "REJECTED", squash(r.stderr)
		return o
	}
	var s kfpRunSummary
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		o.state, o.errText = "NO-SUMMARY", squash(fmt.Sprintf("exit %d: %v: %s", r.code, err, r.stderr))
		return o
	}
	o.state = s.State
	for _, tk := range s.Tasks {
		if tk.Error == "" {
			continue
		}
		o.errText += tk.Name + ": " + squash(tk.Error) + "; "
		if o.log == "" && strings.HasPrefix(tk.Error, "exit code") {
			// The first failed step's last lines say why, for a message.
			l := skiffWithEnv(t, env, filepath.Join(dir, "data"), "logs", s.RunID, tk.Name)
			lines := strings.Split(strings.TrimSpace(l.stdout+l.stderr), "\n")
			o.log = strings.Join(lines[max(0, len(lines)-8):], "\n")
		}
	}
	if len(s.Outputs) > 0 {
		b, _ := json.Marshal(s.Outputs)
		o.outputs = string(b)
	}
	return o
}

// squash puts s on one line of at most 300 bytes.
func squash(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// check compares an outcome with its expectation.
func (e expectation) check(o conformanceOutcome) error {
	switch e.expect {
	case "SUCCEEDED":
		if o.state != "SUCCEEDED" {
			return fmt.Errorf("%s, want SUCCEEDED: %s", o.state, o.errText)
		}
		if e.detail == "" {
			return nil
		}
		var want, got map[string]json.RawMessage
		if err := json.Unmarshal([]byte(e.detail), &want); err != nil {
			return fmt.Errorf("line %d: outputs: %v", e.line, err)
		}
		if err := json.Unmarshal([]byte(o.outputs), &got); err != nil && o.outputs != "" {
			return err
		}
		for name, w := range want {
			if !jsonEqual(w, got[name]) {
				return fmt.Errorf("output %s = %s, want %s", name, got[name], w)
			}
		}
	case "FAILED", "REJECTED":
		if o.state != e.expect || !strings.Contains(o.errText, e.detail) {
			return fmt.Errorf("%s (%s), want %s with %q", o.state, o.errText, e.expect, e.detail)
		}
	}
	return nil
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(ax) == string(by)
}

// TestKFPConformance is make test-kfp: see the top of this file.
func TestKFPConformance(t *testing.T) {
	if os.Getenv("SKIFF_KFP_CONFORMANCE") == "" {
		t.Skip("set SKIFF_KFP_CONFORMANCE=1 (make test-kfp) to run the KFP corpus")
	}
	if _, err := os.Stat(filepath.Join(kfpCorpus, "INDEX.tsv")); err != nil {
		t.Skipf("no KFP corpus at %s", kfpCorpus)
	}
	env := kfpEnv(t)
	if bin := os.Getenv("SKIFF_KFP_CONFORMANCE_BIN"); bin != "" {
		skiffBin = bin
	}
	exps, err := readExpectations(conformanceFile)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(kfpCorpus, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	byFile := map[string]expectation{}
	for _, e := range exps {
		byFile[e.file] = e
	}
	for i, f := range files {
		files[i] = filepath.Base(f)
		if _, ok := byFile[files[i]]; !ok {
			t.Errorf("%s: corpus file %s has no row", conformanceFile, files[i])
		}
		delete(byFile, files[i])
	}
	for f := range byFile {
		t.Errorf("%s: %s is not in the corpus", conformanceFile, f)
	}

	var mu sync.Mutex
	var outcomes []conformanceOutcome
	var failed []string
	start := time.Now()
	t.Run("corpus", func(t *testing.T) {
		for _, e := range exps {
			t.Run(strings.TrimSuffix(e.file, ".yaml"), func(t *testing.T) {
				if reason, skip := e.skipped(); skip {
					t.Skipf("cannot run here (%s): %s", reason, e.detail)
				}
				t.Parallel()
				o := runConformance(t, env, e.file)
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
				if err := e.check(o); err != nil {
					mu.Lock()
					failed = append(failed, e.file)
					mu.Unlock()
					t.Errorf("%s (line %d): %v\n%s", e.file, e.line, err, o.log)
				}
			})
		}
	})
	t.Logf("\n%s", conformanceTable(exps, outcomes, failed, time.Since(start)))
	if rec := os.Getenv("SKIFF_KFP_CONFORMANCE_RECORD"); rec != "" {
		sort.Slice(outcomes, func(i, j int) bool { return outcomes[i].file < outcomes[j].file })
		var b strings.Builder
		for _, o := range outcomes {
			fmt.Fprintf(&b, "%s\t%s\t%.1fs\t%s\t%s\n", o.file, o.state, o.took.Seconds(), o.outputs, o.errText)
		}
		if err := os.WriteFile(rec, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// conformanceTable counts the corpus: run, succeeded, expected failures,
// unexpected outcomes, and the pipelines that cannot run here by reason.
func conformanceTable(exps []expectation, outs []conformanceOutcome, failed []string, took time.Duration) string {
	var succeeded, rejected int
	for _, o := range outs {
		switch o.state {
		case "SUCCEEDED":
			succeeded++
		case "REJECTED":
			rejected++
		}
	}
	expectedFail := 0
	skips := map[string]int{}
	for _, e := range exps {
		if reason, skip := e.skipped(); skip {
			skips[reason]++
		} else if e.expect != "SUCCEEDED" && !contains(failed, e.file) {
			expectedFail++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "KFP corpus: %d files in %s\n", len(exps), took.Round(time.Second))
	fmt.Fprintf(&b, "  run                 %d\n", len(outs))
	fmt.Fprintf(&b, "  succeeded           %d\n", succeeded)
	fmt.Fprintf(&b, "  rejected            %d\n", rejected)
	fmt.Fprintf(&b, "  expected failures   %d (failed or rejected as the table says)\n", expectedFail)
	fmt.Fprintf(&b, "  unexpected          %d %v\n", len(failed), failed)
	reasons := make([]string, 0, len(skips))
	for r := range skips {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(&b, "  cannot run: %-12s %d (%s)\n", r, skips[r], skipReasons[r])
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
