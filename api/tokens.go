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
}

// TokenCreated is its answer: the token's text is shown this once.
type TokenCreated struct {
	ID        string `json:"id"`
	Namespace string `json:"namespace"`
	Role      string `json:"role"`
	Token     string `json:"token"`
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
