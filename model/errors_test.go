package model_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
)

func intp(n int) *int           { return &n }
func floatp(f float64) *float64 { return &f }

// typesOf lists the types of events, in order.
func typesOf(events []model.Event) string { return strings.Join(eventTypes(events), " ") }

func TestMatches(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		name     string
		want     bool
	}{
		{[]string{"*"}, "http.timeout", true},
		{[]string{"http.*"}, "http.status.5xx", true},
		{[]string{"http.status.*"}, "http.status.5xx", true},
		{[]string{"http.*"}, "https.timeout", false},
		{[]string{"http.*"}, "http", false},
		{[]string{"http.timeout"}, "http.timeout", true},
		{[]string{"http.timeout"}, "http.timeout.x", false},
		{[]string{"step.timeout", "manual.failed"}, "manual.failed", true},
		{nil, "x", false},
	} {
		if got := model.Matches(tc.patterns, tc.name); got != tc.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", tc.patterns, tc.name, got, tc.want)
		}
	}
}

// Each rule counts its own retries, the first rule that matches decides
// (an exhausted one is not passed over for a later "*"), and the n-th
// retry of a rule waits intervalSeconds × backoffRate^(n-1).
func TestRetryRulesCountPerRuleAndTheFirstMatchDecides(t *testing.T) {
	call := httpStep(func(s *model.StepDefinition) {
		s.Retry = &model.Retry{Rules: []model.RetryRule{
			{Errors: []string{model.ErrHTTPStatus5xx}, MaxAttempts: intp(2), IntervalSeconds: intp(2), BackoffRate: floatp(3)},
			{Errors: []string{"*"}, MaxAttempts: intp(1), IntervalSeconds: intp(10)},
		}}
	})
	r := startRun(t, 0, call, model.StepDefinition{Name: "after", Type: model.StepManual})
	steps := []struct {
		name  string
		delay time.Duration // 0: no retry
	}{
		{model.ErrHTTPStatus5xx, 2 * time.Second}, // rule 1, retry 1
		{model.ErrHTTPTimeout, 10 * time.Second},  // rule 2, retry 1
		{model.ErrHTTPStatus5xx, 6 * time.Second}, // rule 1, retry 2: 2 × 3
		{model.ErrHTTPStatus5xx, 0},               // rule 1 exhausted: it decides
	}
	for i, s := range steps {
		attempt := i + 1
		r.outcome(0, attempt, model.StepOutcome{Err: "failed", Name: s.name})
		st := r.x.Steps[0]
		if s.delay == 0 {
			if r.x.Status != model.ExecutionFailed || r.x.ErrorName != s.name || st.ErrorName != s.name || st.Attempts != attempt {
				t.Fatalf("attempt %d (%s): %s %q, step %+v; want FAILED %s after %d attempts", attempt, s.name, r.x.Status, r.x.ErrorName, st, s.name, attempt)
			}
			if !strings.Contains(r.x.Error, "after 4 attempts") {
				t.Errorf("error %q does not count the attempts", r.x.Error)
			}
			var shown []string
			for _, f := range st.Failures {
				shown = append(shown, fmt.Sprintf("%d:%s", f.Attempt, f.Name))
			}
			if got, want := strings.Join(shown, " "), "1:http.status.5xx 2:http.timeout 3:http.status.5xx 4:http.status.5xx"; got != want {
				t.Errorf("the step's failures: %s, want %s", got, want)
			}
			break
		}
		if st.DueAt == nil || !st.DueAt.Equal(r.now.Add(s.delay)) || st.ErrorName != s.name {
			t.Fatalf("attempt %d (%s): step %+v, want a retry due after %s", attempt, s.name, st, s.delay)
		}
		r.now = *st.DueAt
	}
}

// maxDelaySeconds bounds each delay; jitter FULL scales it by the
// outcome's draw; a final failure (http.host-not-allowed) is never
// retried, even by "*".
func TestRetryRuleMaxDelayJitterAndFinalFailures(t *testing.T) {
	rules := []model.RetryRule{{Errors: []string{"*"}, MaxAttempts: intp(5), IntervalSeconds: intp(10), MaxDelaySeconds: 15, Jitter: model.JitterFull}}
	call := httpStep(func(s *model.StepDefinition) { s.Retry = &model.Retry{Rules: rules} })
	r := startRun(t, 0, call)
	for i, want := range []time.Duration{5 * time.Second, 7500 * time.Millisecond} {
		r.outcome(0, i+1, model.StepOutcome{Err: "status 503", Name: model.ErrHTTPStatus5xx, Jitter: 0.5})
		if st := r.x.Steps[0]; st.DueAt == nil || st.DueAt.Sub(r.now) != want {
			t.Fatalf("retry %d: due %v after %v, want after %v", i+1, st.DueAt, r.now, want)
		}
		r.now = *r.x.Steps[0].DueAt
	}
	r.outcome(0, 3, model.StepOutcome{Err: "host not allowed", Name: model.ErrHTTPHostNotAllowed, Final: true})
	if r.x.Status != model.ExecutionFailed || r.x.ErrorName != model.ErrHTTPHostNotAllowed {
		t.Fatalf("a final failure: %s %q, want FAILED at once", r.x.Status, r.x.ErrorName)
	}
}

