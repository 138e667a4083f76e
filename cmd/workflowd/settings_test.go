package main

import (
	"strings"
	"testing"
	"time"
)

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
