package model_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
)

// The workflow language's property test: random definitions (every step
// type but parallel, with next, end, retry and catch rules, choices over
// outputs and caught errors, output expressions) run under random command
// orders (increments that complete or fail a step, stale ones, timers,
// http claims and outcomes, timeouts, pauses, resumes, redrives,
// cancellations, redeliveries). After every command:
//
//   - the view a projector keeps (the state after any earlier event, as
//     stored: its JSON) folded with the later events equals the fold of
//     the whole history;
//   - no run of a step completes twice, and an execution ends at most
//     once between redrives;
//   - a command is decided into events or refused with a *Rejection,
//     never another error or a panic.
func TestPropertyRandomDefinitionsUnderRandomCommands(t *testing.T) {
	runs := 400
	if testing.Short() {
		runs = 100
	}
	for seed := range runs {
		rng := rand.New(rand.NewPCG(uint64(seed), 12))
		def := randomDefinition(rng)
		if err := def.Validate(); err != nil {
			continue // a random graph may leave a step unreachable
		}
		p := &property{t: t, seed: seed, rng: rng, def: def, id: uuid.New(), now: t0}
		p.run()
	}
}

type property struct {
	t      *testing.T
	seed   int
	rng    *rand.Rand
	def    model.Definition
	id     uuid.UUID
	now    time.Time
	x      model.Execution
	events []model.Event
	sent   []model.Command // client commands sent so far, for redeliveries
	seen   map[uuid.UUID]bool
}

func randomDefinition(rng *rand.Rand) model.Definition {
	n := 2 + rng.IntN(5)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("s%d", i)
	}
	pick := func() string { return names[rng.IntN(n)] }
	rules := func() []model.RetryRule {
		if rng.IntN(2) == 0 {
			return nil
		}
		a, iv := rng.IntN(3), 1+rng.IntN(3)
		return []model.RetryRule{{Errors: []string{[]string{"*", "http.*", "manual.failed", "step.timeout"}[rng.IntN(4)]}, MaxAttempts: &a, IntervalSeconds: &iv}}
	}
	catch := func() []model.CatchRule {
		if rng.IntN(2) == 0 {
			return nil
		}
		return []model.CatchRule{{Errors: []string{[]string{"*", "http.status.5xx", "order.rejected"}[rng.IntN(3)]}, Next: pick()}}
	}
	steps := make([]model.StepDefinition, n)
	for i := range steps {
		s := model.StepDefinition{Name: names[i]}
		switch k := rng.IntN(10); {
		case k < 3:
			s.Type = model.StepManual
			if rng.IntN(3) == 0 {
				s.TimeoutSeconds = 5 + rng.IntN(20)
			}
			if r := rules(); r != nil {
				s.Retry = &model.Retry{Rules: r}
			}
			s.Catch = catch()
			if rng.IntN(4) == 0 {
				s.Output = `{"ok": has(result.ok) ? result.ok : false, "n": 1}`
			}
		case k < 5:
			s.Type, s.Seconds = model.StepWait, 1+rng.IntN(10)
			s.Catch = catch()
		case k < 7:
			s.Type, s.URL = model.StepHTTP, "http://127.0.0.1:9/{{ execution.id }}"
			if rng.IntN(2) == 0 {
				s.Retry = &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: 1 + rng.IntN(3), BackoffSeconds: 1}}
			} else if r := rules(); r != nil {
				s.Retry = &model.Retry{Rules: r}
			}
			s.Catch = catch()
		case k < 8:
			s.Type = model.StepChoice
			s.Rules = []model.ChoiceRule{{When: `error.name == "http.status.5xx" || (has(steps.s0) && has(steps.s0.ok) && steps.s0.ok == true)`, Next: pick()}}
			if i+1 < n && rng.IntN(4) > 0 {
				s.Default = names[i+1]
			} else if rng.IntN(2) == 0 {
				s.Default = pick()
			}
		case k < 9:
			s.Type = model.StepSucceed
			if rng.IntN(2) == 0 {
				s = randomParallel(rng, names[i])
				s.Catch = catch()
			}
		default:
			s.Type, s.Error = model.StepFail, "order.rejected"
		}
		if !decidedType(s.Type) {
			switch rng.IntN(8) {
			case 0:
				s.Next = pick()
			case 1:
				s.End = true
			}
		}
		steps[i] = s
	}
	return model.Definition{Name: "random", Steps: steps}
}

