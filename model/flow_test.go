package model_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
)

// startWith starts an execution of steps with input.
func startWith(t *testing.T, input string, steps ...model.StepDefinition) *run {
	t.Helper()
	r := &run{t: t, id: uuid.New(), now: t0}
	wf := model.Workflow{WorkflowUUID: uuid.New(), Version: 1, Steps: steps, Seq: 1}
	r.decide(model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: r.id, WorkflowUUID: wf.WorkflowUUID, Input: json.RawMessage(input)}, t0), &wf)
	return r
}

func (r *run) increment(step int, output string) []model.Event {
	r.t.Helper()
	var out json.RawMessage
	if output != "" {
		out = json.RawMessage(output)
	}
	return r.decide(model.NewCommand(uuid.New(), model.IncrementExecution{WorkflowExecutionUUID: r.id, Step: step, Output: out}, r.now), nil)
}

func (r *run) statuses() string {
	var b strings.Builder
	for i, st := range r.x.Steps {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(st.Name + "=" + st.Status)
	}
	return b.String()
}

// The order workflow's routing: a choice on input.amount sends large
// orders to a manual approval, small ones straight on; a rejected
// approval ends in a fail step.
var order = []model.StepDefinition{
	{Name: "route", Type: model.StepChoice, Rules: []model.ChoiceRule{{When: `input.amount >= 1000`, Next: "approve"}}, Default: "ship"},
	{Name: "approve", Type: model.StepManual},
	{Name: "approved?", Type: model.StepChoice, Rules: []model.ChoiceRule{{When: `steps.approve.ok`, Next: "ship"}}, Default: "rejected"},
	{Name: "rejected", Type: model.StepFail, Error: "order.rejected", Cause: "the approver said no"},
	{Name: "ship", Type: model.StepManual, End: true},
}

func TestChoiceSendsSmallOrdersStraightOn(t *testing.T) {
	if err := (model.Definition{Name: "order", Steps: order}).Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	r := startWith(t, `{"amount": 20}`, order...)
	if r.x.Status != model.ExecutionRunning || r.x.CurrentStep != 4 {
		t.Fatalf("after the start: %s at step %d, want RUNNING at 4 (ship)", r.x.Status, r.x.CurrentStep)
	}
	r.increment(4, `{"tracking":"T1"}`)
	if r.x.Status != model.ExecutionSucceeded || string(r.x.Output) != `{"tracking":"T1"}` {
		t.Fatalf("after ship: %s output %s", r.x.Status, r.x.Output)
	}
	if got, want := r.statuses(), "route=SUCCEEDED approve=SKIPPED approved?=SKIPPED rejected=SKIPPED ship=SUCCEEDED"; got != want {
		t.Fatalf("steps: got %s, want %s", got, want)
	}
}

func TestChoiceSendsLargeOrdersToApprovalAndAFailStepEndsARejection(t *testing.T) {
	r := startWith(t, `{"amount": 2500.5}`, order...)
	if r.x.CurrentStep != 1 || r.x.Steps[1].Status != model.StepWaiting {
		t.Fatalf("after the start: at step %d (%s), want the approval waiting", r.x.CurrentStep, r.statuses())
	}
	events := r.increment(1, `{"ok": false}`)
	// The choice and the fail step are decided in the increment's append.
	var types []string
	for _, e := range events {
		types = append(types, e.Type)
	}
	if got, want := strings.Join(types, ","), "StepCompleted,StepStarted,StepCompleted,StepStarted,ExecutionFailed"; got != want {
		t.Fatalf("the increment's append: got %s, want %s", got, want)
	}
	if r.x.Status != model.ExecutionFailed || r.x.ErrorName != "order.rejected" || r.x.Error != "order.rejected: the approver said no" {
		t.Fatalf("after the rejection: %s %q %q", r.x.Status, r.x.ErrorName, r.x.Error)
	}
	if got, want := r.statuses(), "route=SUCCEEDED approve=SUCCEEDED approved?=SUCCEEDED rejected=FAILED ship=SKIPPED"; got != want {
		t.Fatalf("steps: got %s, want %s", got, want)
	}
}

func TestAChoiceWithNoRuleTrueAndNoDefaultFails(t *testing.T) {
	r := startWith(t, `{"amount": 5}`,
		model.StepDefinition{Name: "route", Type: model.StepChoice, Rules: []model.ChoiceRule{{When: `input.amount > 10`, Next: "big"}}},
		model.StepDefinition{Name: "big", Type: model.StepSucceed})
	if r.x.Status != model.ExecutionFailed || r.x.ErrorName != model.ErrChoiceNoMatch || !strings.Contains(r.x.Error, "no rule holds and it has no default") {
		t.Fatalf("got %s %q %q", r.x.Status, r.x.ErrorName, r.x.Error)
	}
}

