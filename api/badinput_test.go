package api_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/api"
	"github.com/workflowd/workflowd/model"
)

// badInput is one client mistake and the answer it must get.
type badInput struct {
	name    string
	method  string
	path    string
	body    any
	headers []string
	want    int
	// docAllows: the OpenAPI document cannot express this rule (a
	// resource that does not exist, a body size, unique step names, an
	// opaque cursor...), so it accepts the request the server refuses.
	docAllows bool
}

const (
	validStep = `{"name":"a","type":"manual"}`
	validDef  = `{"name":"n","steps":[` + validStep + `]}`
)

// definitionMistakes are the bad bodies of POST /v1/workflows and PUT
// /v1/workflows/{workflowUUID}.
func definitionMistakes() []badInput {
	steps := func(n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf(`{"name":"s%d","type":"manual"}`, i)
		}
		return "[" + strings.Join(s, ",") + "]"
	}
	withSteps := func(fields, steps string) string { return `{"name":"n",` + fields + `"steps":` + steps + `}` }
	// A valid definition, made too large by trailing white space.
	oversize := validDef + strings.Repeat(" ", api.MaxBodyBytes)
	return []badInput{
		{name: "malformed_json", body: `{"name":`, want: 400},
		{name: "not_json", body: `name=n&steps=a`, want: 400},
		{name: "trailing_data", body: validDef + `{}`, want: 400, docAllows: true},
		{name: "array_body", body: `[]`, want: 400},
		{name: "null_body", body: `null`, want: 400},
		{name: "string_body", body: `"n"`, want: 400},
		{name: "empty_body", body: ``, want: 400},
		{name: "whitespace_body", body: " \n\t", want: 400},
		{name: "no_body", body: nil, want: 400},
		{name: "unknown_field", body: withSteps(`"owner":"me",`, steps(1)), want: 400},
		{name: "unknown_step_field", body: withSteps("", `[{"name":"a","type":"manual","url":"http://x"}]`), want: 400},
		{name: "field_name_in_other_case_is_unknown", body: withSteps(`"Timeout_seconds":3,`, steps(1)), want: 400},
		{name: "name_wrong_type", body: `{"name":5,"steps":` + steps(1) + `}`, want: 400},
		{name: "steps_wrong_type", body: withSteps("", `{}`), want: 400},
		{name: "step_wrong_type", body: withSteps("", `["a"]`), want: 400},
		{name: "timeout_wrong_type", body: withSteps(`"timeoutSeconds":"10",`, steps(1)), want: 400},
		{name: "timeout_fraction", body: withSteps(`"timeoutSeconds":1.5,`, steps(1)), want: 400},
		{name: "timeout_negative", body: withSteps(`"timeoutSeconds":-1,`, steps(1)), want: 400},
		{name: "timeout_over_a_year", body: withSteps(fmt.Sprintf(`"timeoutSeconds":%d,`, model.MaxTimeoutSeconds+1), steps(1)), want: 400},
		{name: "timeout_overflows_int", body: withSteps(`"timeoutSeconds":1e30,`, steps(1)), want: 400},
		{name: "missing_name", body: `{"steps":` + steps(1) + `}`, want: 400},
		{name: "empty_name", body: `{"name":"","steps":` + steps(1) + `}`, want: 400},
		{name: "name_too_long", body: `{"name":"` + strings.Repeat("n", model.MaxNameLen+1) + `","steps":` + steps(1) + `}`, want: 400},
		{name: "description_too_long", body: withSteps(`"description":"`+strings.Repeat("d", model.MaxDescriptionLen+1)+`",`, steps(1)), want: 400},
		{name: "missing_steps", body: `{"name":"n"}`, want: 400},
		{name: "no_steps", body: withSteps("", `[]`), want: 400},
		{name: "too_many_steps", body: withSteps("", steps(model.MaxSteps+1)), want: 400},
		{name: "step_without_name", body: withSteps("", `[{"type":"manual"}]`), want: 400},
		{name: "step_without_type", body: withSteps("", `[{"name":"a"}]`), want: 400},
		{name: "http_step_without_url", body: withSteps("", `[{"name":"a","type":"http"}]`), want: 400},
		{name: "wait_step_without_seconds", body: withSteps("", `[{"name":"a","type":"wait"}]`), want: 400},
		{name: "wait_step_zero_seconds", body: withSteps("", `[{"name":"a","type":"wait","seconds":0}]`), want: 400},
		{name: "wait_step_seconds_as_string", body: withSteps("", `[{"name":"a","type":"wait","seconds":"2"}]`), want: 400},
		{name: "manual_step_with_url", body: withSteps("", `[{"name":"a","type":"manual","url":"http://h/"}]`), want: 400},
		{name: "http_step_relative_url", body: withSteps("", `[{"name":"a","type":"http","url":"/x"}]`), want: 400},
		{name: "http_step_file_url", body: withSteps("", `[{"name":"a","type":"http","url":"file:///etc/passwd"}]`), want: 400},
		{name: "http_step_lowercase_method", body: withSteps("", `[{"name":"a","type":"http","url":"http://h/","method":"get"}]`), want: 400},
		{name: "http_step_reserved_header", body: withSteps("", `[{"name":"a","type":"http","url":"http://h/","headers":{"Idempotency-Key":"x"}}]`), want: 400, docAllows: true}, // OpenAPI 3.0 cannot refuse a header name
		{name: "http_step_header_not_string", body: withSteps("", `[{"name":"a","type":"http","url":"http://h/","headers":{"X-A":1}}]`), want: 400},
		{name: "http_step_zero_attempts", body: withSteps("", `[{"name":"a","type":"http","url":"http://h/","retry":{"maxAttempts":0}}]`), want: 400},
		{name: "http_step_too_many_attempts", body: withSteps("", `[{"name":"a","type":"http","url":"http://h/","retry":{"maxAttempts":21}}]`), want: 400},
		{name: "http_step_unknown_retry_field", body: withSteps("", `[{"name":"a","type":"http","url":"http://h/","retry":{"maxAttempts":2,"jitter":1}}]`), want: 400},
		{name: "http_step_timeout_over_900", body: withSteps("", `[{"name":"a","type":"http","url":"http://h/","timeoutSeconds":901}]`), want: 400},
		{name: "unknown_step_type", body: withSteps("", `[{"name":"a","type":"lambda"}]`), want: 400},
		{name: "duplicate_step_names", body: withSteps("", `[`+validStep+`,`+validStep+`]`), want: 400, docAllows: true},
		{name: "step_timeout_negative", body: withSteps("", `[{"name":"a","type":"manual","timeoutSeconds":-5}]`), want: 400},
		{name: "oversize_body", body: oversize, want: 413, docAllows: true},
		{name: "text_content_type", body: validDef, headers: []string{"Content-Type", "text/plain"}, want: 415},
		{name: "form_content_type", body: validDef, headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, want: 415},
		{name: "bad_idempotency_key", body: validDef, headers: []string{"Idempotency-Key", "two words"}, want: 400},
	}
}

