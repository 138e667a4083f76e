package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/workflowd/workflowd/api"
	"github.com/workflowd/workflowd/auth"
)

const (
	testReadKey  = "reader-key-0123456789abcdef"
	testWriteKey = "writer-key-0123456789abcdef"
	testAdminKey = "admins-key-0123456789abcdef"
)

func withKeys(tb testing.TB) envOption {
	keys, err := auth.ParseKeys("reader:read:" + testReadKey + ",ci:write:" + testWriteKey + ",ops:admin:" + testAdminKey)
	if err != nil {
		tb.Fatal(err)
	}
	return func(cfg *api.Config) { cfg.Auth = &auth.Chain{Keys: keys} }
}

// With authentication configured every route but health and the document
// needs a credential of its scope: missing or wrong ones are 401, too
// narrow ones 403, each a problem that changes nothing.
func TestAuthentication(t *testing.T) {
	e := newEnv(t, withKeys(t))
	wf := e.seedWorkflow(t, definition("orders", 1), t0)
	x := e.seedExecution(t, wf, t0, 0)
	xPath := "/v1/workflow-executions/" + x.WorkflowExecutionUUID.String()
	for _, tc := range []struct {
		name, method, path, body string
		headers                  []string
		want                     int
		has                      string
	}{
		{"no credentials", "GET", "/v1/workflows", "", nil, 401, "no credentials"},
		{"a wrong key", "POST", "/v1/workflows", validDef, []string{"Authorization", "Bearer wrong-key-0123456789abcdef"}, 401, "not valid"},
		{"basic auth", "GET", xPath, "", []string{"Authorization", "Basic YTpi"}, 401, "Bearer"},
		{"a token without an issuer", "GET", xPath, "", []string{"Authorization", "Bearer eyJhbGciOi.eyJzdWIi.c2ln"}, 401, "no OIDC issuer"},
		{"read key on a write", "POST", "/v1/workflows", validDef, []string{"X-API-Key", testReadKey}, 403, `api-key "reader" has scope read; POST /v1/workflows needs write`},
		{"read key on an increment", "POST", xPath + "/increments", `{"step":0}`, []string{"X-API-Key", testReadKey}, 403, "needs write"},
		{"write key on dead letters", "GET", "/v1/queues/executions/dead-letters", "", []string{"X-API-Key", testWriteKey}, 403, "needs admin"},
		{"write key on a redrive of dead letters", "POST", "/v1/queues/executions/redrive", "", []string{"Authorization", "Bearer " + testWriteKey}, 403, "needs admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.pub.published())
			commands, keys := e.cmds.counts()
			r := e.do(t, tc.method, tc.path, tc.body, tc.headers...)
			r.wantStatus(t, tc.want)
			p := r.problem(t)
			kind := map[int]string{401: "unauthenticated", 403: "forbidden"}[tc.want]
			if p.Type != "urn:workflowd:problem:"+kind || !strings.Contains(p.Detail, tc.has) {
				t.Errorf("got %+v, want %s saying %q", p, kind, tc.has)
			}
			if tc.want == 401 && r.header.Get("WWW-Authenticate") != `Bearer realm="workflowd"` {
				t.Errorf("WWW-Authenticate: %q", r.header.Get("WWW-Authenticate"))
			}
			if strings.Contains(string(r.body), "key-0123456789") {
				t.Errorf("the answer quotes a key: %s", r.body)
			}
			if n := len(e.pub.published()) - before; n != 0 {
				t.Errorf("%d messages published", n)
			}
			if c, k := e.cmds.counts(); c != commands || k != keys {
				t.Errorf("%d commands and %d idempotency keys recorded", c-commands, k-keys)
			}
		})
	}
	// What each scope may do.
	e.do(t, "GET", "/healthz", "").wantStatus(t, http.StatusOK)
	e.do(t, "GET", "/v1/openapi.json", "").wantStatus(t, http.StatusOK)
	e.do(t, "GET", xPath, "", "X-API-Key", testReadKey).wantStatus(t, http.StatusOK)
	e.do(t, "POST", "/v1/workflows", validDef, "Authorization", "Bearer "+testWriteKey).wantStatus(t, http.StatusAccepted)
	e.do(t, "GET", "/v1/workflows", "", "Authorization", "Bearer "+testAdminKey).wantStatus(t, http.StatusOK)
	// No dead-letter queues in this env: past the scope check, 501.
	e.do(t, "GET", "/v1/queues/executions/dead-letters", "", "X-API-Key", testAdminKey).wantStatus(t, http.StatusNotImplemented)
}