// randomParallel is a parallel step of two or three branches of one to
// three steps each (manual, wait, http, succeed, fail; one branch may
// hold a parallel step of its own).
func randomParallel(rng *rand.Rand, name string) model.StepDefinition {
	p := model.StepDefinition{Name: name, Type: model.StepParallel}
	for b := range 2 + rng.IntN(2) {
		var br model.Branch
		for j := range 1 + rng.IntN(3) {
			s := model.StepDefinition{Name: fmt.Sprintf("%s.%d.%d", name, b, j)}
			switch rng.IntN(6) {
			case 0, 1:
				s.Type = model.StepManual
				if rng.IntN(3) == 0 {
					s.TimeoutSeconds = 5 + rng.IntN(20)
				}
			case 2:
				s.Type, s.Seconds = model.StepWait, 1+rng.IntN(5)
			case 3:
				s.Type, s.URL = model.StepHTTP, "http://127.0.0.1:9/b"
				if rng.IntN(2) == 0 {
					a, iv := 1, 1
					s.Retry = &model.Retry{Rules: []model.RetryRule{{Errors: []string{"*"}, MaxAttempts: &a, IntervalSeconds: &iv}}}
				}
			case 4:
				if b == 0 && j == 0 && len(name) < 12 {
					s = randomParallel(rng, s.Name)
				} else {
					s.Type = model.StepSucceed
				}
			default:
				s.Type, s.Error = model.StepFail, "branch.failed"
			}
			br.Steps = append(br.Steps, s)
		}
		p.Branches = append(p.Branches, br)
	}
	return p
}

// inProgress returns the steps in progress of x, from its view: the
// current step, or inside a running parallel step each running branch's.
func inProgress(x model.Execution) []int {
	var out []int
	var walk func(i int)
	walk = func(i int) {
		if i < 0 || i >= len(x.Steps) {
			return
		}
		st := x.Steps[i]
		if st.Type != model.StepParallel || st.Status != model.StepRunning {
			out = append(out, i)
			return
		}
		for _, br := range st.Branches {
			if br.Status == model.BranchRunning {
				walk(br.CurrentStep)
			}
		}
	}
	walk(x.CurrentStep)
	return out
}

func decidedType(t string) bool {
	return t == model.StepChoice || t == model.StepSucceed || t == model.StepFail
}

func (p *property) fatalf(format string, args ...any) {
	p.t.Helper()
	def, _ := json.Marshal(p.def)
	p.t.Fatalf("seed %d: %s\ndefinition %s", p.seed, fmt.Sprintf(format, args...), def)
}

func (p *property) run() {
	p.t.Helper()
	p.seen = map[uuid.UUID]bool{}
	wf := model.Workflow{WorkflowUUID: uuid.New(), Version: 1, Steps: p.def.Steps, Seq: 1}
	p.apply(model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: p.id, WorkflowUUID: wf.WorkflowUUID, Input: json.RawMessage(`{"amount": 5}`)}, p.now), &wf)
	for range 80 {
		p.now = p.now.Add(time.Duration(p.rng.IntN(4000)) * time.Millisecond)
		p.step()
		p.check()
	}
}

// step sends one random command.
func (p *property) step() {
	p.t.Helper()
	step := p.x.CurrentStep
	if active := inProgress(p.x); len(active) > 0 {
		step = active[p.rng.IntN(len(active))]
	}
	if p.rng.IntN(5) == 0 && len(p.x.Steps) > 0 {
		step = p.rng.IntN(len(p.x.Steps)) // often stale
	}
	id := p.id
	switch k := p.rng.IntN(20); {
	case k < 4:
		p.apply(model.NewCommand(uuid.New(), model.IncrementExecution{WorkflowExecutionUUID: id, Step: step, Output: json.RawMessage(fmt.Sprintf(`{"ok": %t}`, p.rng.IntN(2) == 0))}, p.now), nil)
	case k < 6:
		p.apply(model.NewCommand(uuid.New(), model.IncrementExecution{WorkflowExecutionUUID: id, Step: step, Error: []string{"order.rejected", "manual.failed"}[p.rng.IntN(2)]}, p.now), nil)
	case k < 8:
		run := 1
		if step < len(p.x.Steps) {
			run = p.x.Steps[step].Runs
		}
		p.apply(model.TimerCommand(id, step, run, p.now), nil)
	case k < 12:
		p.http(step)
	case k < 13:
		if c, ok := p.x.DueCommand(p.now, maxDelay); ok && c.Type != model.CommandRunStep {
			p.apply(c, nil)
		}
	case k < 14:
		p.apply(model.NewCommand(uuid.New(), model.PauseExecution{WorkflowExecutionUUID: id}, p.now), nil)
	case k < 16:
		p.apply(model.NewCommand(uuid.New(), model.ResumeExecution{WorkflowExecutionUUID: id}, p.now), nil)
	case k < 18:
		p.apply(model.NewCommand(uuid.New(), model.RedriveExecution{WorkflowExecutionUUID: id}, p.now), nil)
	case k < 19:
		if p.rng.IntN(4) == 0 {
			p.apply(model.NewCommand(uuid.New(), model.CancelExecution{WorkflowExecutionUUID: id}, p.now), nil)
		}
	default:
		if len(p.sent) > 0 {
			p.apply(p.sent[p.rng.IntN(len(p.sent))], nil) // a redelivery
		}
	}
}

