package api

import (
	"errors"
	"strings"

	"github.com/skiffml/skiff/store"
)

// Ids may be abbreviated, as kubectl and git users expect: a run or an
// experiment named by a unique prefix of its id (an experiment also by its
// display name) is found among the objects the caller may see, so that a
// prefix never tells about another namespace's objects.

// visibleRun returns the run (by id or unique id prefix) if the caller may
// see it (404 otherwise, so other namespaces' run ids are not disclosed).
func (s *Server) visibleRun(id string, p *principal) (store.Run, error) {
	run, err := s.cfg.Store.GetRun(id)
	if err == nil && p.sees(store.RunNamespace(run)) {
		return run, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Run{}, err
	}
	if id == "" {
		return store.Run{}, notFound("run", id)
	}
	runs, err := s.cfg.Store.ListRunsBy(store.RunFilter{Namespace: p.visibleNamespace()})
	if err != nil {
		return store.Run{}, err
	}
	var found []store.Run
	for _, r := range runs {
		if strings.HasPrefix(r.ID, id) {
			found = append(found, r)
		}
	}
	switch len(found) {
	case 0:
		return store.Run{}, notFound("run", id)
	case 1:
		return s.cfg.Store.GetRun(found[0].ID)
	}
	return store.Run{}, badRequest("run %q: the prefix matches %d runs; give more of the id", id, len(found))
}

// visibleExperiment returns the experiment (by id, unique id prefix or
// display name) if the caller may see it (404 otherwise).
func (s *Server) visibleExperiment(id string, p *principal) (store.Experiment, error) {
	e, err := s.cfg.Store.GetExperiment(id)
	if err == nil && p.sees(e.Namespace) {
		return e, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.Experiment{}, err
	}
	if id == "" {
		return store.Experiment{}, notFound("experiment", id)
	}
	all, err := s.cfg.Store.ListExperiments(p.visibleNamespace())
	if err != nil {
		return store.Experiment{}, err
	}
	var byPrefix, byName []store.Experiment
	for _, x := range all {
		if strings.HasPrefix(x.ID, id) {
			byPrefix = append(byPrefix, x)
		}
		if x.Name == id {
			byName = append(byName, x)
		}
	}
	for _, found := range [][]store.Experiment{byPrefix, byName} {
		switch len(found) {
		case 0:
			continue
		case 1:
			return found[0], nil
		}
		return store.Experiment{}, badRequest("experiment %q: matches %d experiments; give more of the id", id, len(found))
	}
	return store.Experiment{}, notFound("experiment", id)
}

// visibleNamespace is the namespace filter of the caller's view: "" (all)
// for a caller of every namespace.
func (p *principal) visibleNamespace() string {
	if p.namespace == AllNamespaces {
		return ""
	}
	return p.namespace
}
