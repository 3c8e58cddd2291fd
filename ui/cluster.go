package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/skiffml/skiff/api"
)

// clusterData is the cluster page: what 'skiff cluster status' shows (the
// API's GET /apis/skiff/v1/cluster, asked with the viewer's token), and
// the runs by state (the work the leader's engine has in hand).
type clusterData struct {
	// Single: the server runs without cluster membership (a workstation,
	// or a test server); the page says so.
	Single  bool
	Asked   string
	Leader  string
	Term    uint64
	Members []memberRow
	Runs    []runStateCount
	Error   string
}

type memberRow struct {
	ID, RaftAddr, APIURL, Role, Error string
	Voter, Stale, Leader, Asked       bool
	Commit, Applied                   uint64
	// Behind is how many entries its applied index trails the highest
	// commit index seen.
	Behind uint64
}

type runStateCount struct {
	State string
	N     int
}

func (s *Server) clusterPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	d, status := s.clusterStatus(r, v)
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return fmt.Errorf("cluster status: HTTP %d", status)
	}
	if counts, err := s.cfg.Store.CountRunsByState(); err == nil {
		for _, st := range []string{"RUNNING", "PENDING", "CANCELING", "SUCCEEDED", "FAILED", "CANCELED"} {
			d.Runs = append(d.Runs, runStateCount{State: st, N: counts[st]})
		}
	}
	if wantsJSON(r) {
		writeJSON(w, d)
		return nil
	}
	s.render(w, r, http.StatusOK, "cluster", v, d)
	return nil
}

// wantsJSON: the page's script asks for its data as JSON to refresh it.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// clusterStatus asks the API for the members, as the viewer.
func (s *Server) clusterStatus(r *http.Request, v *viewer) (clusterData, int) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "/apis/skiff/v1/cluster", nil)
	if err != nil {
		return clusterData{Error: err.Error()}, http.StatusInternalServerError
	}
	req.Host = r.Host
	if v.token != "" {
		req.Header.Set("Authorization", "Bearer "+v.token)
	}
	rec := &recorder{hdr: http.Header{}, status: http.StatusOK}
	s.cfg.API.ServeHTTP(rec, req)
	switch rec.status {
	case http.StatusOK:
	case http.StatusNotImplemented:
		return clusterData{Single: true}, rec.status
	default:
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &e)
		return clusterData{Error: fmt.Sprintf("the API answered %d: %s", rec.status, e.Message)}, rec.status
	}
	var ms api.ClusterMembers
	if err := json.Unmarshal(rec.body.Bytes(), &ms); err != nil {
		return clusterData{Error: err.Error()}, http.StatusBadGateway
	}
	d := clusterData{Asked: ms.NodeID, Leader: ms.LeaderID}
	var commit uint64
	for _, m := range ms.Members {
		d.Term = max(d.Term, m.Status.Term)
		commit = max(commit, m.Status.CommitIndex)
	}
	for _, m := range ms.Members {
		role := strings.ToLower(m.Status.State)
		if !m.Reachable {
			role = "unreachable"
		}
		row := memberRow{ID: m.ID, RaftAddr: m.RaftAddr, APIURL: m.APIURL, Role: role, Error: m.Error,
			Voter: m.Voter, Stale: m.Status.Stale, Leader: m.ID == ms.LeaderID, Asked: m.ID == ms.NodeID,
			Commit: m.Status.CommitIndex, Applied: m.Status.AppliedIndex}
		if m.Reachable && commit > m.Status.AppliedIndex {
			row.Behind = commit - m.Status.AppliedIndex
		}
		d.Members = append(d.Members, row)
	}
	return d, http.StatusOK
}
