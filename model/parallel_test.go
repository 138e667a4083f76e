package model_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
)

// checks: a parallel step whose branches are an approval and an http call
// followed by a wait; then a manual step.
func checks() []model.StepDefinition {
	return []model.StepDefinition{
		{Name: "checks", Type: model.StepParallel, Branches: []model.Branch{
			{Steps: []model.StepDefinition{{Name: "ask", Type: model.StepManual}}},
			{Steps: []model.StepDefinition{
				{Name: "call", Type: model.StepHTTP, URL: "http://127.0.0.1:9999/check"},
				{Name: "cool", Type: model.StepWait, Seconds: 5},
			}},
		}},
		{Name: "done", Type: model.StepManual},
	}
}

// Flat indexes of checks(): the workflow's own steps first, then the
// branches' steps, branch after branch.
const (
	iChecks = iota
	iDone
	iAsk
	iCall
	iCool
)

func TestAParallelStepRunsItsBranchesAtOnceAndCompletesWithTheirOutputs(t *testing.T) {
	steps := checks()
	if err := (model.Definition{Name: "p", Steps: steps}).Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	r := startRun(t, 0, steps...)
	if got := r.statuses(); got != "checks=RUNNING done=PENDING ask=WAITING call=RUNNING cool=PENDING" {
		t.Fatalf("after the start: %s", got)
	}
	if st := r.x.Steps[iAsk]; st.Parallel != "checks" || st.Branch != 0 || r.x.Steps[iCool].Branch != 1 {
		t.Fatalf("the branch steps' places: %+v", st)
	}
	if br := r.x.Steps[iChecks].Branches; len(br) != 2 || br[0].CurrentStep != iAsk || br[1].CurrentStep != iCall || br[0].Status != model.BranchRunning {
		t.Fatalf("the branches: %+v", br)
	}
	// Steps of both branches are in progress at once; one that is not is
	// refused.
	_, err := r.do(model.IncrementExecution{WorkflowExecutionUUID: r.id, Step: iDone})
	wantRejection(t, err, false, "not the current step")
	events := r.increment(iAsk, `{"approved":true}`)
	if got := typesOf(events); got != "StepCompleted BranchSucceeded" {
		t.Fatalf("the approval: %s", got)
	}
	r.outcome(iCall, 1, model.StepOutcome{Output: json.RawMessage(`{"score":7}`)})
	if got := r.statuses(); got != "checks=RUNNING done=PENDING ask=SUCCEEDED call=SUCCEEDED cool=WAITING" {
		t.Fatalf("after the call: %s", got)
	}
	r.now = r.now.Add(5 * time.Second)
	events = r.decide(model.TimerCommand(r.id, iCool, 1, r.now), nil)
	if got := typesOf(events); got != "StepCompleted BranchSucceeded StepCompleted StepStarted" {
		t.Fatalf("the last branch's end: %s", got)
	}
	if got := string(r.x.Steps[iChecks].Output); got != `[{"approved":true},null]` {
		t.Fatalf("the parallel step's output: %s (the branches' last outputs, in order)", got)
	}
	r.increment(iDone, `{}`)
	if r.x.Status != model.ExecutionSucceeded {
		t.Fatalf("at the end: %s", r.x.Status)
	}
}

// A failed branch fails the parallel step, the other branches are
// cancelled (their steps in progress refused from then on), and the
// parallel step's catch routes the failure.
func TestAFailedBranchCancelsTheOthersAndIsCaught(t *testing.T) {
	steps := checks()
	steps[0].Catch = []model.CatchRule{{Errors: []string{"http.*"}, Next: "recover"}}
	steps = append(steps, model.StepDefinition{Name: "recover", Type: model.StepManual})
	steps[1].End = true
	r := startRun(t, 0, steps...)
	// recover is index 2 now: the branches' steps follow.
	const ask, call = 3, 4
	events := r.outcome(call, 1, model.StepOutcome{Err: "status 500", Name: model.ErrHTTPStatus5xx})
	if got := typesOf(events); got != "BranchFailed StepFailed StepStarted" {
		t.Fatalf("the failure: %s", got)
	}
	if got := r.statuses(); got != "checks=FAILED done=PENDING recover=WAITING ask=FAILED call=FAILED cool=PENDING" {
		t.Fatalf("after the failure: %s", got)
	}
	br := r.x.Steps[0].Branches
	if br[0].Status != model.BranchCancelled || br[1].Status != model.BranchFailed || !strings.Contains(r.x.Steps[ask].Error, "cancelled") {
		t.Fatalf("the branches: %+v; ask: %q", br, r.x.Steps[ask].Error)
	}
	if st := r.x.Steps[0]; st.ErrorName != model.ErrHTTPStatus5xx || !strings.Contains(st.Error, `branch 1, step "call"`) {
		t.Fatalf("the parallel step's failure: %q %q", st.ErrorName, st.Error)
	}
	_, err := r.do(model.IncrementExecution{WorkflowExecutionUUID: r.id, Step: ask})
	wantRejection(t, err, false, "not in progress in its branch")
}

