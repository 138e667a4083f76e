package api_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// fuzzRoutes are the routes FuzzRequestDecoding sends to; {id} is the
// fuzzed path parameter.
var fuzzRoutes = []struct{ method, path string }{
	{http.MethodPost, "/v1/workflows"},
	{http.MethodPost, "/v1/workflow-executions"},
	{http.MethodPost, "/v1/workflow-executions/{id}/increments"},
	{http.MethodPost, "/v1/workflow-executions/{id}/cancellations"},
	{http.MethodGet, "/v1/workflows"},
	{http.MethodGet, "/v1/workflow-executions"},
	{http.MethodPut, "/v1/workflows/{id}"},
	{http.MethodDelete, "/v1/workflows/{id}"},
	{http.MethodGet, "/v1/workflow-executions/{id}"},
	{http.MethodGet, "/v1/workflow-executions/{id}/events"},
	{http.MethodGet, "/v1/commands/{id}"},
}

var fuzzContentTypes = []string{"application/json", "", "application/merge-patch+json; charset=utf-8", "text/plain"}

// FuzzRequestDecoding sends arbitrary bodies, path parameters and query
// strings to the real handler over the fakes: the answer is never a 5xx,
// every 4xx is a problem+json, and every answer matches the OpenAPI
// document. route picks the route (low bits), the Content-Type (bits 4-5)
// and whether param is also sent as the Idempotency-Key (bit 7).
func FuzzRequestDecoding(f *testing.F) {
	e := newEnv(f)
	e.pub.discard = true
	wf := e.seedWorkflow(f, definition("orders", 2), t0)
	x := e.seedExecution(f, wf, t0, 0)
	wfID, xID := wf.WorkflowUUID.String(), x.WorkflowExecutionUUID.String()

	seeds := []struct {
		route        uint8
		param, query string
		body         string
	}{
		{0, "", "", `{"name":"n","description":"d","timeoutSeconds":60,"steps":[{"name":"a","type":"manual","timeoutSeconds":5}]}`},
		{0, "", "", `{"name":"n","steps":[{"name":"a","type":"http"}]}`},
		{0, "", "", `{"name":"n","steps":[{"name":"a","type":"manual"},{"name":"a","type":"manual"}]}`},
		{0, "", "", `{"name":5}`},
		{0, "", "", `{"name":"n","steps":[],"x":1}`},
		{0, "", "", `[`},
		{0x10, "", "", `{"name":"n","steps":[{"name":"a","type":"manual"}]}`},
		{0x30, "", "", `{"name":"n","steps":[{"name":"a","type":"manual"}]}`},
		{0x80, "key-1", "", `{"name":"n","steps":[{"name":"a","type":"manual"}]}`},
		{0x80, "bad key", "", `{"name":"n","steps":[{"name":"a","type":"manual"}]}`},
		{1, "", "", `{"workflowUUID":"` + wfID + `","input":{"a":[1,2.5e3,"x",null,true]}}`},
		{1, "", "", `{"workflowUUID":"` + wfID + `","input":12345678901234567890}`},
		{1, "", "", `{"workflowUUID":"00000000-0000-0000-0000-000000000000"}`},
		{1, "", "", `{"workflowUUID":"nope"}`},
		{1, "", "", `{"workflowUUID":null,"input":{}}`},
		{2, xID, "", `{"step":0,"output":{"ok":true}}`},
		{2, xID, "", `{"step":-1}`},
		{2, xID, "", `{"step":1e400}`},
		{2, "nope", "", `{"step":0}`},
		{2, "", "", `{"step":0}`},
		{3, xID, "", `{"reason":"because"}`},
		{3, xID, "", ``},
		{3, xID, "", `{"reason":1}`},
		{4, "", "limit=2", ``},
		{4, "", "limit=0&cursor=x", ``},
		{4, "", "cursor=eyJ2IjoxLCJ0IjoiMjAyNS0wMS0wMVQwMDowMDowMFoiLCJpZCI6IjEyM2U0NTY3LWU4OWItMTJkMy1hNDU2LTQyNjYxNDE3NDAwMCJ9", ``},
		{4, "", "limit=%zz;x", ``},
		{5, "", "status=RUNNING&workflowUUID=" + wfID + "&limit=1000", ``},
		{5, "", "status=running", ``},
		{5, "", "sort=asc", ``},
		{6, wfID, "", `{"name":"n2","steps":[{"name":"b","type":"manual"}]}`},
		{6, "../x", "", `{}`},
		{7, wfID, "", ``},
		{7, wfID, "", `{"force":true}`},
		{8, xID, "", ``},
		{9, xID, "after=1", ``},
		{10, wfID, "wait=10ms", ``},
		{10, wfID, "wait=NaN", ``},
	}
	for _, s := range seeds {
		f.Add(s.route, s.param, s.query, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, route uint8, param, query string, body []byte) {
		r := fuzzRoutes[int(route&0x0f)%len(fuzzRoutes)]
		if param == "" {
			param = xID
			if r.path == "/v1/workflows/{id}" {
				param = wfID
			}
		}
		u := &url.URL{Scheme: "http", Host: "api.test", Path: r.path, RawQuery: query}
		u.Path = string(bytes.ReplaceAll([]byte(u.Path), []byte("{id}"), []byte(param)))
		// Handlers over the fakes answer in microseconds; only a command long
		// poll (?wait=) lasts longer, and it is cut short.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		req := httptest.NewRequestWithContext(ctx, r.method, "/", bytes.NewReader(body))
		req.URL, req.RequestURI = u, u.RequestURI()
		if ct := fuzzContentTypes[int(route>>4)&3]; ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if route&0x80 != 0 {
			req.Header.Set("Idempotency-Key", param)
		}

		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, req)
		status, got := rec.Code, rec.Body.Bytes()
		if status == 499 && ctx.Err() != nil {
			return // a long poll outlived the request's context
		}
		if status >= 500 {
			t.Fatalf("%s %s: got %d, want no 5xx for any input; body: %s", req.Method, u, status, truncate(got))
		}
		if err := e.spec.checkResponse(req, status, rec.Header(), got); err != nil {
			t.Fatalf("%s %s: %v", req.Method, u, err)
		}
	})
}
