package model_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
)

// An http step's url, headers and body are built from the execution's
// data when the call is made: each {{ }} of the url percent-encoded as
// one path segment or query value, header values as text, the body as
// the expression's JSON value.
func TestRequestBuildsTheCallFromTheData(t *testing.T) {
	steps := []model.StepDefinition{
		{Name: "quote", Type: model.StepManual},
		{Name: "charge", Type: model.StepHTTP,
			URL:     "http://shop.example:8080/orders/{{ input.id }}/charge?n={{input.n}}&note={{ has(input.note) ? input.note : null }}",
			Headers: map[string]string{"X-Order": "order {{ input.id }}", "X-Static": "as is"},
			Body:    `{"order": input.id, "total": steps.quote.total * 2.0, "caught": error}`},
	}
	if err := (model.Definition{Name: "d", Steps: steps}).Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	r := startWith(t, `{"id": "a/b?c#d", "n": 3}`, steps...)
	r.increment(0, `{"total": 10.5}`)
	call, err := r.x.Request(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, headers, body := call.URL, call.Headers, call.Body
	if want := "http://shop.example:8080/orders/a%2Fb%3Fc%23d/charge?n=3&note="; u != want {
		t.Errorf("url: %s, want %s", u, want)
	}
	if headers["X-Order"] != "order a/b?c#d" || headers["X-Static"] != "as is" {
		t.Errorf("headers: %v", headers)
	}
	if string(body) != `{"caught":{},"order":"a/b?c#d","total":21}` {
		t.Errorf("body: %s", body)
	}

	// A literal step is passed as it is, body nil (the envelope).
	plain := []model.StepDefinition{{Name: "h", Type: model.StepHTTP, URL: "http://a.example/x", Headers: map[string]string{"A": "b"}}}
	r = startWith(t, `{}`, plain...)
	if c, err := r.x.Request(0, nil); err != nil || c.URL != "http://a.example/x" || c.Headers["A"] != "b" || c.Body != nil {
		t.Errorf("a literal step: %+v %v", c, err)
	}

	// An expression that fails at run time says which and why.
	r = startWith(t, `{"n": 1}`, steps...)
	r.increment(0, `{"total": 1}`)
	if _, err := r.x.Request(1, nil); err == nil || !strings.Contains(err.Error(), "url: {{ input.id }}") || !strings.Contains(err.Error(), "no such key") {
		t.Errorf("a missing field: %v", err)
	}
}

// A step's output expression shapes what it leaves (result is its own
// answer), before the choices after it read it; the execution's output
// expression shapes the output of an execution that succeeds.
func TestOutputExpressions(t *testing.T) {
	steps := []model.StepDefinition{
		{Name: "approve", Type: model.StepManual, Output: `{"ok": result.answer == "yes", "by": input.user}`},
		{Name: "ok?", Type: model.StepChoice, Rules: []model.ChoiceRule{{When: `steps.approve.ok`, Next: "ship"}}, Default: "no"},
		{Name: "no", Type: model.StepFail, Error: "order.rejected"},
		{Name: "ship", Type: model.StepManual},
	}
	d := model.Definition{Name: "o", Steps: steps, Output: `{"approvedBy": steps.approve.by, "tracking": result.tracking}`}
	if err := d.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	r := &run{t: t, id: uuid.New(), now: t0}
	wf := model.Workflow{WorkflowUUID: uuid.New(), Version: 1, Steps: d.Steps, Output: d.Output, Seq: 1}
	r.decide(model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: r.id, WorkflowUUID: wf.WorkflowUUID, Input: json.RawMessage(`{"user":"ann"}`)}, t0), &wf)
	r.increment(0, `{"answer":"yes"}`)
	if got := string(r.x.Steps[0].Output); got != `{"by":"ann","ok":true}` {
		t.Fatalf("the shaped output: %s", got)
	}
	if r.x.CurrentStep != 3 {
		t.Fatalf("the choice read the shaped output? at %d, want ship (3)", r.x.CurrentStep)
	}
	r.increment(3, `{"tracking":"T1"}`)
	if r.x.Status != model.ExecutionSucceeded || string(r.x.Output) != `{"approvedBy":"ann","tracking":"T1"}` {
		t.Fatalf("the execution's output: %s %s", r.x.Status, r.x.Output)
	}

	// An output expression that fails is the step's failure
	// (expression.failed, final), which a catch may route.
	failing := []model.StepDefinition{
		{Name: "ask", Type: model.StepManual, Output: `{"n": result.count}`, Catch: []model.CatchRule{{Errors: []string{model.ErrExpression}, Next: "fix"}}},
		{Name: "done", Type: model.StepSucceed},
		{Name: "fix", Type: model.StepManual},
	}
	r = startWith(t, `{}`, failing...)
	r.increment(0, `{"other":1}`)
	if st := r.x.Steps[0]; st.Status != model.StepFailed || st.ErrorName != model.ErrExpression || !strings.Contains(st.Error, `step "ask": output`) || r.x.CurrentStep != 2 {
		t.Fatalf("a failing output expression: %+v, at %d", st, r.x.CurrentStep)
	}
	// Uncaught, it fails the execution.
	failing[0].Catch = nil
	failing[0].End = true
	r = startWith(t, `{}`, failing[:1]...)
	r.increment(0, `{}`)
	if r.x.Status != model.ExecutionFailed || r.x.ErrorName != model.ErrExpression {
		t.Fatalf("uncaught: %s %q", r.x.Status, r.x.ErrorName)
	}
}

