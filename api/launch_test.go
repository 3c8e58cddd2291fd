package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/launch"
	"github.com/skiffml/skiff/store"
)

// launchSetup starts a slow run in namespace ns and waits until its task
// runs; it returns the run id and claims for that attempt.
func launchSetup(t *testing.T, h *harness, ns string) (string, launch.Claims) {
	t.Helper()
	tok := h.token(ns, api.RoleEditor)
	id := h.must(200, "POST", "/apis/v2beta1/runs", tok, runBody(slowPipeline, nil)).m(t)["run_id"].(string)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ts, err := h.st.Tasks(id)
		if err == nil && len(ts) == 1 && ts[0].State == spec.TaskRunning && len(ts[0].Attempts) == 1 {
			return id, launch.Claims{Execution: ts[0].Attempts[0].ExecutionID, Run: id, TaskIndex: 0, Attempt: 1, Expires: time.Now().Add(time.Hour)}
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: task not running: %+v %v", id, ts, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func putBlob(t *testing.T, h *harness, data string) string {
	t.Helper()
	ref, err := h.blobs.Put(context.Background(), strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return ref.Digest
}

func mint(t *testing.T, k *launch.Keys, c launch.Claims) string {
	t.Helper()
	tok, err := k.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestLaunch_TokenScope(t *testing.T) {
	t.Parallel()
	keys := launch.RandomKeys()
	h := newHarness(t, harnessOpts{sim: slowSim(), launchKeys: keys})
	mine := putBlob(t, h, "my input")
	theirs := putBlob(t, h, "another run's output, in another namespace")
	_, c := launchSetup(t, h, "team-a")
	_, other := launchSetup(t, h, "team-b")
	c.Inputs = []string{mine}
	other.Inputs = []string{theirs}
	tok := mint(t, keys, c)

	if got := h.must(200, "GET", launch.PathBlobs+"/"+mine, tok, nil).body; string(got) != "my input" {
		t.Fatalf("input blob: %q", got)
	}
	// Another run's blob (of another namespace), though it exists.
	h.must(403, "GET", launch.PathBlobs+"/"+theirs, tok, nil)
	// A token for the other run reads only its own.
	h.must(403, "GET", launch.PathBlobs+"/"+mine, mint(t, keys, other), nil)
	// Claims edited by the holder: the signature no longer matches.
	forged := c
	forged.Inputs = []string{mine, theirs}
	forgedTok := mint(t, launch.RandomKeys(), forged)
	h.must(401, "GET", launch.PathBlobs+"/"+theirs, forgedTok, nil)
	// Any other route: a launcher token is no user token.
	for _, p := range []string{"/apis/v2beta1/runs", "/apis/skiff/v1/artifacts/" + mine, "/apis/skiff/v1/whoami"} {
		h.must(401, "GET", p, tok, nil)
	}
	// A user token (even an admin's) is no launcher token.
	h.must(401, "GET", launch.PathBlobs+"/"+mine, h.admin, nil)
	// Past its expiry.
	old := c
	old.Expires = time.Now().Add(-time.Second)
	h.must(401, "GET", launch.PathBlobs+"/"+mine, mint(t, keys, old), nil)
	// Another attempt of the same task (a stale or future one).
	next := c
	next.Attempt = 2
	h.must(401, "GET", launch.PathBlobs+"/"+mine, mint(t, keys, next), nil)
}

func TestLaunch_ExpiresWithTheExecution(t *testing.T) {
	t.Parallel()
	keys := launch.RandomKeys()
	h := newHarness(t, harnessOpts{sim: slowSim(), launchKeys: keys})
	mine := putBlob(t, h, "input")
	id, c := launchSetup(t, h, "team-a")
	c.Inputs = []string{mine}
	tok := mint(t, keys, c)
	h.must(200, "GET", launch.PathBlobs+"/"+mine, tok, nil)
	h.must(200, "POST", "/apis/v2beta1/runs/"+id+":terminate", h.admin, nil)
	h.waitRun(id, h.admin)
	h.must(401, "GET", launch.PathBlobs+"/"+mine, tok, nil)
	h.must(401, "POST", launch.PathBlobs, tok, "x", "Content-Type", "application/octet-stream")
}

func TestLaunch_UploadAndSignedReport(t *testing.T) {
	t.Parallel()
	keys := launch.RandomKeys()
	h := newHarness(t, harnessOpts{sim: slowSim(), launchKeys: keys})
	_, c := launchSetup(t, h, "team-a")
	tok := mint(t, keys, c)
	// Uploads are octet streams only.
	h.must(415, "POST", launch.PathBlobs, tok, "model bytes")
	var ref spec.ArtifactRef
	h.must(200, "POST", launch.PathBlobs, tok, "model bytes", "Content-Type", "application/octet-stream").json(t, &ref)
	if !h.blobs.Has(ref.Digest) || ref.Size != int64(len("model bytes")) {
		t.Fatalf("uploaded ref %+v not stored", ref)
	}
	stranger := putBlob(t, h, "bytes this execution never uploaded")
	bad := launch.Report{Execution: c.Execution, Outputs: map[string]spec.Value{"m": {Artifact: &spec.ArtifactRef{Digest: stranger}}}}
	r := h.must(400, "POST", launch.PathReport, tok, bad)
	if !strings.Contains(string(r.body), "not uploaded") {
		t.Fatalf("report naming a foreign blob: %s", r.body)
	}
	h.must(400, "POST", launch.PathReport, tok, launch.Report{Execution: "someone-else"})
	good := launch.Report{Execution: c.Execution, Outputs: map[string]spec.Value{
		"m": {Artifact: &ref}, "n": {Param: []byte("3")}}}
	var rc launch.ReportReceipt
	h.must(200, "POST", launch.PathReport, tok, good).json(t, &rc)
	if !keys.CheckReport(c.Execution, rc.Digest, rc.Signature) {
		t.Fatalf("receipt %+v: signature does not check", rc)
	}
	if keys.CheckReport("other-exec", rc.Digest, rc.Signature) {
		t.Fatal("a receipt checks for another execution")
	}
	rd, err := h.blobs.Open(context.Background(), rc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var buf bytes.Buffer
	buf.ReadFrom(rd)
	if !strings.Contains(buf.String(), ref.Digest) {
		t.Fatalf("stored report %s lacks the output", buf.String())
	}
	got, ok := launch.ParseTermination(rc.Termination())
	if !ok || got != rc {
		t.Fatalf("termination message round trip: %+v %v", got, ok)
	}
}

func TestLaunch_NoKeysRefusesEverything(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{sim: slowSim()})
	_, c := launchSetup(t, h, "team-a")
	h.must(501, "GET", launch.PathBlobs+"/"+putBlob(t, h, "x"), mint(t, launch.RandomKeys(), c), nil)
}

var _ = store.DefaultNamespace

// TestLaunch_RunAgainstTheAPI runs launch.Run in this process against the
// API: the input comes through the token, the outputs and the log go up,
// and the signed report carries them.
func TestLaunch_RunAgainstTheAPI(t *testing.T) {
	keys := launch.RandomKeys()
	h := newHarness(t, harnessOpts{sim: slowSim(), launchKeys: keys})
	in := putBlob(t, h, "hello\n")
	_, c := launchSetup(t, h, "team-a")
	c.Inputs = []string{in}
	root := t.TempDir()
	s := &launch.Spec{Execution: c.Execution, Root: root,
		Command: []string{"/bin/sh", "-c", `cd "$0" && tr a-z A-Z < inputs/data > outputs/model && echo 0.75 > outputs/acc && echo ran; echo "token:${SKIFF_LAUNCH_TOKEN}"`, root},
		Inputs:  []executors.ArtifactInput{{Name: "data", Ref: spec.ArtifactRef{Digest: in}}},
		Outputs: []executors.OutputSpec{{Name: "model", Type: spec.TypeModel}, {Name: "acc", Type: spec.TypeFloat}},
	}
	term := filepath.Join(t.TempDir(), "termination")
	t.Setenv(launch.EnvToken, "must-not-leak") // the step must not see it
	var out bytes.Buffer
	code, err := launch.Run(context.Background(), launch.Config{
		Spec: s, Client: &launch.Client{Base: h.http.URL, Token: mint(t, keys, c)},
		CacheDir: t.TempDir(), TerminationPath: term, Stdout: &out,
	})
	if err != nil || code != 0 {
		t.Fatalf("launch: code %d, err %v; output %s", code, err, out.String())
	}
	if out.String() != "ran\ntoken:\n" {
		t.Fatalf("step output %q (the step must not see SKIFF_LAUNCH_*)", out.String())
	}
	msg, err := os.ReadFile(term)
	if err != nil {
		t.Fatal(err)
	}
	rc, ok := launch.ParseTermination(string(msg))
	if !ok || !keys.CheckReport(c.Execution, rc.Digest, rc.Signature) {
		t.Fatalf("termination message %q", msg)
	}
	var rep launch.Report
	rd, err := h.blobs.Open(context.Background(), rc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if err := json.NewDecoder(rd).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	if string(rep.Outputs["acc"].Param) != "0.75" || rep.Outputs["model"].Artifact == nil || rep.Logs == nil {
		t.Fatalf("report %+v", rep)
	}
	m, err := h.blobs.Open(context.Background(), rep.Outputs["model"].Artifact.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if b, _ := io.ReadAll(m); string(b) != "HELLO\n" {
		t.Fatalf("model %q", b)
	}
}

// TestLaunch_RunReportsAMissingOutput: a step that exits 0 without writing
// an output fails, and the report says which.
func TestLaunch_RunReportsAMissingOutput(t *testing.T) {
	t.Parallel()
	keys := launch.RandomKeys()
	h := newHarness(t, harnessOpts{sim: slowSim(), launchKeys: keys})
	_, c := launchSetup(t, h, "team-a")
	s := &launch.Spec{Execution: c.Execution, Root: t.TempDir(), Command: []string{"/bin/true"},
		Outputs: []executors.OutputSpec{{Name: "model", Type: spec.TypeModel}}}
	var out bytes.Buffer
	code, err := launch.Run(context.Background(), launch.Config{
		Spec: s, Client: &launch.Client{Base: h.http.URL, Token: mint(t, keys, c)}, CacheDir: t.TempDir(), Stdout: &out,
	})
	if code != 1 || err == nil || !strings.Contains(err.Error(), `output "model": missing`) {
		t.Fatalf("code %d, err %v", code, err)
	}
}
