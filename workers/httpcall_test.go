package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/workers"
)

// httpSecret is a header value every Call test sends; no reason may quote it.
const httpSecret = "Bearer s3cr3t-t0ken-do-not-log"

// httpSeen is one request as the test server received it.
type httpSeen struct {
	Method string
	Path   string
	Host   string
	Header http.Header
	Body   string
}

// httpServer is an httptest server that records requests and connections.
type httpServer struct {
	*httptest.Server
	mu    sync.Mutex
	seen  []httpSeen
	conns atomic.Int64
}

// newHTTPServer starts a recording server running h; it closes at cleanup.
func newHTTPServer(t *testing.T, h http.HandlerFunc) *httpServer {
	t.Helper()
	s := &httpServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.seen = append(s.seen, httpSeen{Method: r.Method, Path: r.URL.Path, Host: r.Host, Header: r.Header.Clone(), Body: string(body)})
		s.mu.Unlock()
		h(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// hostPort is the server's host:port, as an allowlist entry.
func (s *httpServer) hostPort() string { return strings.TrimPrefix(s.URL, "http://") }

// requests returns the requests received so far.
func (s *httpServer) requests() []httpSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.seen)
}

// httpAnswer answers status with body.
func httpAnswer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// httpBlockUntilGone waits for the client to go away (or 10s), after first
// writing head and part of a body when partial is set.
func httpBlockUntilGone(partial bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if partial {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"partial":`))
			w.(http.Flusher).Flush()
		}
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
}

// mustHTTPStepError returns err as a *workers.StepError, checking the
// properties every reason has.
func mustHTTPStepError(t *testing.T, err error) *workers.StepError {
	t.Helper()
	var se *workers.StepError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want *workers.StepError", err, err)
	}
	if strings.ContainsAny(se.Reason, "\r\n") {
		t.Errorf("reason %q is not one line", se.Reason)
	}
	if strings.Contains(se.Reason, "s3cr3t") {
		t.Errorf("reason %q quotes a header value", se.Reason)
	}
	if se.Error() != se.Reason {
		t.Errorf("Error() = %q, want the reason %q", se.Error(), se.Reason)
	}
	return se
}

func TestHTTPCall(t *testing.T) {
	big := `{"pad":"` + strings.Repeat("x", 2000) + `"}`
	atLimit := `{"pad":"` + strings.Repeat("x", 1024-10) + `"}`
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		path      string            // requested path; "/" if empty
		method    string            // HTTPRequest.Method
		headers   map[string]string // added to the secret Authorization header
		body      string            // HTTPRequest.Body
		timeout   time.Duration
		noKey     bool   // send no HTTPRequest.IdempotencyKey
		want      string // output; "" means nil
		wantErr   bool   // a retryable StepError
		errName   string // its name
		reasonHas []string
		check     func(t *testing.T, seen []httpSeen)
	}{
		{
			name:    "json_2xx_is_output_as_received",
			handler: httpAnswer(200, " \n{\"ok\": true, \"n\": [1, 2]}\n"),
			want:    `{"ok": true, "n": [1, 2]}`,
		},
		{
			name:    "201_json_is_output",
			handler: httpAnswer(201, `"created"`),
			want:    `"created"`,
		},
		{
			name:    "204_empty_body_is_nil_output",
			handler: httpAnswer(204, ""),
		},
		{
			name:    "200_blank_body_is_nil_output",
			handler: httpAnswer(200, " \r\n "),
		},
		{
			name:    "post_sends_body_and_our_headers",
			handler: httpAnswer(200, `{}`),
			body:    `{"order":42}`,
			want:    `{}`,
			check: func(t *testing.T, seen []httpSeen) {
				r := seen[0]
				if r.Method != http.MethodPost || r.Body != `{"order":42}` {
					t.Errorf("got %s with body %q, want POST with the step body", r.Method, r.Body)
				}
				httpWantHeaders(t, r.Header, map[string]string{
					"Content-Type":    "application/json",
					"Accept":          "application/json",
					"User-Agent":      "workflowd",
					"Idempotency-Key": "key-1",
					"Authorization":   httpSecret,
				})
			},
		},
		{
			name:    "get_sends_no_body",
			handler: httpAnswer(200, `{}`),
			method:  "GET",
			body:    `{"order":42}`,
			want:    `{}`,
			check: func(t *testing.T, seen []httpSeen) {
				r := seen[0]
				if r.Method != http.MethodGet || r.Body != "" {
					t.Errorf("got %s with body %q, want GET without body", r.Method, r.Body)
				}
				if ct := r.Header.Get("Content-Type"); ct != "" {
					t.Errorf("Content-Type = %q, want none without a body", ct)
				}
				httpWantHeaders(t, r.Header, map[string]string{"Idempotency-Key": "key-1", "Accept": "application/json"})
			},
		},
		{
			name:    "put_sends_body",
			handler: httpAnswer(200, `{}`),
			method:  "put",
			body:    `[1]`,
			want:    `{}`,
			check: func(t *testing.T, seen []httpSeen) {
				if r := seen[0]; r.Method != http.MethodPut || r.Body != `[1]` {
					t.Errorf("got %s with body %q, want PUT with the step body", r.Method, r.Body)
				}
			},
		},
		{
			name:    "step_headers_arrive_but_cannot_override_ours",
			handler: httpAnswer(200, `{}`),
			body:    `{"a":1}`,
			headers: map[string]string{
				"X-Trace":         "trace-7",
				"idempotency-key": "forged",
				"Host":            "evil.example",
				"Content-Length":  "999",
				"Accept":          "application/vnd.api+json",
			},
			want: `{}`,
			check: func(t *testing.T, seen []httpSeen) {
				r := seen[0]
				httpWantHeaders(t, r.Header, map[string]string{
					"X-Trace":         "trace-7",
					"Idempotency-Key": "key-1",
					"Accept":          "application/vnd.api+json",
				})
				if got := r.Header.Values("Idempotency-Key"); len(got) != 1 {
					t.Errorf("Idempotency-Key values = %q, want one", got)
				}
				if r.Host == "evil.example" || r.Body != `{"a":1}` {
					t.Errorf("host %q body %q: step headers changed Host or Content-Length", r.Host, r.Body)
				}
			},
		},
		{
			name:    "step_cannot_supply_a_missing_idempotency_key",
			handler: httpAnswer(200, `{}`),
			headers: map[string]string{"Idempotency-Key": "forged"},
			noKey:   true,
			want:    `{}`,
			check: func(t *testing.T, seen []httpSeen) {
				if got := seen[0].Header.Values("Idempotency-Key"); len(got) != 0 {
					t.Errorf("Idempotency-Key = %q, want none", got)
				}
			},
		},
		{
			name:      "500_is_retryable_with_status_and_body",
			handler:   httpAnswer(500, "boom:\nqueue\x00full\r\n"),
			wantErr:   true,
			errName:   "http.status.5xx",
			reasonHas: []string{"500", "boom: queue full"},
		},
		{
			name: "error_body_echoing_a_header_is_redacted",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = fmt.Fprintf(w, "bad credentials %s", r.Header.Get("Authorization"))
			},
			wantErr:   true,
			errName:   "http.status.4xx",
			reasonHas: []string{"401", "bad credentials [redacted]"},
		},
		{
			name:      "long_error_body_is_cut",
			handler:   httpAnswer(503, strings.Repeat("y", 1000)+"TAIL"),
			wantErr:   true,
			errName:   "http.status.5xx",
			reasonHas: []string{"503", strings.Repeat("y", 200) + "..."},
		},
		{
			name:      "2xx_not_json_is_retryable",
			handler:   httpAnswer(200, "<html>ok</html>"),
			wantErr:   true,
			errName:   "http.bad-response",
			reasonHas: []string{"response is not JSON"},
		},
		{
			name:      "body_over_limit_with_length_is_retryable",
			handler:   httpAnswer(200, big),
			wantErr:   true,
			errName:   "http.bad-response",
			reasonHas: []string{"response body over 1024 bytes"},
		},
		{
			name: "body_over_limit_chunked_is_retryable",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(200)
				w.(http.Flusher).Flush() // no Content-Length
				_, _ = w.Write([]byte(big))
			},
			wantErr:   true,
			errName:   "http.bad-response",
			reasonHas: []string{"response body over 1024 bytes"},
		},
		{
			name:    "body_at_limit_is_output",
			handler: httpAnswer(200, atLimit),
			want:    atLimit,
		},
		{
			name:      "timeout_waiting_for_answer_is_retryable",
			handler:   httpBlockUntilGone(false),
			timeout:   100 * time.Millisecond,
			wantErr:   true,
			errName:   "http.timeout",
			reasonHas: []string{"timed out after 100ms"},
		},
		{
			name:      "timeout_reading_body_is_retryable",
			handler:   httpBlockUntilGone(true),
			timeout:   100 * time.Millisecond,
			wantErr:   true,
			errName:   "http.timeout",
			reasonHas: []string{"timed out after 100ms"},
		},
		{
			name:    "same_host_redirect_is_followed",
			handler: httpHops,
			path:    "/hop/1",
			body:    `{"a":1}`,
			want:    `{"hop":0}`,
			check: func(t *testing.T, seen []httpSeen) {
				if len(seen) != 2 {
					t.Fatalf("server saw %d requests, want 2", len(seen))
				}
				last := seen[1]
				if last.Path != "/hop/0" || last.Body != `{"a":1}` || last.Header.Get("Idempotency-Key") != "key-1" {
					t.Errorf("redirected request = %s body %q key %q, want /hop/0 with body and key",
						last.Path, last.Body, last.Header.Get("Idempotency-Key"))
				}
			},
		},
		{
			name:    "five_redirects_are_followed",
			handler: httpHops,
			path:    "/hop/5",
			want:    `{"hop":0}`,
		},
		{
			name:      "sixth_redirect_is_not_followed",
			handler:   httpHops,
			path:      "/hop/6",
			wantErr:   true,
			errName:   "http.redirect",
			reasonHas: []string{"stopped after 5 redirects"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newHTTPServer(t, tt.handler)
			c := &workers.HTTPCaller{AllowHosts: []string{srv.hostPort()}, MaxResponseBytes: 1024}
			headers := map[string]string{"Authorization": httpSecret}
			for k, v := range tt.headers {
				headers[k] = v
			}
			path := tt.path
			if path == "" {
				path = "/"
			}
			req := workers.HTTPRequest{
				URL:            srv.URL + path,
				Method:         tt.method,
				Headers:        headers,
				Timeout:        tt.timeout,
				IdempotencyKey: "key-1",
			}
			if tt.body != "" {
				req.Body = []byte(tt.body)
			}
			if tt.noKey {
				req.IdempotencyKey = ""
			}
			start := time.Now()
			got, err := c.Call(context.Background(), req)
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("Call took %v, want the attempt bounded", elapsed)
			}
			if tt.wantErr {
				se := mustHTTPStepError(t, err)
				if !se.Retryable || se.Name != tt.errName {
					t.Errorf("Retryable, Name = %v, %q, want true, %q (%s)", se.Retryable, se.Name, tt.errName, se.Reason)
				}
				for _, s := range tt.reasonHas {
					if !strings.Contains(se.Reason, s) {
						t.Errorf("reason %q does not contain %q", se.Reason, s)
					}
				}
				if got != nil {
					t.Errorf("output = %s, want nil on failure", got)
				}
			} else {
				if err != nil {
					t.Fatalf("Call: %v", err)
				}
				if tt.want == "" && got != nil {
					t.Errorf("output = %q, want nil", got)
				}
				if string(got) != tt.want {
					t.Errorf("output = %s, want %s", got, tt.want)
				}
			}
			if tt.check != nil {
				seen := srv.requests()
				if len(seen) == 0 {
					t.Fatal("server saw no request")
				}
				tt.check(t, seen)
			}
		})
	}
}

// httpHops answers /hop/N with a same-host redirect to /hop/N-1, and /hop/0
// with JSON.
func httpHops(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/hop/"))
	if err != nil {
		http.Error(w, "bad hop", http.StatusBadRequest)
		return
	}
	if n > 0 {
		http.Redirect(w, r, fmt.Sprintf("/hop/%d", n-1), http.StatusTemporaryRedirect)
		return
	}
	_, _ = fmt.Fprint(w, `{"hop":0}`)
}

// httpWantHeaders checks that each header in want arrived with that value.
func httpWantHeaders(t *testing.T, got http.Header, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if g := got.Get(k); g != v {
			t.Errorf("header %s = %q, want %q", k, g, v)
		}
	}
}

func TestHTTPCallRefusesHostsNotAllowed(t *testing.T) {
	srv := newHTTPServer(t, httpAnswer(200, `{}`))
	tests := []struct {
		name   string
		caller *workers.HTTPCaller
	}{
		{"other_host_listed", &workers.HTTPCaller{AllowHosts: []string{"api.example.com:443", "127.0.0.1:1"}}},
		{"same_host_other_port", &workers.HTTPCaller{AllowHosts: []string{"127.0.0.1:65535"}}},
		{"empty_allowlist", &workers.HTTPCaller{AllowHosts: []string{}}},
		{"zero_value", &workers.HTTPCaller{}},
		{"nil_caller", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.caller.Call(context.Background(), workers.HTTPRequest{
				URL:     srv.URL + "/x",
				Headers: map[string]string{"Authorization": httpSecret},
				Body:    []byte(`{}`),
			})
			se := mustHTTPStepError(t, err)
			if se.Retryable || se.Name != model.ErrHTTPHostNotAllowed {
				t.Errorf("Retryable, Name = %v, %q, want false, %s (%s)", se.Retryable, se.Name, model.ErrHTTPHostNotAllowed, se.Reason)
			}
			for _, s := range []string{srv.hostPort(), "not in WORKFLOW_HTTP_ALLOW_HOSTS"} {
				if !strings.Contains(se.Reason, s) {
					t.Errorf("reason %q does not contain %q", se.Reason, s)
				}
			}
		})
	}
	if n, conns := len(srv.requests()), srv.conns.Load(); n != 0 || conns != 0 {
		t.Errorf("server saw %d requests on %d connections, want none", n, conns)
	}
}

func TestHTTPCallCrossHostRedirectIsNotFollowed(t *testing.T) {
	for _, allowTarget := range []bool{false, true} {
		t.Run(fmt.Sprintf("target_allowlisted=%v", allowTarget), func(t *testing.T) {
			target := newHTTPServer(t, httpAnswer(200, `{"from":"target"}`))
			origin := newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/landing", http.StatusFound)
			})
			allow := []string{origin.hostPort()}
			if allowTarget {
				allow = append(allow, target.hostPort())
			}
			c := &workers.HTTPCaller{AllowHosts: allow}
			got, err := c.Call(context.Background(), workers.HTTPRequest{URL: origin.URL + "/start", IdempotencyKey: "k"})
			se := mustHTTPStepError(t, err)
			if !se.Retryable || se.Name != model.ErrHTTPRedirect || !strings.Contains(se.Reason, "redirected to http://"+target.hostPort()) {
				t.Errorf("got %+v, want a retryable failure naming http://%s", se, target.hostPort())
			}
			if got != nil {
				t.Errorf("output = %s, want nil", got)
			}
			if n, conns := len(target.requests()), target.conns.Load(); n != 0 || conns != 0 {
				t.Errorf("redirect target saw %d requests on %d connections, want none", n, conns)
			}
			if n := len(origin.requests()); n != 1 {
				t.Errorf("origin saw %d requests, want 1", n)
			}
		})
	}
}

func TestHTTPCallCancelled(t *testing.T) {
	srv := newHTTPServer(t, httpBlockUntilGone(false))
	c := &workers.HTTPCaller{AllowHosts: []string{srv.hostPort()}}
	tests := []struct {
		name   string
		cancel func(cancel context.CancelFunc)
	}{
		{"before_the_call", func(cancel context.CancelFunc) { cancel() }},
		{"during_the_call", func(cancel context.CancelFunc) { time.AfterFunc(50*time.Millisecond, cancel) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tt.cancel(cancel)
			_, err := c.Call(ctx, workers.HTTPRequest{URL: srv.URL, Timeout: time.Minute})
			se := mustHTTPStepError(t, err)
			if !se.Retryable || se.Name != model.ErrHTTPConnection || !strings.Contains(se.Reason, "cancelled") {
				t.Errorf("got %+v, want a retryable failure mentioning cancellation", se)
			}
		})
	}
}

func TestHTTPCallNetworkErrorIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	hp := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens there any more
	c := &workers.HTTPCaller{AllowHosts: []string{hp}}
	_, err := c.Call(context.Background(), workers.HTTPRequest{URL: srv.URL, Headers: map[string]string{"Authorization": httpSecret}})
	se := mustHTTPStepError(t, err)
	if !se.Retryable || se.Name != model.ErrHTTPConnection || !strings.Contains(se.Reason, "request failed") || strings.Contains(se.Reason, srv.URL) {
		t.Errorf("got %+v, want a retryable network failure without the URL", se)
	}
}

// httpRoundTripFunc is an http.RoundTripper made of a function.
type httpRoundTripFunc func(*http.Request) (*http.Response, error)

func (f httpRoundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// httpStubTransport answers 200 {} and counts requests.
func httpStubTransport(n *atomic.Int64) http.RoundTripper {
	return httpRoundTripFunc(func(r *http.Request) (*http.Response, error) {
		n.Add(1)
		return &http.Response{
			StatusCode: 200,
			Header:     http.Header{"Content-Type": {"application/json"}},
			Body:       http.NoBody,
			Request:    r,
		}, nil
	})
}

func TestHTTPCallAllowlistMatching(t *testing.T) {
	allow := []string{"API.Example.com:443", "example.org:80", "[::1]:8080", " spaced.example:81 ", "garbage"}
	tests := []struct {
		url     string
		allowed bool
	}{
		{"https://api.example.COM/v1", true},
		{"https://api.example.com:443/v1", true},
		{"http://api.example.com/v1", false}, // port 80
		{"http://example.org/", true},
		{"http://example.org:080/", true},
		{"https://example.org/", false}, // port 443
		{"http://example.org:8080/", false},
		{"http://[::1]:8080/", true},
		{"http://[0:0::1]:8080/", true},
		{"http://[::1]/", false},
		{"http://spaced.example:81/", true},
		{"http://evil.example/?next=example.org:80", false},
		{"http://example.org.evil.example/", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			var n atomic.Int64
			c := &workers.HTTPCaller{AllowHosts: allow, Transport: httpStubTransport(&n)}
			_, err := c.Call(context.Background(), workers.HTTPRequest{URL: tt.url})
			if tt.allowed && err != nil {
				t.Errorf("Call: %v, want allowed", err)
			}
			if !tt.allowed {
				if se := mustHTTPStepError(t, err); se.Retryable || n.Load() != 0 {
					t.Errorf("got %+v after %d requests, want a non-retryable refusal before sending", se, n.Load())
				}
			}
		})
	}
}

func TestHTTPCallInvalidRequestIsNotRetryable(t *testing.T) {
	tests := []struct {
		name      string
		req       workers.HTTPRequest
		reasonHas string
	}{
		{"ftp_scheme", workers.HTTPRequest{URL: "ftp://ok.example:21/f"}, "not http or https"},
		{"file_scheme", workers.HTTPRequest{URL: "file:///etc/passwd"}, "not http or https"},
		{"no_host", workers.HTTPRequest{URL: "http:///x"}, "no host"},
		{"unparseable_url", workers.HTTPRequest{URL: "http://ok.example:80/%zz"}, "invalid url"},
		{"bad_method", workers.HTTPRequest{URL: "http://ok.example/", Method: "GE T"}, "method"},
		{"bad_header_name", workers.HTTPRequest{URL: "http://ok.example/", Headers: map[string]string{"X Bad": "v"}}, "header name"},
		{"header_value_with_newline", workers.HTTPRequest{URL: "http://ok.example/", Headers: map[string]string{"Authorization": httpSecret + "\r\nX-Injected: 1"}}, "header Authorization has an invalid value"},
		{"body_not_json", workers.HTTPRequest{URL: "http://ok.example/", Body: []byte("{oops")}, "request body is not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int64
			c := &workers.HTTPCaller{AllowHosts: []string{"ok.example:80", "ok.example:21"}, Transport: httpStubTransport(&n)}
			_, err := c.Call(context.Background(), tt.req)
			se := mustHTTPStepError(t, err)
			if se.Retryable || se.Name != model.ErrHTTPInvalidRequest || !strings.Contains(se.Reason, tt.reasonHas) || n.Load() != 0 {
				t.Errorf("got %+v after %d requests, want a non-retryable %s containing %q, nothing sent", se, n.Load(), model.ErrHTTPInvalidRequest, tt.reasonHas)
			}
		})
	}
}

func TestHTTPCallConcurrent(t *testing.T) {
	var hits atomic.Int64
	srv := newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]string{"key": r.Header.Get("Idempotency-Key")})
	})
	c := &workers.HTTPCaller{AllowHosts: []string{srv.hostPort()}}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			key := fmt.Sprint("k", i)
			got, err := c.Call(context.Background(), workers.HTTPRequest{URL: srv.URL, IdempotencyKey: key})
			if want := `{"key":"` + key + `"}`; err != nil || string(got) != want {
				t.Errorf("Call = %s, %v; want %s", got, err, want)
			}
		})
	}
	wg.Wait()
	if hits.Load() != 20 {
		t.Errorf("server saw %d requests, want 20", hits.Load())
	}
}

func TestParseAllowHosts(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string // the bad entry the error must name
	}{
		{name: "empty", in: "", want: nil},
		{name: "only_separators", in: " , ,", want: nil},
		{name: "one", in: "api.example.com:443", want: []string{"api.example.com:443"}},
		{name: "spaces_and_case", in: " API.Example.com:443 , localhost:8080,,", want: []string{"api.example.com:443", "localhost:8080"}},
		{name: "ipv4", in: "127.0.0.1:1", want: []string{"127.0.0.1:1"}},
		{name: "ipv6", in: "[::1]:8080,[2001:DB8::1]:65535", want: []string{"[::1]:8080", "[2001:db8::1]:65535"}},
		{name: "leading_zero_port", in: "a.example:0080", want: []string{"a.example:80"}},
		{name: "no_port", in: "api.example.com", wantErr: `"api.example.com"`},
		{name: "empty_port", in: "api.example.com:", wantErr: `"api.example.com:"`},
		{name: "port_zero", in: "a.example:0", wantErr: `"a.example:0"`},
		{name: "port_too_big", in: "a.example:65536", wantErr: `"a.example:65536"`},
		{name: "port_not_numeric", in: "a.example:https", wantErr: `"a.example:https"`},
		{name: "port_signed", in: "a.example:+80", wantErr: `"a.example:+80"`},
		{name: "no_host", in: ":80", wantErr: `":80"`},
		{name: "ipv6_without_brackets", in: "::1:8080", wantErr: `"::1:8080"`},
		{name: "brackets_around_name", in: "[a.example]:80", wantErr: `"[a.example]:80"`},
		{name: "url_prefix", in: "HTTPS://API.example.com/v1/, http://a.example:8080", want: []string{"https://api.example.com:443/v1/", "http://a.example:8080"}},
		{name: "url_prefix_unclean", in: "https://a.example/v1/../admin", wantErr: `"https://a.example/v1/../admin"`},
		{name: "url_prefix_with_query", in: "https://a.example/v1?x=1", wantErr: `"https://a.example/v1?x=1"`},
		{name: "url_prefix_other_scheme", in: "ftp://a.example/", wantErr: `"ftp://a.example/"`},
		{name: "path", in: "a.example/x:80", wantErr: `"a.example/x:80"`},
		{name: "bad_entry_among_good", in: "a.example:80, b.example ,c.example:81", wantErr: `"b.example"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := workers.ParseAllowHosts(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "WORKFLOW_HTTP_ALLOW_HOSTS") {
					t.Fatalf("ParseAllowHosts(%q) = %q, %v; want an error naming %s", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("ParseAllowHosts(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}
