package launch

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// TokenPrefix starts every launcher token. It is not the prefix of a user
// token ("skiff_"), so no other route of the API accepts one.
const TokenPrefix = "skifflaunch."

// MinKeyBytes is the shortest HMAC key Keys accepts.
const MinKeyBytes = 32

// Errors.
var (
	ErrBadToken     = errors.New("launch: invalid launcher token")
	ErrTokenExpired = errors.New("launch: launcher token expired")
)

// Claims is what a launcher token grants: reading the blobs Inputs lists
// and writing outputs for execution Execution (attempt Attempt of task
// TaskIndex of run Run), until Expires and only while the store records
// that attempt as running (the API checks that on every request).
type Claims struct {
	Execution string    `json:"x"`
	Run       string    `json:"r"`
	TaskIndex int       `json:"i"`
	Attempt   int       `json:"a"`
	Inputs    []string  `json:"in,omitempty"` // digests
	Expires   time.Time `json:"e"`
}

// MayRead reports whether the token lets its holder read blob digest.
func (c Claims) MayRead(digest string) bool { return slices.Contains(c.Inputs, digest) }

// Keys signs and checks launcher tokens and reports with one HMAC-SHA256
// key. Every node that mints tokens (the kube executor) or checks them
// (the API) must hold the same key.
type Keys struct{ key []byte }

// NewKeys uses key (at least MinKeyBytes bytes).
func NewKeys(key []byte) (*Keys, error) {
	if len(key) < MinKeyBytes {
		return nil, fmt.Errorf("launch: key: %d bytes, need at least %d", len(key), MinKeyBytes)
	}
	return &Keys{key: slices.Clone(key)}, nil
}

// RandomKeys makes a key of its own: tokens it mints are good only for
// this process.
func RandomKeys() *Keys {
	k := make([]byte, MinKeyBytes)
	if _, err := rand.Read(k); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return &Keys{key: k}
}

func (k *Keys) mac(kind string, data []byte) []byte {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write(data)
	return m.Sum(nil)
}

// Mint returns the token text for c.
func (k *Keys) Mint(c Claims) (string, error) {
	body, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return TokenPrefix + enc.EncodeToString(body) + "." + enc.EncodeToString(k.mac("token", body)), nil
}

// Verify checks tok's signature and expiry at now and returns its claims.
func (k *Keys) Verify(tok string, now time.Time) (Claims, error) {
	var c Claims
	rest, ok := strings.CutPrefix(tok, TokenPrefix)
	b64, sig64, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return c, ErrBadToken
	}
	enc := base64.RawURLEncoding
	body, err1 := enc.DecodeString(b64)
	sig, err2 := enc.DecodeString(sig64)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, k.mac("token", body)) {
		return c, ErrBadToken
	}
	if err := json.Unmarshal(body, &c); err != nil || c.Execution == "" || c.Run == "" {
		return c, ErrBadToken
	}
	if !now.Before(c.Expires) {
		return c, ErrTokenExpired
	}
	return c, nil
}

// SignReport returns the signature the API gives the report of execution
// exec stored as blob digest: the executor accepts a report only with it.
func (k *Keys) SignReport(exec, digest string) string {
	return hex.EncodeToString(k.mac("report", []byte(exec+"\x00"+digest)))
}

// CheckReport reports whether sig is SignReport(exec, digest).
func (k *Keys) CheckReport(exec, digest, sig string) bool {
	want, err := hex.DecodeString(sig)
	return err == nil && hmac.Equal(want, k.mac("report", []byte(exec+"\x00"+digest)))
}