// listMistakes are the bad query strings of both listings.
func listMistakes(path string) []badInput {
	wrongVersion := base64.RawURLEncoding.EncodeToString([]byte(`{"v":2,"t":"2025-01-01T00:00:00Z","id":"` + uuid.NewString() + `"}`))
	unknownField := base64.RawURLEncoding.EncodeToString([]byte(`{"v":1,"t":"2025-01-01T00:00:00Z","id":"` + uuid.NewString() + `","x":1}`))
	return []badInput{
		{name: "limit_zero", path: path + "?limit=0", want: 400},
		{name: "limit_negative", path: path + "?limit=-1", want: 400},
		{name: "limit_over_max", path: path + "?limit=1001", want: 400},
		{name: "limit_not_a_number", path: path + "?limit=x", want: 400},
		{name: "limit_fraction", path: path + "?limit=1.5", want: 400},
		{name: "limit_empty", path: path + "?limit=", want: 400},
		{name: "limit_twice", path: path + "?limit=1&limit=2", want: 400, docAllows: true},
		{name: "cursor_garbage", path: path + "?cursor=garbage", want: 400, docAllows: true},
		{name: "cursor_not_base64", path: path + "?cursor=%21%21%21", want: 400, docAllows: true},
		{name: "cursor_empty", path: path + "?cursor=", want: 400},
		{name: "cursor_wrong_version", path: path + "?cursor=" + wrongVersion, want: 400, docAllows: true},
		{name: "cursor_unknown_field", path: path + "?cursor=" + unknownField, want: 400, docAllows: true},
		{name: "cursor_too_long", path: path + "?cursor=" + strings.Repeat("A", 300), want: 400},
		{name: "malformed_query_escape", path: path + "?cursor=%zz", want: 400, docAllows: true},
		{name: "unknown_query_parameter", path: path + "?sort=name", want: 400, docAllows: true},
	}
}