// The legacy policy retries any failure that is not final, whatever its
// name, as it did before names.
func TestTheLegacyRetryPolicyRetriesEveryName(t *testing.T) {
	call := httpStep(func(s *model.StepDefinition) {
		s.Retry = &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: 2, BackoffSeconds: 1}}
	})
	r := startRun(t, 0, call)
	r.outcome(0, 1, model.StepOutcome{Err: "no name: an earlier worker's outcome"})
	if st := r.x.Steps[0]; st.DueAt == nil || st.ErrorName != model.ErrHTTPConnection {
		t.Fatalf("after attempt 1: %+v, want a retry named %s", st, model.ErrHTTPConnection)
	}
	r.now = *r.x.Steps[0].DueAt
	r.outcome(0, 2, model.StepOutcome{Err: "status 404", Name: model.ErrHTTPStatus4xx})
	if r.x.Status != model.ExecutionFailed || r.x.ErrorName != model.ErrHTTPStatus4xx {
		t.Fatalf("after 2 of 2 attempts: %s %q", r.x.Status, r.x.ErrorName)
	}
}

// A failed http step's catch routes it, with its name and cause, to a
// compensation step, in the same append as the failure: the step ends
// FAILED, the execution goes on, and the caught error is in the
// expressions.
func TestCatchRoutesAFailureToACompensationStep(t *testing.T) {
	steps := []model.StepDefinition{
		httpStep(func(s *model.StepDefinition) {
			s.Name = "charge"
			s.Retry = &model.Retry{Rules: []model.RetryRule{{Errors: []string{model.ErrHTTPTimeout}, MaxAttempts: intp(1)}}}
			s.Catch = []model.CatchRule{{Errors: []string{model.ErrHTTPStatus4xx}, Next: "declined"}, {Errors: []string{"http.*"}, Next: "why?"}}
		}),
		{Name: "ship", Type: model.StepManual, End: true},
		{Name: "why?", Type: model.StepChoice, Rules: []model.ChoiceRule{{When: `error.name == "http.status.5xx" && error.step == "charge" && error.cause.contains("queue full")`, Next: "refund"}}, Default: "declined"},
		{Name: "refund", Type: model.StepManual, End: true},
		{Name: "declined", Type: model.StepFail, Error: "payment.declined"},
	}
	if err := (model.Definition{Name: "pay", Steps: steps}).Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	r := startRun(t, 0, steps...)
	events := r.outcome(0, 1, model.StepOutcome{Err: "status 503: queue full", Name: model.ErrHTTPStatus5xx})
	if got, want := typesOf(events), "StepFailed StepStarted StepCompleted StepStarted"; got != want {
		t.Fatalf("events of the caught failure: %s, want %s (the choice decided in the same append)", got, want)
	}
	if r.x.Status != model.ExecutionRunning || r.x.CurrentStep != 3 {
		t.Fatalf("after the catch: %s at %d, want RUNNING at refund (3)", r.x.Status, r.x.CurrentStep)
	}
	if got, want := r.statuses(), "charge=FAILED ship=PENDING why?=SUCCEEDED refund=WAITING declined=PENDING"; got != want {
		t.Fatalf("steps: %s, want %s", got, want)
	}
	if st := r.x.Steps[0]; st.ErrorName != model.ErrHTTPStatus5xx || !strings.Contains(st.Error, "queue full") {
		t.Errorf("the failed step: %+v", st)
	}
	r.increment(3, `{"refunded":true}`)
	if r.x.Status != model.ExecutionSucceeded || string(r.x.Output) != `{"refunded":true}` {
		t.Fatalf("after the refund: %s %s", r.x.Status, r.x.Output)
	}
	if got, want := r.statuses(), "charge=FAILED ship=SKIPPED why?=SUCCEEDED refund=SUCCEEDED declined=SKIPPED"; got != want {
		t.Fatalf("steps at the end: %s, want %s", got, want)
	}

	// A 4xx goes to the first rule that matches: declined, a fail step.
	r = startRun(t, 0, steps...)
	r.outcome(0, 1, model.StepOutcome{Err: "status 402", Name: model.ErrHTTPStatus4xx})
	if r.x.Status != model.ExecutionFailed || r.x.ErrorName != "payment.declined" {
		t.Fatalf("a 4xx: %s %q, want FAILED payment.declined", r.x.Status, r.x.ErrorName)
	}
	// A timeout is retried first (once), then caught.
	r = startRun(t, 0, steps...)
	r.outcome(0, 1, model.StepOutcome{Err: "timed out", Name: model.ErrHTTPTimeout})
	if st := r.x.Steps[0]; st.DueAt == nil || st.Status != model.StepRunning {
		t.Fatalf("a first timeout: %+v, want a retry", st)
	}
	r.now = *r.x.Steps[0].DueAt
	r.outcome(0, 2, model.StepOutcome{Err: "timed out", Name: model.ErrHTTPTimeout})
	if r.x.Status != model.ExecutionFailed || r.x.ErrorName != "payment.declined" || r.x.Steps[0].Attempts != 2 {
		t.Fatalf("a second timeout: %s %q after %d attempts, want caught into declined", r.x.Status, r.x.ErrorName, r.x.Steps[0].Attempts)
	}
}

