package model_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
)

// do decides a client command on the execution and folds its events, or
// returns its error.
func (r *run) do(p model.Payload) ([]model.Event, error) {
	r.t.Helper()
	events, err := model.DecideExecution(r.x, model.NewCommand(uuid.New(), p, r.now), nil, r.now)
	if err == nil {
		r.fold(events)
	}
	return events, err
}

func (r *run) must(p model.Payload) []model.Event {
	r.t.Helper()
	events, err := r.do(p)
	if err != nil {
		r.t.Fatalf("%s: %v", p.CommandType(), err)
	}
	return events
}

// A redrive goes on from the step that failed, as a new run of it, with
// the steps that completed and their outputs kept, under the same id.
func TestRedriveGoesOnFromTheFailedStep(t *testing.T) {
	steps := []model.StepDefinition{
		{Name: "approve", Type: model.StepManual},
		httpStep(func(s *model.StepDefinition) {}),
		{Name: "ship", Type: model.StepManual},
	}
	r := startRun(t, 0, steps...)
	r.increment(0, `{"ok":true}`)
	r.outcome(1, 1, model.StepOutcome{Err: "status 503", Name: model.ErrHTTPStatus5xx})
	if r.x.Status != model.ExecutionFailed || r.statuses() != "approve=SUCCEEDED call=FAILED ship=SKIPPED" {
		t.Fatalf("before the redrive: %s %s", r.x.Status, r.statuses())
	}
	_, err := r.do(model.PauseExecution{WorkflowExecutionUUID: r.id})
	wantRejection(t, err, false, "already FAILED")

	r.now = r.now.Add(time.Hour)
	events := r.must(model.RedriveExecution{WorkflowExecutionUUID: r.id, Reason: "the shop is back"})
	if got := typesOf(events); got != "ExecutionRedriven StepStarted" {
		t.Fatalf("the redrive's events: %s", got)
	}
	var d model.Redriven
	if err := json.Unmarshal(events[0].Data, &d); err != nil || d.Step != 1 || d.Redrive != 1 || d.Reason != "the shop is back" {
		t.Fatalf("ExecutionRedriven: %s", events[0].Data)
	}
	x := r.x
	if x.Status != model.ExecutionRunning || x.Error != "" || x.ErrorName != "" || x.Redrives != 1 || x.RedrivenAt == nil || !x.RedrivenAt.Equal(r.now) {
		t.Fatalf("after the redrive: %+v", x)
	}
	if got := r.statuses(); got != "approve=SUCCEEDED call=RUNNING ship=PENDING" || string(x.Steps[0].Output) != `{"ok":true}` || x.Steps[1].Runs != 2 || x.Steps[1].Attempts != 1 {
		t.Fatalf("steps after the redrive: %s, approve's output %s, call's runs %d attempts %d", got, x.Steps[0].Output, x.Steps[1].Runs, x.Steps[1].Attempts)
	}
	_, err = r.do(model.RedriveExecution{WorkflowExecutionUUID: r.id})
	wantRejection(t, err, false, "only a FAILED or TIMED_OUT execution")

	r.outcome(1, 1, model.StepOutcome{Output: json.RawMessage(`{"charged":true}`)})
	r.increment(2, `{}`)
	if r.x.Status != model.ExecutionSucceeded {
		t.Fatalf("at the end: %s", r.x.Status)
	}
}

