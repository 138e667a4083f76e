package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// keysFile writes a keys file of one admin key and a comment.
func keysFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(p, []byte("# operators\nops:admin:sha256:"+strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSettings(t *testing.T) {
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name    string
		args    []string
		env     func(string) string
		check   func(t *testing.T, s settings)
		wantErr string
	}{
		{name: "defaults", env: env(), check: func(t *testing.T, s settings) {
			if s.addr != "127.0.0.1:8080" || s.dataDir != "./data" || s.backend != "embedded" || s.visibilityTimeout != 30*time.Second ||
				s.maxReceiveCount != 5 || s.workers != 64 || s.memoryLimit != 100<<20 || s.awsPrefix != "workflowd" ||
				len(s.httpAllowHosts) != 0 || s.cleanupInterval != time.Minute || s.retention != 720*time.Hour {
				t.Errorf("defaults: %+v", s)
			}
		}},
		{name: "steps_from_env", env: env("WORKFLOW_HTTP_ALLOW_HOSTS", " api.example.com:443 , 127.0.0.1:9000", "WORKFLOWD_CLEANUP_INTERVAL", "10s", "WORKFLOWD_RETENTION", "0"),
			check: func(t *testing.T, s settings) {
				if strings.Join(s.httpAllowHosts, ",") != "api.example.com:443,127.0.0.1:9000" || s.cleanupInterval != 10*time.Second || s.retention != 0 {
					t.Errorf("steps: %+v", s)
				}
			}},
		{name: "allow_host_without_port", args: []string{"-http-allow-hosts", "api.example.com"}, env: env(), wantErr: "http-allow-hosts"},
		{name: "bad_retention", args: []string{"-retention", "-1h"}, env: env(), wantErr: "retention"},
		{name: "zero_cleanup_interval", args: []string{"-cleanup-interval", "0s"}, env: env(), wantErr: "cleanup-interval must be a positive duration"},
		{name: "env_sets", env: env("WORKFLOWD_ADDR", "127.0.0.1:9", "WORKFLOWD_DATA", "/tmp/x", "WORKFLOWD_BACKEND", "aws", "WORKFLOWD_MEMORY_LIMIT", "1GiB"),
			check: func(t *testing.T, s settings) {
				if s.addr != "127.0.0.1:9" || s.dataDir != "/tmp/x" || s.backend != "aws" || s.memoryLimit != 1<<30 {
					t.Errorf("from env: %+v", s)
				}
			}},
		{name: "flag_wins_over_env", args: []string{"-addr", "127.0.0.1:7"}, env: env("WORKFLOWD_ADDR", "127.0.0.1:9"),
			check: func(t *testing.T, s settings) {
				if s.addr != "127.0.0.1:7" {
					t.Errorf("addr: got %s, want the flag's", s.addr)
				}
			}},
		{name: "init_means_aws", args: []string{"init", "-aws-prefix", "demo"}, env: env(), check: func(t *testing.T, s settings) {
			if !s.initOnly || s.backend != "aws" || s.awsPrefix != "demo" {
				t.Errorf("init: %+v", s)
			}
		}},
		{name: "bad_backend", args: []string{"-backend", "mysql"}, env: env(), wantErr: "backend must be embedded or aws"},
		{name: "bad_visibility", env: env("WORKFLOWD_VISIBILITY_TIMEOUT", "soon"), wantErr: "visibility-timeout must be a positive duration"},
		{name: "zero_workers", args: []string{"-workers", "0"}, env: env(), wantErr: "workers must be a positive whole number"},
		{name: "bad_memory_limit", args: []string{"-memory-limit", "lots"}, env: env(), wantErr: "memory-limit must be a size"},
		{name: "bad_log_level", args: []string{"-log-level", "loud"}, env: env(), wantErr: "log level"},
		{name: "stray_argument", args: []string{"serve"}, env: env(), wantErr: `unexpected argument "serve"`},
		{name: "every_interface_without_auth", args: []string{"-addr", "0.0.0.0:8080"}, env: env(), wantErr: "refusing to serve the API on 0.0.0.0:8080 without authentication: give API keys"},
		{name: "no_host_without_auth", args: []string{"-addr", ":8080"}, env: env(), wantErr: "refusing to serve"},
		{name: "a_lan_address_without_auth", env: env("WORKFLOWD_ADDR", "10.1.2.3:80"), wantErr: "-insecure-no-auth"},
		{name: "open_on_purpose", args: []string{"-addr", "0.0.0.0:8080", "-insecure-no-auth"}, env: env(), check: func(t *testing.T, s settings) {
			if !s.insecureNoAuth || s.keys.Len() != 0 {
				t.Errorf("insecure: %+v", s)
			}
		}},
		{name: "keys_from_env_and_file", args: []string{"-addr", "0.0.0.0:8080", "-api-keys-file", keysFile(t)}, env: env("WORKFLOWD_API_KEYS", "ci:write:0123456789abcdef0123"),
			check: func(t *testing.T, s settings) {
				if got := strings.Join(s.keys.Names(), " "); got != "ci:write ops:admin" {
					t.Errorf("keys: %s", got)
				}
			}},
		{name: "bad_key", args: []string{"-api-keys", "ci:root:0123456789abcdef0123"}, env: env(), wantErr: "api keys: API key \"ci\": scope \"root\""},
		{name: "missing_keys_file", args: []string{"-api-keys-file", "/no/such/file"}, env: env(), wantErr: "api-keys-file"},
		{name: "oidc_without_audience", args: []string{"-oidc-issuer", "https://id.example"}, env: env(), wantErr: "audience is required"},
		{name: "oidc_is_enough", args: []string{"-addr", "0.0.0.0:8080", "-oidc-issuer", "https://id.example", "-oidc-audience", "workflowd"}, env: env(),
			check: func(t *testing.T, s settings) {
				if s.oidc.Issuer != "https://id.example" || s.oidc.Audience != "workflowd" {
					t.Errorf("oidc: %+v", s.oidc)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseSettings(tt.args, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}