func TestAChoiceWhoseRuleFailsAtRunTimeFailsTheExecutionWithTheReason(t *testing.T) {
	r := startWith(t, `{}`,
		model.StepDefinition{Name: "route", Type: model.StepChoice, Rules: []model.ChoiceRule{{When: `input.amount > 10`, Next: "big"}}, Default: "big"},
		model.StepDefinition{Name: "big", Type: model.StepSucceed})
	if r.x.Status != model.ExecutionFailed || !strings.Contains(r.x.Error, "no such key: amount") {
		t.Fatalf("got %s %q", r.x.Status, r.x.Error)
	}
}

// A loop through a manual step: its second run is a run of its own, and
// the cap on steps run ends an endless one.
func TestLoopsRunAStepAgainAndTheCapEndsThem(t *testing.T) {
	steps := []model.StepDefinition{
		{Name: "ask", Type: model.StepManual},
		{Name: "again?", Type: model.StepChoice, Rules: []model.ChoiceRule{{When: `steps.ask.more`, Next: "ask"}}, Default: "done"},
		{Name: "done", Type: model.StepSucceed},
	}
	if err := (model.Definition{Name: "loop", Steps: steps}).Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	r := startWith(t, `{}`, steps...)
	r.increment(0, `{"more": true}`)
	if r.x.CurrentStep != 0 || r.x.Steps[0].Runs != 2 || r.x.Steps[0].Status != model.StepWaiting || r.x.Steps[0].Attempts != 1 {
		t.Fatalf("after one round: step %d, %+v", r.x.CurrentStep, r.x.Steps[0])
	}
	r.increment(0, `{"more": false}`)
	if r.x.Status != model.ExecutionSucceeded || r.x.Steps[0].Runs != 2 {
		t.Fatalf("after two rounds: %s, %+v", r.x.Status, r.x.Steps[0])
	}

	r = startWith(t, `{}`, steps...)
	for r.x.Status == model.ExecutionRunning {
		r.increment(0, `{"more": true}`)
	}
	run := 0
	for _, st := range r.x.Steps {
		run += st.Runs
	}
	if r.x.Status != model.ExecutionFailed || r.x.ErrorName != model.ErrStepsExceeded || run != model.MaxStepsRun {
		t.Fatalf("an endless loop: %s %q after %d steps", r.x.Status, r.x.ErrorName, run)
	}
}

// A wait step in a loop: each run's timer has a UUID of its own, so the
// second is not taken for a redelivery of the first.
func TestEachRunOfAWaitStepHasItsOwnTimer(t *testing.T) {
	steps := []model.StepDefinition{
		{Name: "pause", Type: model.StepWait, Seconds: 1},
		{Name: "ask", Type: model.StepManual, Next: "pause"},
	}
	r := startWith(t, `{}`, steps...)
	first := model.TimerCommand(r.id, 0, r.x.Steps[0].Runs, r.now)
	r.now = r.now.Add(2e9)
	r.decide(first, nil)
	r.increment(1, "")
	second := model.TimerCommand(r.id, 0, r.x.Steps[0].Runs, r.now)
	if r.x.Steps[0].Runs != 2 || second.CommandUUID == first.CommandUUID {
		t.Fatalf("run %d of the wait step: timer %s, the first's %s", r.x.Steps[0].Runs, second.CommandUUID, first.CommandUUID)
	}
	if again := model.TimerCommand(r.id, 0, 1, r.now); again.CommandUUID != first.CommandUUID {
		t.Fatal("the first run's timer UUID changed: builds before loops would not recognise it")
	}
}

func TestNextAndEnd(t *testing.T) {
	steps := []model.StepDefinition{
		{Name: "a", Type: model.StepManual, Next: "c"},
		{Name: "b", Type: model.StepManual},
		{Name: "c", Type: model.StepManual, End: true},
		{Name: "d", Type: model.StepManual},
	}
	// b and d are reached by nothing: refused.
	err := (model.Definition{Name: "n", Steps: steps}).Validate()
	var fe *model.FieldError
	if !errors.As(err, &fe) || fe.Field != "steps[1]" || !strings.Contains(fe.Problem, "cannot be reached") {
		t.Fatalf("Validate: got %v, want steps[1] unreachable", err)
	}
	r := startWith(t, `{}`, steps...)
	r.increment(0, "")
	if r.x.CurrentStep != 2 {
		t.Fatalf("after a: at %d, want 2", r.x.CurrentStep)
	}
	r.increment(2, `{"x":1}`)
	if r.x.Status != model.ExecutionSucceeded || string(r.x.Output) != `{"x":1}` {
		t.Fatalf("after c (end): %s %s", r.x.Status, r.x.Output)
	}
	if got, want := r.statuses(), "a=SUCCEEDED b=SKIPPED c=SUCCEEDED d=SKIPPED"; got != want {
		t.Fatalf("steps: got %s, want %s", got, want)
	}
}

