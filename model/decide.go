package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Rejection is a command the aggregate refuses, with a reason a client can
// read. A Transient rejection may succeed later (the workflow an execution
// names may not be applied yet): workers retry it before giving up.
type Rejection struct {
	Reason    string
	Transient bool
	// After, for a transient rejection, is when to try again (0: the
	// worker's own backoff): a timer that came early.
	After time.Duration
}

func (r *Rejection) Error() string { return "rejected: " + r.Reason }

func reject(format string, args ...any) error {
	return &Rejection{Reason: fmt.Sprintf(format, args...)}
}

// DecideWorkflow returns the events a workflow command produces from state s,
// or a *Rejection. It is pure: the same inputs give the same events.
func DecideWorkflow(s Workflow, c Command, now time.Time) ([]Event, error) {
	var drafts []draft
	var err error
	switch p := c.Payload.(type) {
	case CreateWorkflow:
		drafts, err = s.create(p)
	case UpdateWorkflow:
		drafts, err = s.update(p)
	case DeleteWorkflow:
		drafts, err = s.delete()
	default:
		return nil, reject("command %s is not a workflow command", c.Type)
	}
	if err != nil {
		return nil, err
	}
	return eventsFor(c.AggregateID(), s.Seq, c, now, drafts...)
}

// create is the rule of CreateWorkflow: version 1 of a new workflow.
func (s Workflow) create(p CreateWorkflow) ([]draft, error) {
	if s.Exists() {
		return nil, reject("workflow %s already exists", p.WorkflowUUID)
	}
	return []draft{{EventWorkflowCreated, WorkflowDefined{WorkflowUUID: p.WorkflowUUID, Version: 1, Definition: p.Definition}}}, nil
}

// update is the rule of UpdateWorkflow: the next version of a live workflow.
func (s Workflow) update(p UpdateWorkflow) ([]draft, error) {
	if err := s.requireLive(); err != nil {
		return nil, err
	}
	return []draft{{EventWorkflowVersionCreated, WorkflowDefined{WorkflowUUID: p.WorkflowUUID, Version: s.Version + 1, Definition: p.Definition}}}, nil
}

// delete is the rule of DeleteWorkflow: a live workflow takes no new
// executions.
func (s Workflow) delete() ([]draft, error) {
	if err := s.requireLive(); err != nil {
		return nil, err
	}
	return []draft{{EventWorkflowDeleted, struct{}{}}}, nil
}

// requireLive rejects a command on a workflow that does not exist or was
// deleted.
func (s Workflow) requireLive() error {
	if !s.Exists() {
		return reject("workflow not found")
	}
	if s.Deleted() {
		return reject("workflow %s is deleted", s.WorkflowUUID)
	}
	return nil
}

// DecideExecution returns the events an execution command produces from
// state s, or a *Rejection. wf is the workflow a StartExecution names (nil
// when it does not exist); other commands ignore it. Each command has its
// rule below; RunStep is decided as a claim on its attempt and then the
// attempt's outcome instead (ClaimAttempt, DecideStepOutcome).
func DecideExecution(s Execution, c Command, wf *Workflow, now time.Time) ([]Event, error) {
	var drafts []draft
	var err error
	switch p := c.Payload.(type) {
	case StartExecution:
		drafts, err = s.start(p, wf, now)
	case BeginExecution:
		drafts, err = s.begin(now)
	case IncrementExecution:
		drafts, err = s.increment(p, now)
	case FireTimer:
		drafts, err = s.fireTimer(p, now)
	case TimeOutExecution:
		drafts, err = s.timeOut(now)
	case CancelExecution:
		drafts, err = s.cancel(p)
	case RedriveExecution:
		drafts, err = s.redrive(p, now)
	case PauseExecution:
		drafts, err = s.pause(p)
	case ResumeExecution:
		drafts, err = s.resume(p, now)
	case RunStep:
		return nil, errors.New("RunStep is decided as a claim and an outcome: use ClaimAttempt and DecideStepOutcome")
	default:
		return nil, reject("command %s is not an execution command", c.Type)
	}
	if err != nil {
		return nil, err
	}
	return eventsFor(c.AggregateID(), s.Version, c, now, drafts...)
}