// A redrive of an execution a branch failed runs only the branches that
// did not succeed, each from the step it stopped at; the parallel step
// then completes with every branch's output.
func TestARedriveRunsOnlyTheFailedBranches(t *testing.T) {
	r := startRun(t, 0, checks()...)
	r.increment(iAsk, `{"approved":true}`)
	r.outcome(iCall, 1, model.StepOutcome{Err: "status 503", Name: model.ErrHTTPStatus5xx})
	if r.x.Status != model.ExecutionFailed || r.x.ErrorName != model.ErrHTTPStatus5xx {
		t.Fatalf("before the redrive: %s %q", r.x.Status, r.x.ErrorName)
	}
	events := r.must(model.RedriveExecution{WorkflowExecutionUUID: r.id})
	if got := typesOf(events); got != "ExecutionRedriven StepStarted StepStarted" {
		t.Fatalf("the redrive: %s", got)
	}
	var started model.StepStarted
	if err := json.Unmarshal(events[1].Data, &started); err != nil || len(started.Branches) != 2 || started.Branches[0] != -1 || started.Branches[1] != iCall {
		t.Fatalf("the parallel step's start: %s", events[1].Data)
	}
	if got := r.statuses(); got != "checks=RUNNING done=PENDING ask=SUCCEEDED call=RUNNING cool=PENDING" || r.x.Steps[iAsk].Runs != 1 || r.x.Steps[iCall].Runs != 2 {
		t.Fatalf("after the redrive: %s (runs: ask %d, call %d)", got, r.x.Steps[iAsk].Runs, r.x.Steps[iCall].Runs)
	}
	r.outcome(iCall, 1, model.StepOutcome{Output: json.RawMessage(`{}`)})
	r.now = r.now.Add(5 * time.Second)
	r.decide(model.TimerCommand(r.id, iCool, 1, r.now), nil)
	if got := string(r.x.Steps[iChecks].Output); got != `[{"approved":true},null]` || r.x.CurrentStep != iDone {
		t.Fatalf("after the redriven branch: output %s at %d", got, r.x.CurrentStep)
	}
}

// Only one http attempt of an append is held by its worker; a second
// branch's first attempt is left to the dispatcher.
func TestOneAttemptPerAppendIsHeld(t *testing.T) {
	call := func(name string) model.StepDefinition {
		return model.StepDefinition{Name: name, Type: model.StepHTTP, URL: "http://127.0.0.1:9999/" + name}
	}
	steps := []model.StepDefinition{{Name: "both", Type: model.StepParallel, Branches: []model.Branch{
		{Steps: []model.StepDefinition{call("a")}}, {Steps: []model.StepDefinition{call("b")}},
	}}}
	r := &run{t: t, id: uuid.New(), now: t0}
	wf := model.Workflow{WorkflowUUID: uuid.New(), Version: 1, Steps: steps, Seq: 1}
	events := r.decide(model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: r.id, WorkflowUUID: wf.WorkflowUUID}, t0), &wf)
	var held []bool
	for _, e := range events {
		var d model.StepStarted
		if e.Type == model.EventStepStarted && json.Unmarshal(e.Data, &d) == nil && d.Type == model.StepHTTP {
			held = append(held, d.Held)
		}
	}
	if len(held) != 2 || !held[0] || held[1] {
		t.Fatalf("held: %v, want the first only", held)
	}
	if h, ok := r.x.Held(); !ok || h.Step != 1 {
		t.Fatalf("Held: %+v %v, want step 1 (a)", h, ok)
	}
	// The dispatcher's RunStep claims b's first attempt; both complete.
	r.outcome(2, 1, model.StepOutcome{Output: json.RawMessage(`"b"`)})
	r.outcome(1, 1, model.StepOutcome{Output: json.RawMessage(`"a"`)})
	if r.x.Status != model.ExecutionSucceeded || string(r.x.Output) != `["a","b"]` {
		t.Fatalf("at the end: %s %s", r.x.Status, r.x.Output)
	}
}

