// Package auth is who may call the API: API keys (given by flag, env or a
// file; kept and compared as SHA-256 hashes, in constant time) and OIDC
// bearer tokens (JWTs checked for issuer, audience, expiry and signature
// against the issuer's JWKS), each with scopes: read, write, admin
// (docs/api.md, "Authentication").
package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Scope is what a caller may do. Each includes the ones before it: admin
// may write and read, write may read.
type Scope int

const (
	None Scope = iota
	Read
	Write
	Admin
)

func (s Scope) String() string {
	switch s {
	case Read:
		return "read"
	case Write:
		return "write"
	case Admin:
		return "admin"
	}
	return "none"
}

// Includes reports whether s allows what need allows.
func (s Scope) Includes(need Scope) bool { return s >= need }

// ParseScope reads "read", "write" or "admin" (also with a "workflowd:"
// or "workflowd." prefix, as identity providers often name them).
func ParseScope(s string) (Scope, bool) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "workflowd:"), "workflowd.")
	switch s {
	case "read":
		return Read, true
	case "write":
		return Write, true
	case "admin":
		return Admin, true
	}
	return None, false
}

// Principal is an authenticated caller: who, and the widest scope it has.
type Principal struct {
	Subject string // the key's name, or the token's sub
	Scope   Scope
	Method  string // "api-key" or "bearer"
}

// Errors of Authenticate. A *Failure says why a credential was refused.
var ErrNoCredentials = errors.New("no credentials: send an API key (Authorization: Bearer <key>, or X-API-Key) or an OIDC bearer token")

// Failure is a credential that was refused; Reason says why, in words a
// client can act on (never quoting the credential).
type Failure struct{ Reason string }

func (f *Failure) Error() string { return f.Reason }

// Authenticator checks a request's credentials.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (Principal, error)
}

// Verifier checks a bearer token (a JWT) and returns its principal.
type Verifier interface {
	Verify(ctx context.Context, token string) (Principal, error)
}

// Chain authenticates with API keys and, for a token shaped like a JWT,
// with the OIDC verifier. Either may be nil (not configured).
type Chain struct {
	Keys *Keys
	OIDC Verifier
}

// Configured reports whether any credential is accepted.
func (c *Chain) Configured() bool { return c != nil && (c.Keys.Len() > 0 || c.OIDC != nil) }

// Authenticate reads Authorization: Bearer <credential> or X-API-Key.
func (c *Chain) Authenticate(ctx context.Context, r *http.Request) (Principal, error) {
	cred, fromKeyHeader := "", false
	if v := r.Header.Get("X-API-Key"); v != "" {
		cred, fromKeyHeader = v, true
	} else if h := r.Header.Get("Authorization"); h != "" {
		scheme, v, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(v) == "" {
			return Principal{}, &Failure{Reason: "the Authorization header must be \"Bearer <API key or token>\""}
		}
		cred = strings.TrimSpace(v)
	}
	if cred == "" {
		return Principal{}, ErrNoCredentials
	}
	if !fromKeyHeader && looksLikeJWT(cred) {
		if c.OIDC == nil {
			return Principal{}, &Failure{Reason: "bearer tokens are not accepted here (no OIDC issuer is configured); use an API key"}
		}
		return c.OIDC.Verify(ctx, cred)
	}
	if p, ok := c.Keys.Lookup(cred); ok {
		return p, nil
	}
	return Principal{}, &Failure{Reason: "the API key is not valid"}
}

// looksLikeJWT reports whether s is three base64url parts joined by dots.
func looksLikeJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	return true
}

// Keys are API keys by the SHA-256 of their secret.
type Keys struct {
	keys []key
}

type key struct {
	name  string
	scope Scope
	hash  [sha256.Size]byte
}

// MinKeyLen is the shortest secret an API key may have.
const MinKeyLen = 16

// ParseKeys reads API keys, one per entry: name:scope:secret, or
// name:scope:sha256:<64 hex digits> to give only the secret's hash.
// Entries are separated by new lines or commas; blank lines and lines
// starting with # are skipped.
func ParseKeys(spec string) (*Keys, error) {
	k := &Keys{}
	names := map[string]bool{}
	for i, line := range strings.FieldsFunc(spec, func(r rune) bool { return r == '\n' || r == ',' }) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok1 := strings.Cut(line, ":")
		scopeText, secret, ok2 := strings.Cut(rest, ":")
		scope, ok3 := ParseScope(scopeText)
		switch {
		case !ok1 || !ok2 || name == "":
			return nil, fmt.Errorf("API key entry %d: want name:scope:secret (or name:scope:sha256:<hex>)", i+1)
		case !ok3:
			return nil, fmt.Errorf("API key %q: scope %q is not read, write or admin", name, scopeText)
		case names[name]:
			return nil, fmt.Errorf("API key %q: the name is used twice", name)
		}
		names[name] = true
		entry := key{name: name, scope: scope}
		if hexHash, ok := strings.CutPrefix(secret, "sha256:"); ok {
			b, err := hex.DecodeString(hexHash)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("API key %q: sha256: wants 64 hex digits", name)
			}
			copy(entry.hash[:], b)
		} else {
			if len(secret) < MinKeyLen || strings.ContainsAny(secret, " \t") {
				return nil, fmt.Errorf("API key %q: the secret must be at least %d characters, without spaces", name, MinKeyLen)
			}
			entry.hash = sha256.Sum256([]byte(secret))
		}
		k.keys = append(k.keys, entry)
	}
	return k, nil
}

// Len is how many keys there are.
func (k *Keys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.keys)
}

// Names lists the keys' names and scopes, for the log at start.
func (k *Keys) Names() []string {
	if k == nil {
		return nil
	}
	var out []string
	for _, e := range k.keys {
		out = append(out, e.name+":"+e.scope.String())
	}
	slices.Sort(out)
	return out
}

// Lookup returns the principal of the key whose secret is secret. It
// compares the secret's hash with every key's, in constant time, whatever
// matches.
func (k *Keys) Lookup(secret string) (Principal, bool) {
	if k == nil {
		return Principal{}, false
	}
	h := sha256.Sum256([]byte(secret))
	found := -1
	for i := range k.keys {
		if subtle.ConstantTimeCompare(h[:], k.keys[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Principal{}, false
	}
	return Principal{Subject: k.keys[found].name, Scope: k.keys[found].scope, Method: "api-key"}, true
}

// HashKey is the form of a secret that may be written down: sha256:<hex>.
func HashKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(h[:])
}