func TestValidateRefusesBadData(t *testing.T) {
	http := func(change func(*model.StepDefinition)) []model.StepDefinition {
		s := model.StepDefinition{Name: "h", Type: model.StepHTTP, URL: "http://a.example/x"}
		change(&s)
		return []model.StepDefinition{s}
	}
	for _, tc := range []struct {
		name  string
		def   model.Definition
		field string
		want  string
	}{
		{"host from data", model.Definition{Steps: http(func(s *model.StepDefinition) { s.URL = "http://{{ input.host }}/x" })}, "steps[0].url", "host:port literal"},
		{"port from data", model.Definition{Steps: http(func(s *model.StepDefinition) { s.URL = "http://a.example:{{ input.port }}/x" })}, "steps[0].url", "host:port literal"},
		{"unclosed", model.Definition{Steps: http(func(s *model.StepDefinition) { s.URL = "http://a.example/{{ input.id" })}, "steps[0].url", "without its }}"},
		{"empty", model.Definition{Steps: http(func(s *model.StepDefinition) { s.URL = "http://a.example/{{ }}" })}, "steps[0].url", "empty"},
		{"bad url expression", model.Definition{Steps: http(func(s *model.StepDefinition) { s.URL = "http://a.example/{{ input. }}" })}, "steps[0].url", "Syntax error"},
		{"bad header expression", model.Definition{Steps: http(func(s *model.StepDefinition) { s.Headers = map[string]string{"X": "{{ nope.x }}"} })}, "steps[0].headers", "undeclared reference"},
		{"body on a GET", model.Definition{Steps: http(func(s *model.StepDefinition) { s.Method = "GET"; s.Body = "input" })}, "steps[0].body", "not sent by a GET"},
		{"bad body", model.Definition{Steps: http(func(s *model.StepDefinition) { s.Body = "{input: }" })}, "steps[0].body", "Syntax error"},
		{"bad output", model.Definition{Steps: http(func(s *model.StepDefinition) { s.Output = "result +" })}, "steps[0].output", "Syntax error"},
		{"body on a manual", model.Definition{Steps: []model.StepDefinition{{Name: "m", Type: model.StepManual, Body: "input"}}}, "steps[0].body", "not a field of manual steps"},
		{"output on a choice", model.Definition{Steps: []model.StepDefinition{{Name: "c", Type: model.StepChoice, Rules: []model.ChoiceRule{{When: "true", Next: "m"}}, Output: "input"}, {Name: "m", Type: model.StepManual}}}, "steps[0].output", "not a field of choice steps"},
		{"bad execution output", model.Definition{Output: "steps.", Steps: []model.StepDefinition{{Name: "m", Type: model.StepManual}}}, "output", "Syntax error"},
	} {
		tc.def.Name = "w"
		err := tc.def.Validate()
		var fe *model.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Problem, tc.want) {
			t.Errorf("%s: got %v, want %s %q", tc.name, err, tc.field, tc.want)
		}
	}
}

// Secret references ({{secret:NAME}}) in a url and a header are resolved
// when the call is built, the url's escaped like any value, and their
// values listed for redaction; an unresolved one is a *SecretError.
func TestSecretReferences(t *testing.T) {
	steps := []model.StepDefinition{{Name: "h", Type: model.StepHTTP, URL: "http://a.example/x?key={{secret:api-key}}",
		Headers: map[string]string{"Authorization": "Bearer {{ secret:token }}"}}}
	if err := (model.Definition{Name: "s", Steps: steps}).Validate(); err != nil {
		t.Fatal(err)
	}
	r := startWith(t, `{}`, steps...)
	values := map[string]string{"api-key": "k&y=1", "token": "t0ken"}
	c, err := r.x.Request(0, func(name string) (string, error) { return values[name], nil })
	if err != nil || c.URL != "http://a.example/x?key=k%26y%3D1" || c.Headers["Authorization"] != "Bearer t0ken" || strings.Join(c.Secrets, " ") != "k&y=1 t0ken" {
		t.Fatalf("the call: %+v %v", c, err)
	}
	_, err = r.x.Request(0, func(name string) (string, error) { return "", errors.New("not found") })
	var se *model.SecretError
	if !errors.As(err, &se) || se.Name != "api-key" || strings.Contains(err.Error(), "k&y") {
		t.Fatalf("an unknown secret: %v", err)
	}
	for _, tc := range []struct {
		step  model.StepDefinition
		field string
		want  string
	}{
		{model.StepDefinition{Name: "h", Type: model.StepHTTP, URL: "http://a.example/", Headers: map[string]string{"authorization": "Bearer abc"}}, "steps[0].headers", "{{secret:NAME}}"},
		{model.StepDefinition{Name: "h", Type: model.StepHTTP, URL: "http://a.example/", Headers: map[string]string{"X-Api-Key": "abc"}}, "steps[0].headers", "reference a secret"},
		{model.StepDefinition{Name: "h", Type: model.StepHTTP, URL: "http://{{secret:host}}/"}, "steps[0].url", "host:port literal"},
		{model.StepDefinition{Name: "h", Type: model.StepHTTP, URL: "http://a.example/{{secret:a b}}"}, "steps[0].url", "secret reference"},
	} {
		err := (model.Definition{Name: "s", Steps: []model.StepDefinition{tc.step}}).Validate()
		var fe *model.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Problem, tc.want) {
			t.Errorf("%+v: got %v, want %s %q", tc.step, err, tc.field, tc.want)
		}
	}
}