// A TIMED_OUT execution is redriven with its timeout counting from the
// redrive; past the window, or after MaxRedrives, a redrive is refused.
func TestRedriveOfATimedOutExecutionAndTheWindow(t *testing.T) {
	r := startRun(t, 10, model.StepDefinition{Name: "approve", Type: model.StepManual})
	r.now = r.now.Add(10 * time.Second)
	c, _ := r.x.DueCommand(r.now, maxDelay)
	r.decide(c, nil)
	if r.x.Status != model.ExecutionTimedOut {
		t.Fatalf("%s", r.x.Status)
	}
	r.now = r.now.Add(10 * time.Second)
	r.must(model.RedriveExecution{WorkflowExecutionUUID: r.id})
	if r.x.Status != model.ExecutionRunning || r.x.Steps[0].Status != model.StepWaiting {
		t.Fatalf("after the redrive: %s %s", r.x.Status, r.statuses())
	}
	if at, _, ok := r.x.Deadline(); !ok || !at.Equal(r.now.Add(10*time.Second)) {
		t.Fatalf("the deadline after the redrive: %v %v, want 10 s from it", at, ok)
	}
	if c, ok := r.x.DueCommand(r.now.Add(9*time.Second), maxDelay); ok {
		t.Fatalf("due before the new deadline: %+v", c)
	}
	r.now = r.now.Add(10 * time.Second)
	first := c
	c, _ = r.x.DueCommand(r.now, maxDelay)
	if c.CommandUUID == first.CommandUUID {
		t.Fatal("the timeout after the redrive has the first one's UUID: a worker takes it for a duplicate")
	}
	r.decide(c, nil)
	if r.x.Status != model.ExecutionTimedOut || r.x.ErrorName != model.ErrExecutionTimeout {
		t.Fatalf("the second timeout: %s %q", r.x.Status, r.x.ErrorName)
	}
	r.now = r.now.Add(model.RedriveWindow + time.Second)
	_, err := r.do(model.RedriveExecution{WorkflowExecutionUUID: r.id})
	wantRejection(t, err, false, "can no longer be redriven")
}

// A paused execution records a completion but starts no step until it is
// resumed; the resume enters it in the same append.
func TestPauseHoldsTheNextStepUntilTheResume(t *testing.T) {
	steps := []model.StepDefinition{
		{Name: "approve", Type: model.StepManual},
		{Name: "route", Type: model.StepChoice, Rules: []model.ChoiceRule{{When: "steps.approve.ok", Next: "cool"}}, Default: "approve"},
		{Name: "cool", Type: model.StepWait, Seconds: 60},
		{Name: "ship", Type: model.StepManual},
	}
	r := startRun(t, 0, steps...)
	r.must(model.PauseExecution{WorkflowExecutionUUID: r.id, Reason: "incident"})
	if !r.x.Paused {
		t.Fatal("not paused")
	}
	_, err := r.do(model.PauseExecution{WorkflowExecutionUUID: r.id})
	wantRejection(t, err, false, "already paused")
	events := r.increment(0, `{"ok":true}`)
	if got := typesOf(events); got != "StepCompleted" || r.x.CurrentStep != 1 || r.x.Steps[1].Status != model.StepPending {
		t.Fatalf("an increment while paused: %s, at %d (%s)", got, r.x.CurrentStep, r.statuses())
	}
	events = r.must(model.ResumeExecution{WorkflowExecutionUUID: r.id})
	if got := typesOf(events); got != "ExecutionResumed StepStarted StepCompleted StepStarted" || r.x.Paused || r.x.CurrentStep != 2 {
		t.Fatalf("the resume: %s, paused %v at %d", got, r.x.Paused, r.x.CurrentStep)
	}
	_, err = r.do(model.ResumeExecution{WorkflowExecutionUUID: r.id})
	wantRejection(t, err, false, "not paused")

	// Paused in the wait step: its timer is dropped; a resume before it
	// is due names it for the dispatcher, one after it ends the step.
	r.must(model.PauseExecution{WorkflowExecutionUUID: r.id})
	r.now = r.now.Add(time.Minute)
	timer := model.TimerCommand(r.id, 2, 1, r.now)
	_, err = model.DecideExecution(r.x, timer, nil, r.now)
	wantRejection(t, err, false, "paused")
	if c, ok := r.x.DueCommand(r.now.Add(time.Hour), maxDelay); ok {
		t.Fatalf("the cleanup issues %s for a paused execution", c.Type)
	}
	if at, ok := r.x.DueAt(maxDelay); ok {
		t.Fatalf("a paused execution without deadlines is due at %v", at)
	}
	events = r.must(model.ResumeExecution{WorkflowExecutionUUID: r.id})
	if got := typesOf(events); got != "ExecutionResumed StepCompleted StepStarted" || r.x.CurrentStep != 3 {
		t.Fatalf("a resume after the timer was due: %s at %d", got, r.x.CurrentStep)
	}

	// Cancellation works while paused.
	r.must(model.PauseExecution{WorkflowExecutionUUID: r.id})
	r.must(model.CancelExecution{WorkflowExecutionUUID: r.id})
	if r.x.Status != model.ExecutionCancelled || r.x.Paused {
		t.Fatalf("cancelled while paused: %s, paused %v", r.x.Status, r.x.Paused)
	}
}