// http claims an attempt of step (if it can be claimed) and decides a
// random outcome of it.
func (p *property) http(step int) {
	p.t.Helper()
	attempt := 1
	if step < len(p.x.Steps) {
		attempt = max(p.x.Steps[step].Attempts, 1)
		if p.x.Steps[step].DueAt != nil {
			attempt++
		}
	}
	run := 0
	if step < len(p.x.Steps) {
		run = p.x.Steps[step].Runs
	}
	c := model.RunStepCommand(p.id, step, run, attempt, p.now)
	h, held := p.x.Held()
	if !held || h.Step != step || h.Attempt != attempt {
		claim, err := model.ClaimAttempt(p.x, c, p.now)
		if err != nil {
			p.refused(c, err)
			return
		}
		p.fold(claim)
		if h, held = p.x.Held(); !held {
			p.fatalf("a claim at seq %d holds nothing", claim[0].Seq)
		}
	}
	var out model.StepOutcome
	switch p.rng.IntN(3) {
	case 0:
		out.Output = json.RawMessage(`{"charged": true}`)
	case 1:
		out.Err, out.Name = "status 503", model.ErrHTTPStatus5xx
	default:
		out.Err, out.Name, out.Final = "host not allowed", model.ErrHTTPHostNotAllowed, true
	}
	out.Claim, out.Jitter = h.Claim, p.rng.Float64()
	events, err := model.DecideStepOutcome(p.x, c, out, p.now)
	if err != nil {
		p.refused(c, err)
		return
	}
	p.fold(events)
}

// apply decides c as a worker would: a command already applied is a
// duplicate and changes nothing.
func (p *property) apply(c model.Command, wf *model.Workflow) {
	p.t.Helper()
	if !model.IsSystemCommand(c.Type) {
		p.sent = append(p.sent, c)
	}
	if p.seen[c.CommandUUID] {
		return
	}
	events, err := model.DecideExecution(p.x, c, wf, p.now)
	if err != nil {
		p.refused(c, err)
		return
	}
	p.seen[c.CommandUUID] = true
	p.fold(events)
}

func (p *property) refused(c model.Command, err error) {
	p.t.Helper()
	var rej *model.Rejection
	if !errors.As(err, &rej) {
		p.fatalf("%s: %v (%T), want a *model.Rejection", c.Type, err, err)
	}
}

func (p *property) fold(events []model.Event) {
	p.t.Helper()
	for i, e := range events {
		if e.Seq != int64(len(p.events)+i+1) {
			p.fatalf("event %s at seq %d after %d events", e.Type, e.Seq, len(p.events))
		}
	}
	x, err := model.FoldExecution(p.x, events)
	if err != nil {
		p.fatalf("fold: %v", err)
	}
	p.x = x
	p.events = append(p.events, events...)
}

// check holds the properties over the history so far.
func (p *property) check() {
	p.t.Helper()
	whole, err := model.FoldExecution(model.Execution{}, p.events)
	if err != nil {
		p.fatalf("fold of the history: %v", err)
	}
	want := mustJSON(p.t, whole)
	if got := mustJSON(p.t, p.x); got != want {
		p.fatalf("the incremental fold is not the fold of the history:\n%s\n%s", got, want)
	}
	// A projector's view: the state after k events as stored, then the rest.
	k := 1 + p.rng.IntN(len(p.events))
	at, _ := model.FoldExecution(model.Execution{}, p.events[:k])
	var view model.Execution
	if err := json.Unmarshal([]byte(mustJSON(p.t, at)), &view); err != nil {
		p.fatalf("decode a view: %v", err)
	}
	view.Version = at.Version
	rest, err := model.FoldExecution(view, p.events[k:])
	if err != nil {
		p.fatalf("fold a view after seq %d: %v", k, err)
	}
	if got := mustJSON(p.t, rest); got != want {
		p.fatalf("the view kept at seq %d, folded on, is not the fold of the history:\n%s\n%s", k, got, want)
	}
	if err := model.CheckHistory(p.events); err != nil {
		p.fatalf("%v", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
