package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Token is an API bearer token. Only a hash of its secret is stored: the
// secret itself is shown once, when the token is created.
type Token struct {
	ID        string `json:"id"`
	Namespace string `json:"namespace"` // "*" = every namespace
	Role      string `json:"role"`      // viewer, editor, admin or worker
	// NodeID is the worker node a worker token acts as (skiff agent);
	// empty for every other role.
	NodeID      string    `json:"node_id,omitempty"`
	Hash        string    `json:"hash"` // hex SHA-256 of the secret
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
}

// CreateToken stores a token. It is rejected if the ID exists.
type CreateToken struct {
	Token Token `json:"token"`
}

// DeleteToken revokes a token.
type DeleteToken struct {
	ID string `json:"id"`
}

// NamespacePolicy is what a namespace may do beyond the defaults.
type NamespacePolicy struct {
	Namespace string `json:"namespace"`
	// AllowedExecutors lists executors enabled for the namespace on top of
	// the server's defaults (the local process executor is off by default).
	AllowedExecutors []string `json:"allowed_executors,omitempty"`
	// KubeNamespace is the Kubernetes namespace the kube executor creates
	// this namespace's pods in ("" = the executor's own, --kube-namespace).
	KubeNamespace string `json:"kube_namespace,omitempty"`
}

// SetNamespacePolicy replaces a namespace's policy.
type SetNamespacePolicy struct {
	Policy NamespacePolicy `json:"policy"`
}

func (CreateToken) Type() CommandType        { return TypeCreateToken }
func (DeleteToken) Type() CommandType        { return TypeDeleteToken }
func (SetNamespacePolicy) Type() CommandType { return TypeSetNamespacePolicy }

func init() {
	registerJSON(TypeCreateToken, "create_token", 1, applyCreateToken)
	registerJSON(TypeDeleteToken, "delete_token", 1, applyDeleteToken)
	registerJSON(TypeSetNamespacePolicy, "set_namespace_policy", 1, applySetNamespacePolicy)
}

func applyCreateToken(tx *bolt.Tx, c CreateToken) ([]Rejection, error) {
	t := c.Token
	switch {
	case t.ID == "" || t.Namespace == "" || t.Hash == "":
		return reject("create token: id, namespace and hash are required"), nil
	case !slices.Contains([]string{"viewer", "editor", "admin", "worker"}, t.Role):
		return reject("create token %q: unknown role %q", t.ID, t.Role), nil
	case (t.Role == "worker") != (t.NodeID != ""):
		return reject("create token %q: node_id: a worker token needs one, and only a worker token has one", t.ID), nil
	case t.NodeID != "" && !validID(t.NodeID):
		return reject("create token %q: node_id %q is not a valid id", t.ID, t.NodeID), nil
	case tx.Bucket(bucketTokens).Get([]byte(t.ID)) != nil:
		return reject("create token %q: id already exists", t.ID), nil
	}
	return nil, putJSON(tx, bucketTokens, t.ID, &t)
}

func applyDeleteToken(tx *bolt.Tx, c DeleteToken) ([]Rejection, error) {
	if tx.Bucket(bucketTokens).Get([]byte(c.ID)) == nil {
		return reject("delete token %q: %v", c.ID, ErrNotFound), nil
	}
	return nil, tx.Bucket(bucketTokens).Delete([]byte(c.ID))
}

func applySetNamespacePolicy(tx *bolt.Tx, c SetNamespacePolicy) ([]Rejection, error) {
	if c.Policy.Namespace == "" {
		return reject("set namespace policy: empty namespace"), nil
	}
	if k := c.Policy.KubeNamespace; k != "" && !ValidKubeNamespace(k) {
		return reject("set namespace policy %q: kube_namespace %q: use lowercase letters, digits and '-' (at most 63)", c.Policy.Namespace, k), nil
	}
	return nil, putJSON(tx, bucketNamespaces, c.Policy.Namespace, &c.Policy)
}

// GetToken returns one token record (ErrNotFound).
func (s *Store) GetToken(id string) (Token, error) {
	var t Token
	err := s.fsm.view(func(tx *bolt.Tx) error {
		if err := getJSON(tx, bucketTokens, id, &t); err != nil {
			return fmt.Errorf("token %q: %w", id, err)
		}
		return nil
	})
	return t, err
}

// ListTokens returns every token record in ID order.
func (s *Store) ListTokens() ([]Token, error) {
	var out []Token
	err := s.fsm.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTokens).ForEach(func(_, v []byte) error {
			var t Token
			if err := json.Unmarshal(v, &t); err != nil {
				return err
			}
			out = append(out, t)
			return nil
		})
	})
	return out, err
}

// ValidKubeNamespace reports whether ns is a Kubernetes namespace name (a
// DNS-1123 label: at most 63 lowercase letters, digits and '-', starting
// and ending with a letter or digit).
func ValidKubeNamespace(ns string) bool {
	if ns == "" || len(ns) > 63 || ns[0] == '-' || ns[len(ns)-1] == '-' {
		return false
	}
	for _, r := range ns {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// NamespacePolicies returns every namespace's stored policy, in namespace
// order (namespaces never configured have none).
func (s *Store) NamespacePolicies() ([]NamespacePolicy, error) {
	var out []NamespacePolicy
	err := s.fsm.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNamespaces).ForEach(func(k, v []byte) error {
			var p NamespacePolicy
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("namespace policy %q: %w", k, err)
			}
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

// GetNamespacePolicy returns the namespace's policy; a namespace never
// configured has the zero policy (and no error).
func (s *Store) GetNamespacePolicy(ns string) (NamespacePolicy, error) {
	p := NamespacePolicy{Namespace: ns}
	err := s.fsm.view(func(tx *bolt.Tx) error {
		if err := getJSON(tx, bucketNamespaces, ns, &p); err != nil && err != ErrNotFound {
			return err
		}
		return nil
	})
	return p, err
}