// start is the rule of StartExecution: a new execution of the workflow's
// current version, which must exist (it may not be projected yet: a
// transient rejection) and not be deleted. It begins at once: the same
// append records ExecutionCreated, ExecutionStarted and the first
// StepStarted, so a new execution is never PENDING (architecture log,
// entry 27; BeginExecution still begins those an earlier build created).
func (s Execution) start(p StartExecution, wf *Workflow, now time.Time) ([]draft, error) {
	if s.Exists() {
		return nil, reject("execution %s already exists", p.WorkflowExecutionUUID)
	}
	if wf == nil || !wf.Exists() {
		return nil, &Rejection{Reason: fmt.Sprintf("workflow %s not found", p.WorkflowUUID), Transient: true}
	}
	if wf.Deleted() {
		return nil, reject("workflow %s is deleted", p.WorkflowUUID)
	}
	// Encoded here, once: its size is the execution's first claim on
	// MaxExecutionData (the definition is copied into the execution).
	data, err := json.Marshal(ExecutionCreated{
		WorkflowExecutionUUID: p.WorkflowExecutionUUID,
		WorkflowUUID:          wf.WorkflowUUID,
		WorkflowVersion:       wf.Version,
		TimeoutSeconds:        wf.TimeoutSeconds,
		Steps:                 wf.Steps,
		Input:                 p.Input,
		OutputExpression:      wf.Output,
	})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", EventExecutionCreated, err)
	}
	if len(data) > MaxExecutionData {
		return nil, reject("the workflow's definition and the input take %d bytes encoded (the input %d), over the %d an execution may hold", len(data), len(p.Input), MaxExecutionData)
	}
	out := append(make([]draft, 0, 3), draft{EventExecutionCreated, json.RawMessage(data)}, draft{EventExecutionStarted, struct{}{}})
	if hasParallel(wf.Steps) {
		// Its steps are laid out flat as the fold does it.
		return Execution{WorkflowExecutionUUID: p.WorkflowExecutionUUID}.after(out, now).enter(out, 0, StepCompleted{Step: -1}, now), nil
	}
	x := created(wf.Steps)
	x.WorkflowExecutionUUID, x.WorkflowUUID, x.WorkflowVersion = p.WorkflowExecutionUUID, wf.WorkflowUUID, wf.Version
	x.Input, x.CreatedAt = p.Input, now.UTC()
	return x.enter(out, 0, StepCompleted{Step: -1}, now), nil
}

// created is the state ExecutionCreated gives steps, as far as entering
// the first reads it.
func created(steps []StepDefinition) Execution {
	x := Execution{Definitions: steps, Steps: make([]StepState, len(steps))}
	for i, st := range steps {
		x.Steps[i].Type = st.Type
	}
	return x
}

// begin is the rule of BeginExecution: a PENDING execution runs its first
// step.
func (s Execution) begin(now time.Time) ([]draft, error) {
	if err := s.requireExists(); err != nil {
		return nil, err
	}
	if s.Status != ExecutionPending {
		return nil, reject("execution is %s, not %s", s.Status, ExecutionPending)
	}
	return s.enter(append(make([]draft, 0, 2), draft{EventExecutionStarted, struct{}{}}), 0, StepCompleted{Step: -1}, now), nil
}

// increment is the rule of IncrementExecution: the current manual step
// completes with the client's output, or fails with the client's error
// (then its retry and catch rules decide what follows).
func (s Execution) increment(p IncrementExecution, now time.Time) ([]draft, error) {
	if s.Exists() && s.Status == ExecutionPending {
		// The dispatcher begins a new execution a moment after it is
		// created: an increment that overtook it is retried, not refused.
		return nil, &Rejection{Reason: "execution has not started yet", Transient: true}
	}
	if err := s.checkCurrent(p.Step, StepManual); err != nil {
		return nil, err
	}
	st := s.Steps[p.Step]
	if run := max(st.Runs, 1); p.Run != 0 && p.Run != run {
		return nil, reject("step %d is in its run %d, not %d", p.Step, run, p.Run)
	}
	if st.Status != StepWaiting {
		return nil, reject("step %d is %s", p.Step, st.Status)
	}
	if st.DueAt != nil && now.Before(*st.DueAt) {
		return nil, reject("step %d failed (%s) and is offered again at %s", p.Step, st.ErrorName, st.DueAt.UTC().Format(time.RFC3339))
	}
	attempt := s.manualAttempt(p.Step)
	if p.Failed() {
		name := p.Error
		if name == "" {
			name = ErrManualFailed
		}
		cause := p.Cause
		if cause == "" {
			cause = "failed by a client"
		}
		end := func(cause string) draft {
			return draft{EventExecutionFailed, Failure{Step: p.Step, Attempt: attempt, Name: name, Cause: p.Cause,
				Error: fmt.Sprintf("step %q failed: %s: %s", st.Name, name, cause)}}
		}
		return s.fail(stepFailure{step: p.Step, attempt: attempt, name: name, cause: cause}, now, end), nil
	}
	if err := s.roomFor(p.Output); err != nil {
		return nil, reject("%v", err)
	}
	done := StepCompleted{Step: p.Step, Output: p.Output}
	if attempt > 1 {
		done.Attempt = attempt
	}
	return s.complete(done, now), nil
}