// Paused during an http step's retry: the claim is refused, and the
// resume names the attempt for the dispatcher to issue again.
func TestPauseHoldsARetryAndTheResumeNamesIt(t *testing.T) {
	call := httpStep(func(s *model.StepDefinition) {
		s.Retry = &model.Retry{Rules: []model.RetryRule{{Errors: []string{"*"}, IntervalSeconds: intp(30)}}}
	})
	r := startRun(t, 0, call)
	r.must(model.PauseExecution{WorkflowExecutionUUID: r.id})
	// The attempt in flight when it was paused finishes and is recorded.
	r.outcome(0, 1, model.StepOutcome{Err: "status 503", Name: model.ErrHTTPStatus5xx})
	if st := r.x.Steps[0]; st.DueAt == nil || !r.x.Paused {
		t.Fatalf("the outcome while paused: %+v", st)
	}
	r.now = r.now.Add(time.Minute)
	wantRejection(t, r.claim(0, 2, r.now), false, "paused")
	events := r.must(model.ResumeExecution{WorkflowExecutionUUID: r.id})
	var d model.Paused
	if err := json.Unmarshal(events[0].Data, &d); err != nil || d.Step == nil || *d.Step != 0 || d.Type != model.StepHTTP || d.Attempt != 2 || d.DueAt == nil {
		t.Fatalf("the resume: %s", events[0].Data)
	}
	if err := r.claim(0, 2, r.now); err != nil {
		t.Fatalf("the retry after the resume: %v", err)
	}
}

// CheckHistory finds a run of a step completed twice and a second end
// without a redrive between, and accepts one after a redrive.
func TestCheckHistory(t *testing.T) {
	r := startRun(t, 0, model.StepDefinition{Name: "a", Type: model.StepManual})
	start, _ := model.DecideExecution(model.Execution{}, model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: r.id, WorkflowUUID: r.x.WorkflowUUID}, t0),
		&model.Workflow{WorkflowUUID: r.x.WorkflowUUID, Version: 1, Steps: []model.StepDefinition{{Name: "a", Type: model.StepManual}}, Seq: 1}, t0)
	done := r.increment(0, `{}`)
	if err := model.CheckHistory(append(start, done...)); err != nil {
		t.Fatalf("a good history: %v", err)
	}
	twice := append(append(start, done...), done[0])
	if err := model.CheckHistory(twice); err == nil || !strings.Contains(err.Error(), "completed twice") {
		t.Fatalf("a run completed twice: %v", err)
	}
	redrive := model.Event{Type: model.EventExecutionRedriven, Data: json.RawMessage(`{"step":0,"redrive":1}`)}
	if err := model.CheckHistory(append(append(append(start, done...), done[len(done)-1]), redrive)); err == nil || !strings.Contains(err.Error(), "ended twice") {
		t.Fatalf("ended twice: %v", err)
	}
	if err := model.CheckHistory(append(append(append(start, done...), redrive), done[len(done)-1])); err != nil {
		t.Fatalf("an end after a redrive: %v", err)
	}
}
