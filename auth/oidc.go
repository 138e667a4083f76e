package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
)

// OIDCConfig says which bearer tokens are accepted: JWTs whose issuer is
// Issuer, whose audience holds Audience, unexpired, signed by a key of the
// issuer's JWKS (JWKSURL, or the one its discovery document names), with
// their scopes in the claim "scope" (space-separated) or "scp" (a list).
type OIDCConfig struct {
	Issuer   string
	Audience string
	// JWKSURL is where the signing keys are ("": from the issuer's
	// /.well-known/openid-configuration, read once at start). The keys
	// are cached and read again when a token names a key not yet seen.
	JWKSURL string
}

// Validate reports a configuration that cannot work.
func (c OIDCConfig) Validate() error {
	switch {
	case c.Issuer == "":
		return errors.New("the OIDC issuer is required (-oidc-issuer)")
	case c.Audience == "":
		return errors.New("the OIDC audience is required (-oidc-audience): the value tokens for this service carry in aud")
	}
	return nil
}

type oidcVerifier struct {
	v *oidc.IDTokenVerifier
}

// NewOIDC returns the verifier of c's tokens. Without a JWKSURL it reads
// the issuer's discovery document now; ctx bounds that and lives as long
// as the key set's refreshes.
func NewOIDC(ctx context.Context, c OIDCConfig) (Verifier, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cfg := &oidc.Config{ClientID: c.Audience, SupportedSigningAlgs: []string{oidc.RS256, oidc.RS384, oidc.RS512, oidc.ES256, oidc.ES384, oidc.ES512, oidc.PS256, oidc.EdDSA}}
	if c.JWKSURL != "" {
		return &oidcVerifier{v: oidc.NewVerifier(c.Issuer, oidc.NewRemoteKeySet(ctx, c.JWKSURL), cfg)}, nil
	}
	p, err := oidc.NewProvider(ctx, c.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC issuer %s: %w", c.Issuer, err)
	}
	return &oidcVerifier{v: p.Verifier(cfg)}, nil
}

// Verify checks token and returns its subject and widest scope.
func (o *oidcVerifier) Verify(ctx context.Context, token string) (Principal, error) {
	t, err := o.v.Verify(ctx, token)
	var expired *oidc.TokenExpiredError
	switch {
	case errors.As(err, &expired):
		return Principal{}, &Failure{Reason: "the bearer token has expired"}
	case err != nil:
		return Principal{}, &Failure{Reason: "the bearer token was refused: " + strings.TrimPrefix(err.Error(), "oidc: ")}
	}
	var claims struct {
		Scope string `json:"scope"`
		Scp   any    `json:"scp"`
	}
	if err := t.Claims(&claims); err != nil {
		return Principal{}, &Failure{Reason: "the bearer token's claims cannot be read"}
	}
	words := strings.Fields(claims.Scope)
	switch scp := claims.Scp.(type) {
	case string:
		words = append(words, strings.Fields(scp)...)
	case []any:
		for _, w := range scp {
			if s, ok := w.(string); ok {
				words = append(words, s)
			}
		}
	}
	p := Principal{Subject: t.Subject, Method: "bearer"}
	for _, w := range words {
		if s, ok := ParseScope(w); ok && s > p.Scope {
			p.Scope = s
		}
	}
	return p, nil
}