// fireTimer is the rule of FireTimer: the current wait step completes once
// its time has come (a timer that came early is retried when it is due).
func (s Execution) fireTimer(p FireTimer, now time.Time) ([]draft, error) {
	if err := s.checkCurrent(p.Step, StepWait); err != nil {
		return nil, err
	}
	if err := s.requireUnpaused(); err != nil {
		return nil, err
	}
	st := s.Steps[p.Step]
	if st.Status != StepWaiting || st.DueAt == nil {
		return nil, reject("step %d is %s, not waiting", p.Step, st.Status)
	}
	if now.Before(*st.DueAt) {
		return nil, &Rejection{Reason: "the timer is not due yet", Transient: true, After: st.DueAt.Sub(now)}
	}
	return s.complete(StepCompleted{Step: p.Step}, now), nil
}

// timeOut is the rule of TimeOutExecution: a running execution past its
// own deadline ends as TIMED_OUT; a step past its deadline fails with
// step.timeout, which its retry and catch rules may take (else the
// execution ends TIMED_OUT, or FAILED for an http step that ran out of
// time for its attempts).
func (s Execution) timeOut(now time.Time) ([]draft, error) {
	if err := s.requireLive(); err != nil {
		return nil, err
	}
	if at, reason, ok := s.executionDeadline(); ok && !now.Before(at) {
		return []draft{{EventExecutionTimedOut, TimedOut{Step: s.CurrentStep, Reason: reason, Name: ErrExecutionTimeout}}}, nil
	}
	if at, reason, i, ok := s.earliest(s.stepDeadlineOf); ok && !now.Before(at) {
		end := func(cause string) draft {
			return draft{EventExecutionTimedOut, TimedOut{Step: i, Reason: cause, Name: ErrStepTimeout}}
		}
		return s.fail(stepFailure{step: i, attempt: s.manualAttempt(i), name: ErrStepTimeout, cause: reason}, now, end), nil
	}
	if at, failure, i, ok := s.earliest(s.httpDeadlineOf); ok && !now.Before(at) {
		st := s.Steps[i]
		end := func(cause string) draft {
			return draft{EventExecutionFailed, Failure{Step: i, Attempt: st.Attempts, Error: cause, Name: ErrStepTimeout}}
		}
		return s.fail(stepFailure{step: i, attempt: st.Attempts, name: ErrStepTimeout, cause: failure, final: true}, now, end), nil
	}
	deadline, _, ok := s.Deadline()
	if at, _, hok := s.HTTPDeadline(); hok && (!ok || at.Before(deadline)) {
		deadline, ok = at, true
	}
	if !ok {
		return nil, reject("execution has no deadline")
	}
	return nil, &Rejection{Reason: "the deadline has not passed", Transient: true, After: deadline.Sub(now)}
}

// manualAttempt is the attempt step i is in: for a manual step offered
// again after a failure (a retry due), the one after its last.
func (s Execution) manualAttempt(i int) int {
	st := s.Steps[i]
	if st.Type == StepManual && st.DueAt != nil {
		return st.Attempts + 1
	}
	return max(st.Attempts, 1)
}

