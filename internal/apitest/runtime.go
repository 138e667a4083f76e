package apitest

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/workflowd/workflowd/model"
)

// Logger is a logger for a runtime under test: warnings and errors go to
// the test's log.
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.tb.Log(string(p)); return len(p), nil }

// StartRunning creates a workflow of n manual steps and an execution of it,
// and waits until the execution is RUNNING.
func (c *Client) StartRunning(tb testing.TB, n int) (wf, ex string) {
	tb.Helper()
	wf = c.MustApply(tb, "POST", "/v1/workflows", ManualWorkflow("wf", n)).String("workflowUUID")
	ex = c.MustApply(tb, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q,"input":{"a":1}}`, wf)).String("workflowExecutionUUID")
	c.WaitExecution(tb, ex, 10*time.Second, "RUNNING", func(r Response) bool { return r.String("status") == "RUNNING" })
	return wf, ex
}

// StartWorkflow creates a workflow of the given steps (JSON) and fields
// (extra, JSON after a comma, or "") and an execution of it with the input
// {"order":7}, and returns the execution's UUID.
func (c *Client) StartWorkflow(tb testing.TB, steps string, extra string) string {
	tb.Helper()
	wf := c.MustApply(tb, "POST", "/v1/workflows", fmt.Sprintf(`{"name":"wf","steps":%s%s}`, steps, extra)).String("workflowUUID")
	return c.MustApply(tb, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q,"input":{"order":7}}`, wf)).String("workflowExecutionUUID")
}

// WaitStatus polls an execution until it has one of statuses, and returns
// its view.
func (c *Client) WaitStatus(tb testing.TB, id string, limit time.Duration, statuses ...string) model.Execution {
	tb.Helper()
	r := c.WaitExecution(tb, id, limit, strings.Join(statuses, " or "), func(r Response) bool {
		for _, s := range statuses {
			if r.String("status") == s {
				return true
			}
		}
		return false
	})
	var x model.Execution
	if err := json.Unmarshal(r.Raw, &x); err != nil {
		tb.Fatal(err)
	}
	return x
}

// HookServer is an http step's target that fails the first failures calls
// with 503, then answers {"charged":true}; it records every call.
type HookServer struct {
	*httptest.Server
	mu       sync.Mutex
	calls    []HookCall
	failures int
}

// HookCall is a call a HookServer received.
type HookCall struct {
	Key    string         // its Idempotency-Key
	Body   map[string]any // its JSON body
	URI    string         // its path and query, as sent
	Header http.Header
}

// NewHookServer starts a HookServer; it stops at the end of the test.
func NewHookServer(tb testing.TB, failures int) *HookServer {
	h := &HookServer{failures: failures}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		h.mu.Lock()
		h.calls = append(h.calls, HookCall{Key: r.Header.Get("Idempotency-Key"), Body: body, URI: r.RequestURI, Header: r.Header.Clone()})
		n := len(h.calls)
		h.mu.Unlock()
		if n <= h.failures {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"charged":true}`)
	}))
	tb.Cleanup(h.Close)
	return h
}

// Host is the server's host:port, for the allowlist of http steps.
func (h *HookServer) Host() string {
	u, _ := url.Parse(h.URL)
	return u.Host
}

// Recorded returns the calls so far, in order.
func (h *HookServer) Recorded() []HookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]HookCall(nil), h.calls...)
}

// SyncBuffer is a log that a process or a logger writes while a test
// reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

// Bytes returns a copy of what was written so far.
func (s *SyncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b...)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string { return string(s.Bytes()) }