func (r *run) fail(step int, name, cause string) ([]model.Event, error) {
	r.t.Helper()
	c := model.NewCommand(uuid.New(), model.IncrementExecution{WorkflowExecutionUUID: r.id, Step: step, Error: name, Cause: cause}, r.now)
	events, err := model.DecideExecution(r.x, c, nil, r.now)
	if err == nil {
		r.fold(events)
	}
	return events, err
}

// A client fails a manual step: uncaught, the execution FAILS with the
// client's name and cause; a retry rule offers the step again at its
// retry time (an increment before then is refused); a catch routes a
// rejection.
func TestAClientFailsAManualStep(t *testing.T) {
	approve := model.StepDefinition{Name: "approve", Type: model.StepManual}
	r := startRun(t, 0, approve)
	if _, err := r.fail(0, "", "not today"); err != nil {
		t.Fatal(err)
	}
	if r.x.Status != model.ExecutionFailed || r.x.ErrorName != model.ErrManualFailed || !strings.Contains(r.x.Error, "not today") {
		t.Fatalf("uncaught: %s %q %q", r.x.Status, r.x.ErrorName, r.x.Error)
	}

	approve.Retry = &model.Retry{Rules: []model.RetryRule{{Errors: []string{"approval.expired"}, MaxAttempts: intp(1), IntervalSeconds: intp(60)}}}
	approve.Catch = []model.CatchRule{{Errors: []string{"*"}, Next: "rejected"}}
	approve.End = true
	steps := []model.StepDefinition{approve, {Name: "rejected", Type: model.StepManual}}
	if err := (model.Definition{Name: "a", Steps: steps}).Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	r = startRun(t, 0, steps...)
	if _, err := r.fail(0, "approval.expired", "nobody answered"); err != nil {
		t.Fatal(err)
	}
	st := r.x.Steps[0]
	if st.Status != model.StepWaiting || st.DueAt == nil || !st.DueAt.Equal(r.now.Add(time.Minute)) || st.ErrorName != "approval.expired" {
		t.Fatalf("after a retried failure: %+v, want WAITING, offered again in a minute", st)
	}
	_, err := model.DecideExecution(r.x, model.NewCommand(uuid.New(), model.IncrementExecution{WorkflowExecutionUUID: r.id, Step: 0}, r.now), nil, r.now)
	wantRejection(t, err, false, "offered again at")
	r.now = r.now.Add(time.Minute)
	events := r.increment(0, `{"ok":true}`)
	var done model.StepCompleted
	if err := json.Unmarshal(events[0].Data, &done); err != nil || done.Attempt != 2 {
		t.Fatalf("the completion after the retry: %s %v, want attempt 2", events[0].Data, err)
	}
	if got := r.statuses(); got != "approve=SUCCEEDED rejected=SKIPPED" || r.x.Status != model.ExecutionSucceeded {
		t.Fatalf("steps: %s", got)
	}

	// Failed again after its retry: caught.
	r = startRun(t, 0, steps...)
	r.fail(0, "approval.expired", "")
	r.now = r.now.Add(time.Minute)
	events, err = r.fail(0, "approval.expired", "still nobody")
	if err != nil {
		t.Fatal(err)
	}
	if got := typesOf(events); got != "StepFailed StepStarted" {
		t.Fatalf("events: %s", got)
	}
	if got := r.statuses(); got != "approve=FAILED rejected=WAITING" || r.x.Steps[0].Attempts != 2 {
		t.Fatalf("steps: %s after %d attempts", got, r.x.Steps[0].Attempts)
	}
}