// HTTPDeadline returns the earliest time an http step in progress runs
// out of time for all its attempts (httpDeadlineOf), and the reason.
func (s Execution) HTTPDeadline() (time.Time, string, bool) {
	at, reason, _, ok := s.earliest(s.httpDeadlineOf)
	return at, reason, ok
}

// earliest returns the earliest of the deadlines of the steps in progress,
// as deadline gives them, its reason and its step.
func (s Execution) earliest(deadline func(i int) (time.Time, string, bool)) (time.Time, string, int, bool) {
	var at time.Time
	var reason string
	step := -1
	for _, i := range s.activeSteps() {
		if t, r, ok := deadline(i); ok && (step < 0 || t.Before(at)) {
			at, reason, step = t, r, i
		}
	}
	return at, reason, step, step >= 0
}

// httpDeadlineOf returns when step i, if it is an http step in progress,
// runs out of time for all its attempts (its start plus its definition's
// Deadline), and the reason it then fails with (step.timeout).
func (s Execution) httpDeadlineOf(i int) (time.Time, string, bool) {
	if !s.active(i) || i >= len(s.Definitions) {
		return time.Time{}, "", false
	}
	st, def := s.Steps[i], s.Definitions[i]
	if st.Type != StepHTTP || st.Status != StepRunning || st.StartedAt == nil {
		return time.Time{}, "", false
	}
	reason := fmt.Sprintf("step %q did not succeed within its deadline of %d seconds (attempts made: %d)", st.Name, int(def.Deadline().Seconds()), st.Attempts)
	if st.Error != "" {
		reason += "; last error: " + st.Error
	}
	return st.StartedAt.Add(def.Deadline()), reason, true
}

// cancel is the rule of CancelExecution: an execution that has not ended
// ends as CANCELLED.
func (s Execution) cancel(p CancelExecution) ([]draft, error) {
	if err := s.requireLive(); err != nil {
		return nil, err
	}
	return []draft{{EventExecutionCancelled, ExecutionFinished{Reason: p.Reason}}}, nil
}

// requireExists rejects a command on an execution that does not exist.
func (s Execution) requireExists() error {
	if !s.Exists() {
		return reject("execution not found")
	}
	return nil
}

// requireLive rejects a command on an execution that does not exist or has
// ended.
func (s Execution) requireLive() error {
	if err := s.requireExists(); err != nil {
		return err
	}
	if IsTerminal(s.Status) {
		return reject("execution is already %s", s.Status)
	}
	return nil
}

// checkCurrent is the guard of every command about one step: it rejects
// the command unless the execution is RUNNING at that step and the step
// has type typ.
func (s Execution) checkCurrent(step int, typ string) error {
	if err := s.requireExists(); err != nil {
		return err
	}
	switch {
	case s.Status != ExecutionRunning:
		return reject("execution is %s, not %s", s.Status, ExecutionRunning)
	case step < 0 || step >= len(s.Steps):
		return reject("step %d is not the current step (%d; the execution has %d steps)", step, s.CurrentStep, len(s.Steps))
	case !s.active(step) && s.Steps[step].Parallel != "":
		return reject("step %d is not in progress in its branch", step)
	case !s.active(step):
		return reject("step %d is not the current step (%d)", step, s.CurrentStep)
	case s.Steps[step].Type != typ && typ == StepManual:
		return reject("step %d is a %s step; only manual steps take increments", step, s.Steps[step].Type)
	case s.Steps[step].Type != typ:
		return reject("step %d is a %s step, not %s", step, s.Steps[step].Type, typ)
	}
	return nil
}

// startStep returns the StepStarted of step i: a wait step's says when it
// ends.
func (s Execution) startStep(i int, now time.Time) StepStarted {
	st := StepStarted{Step: i, Type: s.Steps[i].Type, Held: s.Steps[i].Type == StepHTTP, Run: s.runField(i)}
	if st.Type == StepWait && i < len(s.Definitions) {
		due := now.UTC().Add(time.Duration(s.Definitions[i].Seconds) * time.Second)
		st.DueAt = &due
	}
	return st
}

