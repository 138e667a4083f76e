// Package secrets resolves the secret references of http steps
// ({{secret:NAME}} in a url or a header value; docs/api.md, "Secrets") at
// call time, from outside the definition: the environment or a directory
// of files for workflowd. The values are never stored, logged or shown.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrNotFound: no source has the secret.
var ErrNotFound = errors.New("not found")

// Source resolves a secret by name.
type Source interface {
	Secret(ctx context.Context, name string) (string, error)
}

// EnvName is the environment variable that holds secret name for Env:
// WORKFLOWD_SECRET_ and the name upper-cased, with . and - as _.
func EnvName(name string) string {
	return "WORKFLOWD_SECRET_" + strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(name))
}

// Env reads secrets from the environment (EnvName).
type Env struct {
	Getenv func(string) string // nil: os.Getenv
}

func (e Env) Secret(_ context.Context, name string) (string, error) {
	get := e.Getenv
	if get == nil {
		get = os.Getenv
	}
	if v := get(EnvName(name)); v != "" {
		return v, nil
	}
	return "", ErrNotFound
}

// Dir reads secret name from the file Dir/name (a final line break
// dropped), as Kubernetes and Docker mount them.
type Dir string

func (d Dir) Secret(_ context.Context, name string) (string, error) {
	if d == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", ErrNotFound
	}
	b, err := os.ReadFile(filepath.Join(string(d), name))
	if errors.Is(err, os.ErrNotExist) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read the secret's file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// Chain asks each source in turn; the first that has the secret answers.
type Chain []Source

func (c Chain) Secret(ctx context.Context, name string) (string, error) {
	for _, s := range c {
		v, err := s.Secret(ctx, name)
		if !errors.Is(err, ErrNotFound) {
			return v, err
		}
	}
	return "", fmt.Errorf("%w (looked in the environment as %s and the secrets directory)", ErrNotFound, EnvName(name))
}
