package api

import (
	"net/http"

	"github.com/skiffml/skiff/store"
)

// TokenRequest is the body of POST /apis/skiff/v1/tokens.
type TokenRequest struct {
	Namespace   string `json:"namespace"`
	Role        string `json:"role"`
	Description string `json:"description,omitempty"`
	// NodeID is the worker node a worker token acts as (role worker
	// only; its namespace is then "*" or empty).
	NodeID string `json:"node_id,omitempty"`
}

// TokenCreated is its answer: the token's text is shown this once.
type TokenCreated struct {
	ID        string `json:"id"`
	Namespace string `json:"namespace"`
	Role      string `json:"role"`
	Token     string `json:"token"`
	NodeID    string `json:"node_id,omitempty"`
}

// createToken serves POST /apis/skiff/v1/tokens (admin): a token for the
// caller's namespace (or, for an admin of every namespace, any namespace
// or "*"), with a role no higher than the caller's.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *principal) error {
	var in TokenRequest
	if err := decodeJSON(r.Body, &in); err != nil {
		return err
	}
	role, err := ParseRole(in.Role)
	if err != nil {
		return badRequest("role: %v", err)
	}
	if role == RoleWorker {
		return s.createWorkerToken(w, r, p, in)
	}
	if in.NodeID != "" {
		return badRequest("node_id: only a worker token acts as a node (role %s)", role)
	}
	if role > p.role {
		return apiErr(codePermissionDenied, "role: a %s may not create %s tokens", p.role, role)
	}
	ns := in.Namespace
	if ns == AllNamespaces {
		if p.namespace != AllNamespaces {
			return apiErr(codePermissionDenied, "namespace: only an admin of every namespace may create a token for every namespace")
		}
	} else if ns, err = p.namespaceFor(ns); err != nil {
		return err
	}
	text, rec, err := NewToken(ns, role, in.Description, s.now())
	if err != nil {
		return badRequest("%v", err)
	}
	if err := s.apply(r.Context(), store.CreateToken{Token: rec}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, TokenCreated{ID: rec.ID, Namespace: rec.Namespace, Role: rec.Role, Token: text})
	return nil
}

// createWorkerToken makes a skiff agent's token, bound to one worker node
// id: only an admin of every namespace may (a worker runs the steps of
// any namespace that the leader places on it), and the id must not be a
// server's (an agent must not act as a server's worker).
func (s *Server) createWorkerToken(w http.ResponseWriter, r *http.Request, p *principal, in TokenRequest) error {
	if p.role != RoleAdmin || p.namespace != AllNamespaces {
		return apiErr(codePermissionDenied, "role: only an admin of every namespace may create worker tokens")
	}
	if in.Namespace != "" && in.Namespace != AllNamespaces {
		return badRequest("namespace: %q: a worker token is for every namespace (give \"*\" or none)", in.Namespace)
	}
	if in.NodeID == "" {
		return badRequest("node_id: required for a worker token (the node the agent acts as)")
	}
	if err := s.notAServer(in.NodeID); err != nil {
		return err
	}
	text, rec, err := NewWorkerToken(in.NodeID, in.Description, s.now())
	if err != nil {
		return badRequest("%v", err)
	}
	if err := s.apply(r.Context(), store.CreateToken{Token: rec}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, TokenCreated{ID: rec.ID, Namespace: rec.Namespace, Role: rec.Role, Token: text, NodeID: rec.NodeID})
	return nil
}

// notAServer refuses a node id that is a member of the raft cluster.
func (s *Server) notAServer(id string) error {
	ms, err := s.cfg.Store.Members()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if m.ID == id {
			return apiErr(codePermissionDenied, "node_id: %q is a server of this cluster, not an agent", id)
		}
	}
	return nil
}