// Every malformed control flow is a FieldError naming the field.
func TestValidateRefusesBadFlow(t *testing.T) {
	manual := func(name string) model.StepDefinition {
		return model.StepDefinition{Name: name, Type: model.StepManual}
	}
	choice := func(name, when, next, def string) model.StepDefinition {
		return model.StepDefinition{Name: name, Type: model.StepChoice, Rules: []model.ChoiceRule{{When: when, Next: next}}, Default: def}
	}
	for _, tc := range []struct {
		name  string
		steps []model.StepDefinition
		field string
		want  string
	}{
		{"unknown next", []model.StepDefinition{{Name: "a", Type: model.StepManual, Next: "zz"}}, "steps[0].next", `names no step: "zz"`},
		{"unknown rule next", []model.StepDefinition{choice("c", "true", "zz", "")}, "steps[0].rules[0].next", "names no step"},
		{"unknown default", []model.StepDefinition{choice("c", "true", "c2", "zz"), manual("c2")}, "steps[0].default", "names no step"},
		{"unreachable", []model.StepDefinition{{Name: "a", Type: model.StepManual, End: true}, manual("b")}, "steps[1]", "cannot be reached"},
		{"bad expression", []model.StepDefinition{choice("c", "input.amount >", "b", ""), manual("b")}, "steps[0].rules[0].when", "Syntax error"},
		{"type error", []model.StepDefinition{choice("c", `input.amount + "x" > 1`, "b", ""), manual("b")}, "steps[0].rules[0].when", "no matching overload"},
		{"not a bool", []model.StepDefinition{choice("c", `"yes"`, "b", ""), manual("b")}, "steps[0].rules[0].when", "must be a bool"},
		{"no rules", []model.StepDefinition{{Name: "c", Type: model.StepChoice, Default: "b"}, manual("b")}, "steps[0].rules", "at least one rule"},
		{"rule without next", []model.StepDefinition{{Name: "c", Type: model.StepChoice, Rules: []model.ChoiceRule{{When: "true"}}}}, "steps[0].rules[0].next", "is required"},
		{"choice loop", []model.StepDefinition{choice("c1", "true", "c2", ""), choice("c2", "true", "c1", "")}, "steps[0]", "loop of choice steps"},
		{"next and end", []model.StepDefinition{{Name: "a", Type: model.StepManual, Next: "a", End: true}}, "steps[0].end", "cannot be set with next"},
		{"next on a choice", []model.StepDefinition{{Name: "c", Type: model.StepChoice, Rules: []model.ChoiceRule{{When: "true", Next: "c"}}, Next: "c"}}, "steps[0].next", "not a field of choice steps"},
		{"timeout on a succeed", []model.StepDefinition{{Name: "s", Type: model.StepSucceed, TimeoutSeconds: 5}}, "steps[0].timeoutSeconds", "not a field of succeed steps"},
		{"fail without error", []model.StepDefinition{{Name: "f", Type: model.StepFail}}, "steps[0].error", "is required"},
		{"fail with a bad error", []model.StepDefinition{{Name: "f", Type: model.StepFail, Error: "no spaces allowed"}}, "steps[0].error", "dotted name"},
		{"rules on a manual", []model.StepDefinition{{Name: "m", Type: model.StepManual, Rules: []model.ChoiceRule{{When: "true", Next: "m"}}}}, "steps[0].rules", "not a field of manual steps"},
		{"error on a succeed", []model.StepDefinition{{Name: "s", Type: model.StepSucceed, Error: "x"}}, "steps[0].error", "not a field of succeed steps"},
		{"url on a fail", []model.StepDefinition{{Name: "f", Type: model.StepFail, Error: "x", URL: "http://a/"}}, "steps[0].url", "not a field of fail steps"},
		{"unknown type", []model.StepDefinition{{Name: "p", Type: "parallelx"}}, "steps[0].type", "unknown step type"},
	} {
		err := (model.Definition{Name: "w", Steps: tc.steps}).Validate()
		var fe *model.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Problem, tc.want) {
			t.Errorf("%s: got %v, want %s %q", tc.name, err, tc.field, tc.want)
		}
	}
}

