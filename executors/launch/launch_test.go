package launch

import (
	"strings"
	"testing"
	"time"
)

func TestKeys_TokenRoundTripAndTampering(t *testing.T) {
	k := RandomKeys()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := Claims{Execution: "r-1-1", Run: "r", TaskIndex: 1, Attempt: 1, Inputs: []string{"sha256:aa"}, Expires: now.Add(time.Hour)}
	tok, err := k.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.Verify(tok, now)
	if err != nil || got.Execution != c.Execution || !got.MayRead("sha256:aa") || got.MayRead("sha256:bb") {
		t.Fatalf("verify: %+v %v", got, err)
	}
	if _, err := k.Verify(tok, now.Add(time.Hour)); err != ErrTokenExpired {
		t.Errorf("at expiry: %v, want ErrTokenExpired", err)
	}
	if _, err := RandomKeys().Verify(tok, now); err != ErrBadToken {
		t.Errorf("other key: %v, want ErrBadToken", err)
	}
	// Change one character of the claims, then of the signature.
	dot := strings.LastIndexByte(tok, '.')
	for _, i := range []int{len(TokenPrefix) + 3, dot + 3} {
		b := []byte(tok)
		b[i] ^= 1
		if _, err := k.Verify(string(b), now); err == nil {
			t.Errorf("token changed at %d verified", i)
		}
	}
	for _, bad := range []string{"", "skiff_abc_def", TokenPrefix, TokenPrefix + "a.b", tok + ".x"} {
		if _, err := k.Verify(bad, now); err == nil {
			t.Errorf("%q verified", bad)
		}
	}
}

func TestKeys_ShortKeyRefused(t *testing.T) {
	if _, err := NewKeys(make([]byte, MinKeyBytes-1)); err == nil || !strings.Contains(err.Error(), "key") {
		t.Fatalf("short key: %v", err)
	}
}

func TestParseSpec_NamesTheBadField(t *testing.T) {
	d := `"sha256:` + strings.Repeat("a", 64) + `"`
	cases := []struct{ name, json, field string }{
		{"not json", `{`, EnvSpec},
		{"no execution", `{"root":"/skiff","command":["x"]}`, "execution"},
		{"relative root", `{"execution":"e","root":"skiff","command":["x"]}`, "root"},
		{"root is /", `{"execution":"e","root":"/","command":["x"]}`, "root"},
		{"no command", `{"execution":"e","root":"/skiff"}`, "command"},
		{"input outside", `{"execution":"e","root":"/skiff","command":["x"],"inputs":[{"Name":"../x","Ref":{"digest":` + d + `}}]}`, "inputs[0].name"},
		{"bad digest", `{"execution":"e","root":"/skiff","command":["x"],"inputs":[{"Name":"x","Ref":{"digest":"md5:1"}}]}`, "inputs[0].ref.digest"},
		{"bad output type", `{"execution":"e","root":"/skiff","command":["x"],"outputs":[{"Name":"x","Type":"Blob"}]}`, "outputs[0].type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(c.json))
			if err == nil || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("error %v does not name %s", err, c.field)
			}
		})
	}
	ok := `{"execution":"e","root":"/skiff","command":["x"],"inputs":[{"Name":"x","Ref":{"digest":` + d + `}}]}`
	if _, err := ParseSpec([]byte(ok)); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(`{"execution":"e","root":"/skiff","command":["sh"],"outputs":[{"Name":"m","Type":"Model"}]}`))
	f.Add([]byte(`{"execution":"e","root":"/skiff","command":["x"],"inputs":[{"Name":"a/0","EmptyDir":true}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data)
		if err == nil && (s.Execution == "" || len(s.Command) == 0) {
			t.Fatalf("accepted %s", data)
		}
	})
}

func FuzzParseTermination(f *testing.F) {
	f.Add("skiff-report sha256:" + strings.Repeat("0", 64) + " abcd")
	f.Add("")
	f.Fuzz(func(t *testing.T, msg string) {
		rc, ok := ParseTermination(msg)
		if !ok {
			return
		}
		if again, ok2 := ParseTermination(rc.Termination()); !ok2 || again != rc {
			t.Fatalf("%q: round trip %+v -> %+v", msg, rc, again)
		}
	})
}

func FuzzVerify(f *testing.F) {
	k, _ := NewKeys([]byte(strings.Repeat("k", MinKeyBytes)))
	tok, _ := k.Mint(Claims{Execution: "e", Run: "r", Attempt: 1, Expires: time.Unix(1<<40, 0)})
	f.Add(tok)
	f.Add("skifflaunch.e30.")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := k.Verify(tok, time.Unix(0, 0))
		if err == nil && (c.Execution == "" || c.Run == "") {
			t.Fatalf("accepted claims %+v", c)
		}
	})
}
