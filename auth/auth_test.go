package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/workflowd/workflowd/auth"
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

// issuer is an OIDC issuer for tests: a JWKS served over HTTP, whose keys
// can be rotated, and tokens signed with them.
type issuer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	keys []jose.JSONWebKey
	key  *rsa.PrivateKey
	kid  string
}

func newIssuer(t *testing.T) *issuer {
	is := &issuer{}
	is.rotate(t, "k1")
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		defer is.mu.Unlock()
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: is.keys})
	}))
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) rotate(t *testing.T, kid string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	is.key, is.kid = k, kid
	is.keys = append(is.keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"})
}

func (is *issuer) token(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	if key == nil {
		is.mu.Lock()
		key, kid = is.key, is.kid
		is.mu.Unlock()
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestChainWithOIDCTokens(t *testing.T) {
	is := newIssuer(t)
	ctx := context.Background()
	v, err := auth.NewOIDC(ctx, auth.OIDCConfig{Issuer: "https://id.example", Audience: "workflowd", JWKSURL: is.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	c := &auth.Chain{Keys: keys(t), OIDC: v}
	now := time.Now()
	claims := func(change func(map[string]any)) map[string]any {
		m := map[string]any{"iss": "https://id.example", "aud": "workflowd", "sub": "ada", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "scope": "openid workflowd:write"}
		if change != nil {
			change(m)
		}
		return m
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	bearer := func(tok string) *http.Request { return request("Authorization", "Bearer "+tok) }
	p, err := c.Authenticate(ctx, bearer(is.token(t, nil, "", claims(nil))))
	if err != nil || p.Subject != "ada" || p.Scope != auth.Write || p.Method != "bearer" {
		t.Fatalf("a good token: %+v %v", p, err)
	}
	p, err = c.Authenticate(ctx, bearer(is.token(t, nil, "", claims(func(m map[string]any) { delete(m, "scope"); m["scp"] = []string{"read"} }))))
	if err != nil || p.Scope != auth.Read {
		t.Fatalf("scp as a list: %+v %v", p, err)
	}
	for _, tc := range []struct {
		name, token, want string
	}{
		{"expired", is.token(t, nil, "", claims(func(m map[string]any) { m["exp"] = now.Add(-time.Minute).Unix() })), "expired"},
		{"another audience", is.token(t, nil, "", claims(func(m map[string]any) { m["aud"] = "billing" })), "audience"},
		{"another issuer", is.token(t, nil, "", claims(func(m map[string]any) { m["iss"] = "https://evil.example" })), "different provider"},
		{"signed by another key", is.token(t, other, "k1", claims(nil)), "refused"},
		{"an unknown key", is.token(t, other, "k9", claims(nil)), "refused"},
	} {
		_, err := c.Authenticate(ctx, bearer(tc.token))
		var f *auth.Failure
		if !errors.As(err, &f) || !strings.Contains(f.Reason, tc.want) || strings.Contains(f.Reason, tc.token) {
			t.Errorf("%s: %v, want a failure saying %q", tc.name, err, tc.want)
		}
	}
	// The issuer rotates its key: a token signed with the new one is
	// accepted once the key set is read again.
	is.rotate(t, "k2")
	if p, err := c.Authenticate(ctx, bearer(is.token(t, nil, "", claims(nil)))); err != nil || p.Scope != auth.Write {
		t.Fatalf("after a rotation: %+v %v", p, err)
	}
	// API keys still work beside tokens.
	if p, err := c.Authenticate(ctx, request("X-API-Key", adminKey)); err != nil || p.Scope != auth.Admin {
		t.Fatalf("a key beside OIDC: %+v %v", p, err)
	}
	if _, err := auth.NewOIDC(ctx, auth.OIDCConfig{Issuer: "https://id.example"}); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Fatalf("no audience: %v", err)
	}
}
