package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// workflowd replay refuses what it cannot replay with an error that says
// why, before it touches the deployment.
func TestReplayRefusesBadInput(t *testing.T) {
	deployment := map[string]string{
		"EVENTS_TABLE": "wf-events", "VIEWS_TABLE": "wf-views", "TOPIC_ARN": "arn:aws:sns:us-east-1:1:wf",
		"WORKFLOWS_QUEUE_URL": "http://127.0.0.1:1/1/wf-workflows", "EXECUTIONS_QUEUE_URL": "http://127.0.0.1:1/1/wf-executions",
		"AWS_REGION": "us-east-1",
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"Records":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"nothing_to_replay", nil, deployment, "give -queue or at least one FILE"},
		{"no_deployment", []string{bad}, map[string]string{}, "EVENTS_TABLE is not set"},
		{"not_a_failure_message", []string{bad}, deployment, "no DDBStreamBatchInfo"},
		{"no_such_file", []string{filepath.Join(t.TempDir(), "none.json")}, deployment, "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runReplay(context.Background(), tt.args, func(k string) string { return tt.env[k] }, strings.NewReader(""), &out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
	if err := runReplay(context.Background(), []string{"-h"}, func(string) string { return "" }, nil, &bytes.Buffer{}); err != nil {
		t.Fatalf("-h: %v", err)
	}
}