// A manual step past its timeoutSeconds fails with step.timeout, which a
// catch routes like any failure; the command that times it out names the
// attempt, so a retried step's next timeout is a command of its own.
func TestAStepTimeoutIsCaughtAndRetried(t *testing.T) {
	steps := []model.StepDefinition{
		{Name: "approve", Type: model.StepManual, TimeoutSeconds: 10,
			Retry: &model.Retry{Rules: []model.RetryRule{{Errors: []string{model.ErrStepTimeout}, MaxAttempts: intp(1), IntervalSeconds: intp(5)}}},
			Catch: []model.CatchRule{{Errors: []string{model.ErrStepTimeout}, Next: "escalate"}}},
		{Name: "escalate", Type: model.StepManual},
	}
	r := startRun(t, 0, steps...)
	r.now = r.now.Add(10 * time.Second)
	first, ok := r.x.DueCommand(r.now, maxDelay)
	if !ok || first.Type != model.CommandTimeOutExecution {
		t.Fatalf("due at the step's timeout: %+v %v", first, ok)
	}
	r.decide(first, nil)
	st := r.x.Steps[0]
	if st.Status != model.StepWaiting || st.ErrorName != model.ErrStepTimeout || st.DueAt == nil {
		t.Fatalf("after the first timeout: %+v, want WAITING with a retry", st)
	}
	// Offered again at +15 s, it times out 10 s later: at +25 s.
	if c, ok := r.x.DueCommand(r.now.Add(14*time.Second), maxDelay); ok && c.Type == model.CommandTimeOutExecution {
		t.Fatalf("a timeout due before the step is offered again: %+v", c)
	}
	r.now = r.now.Add(15 * time.Second)
	second, ok := r.x.DueCommand(r.now, maxDelay)
	if !ok || second.Type != model.CommandTimeOutExecution || second.CommandUUID == first.CommandUUID {
		t.Fatalf("the second timeout: %+v %v (the first %s)", second, ok, first.CommandUUID)
	}
	r.decide(second, nil)
	if got := r.statuses(); got != "approve=FAILED escalate=WAITING" || r.x.Status != model.ExecutionRunning {
		t.Fatalf("after the second timeout: %s %s", r.x.Status, got)
	}

	// Uncaught, a step timeout ends the execution TIMED_OUT, named.
	r = startRun(t, 0, model.StepDefinition{Name: "approve", Type: model.StepManual, TimeoutSeconds: 10})
	r.now = r.now.Add(10 * time.Second)
	c, _ := r.x.DueCommand(r.now, maxDelay)
	r.decide(c, nil)
	if r.x.Status != model.ExecutionTimedOut || r.x.ErrorName != model.ErrStepTimeout {
		t.Fatalf("uncaught: %s %q", r.x.Status, r.x.ErrorName)
	}
	// The execution's own timeout is not a step's: nothing catches it.
	r = startRun(t, 5, steps...)
	r.now = r.now.Add(5 * time.Second)
	c, _ = r.x.DueCommand(r.now, maxDelay)
	r.decide(c, nil)
	if r.x.Status != model.ExecutionTimedOut || r.x.ErrorName != model.ErrExecutionTimeout {
		t.Fatalf("the execution's timeout: %s %q", r.x.Status, r.x.ErrorName)
	}
}