// complete returns the events of the current step completing as done says:
// StepCompleted, then entering the step that follows (its next, or the
// next in the list: choices decided, a step that waits or calls started),
// or, after the last step or one that ends the execution,
// ExecutionSucceeded with the step's output.
func (s Execution) complete(done StepCompleted, now time.Time, before ...draft) []draft {
	out := append(make([]draft, 0, len(before)+2), before...)
	if done.Step < len(s.Definitions) && s.Definitions[done.Step].Output != "" {
		shaped, f := s.shapeOutput(done)
		if f != nil {
			end := func(cause string) draft {
				return draft{EventExecutionFailed, Failure{Step: f.step, Attempt: f.attempt, Name: f.name, Error: cause}}
			}
			return s.failAfter(out, *f, now, end)
		}
		done.Output = shaped
	}
	next := s.successor(done.Step)
	if next != done.Step+1 && (next >= 0 || done.Step+1 < len(s.Steps)) {
		done.Next = &next
	}
	return s.enter(append(out, draft{EventStepCompleted, done}), next, done, now)
}

// Deadline returns the earliest deadline the execution is under while it
// runs, and what passing it means: the execution's own (createdAt +
// timeoutSeconds), or its current manual or wait step's (stepDeadline).
func (s Execution) Deadline() (time.Time, string, bool) {
	at, reason, ok := s.executionDeadline()
	if sat, sreason, sok := s.stepDeadline(); sok && (!ok || sat.Before(at)) {
		return sat, sreason, true
	}
	return at, reason, ok
}

// executionDeadline is createdAt + timeoutSeconds, when it has one.
func (s Execution) executionDeadline() (time.Time, string, bool) {
	if s.TimeoutSeconds <= 0 {
		return time.Time{}, "", false
	}
	from := s.CreatedAt
	if s.RedrivenAt != nil {
		from = *s.RedrivenAt
	}
	at := from.Add(time.Duration(s.TimeoutSeconds) * time.Second)
	return at, fmt.Sprintf("the execution timed out after %d seconds", s.TimeoutSeconds), true
}

// stepDeadline is the earliest deadline of a manual or wait step in
// progress (stepDeadlineOf).
func (s Execution) stepDeadline() (time.Time, string, bool) {
	at, reason, _, ok := s.earliest(s.stepDeadlineOf)
	return at, reason, ok
}

// stepDeadlineOf is the deadline of step i if it is a manual or wait step
// in progress (an http step's timeoutSeconds bounds each attempt
// instead): its start, or, for a manual step offered again after a
// failure, when it is offered, plus its timeoutSeconds.
func (s Execution) stepDeadlineOf(i int) (time.Time, string, bool) {
	if !s.active(i) {
		return time.Time{}, "", false
	}
	st := s.Steps[i]
	if st.Type == StepHTTP || st.TimeoutSeconds <= 0 || st.StartedAt == nil || st.Status != StepWaiting {
		return time.Time{}, "", false
	}
	from := *st.StartedAt
	if st.Type == StepManual && st.DueAt != nil {
		from = *st.DueAt
	}
	return from.Add(time.Duration(st.TimeoutSeconds) * time.Second), fmt.Sprintf("step %q timed out after %d seconds", st.Name, st.TimeoutSeconds), true
}

// MaxExecutionData bounds what an execution holds: its ExecutionCreated
// data (the workflow's definition, copied, and the input) and its step
// outputs together. Its view and its creating append must each fit a
// DynamoDB item (400 KB) on both stores alike, and these are most of them.
const MaxExecutionData = 320 << 10

// roomFor reports an error if output would take the execution's
// definition, input and outputs over MaxExecutionData.
func (s Execution) roomFor(output json.RawMessage) error {
	n := s.createdBytes + len(output)
	if s.createdBytes == 0 {
		n += len(s.Input) // a state not folded from its log
	}
	for _, st := range s.Steps {
		n += len(st.Output)
	}
	if n > MaxExecutionData {
		return fmt.Errorf("an output of %d bytes would take the execution's definition, input and outputs to %d bytes, over the %d allowed", len(output), n, MaxExecutionData)
	}
	return nil
}

// StepOutcome is what one attempt of an http step came to.
type StepOutcome struct {
	Output json.RawMessage // the 2xx answer, when Err is ""
	Err    string          // why the attempt failed ("" if it did not)
	Name   string          // the failure's name (http.timeout, …)
	Final  bool            // retrying cannot help (a host not allowed)
	Jitter float64         // in [0, 1), drawn once for the retry delay
	Claim  int64           // the seq of the claim the attempt was made under (HeldAttempt.Claim)
}