// A fail step in a branch fails the branch in the append that reaches it;
// nested parallel steps complete inside out; a pause holds a branch's
// next step until the resume.
func TestBranchesWithDecidedStepsNestingAndPause(t *testing.T) {
	steps := []model.StepDefinition{{Name: "outer", Type: model.StepParallel, Branches: []model.Branch{
		{Steps: []model.StepDefinition{
			{Name: "bad?", Type: model.StepChoice, Rules: []model.ChoiceRule{{When: "input.bad", Next: "stop"}}, Default: "inner"},
			{Name: "stop", Type: model.StepFail, Error: "input.bad"},
			{Name: "inner", Type: model.StepParallel, Branches: []model.Branch{
				{Steps: []model.StepDefinition{{Name: "x", Type: model.StepManual}}},
				{Steps: []model.StepDefinition{{Name: "y", Type: model.StepManual}, {Name: "z", Type: model.StepManual}}},
			}},
		}},
		{Steps: []model.StepDefinition{{Name: "w", Type: model.StepManual}}},
	}}}
	if err := (model.Definition{Name: "n", Steps: steps}).Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	bad := startWith(t, `{"bad": true}`, steps...)
	if bad.x.Status != model.ExecutionFailed || bad.x.ErrorName != "input.bad" {
		t.Fatalf("a fail step in a branch: %s %q (%s)", bad.x.Status, bad.x.ErrorName, bad.statuses())
	}
	r := startWith(t, `{"bad": false}`, steps...)
	index := map[string]int{}
	for i, st := range r.x.Steps {
		index[st.Name] = i
	}
	if got := r.statuses(); got != "outer=RUNNING bad?=SUCCEEDED stop=PENDING inner=RUNNING w=WAITING x=WAITING y=WAITING z=PENDING" {
		t.Fatalf("after the start: %s", got)
	}
	r.must(model.PauseExecution{WorkflowExecutionUUID: r.id})
	r.increment(index["y"], `"y"`)
	if st := r.x.Steps[index["z"]]; st.Status != model.StepPending {
		t.Fatalf("z entered while paused: %s", st.Status)
	}
	events := r.must(model.ResumeExecution{WorkflowExecutionUUID: r.id})
	if got := typesOf(events); got != "ExecutionResumed StepStarted" || r.x.Steps[index["z"]].Status != model.StepWaiting {
		t.Fatalf("the resume: %s", got)
	}
	r.increment(index["x"], `"x"`)
	r.increment(index["z"], `"z"`)
	if got := string(r.x.Steps[index["inner"]].Output); got != `["x","z"]` || r.x.Steps[index["outer"]].Status != model.StepRunning {
		t.Fatalf("the inner parallel step: %s, outer %s", got, r.x.Steps[index["outer"]].Status)
	}
	r.increment(index["w"], `"w"`)
	if r.x.Status != model.ExecutionSucceeded || string(r.x.Output) != `[["x","z"],"w"]` {
		t.Fatalf("at the end: %s %s", r.x.Status, r.x.Output)
	}
}

func TestValidateRefusesBadParallelSteps(t *testing.T) {
	m := func(name string) model.StepDefinition {
		return model.StepDefinition{Name: name, Type: model.StepManual}
	}
	par := func(branches ...[]model.StepDefinition) model.StepDefinition {
		p := model.StepDefinition{Name: "p", Type: model.StepParallel}
		for _, b := range branches {
			p.Branches = append(p.Branches, model.Branch{Steps: b})
		}
		return p
	}
	nest := func(depth int) model.StepDefinition {
		s := m("leaf")
		for d := range depth {
			s = model.StepDefinition{Name: "p" + string(rune('a'+d)), Type: model.StepParallel, Branches: []model.Branch{{Steps: []model.StepDefinition{s}}, {Steps: []model.StepDefinition{m("o" + string(rune('a'+d)))}}}}
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		steps []model.StepDefinition
		field string
		want  string
	}{
		{"one branch", []model.StepDefinition{par([]model.StepDefinition{m("a")})}, "steps[0].branches", "2 to 10 branches"},
		{"empty branch", []model.StepDefinition{par([]model.StepDefinition{m("a")}, nil)}, "steps[0].branches[1].steps", "at least one step"},
		{"a name used twice", []model.StepDefinition{par([]model.StepDefinition{m("a")}, []model.StepDefinition{m("a")})}, "steps[0].branches[1].steps[0].name", "unique in the whole workflow"},
		{"next out of the branch", []model.StepDefinition{par([]model.StepDefinition{{Name: "a", Type: model.StepManual, Next: "z"}}, []model.StepDefinition{m("b")}), m("z")}, "steps[0].branches[0].steps[0].next", "names no step of its branch"},
		{"unreachable in a branch", []model.StepDefinition{par([]model.StepDefinition{{Name: "a", Type: model.StepManual, End: true}, m("a2")}, []model.StepDefinition{m("b")})}, "steps[0].branches[0].steps[1]", "cannot be reached"},
		{"retry on parallel", []model.StepDefinition{func() model.StepDefinition {
			p := par([]model.StepDefinition{m("a")}, []model.StepDefinition{m("b")})
			p.Retry = &model.Retry{Rules: []model.RetryRule{{Errors: []string{"*"}}}}
			return p
		}()}, "steps[0].retry", "retry the steps inside its branches"},
		{"branches on a manual", []model.StepDefinition{{Name: "a", Type: model.StepManual, Branches: []model.Branch{{}}}}, "steps[0].branches", "not a field of manual steps"},
		{"nested too deep", []model.StepDefinition{nest(4)}, "steps[0].branches[0].steps[0].branches[0].steps[0].branches[0].steps[0]", "more than 3 deep"},
	} {
		err := (model.Definition{Name: "w", Steps: tc.steps}).Validate()
		var fe *model.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Problem, tc.want) {
			t.Errorf("%s: got %v, want %s %q", tc.name, err, tc.field, tc.want)
		}
	}
	if err := (model.Definition{Name: "w", Steps: []model.StepDefinition{nest(3)}}).Validate(); err != nil {
		t.Errorf("nested 3 deep: %v", err)
	}
}