// In a loop, an increment that names its run is refused once the step is
// in a later run: a stale click changes nothing (the simulator found an
// approval run three times without it).
func TestAStaleIncrementOfAnEarlierRunIsRefused(t *testing.T) {
	steps := []model.StepDefinition{
		{Name: "ask", Type: model.StepManual},
		{Name: "again?", Type: model.StepChoice, Rules: []model.ChoiceRule{{When: `steps.ask.more`, Next: "ask"}}, Default: "done"},
		{Name: "done", Type: model.StepSucceed},
	}
	r := startWith(t, `{}`, steps...)
	inc := func(run int, more bool) error {
		_, err := model.DecideExecution(r.x, model.NewCommand(uuid.New(), model.IncrementExecution{
			WorkflowExecutionUUID: r.id, Step: 0, Run: run, Output: json.RawMessage(fmt.Sprintf(`{"more":%t}`, more))}, r.now), nil, r.now)
		return err
	}
	if err := inc(2, true); err == nil {
		t.Fatal("an increment of run 2 while the step is in run 1: accepted")
	}
	r.decide(model.NewCommand(uuid.New(), model.IncrementExecution{WorkflowExecutionUUID: r.id, Step: 0, Run: 1, Output: json.RawMessage(`{"more":true}`)}, r.now), nil)
	var rej *model.Rejection
	if err := inc(1, true); !errors.As(err, &rej) || !strings.Contains(rej.Reason, "run 2, not 1") {
		t.Fatalf("a stale increment of run 1 in run 2: got %v, want a rejection naming the runs", err)
	}
	if err := inc(0, false); err != nil {
		t.Fatalf("an increment without a run: %v", err)
	}
}

// FuzzDefinition: any JSON decodes into a Definition or not, and a
// decoded one validates or is refused with a FieldError, never a panic;
// what validates survives its JSON round trip and validates again, and
// starting an execution of it decides events or a rejection.
func FuzzDefinition(f *testing.F) {
	seed, _ := json.Marshal(model.Definition{Name: "order", Steps: order})
	f.Add(seed)
	f.Add([]byte(`{"name":"w","steps":[{"name":"a","type":"manual","next":"a"}]}`))
	f.Add([]byte(`{"name":"w","steps":[{"name":"c","type":"choice","rules":[{"when":"input.x > 1","next":"d"}],"default":"d"},{"name":"d","type":"fail","error":"x.y"}]}`))
	f.Add([]byte(`{"name":"w","steps":[{"name":"h","type":"http","url":"http://a:1/","retry":{"maxAttempts":2,"backoffSeconds":1},"end":true}]}`))
	f.Add([]byte(`{"name":"w","steps":[{"name":"h","type":"http","url":"http://a:1/","retry":[{"errors":["http.*"],"maxAttempts":2,"jitter":"FULL","maxDelaySeconds":5}],"catch":[{"errors":["*"],"next":"c"}],"end":true},{"name":"c","type":"choice","rules":[{"when":"error.name == 'http.timeout'","next":"m"}],"default":"f"},{"name":"m","type":"manual","timeoutSeconds":5,"retry":[{"errors":["step.timeout"]}],"catch":[{"errors":["step.timeout"],"next":"f"}]},{"name":"f","type":"fail","error":"x"}]}`))
	f.Add([]byte(`{"name":"w","output":"steps.p","steps":[{"name":"p","type":"parallel","catch":[{"errors":["*"],"next":"f"}],"branches":[{"steps":[{"name":"a","type":"manual","output":"result"},{"name":"q","type":"parallel","branches":[{"steps":[{"name":"x","type":"wait","seconds":1}]},{"steps":[{"name":"y","type":"fail","error":"y"}]}]}]},{"steps":[{"name":"h","type":"http","url":"http://a:1/{{ input.id }}","body":"{'a': 1}"}]}]},{"name":"f","type":"succeed"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d model.Definition
		if err := json.Unmarshal(data, &d); err != nil {
			return
		}
		err := d.Validate()
		if err != nil {
			var fe *model.FieldError
			if !errors.As(err, &fe) || fe.Field == "" || fe.Problem == "" {
				t.Fatalf("Validate: %v (%T), want a FieldError naming a field", err, err)
			}
			return
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("Marshal of a valid definition: %v", err)
		}
		var again model.Definition
		if err := json.Unmarshal(b, &again); err != nil || again.Validate() != nil {
			t.Fatalf("round trip of a valid definition: %v, %v", err, again.Validate())
		}
		wf := model.Workflow{WorkflowUUID: uuid.New(), Version: 1, Steps: d.Steps, Seq: 1}
		x := uuid.New()
		events, err := model.DecideExecution(model.Execution{}, model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: x, WorkflowUUID: wf.WorkflowUUID, Input: json.RawMessage(`{"x":2}`)}, t0), &wf, t0)
		var rej *model.Rejection
		if err != nil && !errors.As(err, &rej) {
			t.Fatalf("start: %v", err)
		}
		if _, err := model.FoldExecution(model.Execution{}, events); err != nil {
			t.Fatalf("fold of the start: %v", err)
		}
	})
}
