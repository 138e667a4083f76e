// Package apitest is a small HTTP client for end-to-end tests and tools: it
// drives a running API the way a user does and fails the test on surprises.
package apitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Client talks to the API at Base.
type Client struct {
	Base string
	HTTP *http.Client
}

// New returns a client of the API at base ("http://host:port").
func New(base string) *Client {
	return &Client{Base: base, HTTP: &http.Client{Timeout: 60 * time.Second}}
}

// Response is a decoded answer.
type Response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

// String returns the field as a string ("" if absent).
func (r Response) String(field string) string {
	s, _ := r.Body[field].(string)
	return s
}

// Do sends a request with a JSON body (may be "") and optional header pairs.
func (c *Client) Do(tb testing.TB, method, path, body string, header ...string) Response {
	tb.Helper()
	r, err := c.Try(method, path, body, header...)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// Try is Do that returns transport and decoding errors instead of failing
// the test (for requests to a server that may be gone).
func (c *Client) Try(method, path, body string, header ...string) (Response, error) {
	req, err := http.NewRequest(method, c.Base+path, strings.NewReader(body))
	if err != nil {
		return Response{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("read body: %w", err)
	}
	r := Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			return r, fmt.Errorf("body is not a JSON object: %w: %s", err, raw)
		}
	}
	return r, nil
}

// Expect is Do that fails unless the status is want.
func (c *Client) Expect(tb testing.TB, want int, method, path, body string, header ...string) Response {
	tb.Helper()
	r := c.Do(tb, method, path, body, header...)
	if r.Status != want {
		tb.Fatalf("%s %s: got status %d, want %d: %s", method, path, r.Status, want, r.Raw)
	}
	return r
}

// WaitCommand long-polls a command until it is APPLIED or REJECTED (or
// fails the test after limit) and returns its status answer.
func (c *Client) WaitCommand(tb testing.TB, commandUUID string, limit time.Duration) Response {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		r := c.Expect(tb, http.StatusOK, "GET", "/v1/commands/"+commandUUID+"?wait=5s", "")
		if s := r.String("status"); s == "APPLIED" || s == "REJECTED" {
			return r
		}
		if time.Now().After(deadline) {
			tb.Fatalf("command %s still %s after %s", commandUUID, r.String("status"), limit)
		}
	}
}

// MustApply sends a command-issuing request, expects 202 and waits until the
// command is APPLIED. It returns the 202 answer.
func (c *Client) MustApply(tb testing.TB, method, path, body string) Response {
	tb.Helper()
	r := c.Expect(tb, http.StatusAccepted, method, path, body)
	st := c.WaitCommand(tb, r.String("commandUUID"), 30*time.Second)
	if st.String("status") != "APPLIED" {
		tb.Fatalf("%s %s: command %s: %s", method, path, st.String("status"), st.Raw)
	}
	return r
}

// WaitExecution polls an execution until cond holds for it.
func (c *Client) WaitExecution(tb testing.TB, id string, limit time.Duration, what string, cond func(Response) bool) Response {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		r := c.Do(tb, "GET", "/v1/workflow-executions/"+id, "")
		if r.Status == http.StatusOK && cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			tb.Fatalf("execution %s: not %s after %s: %d %s", id, what, limit, r.Status, r.Raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ManualWorkflow returns a creation body of a workflow of n manual steps.
func ManualWorkflow(name string, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"step-%d","type":"manual"}`, i)
	}
	return fmt.Sprintf(`{"name":%q,"steps":[%s]}`, name, b.String())
}

// Number returns a JSON number field as an int.
func (r Response) Number(field string) int {
	f, _ := r.Body[field].(float64)
	return int(f)
}
