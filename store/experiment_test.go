package store

import (
	"context"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
	bolt "go.etcd.io/bbolt"
)

func TestExperiment_UniqueNamePerNamespace(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	f.mustAccept(t, CreateExperiment{Experiment: Experiment{ID: "e1", Namespace: "a", Name: "Default", CreatedAt: t0}})
	f.mustAccept(t, CreateExperiment{Experiment: Experiment{ID: "e2", Namespace: "b", Name: "Default", CreatedAt: t0}})
	if r := f.apply(t, CreateExperiment{Experiment: Experiment{ID: "e3", Namespace: "a", Name: "Default"}}); len(r.rejected) != 1 {
		t.Fatalf("duplicate name accepted: %+v", r.rejected)
	}
	f.mustAccept(t, SetExperimentArchived{ID: "e1", Archived: true})
	var e Experiment
	_ = f.view(func(tx *bolt.Tx) (err error) { e, err = getExperimentTx(tx, "e1"); return })
	if !e.Archived {
		t.Fatal("not archived")
	}
	f.mustAccept(t, DeleteExperiment{ID: "e1"})
	f.mustAccept(t, CreateExperiment{Experiment: Experiment{ID: "e4", Namespace: "a", Name: "Default"}})
}

func TestRunMeta_CreateRunTakesNamespace(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	f.mustAccept(t, CreateExperiment{Experiment: Experiment{ID: "e1", Namespace: "a", Name: "x"}})
	f.mustAccept(t, ReserveRunMeta{Meta: RunMeta{RequestID: "a/r1", Namespace: "a", ExperimentID: "e1"}})
	if r := f.apply(t, ReserveRunMeta{Meta: RunMeta{RequestID: "a/r1", Namespace: "b"}}); len(r.rejected) != 1 {
		t.Fatal("second reservation accepted")
	}
	c := newRun("run1", 2)
	c.Run.RequestID = "a/r1"
	f.mustAccept(t, c)
	r := f.run(t, "run1")
	if r.Namespace != "a" || r.ExperimentID != "e1" {
		t.Fatalf("run %+v", r)
	}
	if rj := f.apply(t, DeleteExperiment{ID: "e1"}); len(rj.rejected) != 1 {
		t.Fatal("experiment with a running run deleted")
	}
	if rj := f.apply(t, DeleteRun{RunID: "run1"}); len(rj.rejected) != 1 {
		t.Fatal("running run deleted")
	}
	f.mustAccept(t, SetRunArchived{RunID: "run1", Archived: true})
	f.mustAccept(t, SetRunState{RunID: "run1", From: spec.RunRunning, To: spec.RunSucceeded, Time: t0})
	if r := f.run(t, "run1"); !r.Archived || r.Namespace != "a" {
		t.Fatalf("run %+v", r)
	}
	f.mustAccept(t, DeleteRun{RunID: "run1"})
	for name, b := range dumpDB(t, f.db) {
		if name == "meta" || name == "experiments" || name == "experiments_by_name" {
			continue
		}
		if len(b) != 0 {
			t.Errorf("bucket %s still holds %v", name, b)
		}
	}
}

func TestToken_CreateDeleteAndPolicy(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	f.mustAccept(t, CreateToken{Token: Token{ID: "t1", Namespace: "a", Role: "viewer", Hash: "h"}})
	for _, bad := range []Token{{ID: "t1", Namespace: "a", Role: "viewer", Hash: "h"}, {ID: "t2", Namespace: "a", Role: "root", Hash: "h"}, {ID: "t3", Role: "viewer", Hash: "h"}} {
		if r := f.apply(t, CreateToken{Token: bad}); len(r.rejected) != 1 {
			t.Errorf("accepted %+v", bad)
		}
	}
	f.mustAccept(t, DeleteToken{ID: "t1"})
	if r := f.apply(t, DeleteToken{ID: "t1"}); len(r.rejected) != 1 {
		t.Error("deleted twice")
	}
	f.mustAccept(t, SetNamespacePolicy{Policy: NamespacePolicy{Namespace: "a", AllowedExecutors: []string{"local"}}})
}

func TestNamespacePolicy_KubeNamespace(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, t.TempDir())
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	for _, bad := range []string{"Team-A", "-a", "a_b", strings.Repeat("a", 64)} {
		res, err := s.Apply(ctx, SetNamespacePolicy{Policy: NamespacePolicy{Namespace: "a", KubeNamespace: bad}})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Reason, "kube_namespace") {
			t.Errorf("kube_namespace %q: rejections %+v, want one naming kube_namespace", bad, res.Rejected)
		}
	}
	if pols, err := s.NamespacePolicies(); err != nil || len(pols) != 0 {
		t.Fatalf("after rejected policies: %+v, %v; want none", pols, err)
	}
	for _, p := range []NamespacePolicy{{Namespace: "b", KubeNamespace: "team-b"}, {Namespace: "a", KubeNamespace: "team-a", AllowedExecutors: []string{"local"}}} {
		if res, err := s.Apply(ctx, SetNamespacePolicy{Policy: p}); err != nil || len(res.Rejected) > 0 {
			t.Fatalf("%+v: %v %+v", p, err, res.Rejected)
		}
	}
	pols, err := s.NamespacePolicies()
	if err != nil {
		t.Fatal(err)
	}
	if len(pols) != 2 || pols[0].Namespace != "a" || pols[0].KubeNamespace != "team-a" || pols[1].KubeNamespace != "team-b" {
		t.Errorf("policies %+v", pols)
	}
	if p, _ := s.GetNamespacePolicy("b"); p.KubeNamespace != "team-b" {
		t.Errorf("policy of b: %+v", p)
	}
}

// TestToken_WorkerTokenIsBoundToANode: a worker token must name the node
// it acts as, and no other role may name one.
func TestToken_WorkerTokenIsBoundToANode(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	f.mustAccept(t, CreateToken{Token: Token{ID: "w1", Namespace: "*", Role: "worker", NodeID: "gpu-1", Hash: "h"}})
	for _, bad := range []Token{
		{ID: "w2", Namespace: "*", Role: "worker", Hash: "h"},
		{ID: "w3", Namespace: "a", Role: "editor", NodeID: "gpu-1", Hash: "h"},
		{ID: "w4", Namespace: "*", Role: "worker", NodeID: "bad\x00id", Hash: "h"},
	} {
		if r := f.apply(t, CreateToken{Token: bad}); len(r.rejected) != 1 {
			t.Errorf("accepted %+v", bad)
		}
	}
}
