package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/skiffml/skiff/store"
)

// Role is what a token may do in its namespace.
type Role int

// Roles, weakest first: a viewer reads, an editor also creates, changes
// and deletes, an admin also sets namespace policies.
const (
	RoleViewer Role = iota + 1
	RoleEditor
	RoleAdmin
)

// RoleWorker is a skiff agent's token: it acts as one worker node (the
// token's node id) on the agent routes (agent.go) and nowhere else. It is
// below every other role, so every route that requires one refuses it.
const RoleWorker Role = -1

var roleNames = []string{"", "viewer", "editor", "admin"}

func (r Role) String() string {
	if r == RoleWorker {
		return "worker"
	}
	if r > 0 && int(r) < len(roleNames) {
		return roleNames[r]
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole reads viewer, editor, admin or worker.
func ParseRole(s string) (Role, error) {
	if i := slices.Index(roleNames, s); i > 0 {
		return Role(i), nil
	}
	if s == "worker" {
		return RoleWorker, nil
	}
	return 0, fmt.Errorf("role %q: expected viewer, editor, admin or worker", s)
}

// AllNamespaces, as a token's namespace, grants every namespace.
const AllNamespaces = "*"

const tokenPrefix = "skiff_"

// NewToken makes a bearer token for namespace ns with role: the secret
// text to hand to the user (shown once) and the record to store, which
// holds only the secret's hash.
func NewToken(ns string, role Role, description string, now time.Time) (string, store.Token, error) {
	if ns == "" {
		return "", store.Token{}, fmt.Errorf("namespace: required")
	}
	if ns != AllNamespaces && !validNamespace(ns) {
		return "", store.Token{}, fmt.Errorf("namespace %q: use lowercase letters, digits and '-' (at most 63)", ns)
	}
	if role.String() == "" || role < RoleViewer || role > RoleAdmin {
		return "", store.Token{}, fmt.Errorf("role: invalid")
	}
	return newToken(store.Token{Namespace: ns, Role: role.String(), Description: description, CreatedAt: now.UTC()})
}

// validNodeID is what a worker node id may be (as skiff server --node-id).
var validNodeID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// NewWorkerToken makes a worker token (a skiff agent's) that acts as
// worker node nodeID and nothing else: its secret text and its record.
func NewWorkerToken(nodeID, description string, now time.Time) (string, store.Token, error) {
	if !validNodeID.MatchString(nodeID) {
		return "", store.Token{}, fmt.Errorf("node_id %q: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", nodeID)
	}
	return newToken(store.Token{Namespace: AllNamespaces, Role: RoleWorker.String(), NodeID: nodeID, Description: description, CreatedAt: now.UTC()})
}

// newToken fills rec's id and hash with new random ones.
func newToken(rec store.Token) (string, store.Token, error) {
	var id [8]byte
	var secret [24]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", store.Token{}, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", store.Token{}, err
	}
	idText, secretText := hex.EncodeToString(id[:]), hex.EncodeToString(secret[:])
	rec.ID, rec.Hash = idText, hashSecret(secretText)
	return tokenPrefix + idText + "_" + secretText, rec, nil
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func validNamespace(ns string) bool {
	if ns == "" || len(ns) > 63 || ns[0] == '-' || ns[len(ns)-1] == '-' {
		return false
	}
	for _, c := range ns {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// principal is the authenticated caller.
type principal struct {
	tokenID   string
	namespace string // AllNamespaces for every namespace; "" for a worker
	role      Role
	// nodeID is the worker node a worker token acts as.
	nodeID string
}

// sees reports whether the caller may see objects of namespace ns.
func (p *principal) sees(ns string) bool {
	return p.namespace == AllNamespaces || p.namespace == ns
}

// namespaceFor resolves the namespace a request names ("" = the caller's
// own): 403 when the caller may not use it.
func (p *principal) namespaceFor(requested string) (string, error) {
	if requested == "" {
		if p.namespace == AllNamespaces {
			return store.DefaultNamespace, nil
		}
		return p.namespace, nil
	}
	if !validNamespace(requested) {
		return "", badRequest("namespace %q: use lowercase letters, digits and '-' (at most 63)", requested)
	}
	if !p.sees(requested) {
		return "", apiErr(codePermissionDenied, "namespace %q: this token is for namespace %q", requested, p.namespace)
	}
	return requested, nil
}

// listNamespace is the namespace a list is restricted to: the one named, or
// the caller's own ("" = all, for an all-namespaces token that names none).
func (p *principal) listNamespace(requested string) (string, error) {
	if requested == "" && p.namespace == AllNamespaces {
		return "", nil
	}
	return p.namespaceFor(requested)
}

// authenticate reads the bearer token of r.
func (s *Server) authenticate(r *http.Request) (*principal, error) {
	if s.cfg.NoAuth {
		return &principal{namespace: AllNamespaces, role: RoleAdmin}, nil
	}
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return nil, apiErr(codeUnauthenticated, "missing bearer token: send 'Authorization: Bearer <token>' (create one with 'skiff token create')")
	}
	tok = strings.TrimSpace(tok)
	rest, ok := strings.CutPrefix(tok, tokenPrefix)
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 {
		return nil, apiErr(codeUnauthenticated, "invalid bearer token")
	}
	rec, err := s.cfg.Store.GetToken(id)
	if err != nil {
		return nil, apiErr(codeUnauthenticated, "invalid bearer token")
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(rec.Hash)) != 1 {
		return nil, apiErr(codeUnauthenticated, "invalid bearer token")
	}
	role, err := ParseRole(rec.Role)
	if err != nil {
		return nil, apiErr(codeUnauthenticated, "invalid bearer token")
	}
	if role == RoleWorker {
		if rec.NodeID == "" {
			return nil, apiErr(codeUnauthenticated, "invalid bearer token")
		}
		// A worker sees no namespace: only its node's assignments,
		// through the agent routes.
		return &principal{tokenID: rec.ID, role: RoleWorker, nodeID: rec.NodeID}, nil
	}
	return &principal{tokenID: rec.ID, namespace: rec.Namespace, role: role}, nil
}

func (p *principal) require(role Role) error {
	if p.role < role {
		return apiErr(codePermissionDenied, "this token's role is %s; this needs %s", p.role, role)
	}
	return nil
}
