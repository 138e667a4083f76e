package secrets_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/workflowd/workflowd/secrets"
)

func TestSources(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "db-password"), []byte("from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := secrets.Env{Getenv: func(k string) string {
		return map[string]string{"WORKFLOWD_SECRET_SHOP_TOKEN": "from-env", "WORKFLOWD_SECRET_DB_PASSWORD": ""}[k]
	}}
	c := secrets.Chain{env, secrets.Dir(dir)}
	for _, tc := range []struct{ name, want string }{{"shop-token", "from-env"}, {"shop.token", "from-env"}, {"db-password", "from-a-file"}} {
		if v, err := c.Secret(ctx, tc.name); err != nil || v != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.name, v, err, tc.want)
		}
	}
	for _, name := range []string{"missing", "../etc/passwd", ".."} {
		if _, err := c.Secret(ctx, name); !errors.Is(err, secrets.ErrNotFound) || !strings.Contains(err.Error(), "WORKFLOWD_SECRET_") {
			t.Errorf("%s: %v, want not found naming where it looked", name, err)
		}
	}
}
