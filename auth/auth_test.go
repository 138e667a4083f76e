package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/workflowd/workflowd/auth"
	"github.com/workflowd/workflowd/internal/apitest"
)

const (
	readKey  = "r3ad-only-key-0123456789"
	writeKey = "wr1te-key-0123456789abcd"
	adminKey = "adm1n-key-0123456789abcd"
)

func keys(t *testing.T) *auth.Keys {
	t.Helper()
	k, err := auth.ParseKeys("# the team's keys\nreader:read:" + readKey + "\nci:write:" + writeKey + ", ops:admin:" + auth.HashKey(adminKey))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKeys(t *testing.T) {
	k := keys(t)
	if got := strings.Join(k.Names(), " "); got != "ci:write ops:admin reader:read" {
		t.Fatalf("names: %s", got)
	}
	for _, tc := range []struct{ spec, want string }{
		{"a:read", "want name:scope:secret"},
		{":read:" + readKey, "want name:scope:secret"},
		{"a:root:" + readKey, `scope "root" is not read, write or admin`},
		{"a:read:short", "at least 16 characters"},
		{"a:read:" + readKey + ",a:write:" + writeKey, "used twice"},
		{"a:read:sha256:abc", "64 hex digits"},
	} {
		if _, err := auth.ParseKeys(tc.spec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.spec, err, tc.want)
		}
	}
	// A key given by its hash is found by its secret; the error never
	// quotes a secret.
	if p, ok := k.Lookup(adminKey); !ok || p.Subject != "ops" || p.Scope != auth.Admin {
		t.Fatalf("the hashed key: %+v %v", p, ok)
	}
	if _, err := auth.ParseKeys("a:read:" + readKey + " x"); err == nil || strings.Contains(err.Error(), readKey) {
		t.Fatalf("an error quoting the secret: %v", err)
	}
}

func request(headers ...string) *http.Request {
	r := httptest.NewRequest("GET", "/v1/workflows", nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

func TestChainWithAPIKeys(t *testing.T) {
	c := &auth.Chain{Keys: keys(t)}
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		headers []string
		scope   auth.Scope
		fail    string
	}{
		{"bearer key", []string{"Authorization", "Bearer " + writeKey}, auth.Write, ""},
		{"x-api-key", []string{"X-API-Key", readKey}, auth.Read, ""},
		{"no credentials", nil, 0, "no credentials"},
		{"wrong key", []string{"Authorization", "Bearer not-a-key-of-ours-at-all"}, 0, "not valid"},
		{"basic auth", []string{"Authorization", "Basic dXNlcjpwYXNz"}, 0, `must be "Bearer`},
		{"a jwt without oidc", []string{"Authorization", "Bearer aaa.bbb.ccc"}, 0, "no OIDC issuer"},
	} {
		p, err := c.Authenticate(ctx, request(tc.headers...))
		switch {
		case tc.fail == "" && (err != nil || p.Scope != tc.scope):
			t.Errorf("%s: %+v %v, want scope %s", tc.name, p, err, tc.scope)
		case tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)):
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.fail)
		}
	}
	if !auth.Write.Includes(auth.Read) || auth.Read.Includes(auth.Write) || !auth.Admin.Includes(auth.Write) {
		t.Fatal("scopes do not nest")
	}
}

// Tokens of a test issuer (apitest.Issuer, whose Authenticator is this
// package's Chain of keys and OIDC): good ones, scp lists, and every way a
// token is refused, never quoting it; a key rotation; keys beside tokens.
func TestChainWithOIDCTokens(t *testing.T) {
	is := apitest.NewIssuer(t)
	ctx := context.Background()
	c := is.Authenticator(t)
	bearer := func(tok string) *http.Request { return request("Authorization", "Bearer "+tok) }
	p, err := c.Authenticate(ctx, bearer(is.Token(t, "openid workflowd:write", false, nil)))
	if err != nil || p.Subject != "apitest" || p.Scope != auth.Write || p.Method != "bearer" {
		t.Fatalf("a good token: %+v %v", p, err)
	}
	p, err = c.Authenticate(ctx, bearer(is.Token(t, "", false, func(m map[string]any) { delete(m, "scope"); m["scp"] = []string{"read"} })))
	if err != nil || p.Scope != auth.Read {
		t.Fatalf("scp as a list: %+v %v", p, err)
	}
	for _, tc := range []struct {
		name, token, want string
	}{
		{"expired", is.Token(t, "write", false, func(m map[string]any) { m["exp"] = time.Now().Add(-time.Minute).Unix() }), "expired"},
		{"another audience", is.Token(t, "write", false, func(m map[string]any) { m["aud"] = "billing" }), "audience"},
		{"another issuer", is.Token(t, "write", false, func(m map[string]any) { m["iss"] = "https://evil.example" }), "different provider"},
		{"signed by another key", is.Token(t, "write", true, nil), "refused"},
		{"an unknown key", is.TokenAs(t, "write", true, "k9", nil), "refused"},
	} {
		_, err := c.Authenticate(ctx, bearer(tc.token))
		var f *auth.Failure
		if !errors.As(err, &f) || !strings.Contains(f.Reason, tc.want) || strings.Contains(f.Reason, tc.token) {
			t.Errorf("%s: %v, want a failure saying %q", tc.name, err, tc.want)
		}
	}
	// The issuer rotates its key: a token signed with the new one is
	// accepted once the key set is read again.
	is.Rotate(t, "k2")
	if p, err := c.Authenticate(ctx, bearer(is.Token(t, "write", false, nil))); err != nil || p.Scope != auth.Write {
		t.Fatalf("after a rotation: %+v %v", p, err)
	}
	// API keys still work beside tokens.
	if p, err := c.Authenticate(ctx, request("X-API-Key", apitest.AdminKey)); err != nil || p.Scope != auth.Admin {
		t.Fatalf("a key beside OIDC: %+v %v", p, err)
	}
	if _, err := auth.NewOIDC(ctx, auth.OIDCConfig{Issuer: "https://id.example"}); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Fatalf("no audience: %v", err)
	}
}
