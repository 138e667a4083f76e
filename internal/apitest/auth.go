package apitest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
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

// API keys of AuthFlow's runtimes.
const (
	ReadKey  = "apitest-read-key-0123456789"
	WriteKey = "apitest-write-key-012345678"
	AdminKey = "apitest-admin-key-012345678"
)

// Issuer is an OIDC issuer for tests: its JWKS served over HTTP, whose
// key can be rotated, and tokens signed with its key (or another).
type Issuer struct {
	URL   string // the JWKS
	mu    sync.Mutex
	keys  []jose.JSONWebKey
	key   *rsa.PrivateKey
	kid   string
	other *rsa.PrivateKey
}

// NewIssuer starts an Issuer with key k1; it stops at the end of the test.
func NewIssuer(tb testing.TB) *Issuer {
	tb.Helper()
	is := &Issuer{other: newKey(tb)}
	is.Rotate(tb, "k1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		defer is.mu.Unlock()
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: is.keys})
	}))
	tb.Cleanup(srv.Close)
	is.URL = srv.URL
	return is
}

func newKey(tb testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// Rotate signs from now on with a new key, kid, which the JWKS adds.
func (is *Issuer) Rotate(tb testing.TB, kid string) {
	k := newKey(tb)
	is.mu.Lock()
	defer is.mu.Unlock()
	is.key, is.kid = k, kid
	is.keys = append(is.keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"})
}

// IssuerName and Audience are what the runtimes of AuthFlow accept.
const (
	IssuerName = "https://id.apitest.example"
	Audience   = "workflowd-apitest"
)

// Authenticator is the API keys above (read, write, admin) and the
// issuer's tokens.
func (is *Issuer) Authenticator(tb testing.TB) auth.Authenticator {
	tb.Helper()
	keys, err := auth.ParseKeys("reader:read:" + ReadKey + ",ci:write:" + WriteKey + ",ops:admin:" + auth.HashKey(AdminKey))
	if err != nil {
		tb.Fatal(err)
	}
	v, err := auth.NewOIDC(context.Background(), auth.OIDCConfig{Issuer: IssuerName, Audience: Audience, JWKSURL: is.URL})
	if err != nil {
		tb.Fatal(err)
	}
	return &auth.Chain{Keys: keys, OIDC: v}
}

// Token is a token of the issuer for scope, changed by change (nil: as
// is), signed with its current key, or, if forged, with another key under
// the current key's kid.
func (is *Issuer) Token(tb testing.TB, scope string, forged bool, change func(map[string]any)) string {
	return is.TokenAs(tb, scope, forged, "", change)
}

// TokenAs is Token with its header naming kid ("": the current key's).
func (is *Issuer) TokenAs(tb testing.TB, scope string, forged bool, kid string, change func(map[string]any)) string {
	tb.Helper()
	now := time.Now()
	claims := map[string]any{"iss": IssuerName, "aud": Audience, "sub": "apitest", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "scope": scope}
	if change != nil {
		change(claims)
	}
	is.mu.Lock()
	key := is.key
	if kid == "" {
		kid = is.kid
	}
	is.mu.Unlock()
	if forged {
		key = is.other
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid).WithType("JWT"))
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// AuthFlow is authentication through a runtime's API, the same on both
// backends, whose Authenticator is is's: no credentials, a wrong key, an
// expired, forged or other-audience token, a read key on a write and an
// admin endpoint, a write token on an admin one: each a 401 or 403
// problem, nothing changed; the right credentials pass.
func AuthFlow(t *testing.T, c *Client, is *Issuer) {
	t.Helper()
	count := func() int {
		r := c.Expect(t, 200, "GET", "/v1/workflows?limit=1000", "", "X-API-Key", ReadKey)
		items, _ := r.Body["items"].([]any)
		return len(items)
	}
	before := count()
	def := `{"name":"guarded","steps":[{"name":"a","type":"manual"}]}`
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	for _, tc := range []struct {
		name    string
		method  string
		path    string
		headers []string
		want    int
		has     string
	}{
		{"no credentials", "POST", "/v1/workflows", nil, 401, "no credentials"},
		{"a wrong key", "POST", "/v1/workflows", bearer("apitest-wrong-key-0123456789"), 401, "not valid"},
		{"an expired token", "POST", "/v1/workflows", bearer(is.Token(t, "write", false, func(m map[string]any) { m["exp"] = time.Now().Add(-time.Minute).Unix() })), 401, "expired"},
		{"a forged token", "POST", "/v1/workflows", bearer(is.Token(t, "write", true, nil)), 401, "refused"},
		{"another audience", "POST", "/v1/workflows", bearer(is.Token(t, "write", false, func(m map[string]any) { m["aud"] = "billing" })), 401, "audience"},
		{"a read key on a write", "POST", "/v1/workflows", []string{"X-API-Key", ReadKey}, 403, "needs write"},
		{"a read key on an admin endpoint", "GET", "/v1/queues/executions/dead-letters", []string{"X-API-Key", ReadKey}, 403, "needs admin"},
		{"a write token on an admin endpoint", "POST", "/v1/queues/executions/redrive", bearer(is.Token(t, "workflowd:write", false, nil)), 403, "needs admin"},
	} {
		body := def
		if tc.method == "GET" {
			body = ""
		} else if strings.HasSuffix(tc.path, "redrive") {
			body = "{}"
		}
		r := c.Do(t, tc.method, tc.path, body, tc.headers...)
		kind := map[int]string{401: "unauthenticated", 403: "forbidden"}[tc.want]
		if r.Status != tc.want || r.Header.Get("Content-Type") != "application/problem+json" || r.String("type") != "urn:workflowd:problem:"+kind || !strings.Contains(r.String("detail"), tc.has) {
			t.Fatalf("%s: %d %s, want %d %s saying %q", tc.name, r.Status, r.Raw, tc.want, kind, tc.has)
		}
	}
	if n := count(); n != before {
		t.Fatalf("the refused requests changed something: %d workflows, %d before", n, before)
	}
	// The right credentials pass: a write token creates, an admin key
	// reads the dead letters, health needs nothing.
	ans := c.Expect(t, 202, "POST", "/v1/workflows", def, bearer(is.Token(t, "openid workflowd:write", false, nil))...)
	c.Expect(t, 200, "GET", "/v1/commands/"+ans.String("commandUUID")+"?wait=5s", "", "X-API-Key", ReadKey)
	c.Expect(t, 200, "GET", "/v1/queues/executions/dead-letters", "", "X-API-Key", AdminKey)
	c.Expect(t, 200, "GET", "/healthz", "")
	if n := count(); n != before+1 {
		t.Fatal(fmt.Sprintf("after an authorized create: %d workflows, want %d", n, before+1))
	}
}
