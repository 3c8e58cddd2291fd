package api_test

import (
	"testing"

	"github.com/skiffml/skiff/api"
)

// TestTokens_CreateThroughTheAPI: an admin creates a token that then
// authenticates; a namespace's admin cannot reach beyond its namespace or
// its role, and an editor cannot create tokens.
func TestTokens_CreateThroughTheAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	var got api.TokenCreated
	h.must(200, "POST", "/apis/skiff/v1/tokens", h.admin, api.TokenRequest{Namespace: "team-a", Role: "editor"}).json(t, &got)
	if got.Token == "" || got.Namespace != "team-a" || got.Role != "editor" {
		t.Fatalf("created %+v", got)
	}
	who := h.must(200, "GET", "/apis/skiff/v1/whoami", got.Token, nil).m(t)
	if who["namespace"] != "team-a" || who["role"] != "editor" {
		t.Errorf("whoami with the new token = %v", who)
	}
	nsAdmin := h.token("team-a", api.RoleAdmin)
	for name, tc := range map[string]struct {
		token string
		in    api.TokenRequest
		want  int
	}{
		"editor creates":         {got.Token, api.TokenRequest{Namespace: "team-a", Role: "viewer"}, 403},
		"other namespace":        {nsAdmin, api.TokenRequest{Namespace: "team-b", Role: "viewer"}, 403},
		"every namespace":        {nsAdmin, api.TokenRequest{Namespace: "*", Role: "viewer"}, 403},
		"bad role":               {nsAdmin, api.TokenRequest{Namespace: "team-a", Role: "root"}, 400},
		"own namespace, allowed": {nsAdmin, api.TokenRequest{Namespace: "team-a", Role: "admin"}, 200},
	} {
		if r := h.do("POST", "/apis/skiff/v1/tokens", tc.token, tc.in); r.status != tc.want {
			t.Errorf("%s: status %d, want %d: %s", name, r.status, tc.want, r.body)
		}
	}
}