func TestBadInputIs4xxProblem(t *testing.T) {
	e := newEnv(t)
	wf := e.seedWorkflow(t, definition("orders", 2), t0)
	gone := e.seedWorkflow(t, definition("gone", 1), t0)
	e.runWorkflow(t, gone, model.DeleteWorkflow{WorkflowUUID: gone.WorkflowUUID}, t0)
	x := e.seedExecution(t, wf, t0, 0)

	wfPath := "/v1/workflows/" + wf.WorkflowUUID.String()
	xPath := "/v1/workflow-executions/" + x.WorkflowExecutionUUID.String()
	unknown := uuid.NewString()
	canonical := wf.WorkflowUUID.String()
	badIDs := []struct{ name, id string }{
		{"not_a_uuid", "not-a-uuid"},
		{"uuid_without_hyphens", strings.ReplaceAll(canonical, "-", "")},
		{"uuid_in_braces", "%7B" + canonical + "%7D"},
		{"uuid_urn", "urn:uuid:" + canonical},
		{"uuid_too_long", canonical + "0"},
		{"uuid_bad_hex", "g" + canonical[1:]},
	}

	var tests []badInput
	add := func(prefix, method, path string, cases []badInput) {
		for _, c := range cases {
			c.name = prefix + "/" + c.name
			if c.method == "" {
				c.method = method
			}
			if c.path == "" {
				c.path = path
			}
			tests = append(tests, c)
		}
	}
	add("create_workflow", http.MethodPost, "/v1/workflows", definitionMistakes())
	add("update_workflow", http.MethodPut, wfPath, definitionMistakes())
	add("update_workflow", http.MethodPut, "", []badInput{
		{name: "unknown_workflow", path: "/v1/workflows/" + unknown, body: validDef, want: 404, docAllows: true},
	})
	add("delete_workflow", http.MethodDelete, wfPath, []badInput{
		{name: "unknown_workflow", path: "/v1/workflows/" + unknown, want: 404, docAllows: true},
		{name: "body_with_fields", body: `{"force":true}`, want: 400},
		{name: "body_not_json", body: `please`, want: 400},
		{name: "body_array", body: `[]`, want: 400},
		{name: "text_content_type", body: `{}`, headers: []string{"Content-Type", "text/plain"}, want: 415},
		{name: "oversize_body", body: `{}` + strings.Repeat(" ", api.MaxBodyBytes), want: 413, docAllows: true},
	})
	for _, id := range badIDs {
		add("bad_path_uuid/"+id.name, "", "", []badInput{
			{name: "get_workflow", method: http.MethodGet, path: "/v1/workflows/" + id.id, want: 400},
			{name: "update_workflow", method: http.MethodPut, path: "/v1/workflows/" + id.id, body: validDef, want: 400},
			{name: "delete_workflow", method: http.MethodDelete, path: "/v1/workflows/" + id.id, want: 400},
			{name: "get_execution", method: http.MethodGet, path: "/v1/workflow-executions/" + id.id, want: 400},
			{name: "events", method: http.MethodGet, path: "/v1/workflow-executions/" + id.id + "/events", want: 400},
			{name: "increment", method: http.MethodPost, path: "/v1/workflow-executions/" + id.id + "/increments", body: `{"step":0}`, want: 400},
			{name: "cancel", method: http.MethodPost, path: "/v1/workflow-executions/" + id.id + "/cancellations", want: 400},
			{name: "command", method: http.MethodGet, path: "/v1/commands/" + id.id, want: 400},
		})
	}
	add("get_workflow", http.MethodGet, "", []badInput{
		{name: "unknown", path: "/v1/workflows/" + unknown, want: 404, docAllows: true},
	})
	add("list_workflows", http.MethodGet, "", listMistakes("/v1/workflows"))
	add("list_executions", http.MethodGet, "", listMistakes("/v1/workflow-executions"))
	add("list_executions", http.MethodGet, "", []badInput{
		{name: "status_unknown", path: "/v1/workflow-executions?status=DONE", want: 400},
		{name: "status_lower_case", path: "/v1/workflow-executions?status=running", want: 400},
		{name: "status_empty", path: "/v1/workflow-executions?status=", want: 400},
		{name: "workflow_uuid_bad", path: "/v1/workflow-executions?workflowUUID=nope", want: 400},
		{name: "workflow_uuid_empty", path: "/v1/workflow-executions?workflowUUID=", want: 400},
		{name: "workflow_uuid_without_hyphens", path: "/v1/workflow-executions?workflowUUID=" + strings.ReplaceAll(canonical, "-", ""), want: 400},
	})
	add("start_execution", http.MethodPost, "/v1/workflow-executions", []badInput{
		{name: "malformed_json", body: `{"workflowUUID":`, want: 400},
		{name: "empty_body", body: ``, want: 400},
		{name: "array_body", body: `[1]`, want: 400},
		{name: "missing_workflow_uuid", body: `{}`, want: 400},
		{name: "null_workflow_uuid", body: `{"workflowUUID":null}`, want: 400},
		{name: "nil_workflow_uuid", body: `{"workflowUUID":"` + uuid.Nil.String() + `"}`, want: 400, docAllows: true},
		{name: "workflow_uuid_not_a_uuid", body: `{"workflowUUID":"nope"}`, want: 400},
		{name: "workflow_uuid_number", body: `{"workflowUUID":42}`, want: 400},
		{name: "workflow_uuid_without_hyphens_in_body", body: `{"workflowUUID":"` + strings.ReplaceAll(canonical, "-", "") + `"}`, want: 400},
		{name: "workflow_uuid_urn_in_body", body: `{"workflowUUID":"urn:uuid:` + canonical + `"}`, want: 400},
		{name: "input_only", body: `{"input":{}}`, want: 400},
		{name: "unknown_field", body: `{"workflowUUID":"` + canonical + `","priority":1}`, want: 400},
		{name: "deleted_workflow", body: `{"workflowUUID":"` + gone.WorkflowUUID.String() + `"}`, want: 409, docAllows: true},
		{name: "text_content_type", body: `{"workflowUUID":"` + canonical + `"}`, headers: []string{"Content-Type", "text/plain"}, want: 415},
		{name: "oversize_body", body: `{"workflowUUID":"` + canonical + `","input":"` + strings.Repeat("i", api.MaxBodyBytes) + `"}`, want: 413, docAllows: true},
		// Under the body limit, but every < is 6 bytes in the queue message.
		{name: "input_too_large_for_the_queue", body: `{"workflowUUID":"` + canonical + `","input":"` + strings.Repeat("<", 50_000) + `"}`, want: 413, docAllows: true},
	})
	add("get_execution", http.MethodGet, "", []badInput{
		{name: "unknown", path: "/v1/workflow-executions/" + unknown, want: 404, docAllows: true},
	})
	add("events", http.MethodGet, "", []badInput{
		{name: "unknown_execution", path: "/v1/workflow-executions/" + unknown + "/events", want: 404, docAllows: true},
		{name: "query_parameter", path: xPath + "/events?after=3", want: 400, docAllows: true},
	})
	add("increment", http.MethodPost, xPath+"/increments", []badInput{
		{name: "malformed_json", body: `{"step":`, want: 400},
		{name: "empty_body", body: ``, want: 400},
		{name: "no_body", body: nil, want: 400},
		{name: "missing_step", body: `{}`, want: 400},
		{name: "output_only", body: `{"output":1}`, want: 400},
		{name: "null_step", body: `{"step":null}`, want: 400},
		{name: "step_as_string", body: `{"step":"0"}`, want: 400},
		{name: "step_negative", body: `{"step":-1}`, want: 400},
		{name: "step_past_max", body: fmt.Sprintf(`{"step":%d}`, model.MaxSteps), want: 400},
		{name: "step_fraction", body: `{"step":1.5}`, want: 400},
		{name: "step_overflows_int", body: `{"step":99999999999999999999}`, want: 400},
		{name: "unknown_field", body: `{"step":0,"by":"me"}`, want: 400},
		{name: "text_content_type", body: `{"step":0}`, headers: []string{"Content-Type", "text/plain"}, want: 415},
		{name: "oversize_body", body: `{"step":0,"output":"` + strings.Repeat("o", api.MaxBodyBytes) + `"}`, want: 413, docAllows: true},
	})
	add("cancel", http.MethodPost, xPath+"/cancellations", []badInput{
		{name: "malformed_json", body: `{"reason"`, want: 400},
		{name: "array_body", body: `[]`, want: 400},
		{name: "reason_wrong_type", body: `{"reason":5}`, want: 400},
		{name: "reason_too_long", body: `{"reason":"` + strings.Repeat("r", model.MaxReasonLen+1) + `"}`, want: 400},
		{name: "reason_over_1000_bytes_in_fewer_characters", body: `{"reason":"` + strings.Repeat("é", 600) + `"}`, want: 400, docAllows: true},
		{name: "unknown_field", body: `{"reason":"r","force":true}`, want: 400},
		{name: "text_content_type", body: `{}`, headers: []string{"Content-Type", "text/plain"}, want: 415},
	})
	add("command", http.MethodGet, "", []badInput{
		{name: "unknown", path: "/v1/commands/" + unknown, want: 404, docAllows: true},
		{name: "wait_not_a_duration", path: "/v1/commands/" + unknown + "?wait=soon", want: 400, docAllows: true},
		{name: "wait_negative", path: "/v1/commands/" + unknown + "?wait=-1s", want: 400, docAllows: true},
		{name: "wait_over_max", path: "/v1/commands/" + unknown + "?wait=31s", want: 400, docAllows: true},
		{name: "wait_an_hour", path: "/v1/commands/" + unknown + "?wait=1h", want: 400, docAllows: true},
		{name: "wait_nan", path: "/v1/commands/" + unknown + "?wait=NaN", want: 400, docAllows: true},
		{name: "wait_infinite", path: "/v1/commands/" + unknown + "?wait=Inf", want: 400, docAllows: true},
		{name: "wait_twice", path: "/v1/commands/" + unknown + "?wait=1s&wait=2s", want: 400, docAllows: true},
		{name: "unknown_query_parameter", path: "/v1/commands/" + unknown + "?timeout=1s", want: 400, docAllows: true},
	})
	add("wrong_method", "", "", []badInput{
		{name: "patch_workflows", method: http.MethodPatch, path: "/v1/workflows", body: validDef, want: 405},
		{name: "post_workflow", method: http.MethodPost, path: wfPath, body: validDef, want: 405},
		{name: "delete_executions", method: http.MethodDelete, path: "/v1/workflow-executions", want: 405},
		{name: "put_execution", method: http.MethodPut, path: xPath, body: `{}`, want: 405},
		{name: "get_increments", method: http.MethodGet, path: xPath + "/increments", want: 405},
		{name: "delete_events", method: http.MethodDelete, path: xPath + "/events", want: 405},
		{name: "put_command", method: http.MethodPut, path: "/v1/commands/" + unknown, body: `{}`, want: 405},
		{name: "post_healthz", method: http.MethodPost, path: "/healthz", want: 405},
		{name: "delete_readyz", method: http.MethodDelete, path: "/readyz", want: 405},
		{name: "post_openapi", method: http.MethodPost, path: "/v1/openapi.json", want: 405},
	})
	add("unknown_route", http.MethodGet, "", []badInput{
		{name: "root", path: "/", want: 404},
		{name: "other_version", path: "/v2/workflows", want: 404},
		{name: "trailing_slash", path: "/v1/workflows/", want: 404},
		{name: "sub_resource", path: wfPath + "/steps", want: 404},
		{name: "post_to_nowhere", method: http.MethodPost, path: "/v1/things", body: `{}`, want: 404},
	})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.pub.published())
			commandsBefore, keysBefore := e.cmds.counts()
			r := e.do(t, tt.method, tt.path, tt.body, tt.headers...)
			if r.status >= 500 {
				t.Fatalf("got %d for a client mistake, want %d; body: %s", r.status, tt.want, truncate(r.body))
			}
			r.wantStatus(t, tt.want)
			p := r.problem(t)
			if p.Detail == "" && r.status != http.StatusNotFound {
				t.Errorf("got problem %+v without detail, want it to say what is wrong", p)
			}
			if n := len(e.pub.published()) - before; n != 0 {
				t.Errorf("got %d messages published, want none", n)
			}
			if c, k := e.cmds.counts(); c != commandsBefore || k != keysBefore {
				t.Errorf("got %d commands and %d idempotency keys recorded, want none", c-commandsBefore, k-keysBefore)
			}
			req, raw := e.newRequest(t, tt.method, tt.path, tt.body, tt.headers...)
			err := e.spec.checkRequest(req, raw)
			switch {
			case err == nil && !tt.docAllows:
				t.Errorf("the OpenAPI document accepts this request, want it refused as the server does")
			case err != nil && tt.docAllows:
				t.Errorf("the OpenAPI document refuses this request too, want docAllows false: %v", err)
			}
		})
	}
}