// AttemptGrace is how long past the end of an http attempt's timeout
// another worker waits before it takes the attempt over (ClaimAttempt).
// The holder's call may run into its first half (CallBy): a call that
// starts late, after a slow append of its claim, still gets its whole
// timeout; the second half is room for the clocks of two workers to
// differ.
const AttemptGrace = 10 * time.Second

// HeldAttempt is an http attempt in progress: the step, the attempt, the
// seq of the event that claimed it (its holder's token, which the
// outcome carries as StepOutcome.Claim), and its claim time plus the
// attempt's timeout.
type HeldAttempt struct {
	Step, Attempt int
	Run           int // the step's run (1: its first)
	Claim         int64
	Until         time.Time
}

// Held returns the http attempt in progress, if there is one: the
// current step is an http step RUNNING with no retry due, and an event
// claimed its latest attempt (a StepStarted marked Held, or a
// StepAttemptStarted). A worker holds it if its own append holds that
// event; anyone else may take it over once it is TakeoverAt.
//
// With parallel branches several attempts may be in progress at once:
// Held returns the one claimed last (the one an append just claimed).
func (s Execution) Held() (HeldAttempt, bool) {
	var held HeldAttempt
	found := false
	for _, i := range s.activeSteps() {
		if h, ok := s.heldAt(i); ok && (!found || h.Claim > held.Claim) {
			held, found = h, true
		}
	}
	return held, found
}

// heldAt returns the http attempt in progress of step i, if an event
// claimed it.
func (s Execution) heldAt(i int) (HeldAttempt, bool) {
	if !s.active(i) {
		return HeldAttempt{}, false
	}
	st := s.Steps[i]
	if st.Type != StepHTTP || st.Status != StepRunning || st.DueAt != nil || st.AttemptStartedAt == nil {
		return HeldAttempt{}, false
	}
	return HeldAttempt{Step: i, Attempt: st.Attempts, Run: st.Runs, Claim: st.claim, Until: st.AttemptStartedAt.Add(s.attemptTimeout(i))}, true
}

// TakeoverAt is when another worker may take the attempt over: its call
// has ended by then, or its holder died.
func (h HeldAttempt) TakeoverAt() time.Time { return h.Until.Add(AttemptGrace) }

// CallBy is when the holder's call must have ended: half the grace after
// Until, half before TakeoverAt.
func (h HeldAttempt) CallBy() time.Time { return h.Until.Add(AttemptGrace / 2) }

func (s Execution) attemptTimeout(i int) time.Duration {
	if i < len(s.Definitions) {
		return s.Definitions[i].AttemptTimeout()
	}
	return MaxHTTPTimeout * time.Second
}

// ClaimAttempt decides the claim on attempt p.Attempt of http step p.Step
// that a RunStep asks for: one StepAttemptStarted event, whose conditional
// append makes its worker the attempt's only holder (two claimants race
// for one seq; the loser reads again and finds the attempt held). The
// attempt must be due:
//   - the retry after the last failed attempt, once its backoff has passed
//     (else a transient rejection saying how long);
//   - the attempt in progress, once its holder's time is up (TakeoverAt;
//     else a transient rejection until then): the holder seems to have
//     died, and the call is repeated (Resumed) with the same
//     Idempotency-Key;
//   - the attempt in progress that no event claimed (its StepStarted was
//     appended by an earlier build, whose dispatcher issued the RunStep).
//
// Any other attempt is stale (a *Rejection): a duplicate, or one that an
// outcome, a cancellation or a timeout overtook.
func ClaimAttempt(s Execution, c Command, now time.Time) ([]Event, error) {
	p, ok := c.Payload.(RunStep)
	if !ok {
		return nil, fmt.Errorf("ClaimAttempt: command %s is not %s", c.Type, CommandRunStep)
	}
	if err := s.checkCurrent(p.Step, StepHTTP); err != nil {
		return nil, err
	}
	if err := s.requireUnpaused(); err != nil {
		return nil, err
	}
	st := s.Steps[p.Step]
	claim := StepAttemptStarted{Step: p.Step, Attempt: p.Attempt}
	switch {
	case st.Status != StepRunning:
		return nil, reject("step %d is %s", p.Step, st.Status)
	case p.Attempt > 1 && p.Attempt == st.Attempts+1 && st.DueAt != nil:
		if now.Before(*st.DueAt) {
			return nil, &Rejection{Reason: "the retry is not due yet", Transient: true, After: st.DueAt.Sub(now)}
		}
	case p.Attempt == st.Attempts && st.DueAt == nil && st.AttemptStartedAt == nil:
		// claimed by nobody: an earlier build's StepStarted
	case p.Attempt == st.Attempts && st.DueAt == nil:
		h, _ := s.heldAt(p.Step)
		if at := h.TakeoverAt(); now.Before(at) {
			return nil, &Rejection{Reason: fmt.Sprintf("attempt %d of step %d is in progress", p.Attempt, p.Step), Transient: true, After: at.Sub(now)}
		}
		claim.Resumed = true
	default:
		return nil, reject("attempt %d of step %d is not due (attempts so far: %d)", p.Attempt, p.Step, st.Attempts)
	}
	// A claim's UUID names the seq it takes: every claim of one attempt is
	// a command of its own, and two racing for one seq are twins.
	cc := NewCommand(SystemCommandUUID(p.WorkflowExecutionUUID, "claim/"+strconv.Itoa(p.Attempt), p.Step, int(s.Version)+1), p, now)
	return eventsFor(p.AggregateID(), s.Version, cc, now, draft{EventStepAttemptStarted, claim})
}

