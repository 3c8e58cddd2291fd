package api

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/skiffml/skiff/store"
)

// newID returns a random UUID (version 4), as KFP's ids are.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

const defaultExperimentName = "Default"

func experimentFields(e store.Experiment) fieldFunc {
	return func(key string) (filterValue, bool) {
		switch key {
		case "experiment_id", "id":
			return strField(e.ID), true
		case "display_name", "name":
			return strField(e.Name), true
		case "description":
			return strField(e.Description), true
		case "namespace":
			return strField(e.Namespace), true
		case "storage_state":
			return strField(storageState(e.Archived)), true
		case "created_at":
			return timeField(e.CreatedAt), true
		}
		return filterValue{}, false
	}
}

func (s *Server) createExperiment(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in Experiment
	if err := decodeJSON(r.Body, &in); err != nil {
		return err
	}
	name := strings.TrimSpace(in.DisplayName)
	if name == "" {
		return badRequest("display_name: required")
	}
	if len(name) > 256 {
		return badRequest("display_name: longer than 256 characters")
	}
	ns, err := p.namespaceFor(in.Namespace)
	if err != nil {
		return err
	}
	e := store.Experiment{ID: newID(), Namespace: ns, Name: name, Description: in.Description, CreatedAt: s.now().UTC()}
	res, err := s.cfg.Store.Apply(r.Context(), store.CreateExperiment{Experiment: e})
	if err != nil {
		return err
	}
	if len(res.Rejected) > 0 {
		return apiErr(codeAlreadyExists, "experiment %q already exists in namespace %q", name, ns)
	}
	writeJSON(w, http.StatusOK, experimentOut(e))
	return nil
}

// ensureExperiment returns the experiment id a run goes in: the one named
// (which must be visible and not archived), else the namespace's Default
// experiment, created on first use.
func (s *Server) ensureExperiment(r *http.Request, p *principal, ns, id string) (string, error) {
	if id != "" {
		e, err := s.visibleExperiment(id, p)
		if err != nil {
			return "", err
		}
		if e.Namespace != ns {
			return "", apiErr(codePermissionDenied, "experiment %s is in namespace %q, not %q", id, e.Namespace, ns)
		}
		if e.Archived {
			return "", apiErr(codeFailedPrecondition, "experiment %s is archived: unarchive it first", id)
		}
		return e.ID, nil
	}
	if e, err := s.cfg.Store.ExperimentByName(ns, defaultExperimentName); err == nil {
		return e.ID, nil
	}
	e := store.Experiment{ID: newID(), Namespace: ns, Name: defaultExperimentName, CreatedAt: s.now().UTC()}
	if _, err := s.cfg.Store.Apply(r.Context(), store.CreateExperiment{Experiment: e}); err != nil {
		return "", err
	}
	got, err := s.cfg.Store.ExperimentByName(ns, defaultExperimentName) // another request may have won
	return got.ID, err
}

func (s *Server) getExperiment(w http.ResponseWriter, r *http.Request, p *principal) error {
	e, err := s.visibleExperiment(r.PathValue("id"), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, experimentOut(e))
	return nil
}

func (s *Server) listExperiments(w http.ResponseWriter, r *http.Request, p *principal) error {
	q := r.URL.Query()
	ns, err := p.listNamespace(q.Get("namespace"))
	if err != nil {
		return err
	}
	lq, err := parseListQuery(q, "experiments\x00"+ns, experimentFields(store.Experiment{}), "created_at")
	if err != nil {
		return err
	}
	all, err := s.cfg.Store.ListExperiments(ns)
	if err != nil {
		return err
	}
	items, total, next := page(lq, all, experimentFields)
	out := ListExperimentsResponse{TotalSize: int32(total), NextPageToken: next}
	for _, e := range items {
		out.Experiments = append(out.Experiments, experimentOut(e))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// splitAction splits "ID:verb".
func splitAction(v string) (id, verb string, err error) {
	id, verb, ok := strings.Cut(v, ":")
	if !ok || id == "" {
		return "", "", apiErr(codeNotFound, "no route for POST %s", v)
	}
	return id, verb, nil
}

func (s *Server) experimentAction(w http.ResponseWriter, r *http.Request, p *principal) error {
	id, verb, err := splitAction(r.PathValue("action"))
	if err != nil {
		return err
	}
	if verb != "archive" && verb != "unarchive" {
		return apiErr(codeNotFound, "unknown experiment action %q (archive, unarchive)", verb)
	}
	e, err := s.visibleExperiment(id, p)
	if err != nil {
		return err
	}
	if err := s.apply(r.Context(), store.SetExperimentArchived{ID: e.ID, Archived: verb == "archive"}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (s *Server) deleteExperiment(w http.ResponseWriter, r *http.Request, p *principal) error {
	e, err := s.visibleExperiment(r.PathValue("id"), p)
	if err != nil {
		return err
	}
	if err := s.apply(r.Context(), store.DeleteExperiment{ID: e.ID}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}
