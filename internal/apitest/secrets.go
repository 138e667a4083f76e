package apitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/secrets"
)

// The secrets of SecretFlow's runtimes, by name, and their values.
const (
	SecretToken = "sk_live_apitest_0123456789abcdef"
	SecretKey   = "apitest-key-9876543210"
)

// Secrets is a source that has SecretFlow's secrets (shop-token,
// shop-key) and no other.
func Secrets() secrets.Source {
	return secrets.Env{Getenv: func(name string) string {
		return map[string]string{secrets.EnvName("shop-token"): SecretToken, secrets.EnvName("shop-key"): SecretKey}[name]
	}}
}

// NewEchoServer answers every call 500 with the request's Authorization
// header and URL in its body: an endpoint that leaks what it was sent.
func NewEchoServer(tb testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		http.Error(w, "bad credentials: "+r.Header.Get("Authorization")+" at "+r.URL.String(), http.StatusInternalServerError)
	}))
	tb.Cleanup(srv.Close)
	return srv
}

// SecretFlow is secret references run end to end through a runtime's API,
// the same on both backends (hook answers 2xx, echo leaks what it gets,
// both allowed; the runtime's secrets are Secrets(), logs what it logs):
// the target receives the secrets, and their values appear in no API
// answer, event, log line or error; a literal credential in a definition
// is refused, and a step whose secret is unknown fails saying so.
func SecretFlow(t *testing.T, c *Client, hook *HookServer, echo *httptest.Server, logs func() string) {
	t.Helper()
	var answers []string
	get := func(path string) Response {
		r := c.Expect(t, 200, "GET", path, "")
		answers = append(answers, string(r.Raw))
		return r
	}
	apply := func(body, path string) Response {
		r := c.MustApply(t, "POST", path, body)
		answers = append(answers, string(r.Raw))
		answers = append(answers, string(get("/v1/commands/"+r.String("commandUUID")).Raw))
		return r
	}
	// A literal credential is refused, pointing to secret references.
	r := c.Expect(t, 400, "POST", "/v1/workflows", fmt.Sprintf(`{"name":"leaky","steps":[{"name":"h","type":"http","url":%q,"headers":{"Authorization":"Bearer %s"}}]}`, hook.URL, SecretToken))
	if !strings.Contains(string(r.Raw), "{{secret:NAME}}") {
		t.Fatalf("a literal Authorization header: %s", r.Raw)
	}
	def := fmt.Sprintf(`{"name":"shop","steps":[
		{"name":"charge","type":"http","url":%q,"headers":{"Authorization":"Bearer {{secret:shop-token}}","X-Order":"{{ input.id }}"}},
		{"name":"leak","type":"http","url":%q,"headers":{"Authorization":"Bearer {{secret:shop-token}}"},
		 "catch":[{"errors":["*"],"next":"unknown"}]},
		{"name":"unknown","type":"http","url":%q,"headers":{"Authorization":"Bearer {{secret:no-such-secret}}"}}]}`,
		hook.URL+"/charge?key={{secret:shop-key}}", echo.URL+"/leak/{{secret:shop-key}}", hook.URL+"/unknown")
	wf := apply(def, "/v1/workflows").String("workflowUUID")
	calls := len(hook.Recorded())
	id := apply(fmt.Sprintf(`{"workflowUUID":%q,"input":{"id":"o-1"}}`, wf), "/v1/workflow-executions").String("workflowExecutionUUID")
	x := c.WaitStatus(t, id, 20*time.Second, model.ExecutionFailed, model.ExecutionSucceeded)
	if x.Status != model.ExecutionFailed || x.ErrorName != model.ErrSecretUnavailable || !strings.Contains(x.Error, `secret "no-such-secret"`) {
		t.Fatalf("the execution: %s %q %q, want FAILED on the unknown secret", x.Status, x.ErrorName, x.Error)
	}
	if st := x.Steps[1]; st.Status != model.StepFailed || st.ErrorName != model.ErrHTTPStatus5xx || !strings.Contains(st.Error, "[redacted]") {
		t.Fatalf("the leaking endpoint's step: %+v", st)
	}
	rec := hook.Recorded()[calls:]
	if len(rec) != 1 || rec[0].Header.Get("Authorization") != "Bearer "+SecretToken || rec[0].Header.Get("X-Order") != "o-1" {
		t.Fatalf("the target got %d calls: %+v", len(rec), rec)
	}
	if u, _ := url.ParseRequestURI(rec[0].URI); u == nil || u.Query().Get("key") != SecretKey {
		t.Fatalf("the target's URL: %s", rec[0].URI)
	}
	get("/v1/workflow-executions/" + id)
	get("/v1/workflow-executions/" + id + "/events")
	get("/v1/workflows/" + wf)
	get("/v1/workflow-executions?workflowUUID=" + wf)
	var all []string
	all = append(all, answers...)
	all = append(all, logs())
	events, _ := json.Marshal(x)
	all = append(all, string(events), x.Error)
	for _, st := range x.Steps {
		all = append(all, st.Error)
	}
	for _, text := range all {
		for _, secret := range []string{SecretToken, SecretKey} {
			if strings.Contains(text, secret) {
				t.Fatalf("the secret %q appears in: %s", secret, text)
			}
		}
	}
}