// checkHeld reports a *Rejection unless attempt p.Attempt of step p.Step
// is in progress and held by claim: an outcome counts only from its holder
// (one that was overtaken, or whose attempt was taken over, is stale).
func (s Execution) checkHeld(p RunStep, claim int64) error {
	if err := s.checkCurrent(p.Step, StepHTTP); err != nil {
		return err
	}
	h, ok := s.heldAt(p.Step)
	switch {
	case !ok || h.Attempt != p.Attempt:
		return reject("attempt %d of step %d is not in progress (step %s, attempts so far: %d)", p.Attempt, p.Step, s.Steps[p.Step].Status, s.Steps[p.Step].Attempts)
	case h.Claim != claim:
		return reject("attempt %d of step %d was taken over by the claim at seq %d", p.Attempt, p.Step, h.Claim)
	}
	return nil
}

// DecideStepOutcome returns the events of an http attempt's outcome,
// made under the claim out.Claim (the state may have moved on while the
// request ran, or another worker taken the attempt over: then the outcome
// is ignored, a *Rejection): success completes the step; a failure with
// attempts left schedules the next after the backoff; the last failure,
// or a final one, fails the execution.
func DecideStepOutcome(s Execution, c Command, out StepOutcome, now time.Time) ([]Event, error) {
	p, ok := c.Payload.(RunStep)
	if !ok {
		return nil, fmt.Errorf("DecideStepOutcome: command %s is not %s", c.Type, CommandRunStep)
	}
	if err := s.checkHeld(p, out.Claim); err != nil {
		return nil, err
	}
	if out.Err == "" {
		if err := s.roomFor(out.Output); err != nil {
			out = StepOutcome{Err: err.Error(), Name: ErrOutputTooLarge, Final: true}
		} else {
			return eventsFor(p.AggregateID(), s.Version, c, now, s.complete(StepCompleted{Step: p.Step, Output: out.Output, Attempt: p.Attempt}, now)...)
		}
	}
	name := out.Name
	if name == "" {
		name = ErrHTTPConnection // an outcome of an earlier build's worker
	}
	stepName := s.Steps[p.Step].Name
	end := func(cause string) draft {
		reason := fmt.Sprintf("step %q failed after %d attempts: %s", stepName, p.Attempt, cause)
		if p.Attempt == 1 {
			reason = fmt.Sprintf("step %q failed: %s", stepName, cause)
		}
		return draft{EventExecutionFailed, Failure{Step: p.Step, Attempt: p.Attempt, Error: reason, Name: name}}
	}
	f := stepFailure{step: p.Step, attempt: p.Attempt, name: name, cause: out.Err, final: out.Final, jitter: out.Jitter}
	return eventsFor(p.AggregateID(), s.Version, c, now, s.fail(f, now, end)...)
}