func TestBodyAtTheSizeLimitIsRead(t *testing.T) {
	e := newEnv(t)
	body := validDef + strings.Repeat(" ", api.MaxBodyBytes-len(validDef))
	e.do(t, http.MethodPost, "/v1/workflows", body).wantStatus(t, http.StatusAccepted)
	e.do(t, http.MethodPost, "/v1/workflows", body+" ").wantStatus(t, http.StatusRequestEntityTooLarge)
}

func TestMissingContentTypeIsReadAsJSON(t *testing.T) {
	e := newEnv(t)
	// The document says application/json and cannot say "or none", so the
	// request itself is not checked against it; the answer is.
	req, _ := e.newRequest(t, http.MethodPost, "/v1/workflows", validDef, "Content-Type", "")
	e.send(t, req).wantStatus(t, http.StatusAccepted)
}

// Every malformed definition of the workflow language is a 400
// validation problem naming the field, never a 5xx.
func TestMalformedDefinitionsNameTheField(t *testing.T) {
	e := newEnv(t)
	m := func(name string) string { return `{"name":"` + name + `","type":"manual"}` }
	par := func(name string, branches ...string) string {
		return `{"name":"` + name + `","type":"parallel","branches":[{"steps":[` + strings.Join(branches, `]},{"steps":[`) + `]}]}`
	}
	deep := m("leaf")
	for d := range 4 {
		deep = par(fmt.Sprintf("p%d", d), deep, m(fmt.Sprintf("o%d", d)))
	}
	for _, tc := range []struct{ name, steps, field string }{
		{"unknown_next", `[{"name":"a","type":"manual","next":"zz"}]`, "steps[0].next"},
		{"unreachable_step", `[{"name":"a","type":"manual","end":true},` + m("b") + `]`, "steps[1]"},
		{"bad_expression", `[{"name":"c","type":"choice","rules":[{"when":"input.amount >","next":"b"}]},` + m("b") + `]`, "steps[0].rules[0].when"},
		{"type_error", `[{"name":"c","type":"choice","rules":[{"when":"input.amount + \"x\" > 1","next":"b"}]},` + m("b") + `]`, "steps[0].rules[0].when"},
		{"catch_naming_no_step", `[{"name":"a","type":"manual","catch":[{"errors":["*"],"next":"zz"}]}]`, "steps[0].catch[0].next"},
		{"bad_error_pattern", `[{"name":"a","type":"manual","retry":[{"errors":["a b"]}]}]`, "steps[0].retry[0].errors[0]"},
		{"bad_url_template", `[{"name":"h","type":"http","url":"http://{{ input.host }}/x"}]`, "steps[0].url"},
		{"bad_output_expression", `[{"name":"a","type":"manual","output":"result +"}]`, "steps[0].output"},
		{"nesting_past_the_limit", `[` + deep + `]`, "steps[0].branches[0].steps[0].branches[0].steps[0].branches[0].steps[0]"},
		{"branch_next_outside", `[` + par("p", `{"name":"a","type":"manual","next":"z"}`, m("b")) + `,` + m("z") + `]`, "steps[0].branches[0].steps[0].next"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, http.MethodPost, "/v1/workflows", `{"name":"w","steps":`+tc.steps+`}`)
			r.wantStatus(t, http.StatusBadRequest)
			p := r.problem(t)
			if p.Type != "urn:workflowd:problem:validation" || len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
				t.Fatalf("got %+v, want a validation problem naming %s", p, tc.field)
			}
		})
	}
}