func TestValidateRefusesBadRetryAndCatch(t *testing.T) {
	manual := func(change func(*model.StepDefinition)) []model.StepDefinition {
		s := model.StepDefinition{Name: "m", Type: model.StepManual}
		change(&s)
		return []model.StepDefinition{s, {Name: "n", Type: model.StepManual}}
	}
	rules := func(r ...model.RetryRule) *model.Retry { return &model.Retry{Rules: r} }
	for _, tc := range []struct {
		name  string
		steps []model.StepDefinition
		field string
		want  string
	}{
		{"catch names no step", manual(func(s *model.StepDefinition) { s.Catch = []model.CatchRule{{Errors: []string{"*"}, Next: "zz"}} }), "steps[0].catch[0].next", "names no step"},
		{"catch without next", manual(func(s *model.StepDefinition) { s.Catch = []model.CatchRule{{Errors: []string{"*"}}} }), "steps[0].catch[0].next", "is required"},
		{"catch without errors", manual(func(s *model.StepDefinition) { s.Catch = []model.CatchRule{{Next: "n"}} }), "steps[0].catch[0].errors", "at least one"},
		{"bad pattern", manual(func(s *model.StepDefinition) { s.Catch = []model.CatchRule{{Errors: []string{"http.**"}, Next: "n"}} }), "steps[0].catch[0].errors[0]", "not an error name"},
		{"pattern with a space", manual(func(s *model.StepDefinition) {
			s.Retry = rules(model.RetryRule{Errors: []string{"manual failed"}})
		}), "steps[0].retry[0].errors[0]", "not an error name"},
		{"retries out of range", manual(func(s *model.StepDefinition) {
			s.Retry = rules(model.RetryRule{Errors: []string{"*"}, MaxAttempts: intp(20)})
		}), "steps[0].retry[0].maxAttempts", "between 0 and 19"},
		{"interval 0", manual(func(s *model.StepDefinition) {
			s.Retry = rules(model.RetryRule{Errors: []string{"*"}, IntervalSeconds: intp(0)})
		}), "steps[0].retry[0].intervalSeconds", "between 1 and"},
		{"backoff below 1", manual(func(s *model.StepDefinition) {
			s.Retry = rules(model.RetryRule{Errors: []string{"*"}, BackoffRate: floatp(0.5)})
		}), "steps[0].retry[0].backoffRate", "between 1 and 10"},
		{"bad jitter", manual(func(s *model.StepDefinition) { s.Retry = rules(model.RetryRule{Errors: []string{"*"}, Jitter: "HALF"}) }), "steps[0].retry[0].jitter", "FULL or NONE"},
		{"policy on a manual", manual(func(s *model.StepDefinition) { s.Retry = &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: 2}} }), "steps[0].retry", "list of rules"},
		{"retry on a wait", []model.StepDefinition{{Name: "w", Type: model.StepWait, Seconds: 1, Retry: rules(model.RetryRule{Errors: []string{"*"}})}}, "steps[0].retry", "not a field of wait steps"},
		{"catch on a choice", []model.StepDefinition{{Name: "c", Type: model.StepChoice, Rules: []model.ChoiceRule{{When: "true", Next: "n"}}, Catch: []model.CatchRule{{Errors: []string{"*"}, Next: "n"}}}, {Name: "n", Type: model.StepManual}}, "steps[0].catch", "not a field of choice steps"},
		{"retry on a fail", []model.StepDefinition{{Name: "f", Type: model.StepFail, Error: "x", Retry: rules()}}, "steps[0].retry", "not a field of fail steps"},
	} {
		err := (model.Definition{Name: "w", Steps: tc.steps}).Validate()
		var fe *model.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Problem, tc.want) {
			t.Errorf("%s: got %v, want %s %q", tc.name, err, tc.field, tc.want)
		}
	}
	// A step reached only through a catch is reachable.
	ok := manual(func(s *model.StepDefinition) {
		s.End = true
		s.Catch = []model.CatchRule{{Errors: []string{"*"}, Next: "n"}}
	})
	if err := (model.Definition{Name: "w", Steps: ok}).Validate(); err != nil {
		t.Errorf("a step reached through a catch: %v", err)
	}
}

// retry is written as it was read: a list of rules, or an http step's
// policy object; anything else is refused with the field named.
func TestRetryJSON(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{`[{"errors":["*"],"maxAttempts":2}]`, `[{"errors":["*"],"maxAttempts":2}]`},
		{`{"maxAttempts":3,"backoffSeconds":2}`, `{"maxAttempts":3,"backoffSeconds":2}`},
		{`[]`, `[]`},
	} {
		var r model.Retry
		if err := json.Unmarshal([]byte(tc.in), &r); err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		out, _ := json.Marshal(r)
		if string(out) != tc.out {
			t.Errorf("%s: written %s, want %s", tc.in, out, tc.out)
		}
	}
	for _, in := range []string{`[{"errors":["*"],"retries":2}]`, `{"maxAttempts":3,"x":1}`, `"always"`, `[1]`} {
		var r model.Retry
		if err := json.Unmarshal([]byte(in), &r); err == nil || !strings.Contains(err.Error(), "retry") {
			t.Errorf("%s: got %v, want an error naming retry", in, err)
		}
	}
}
