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

// maxDelay is the longest delay of the bus these tests assume (SQS's).
const maxDelay = 15 * time.Minute

// run is an execution driven through the model as the workers drive it.
type run struct {
	t   *testing.T
	x   model.Execution
	id  uuid.UUID
	now time.Time
}

func startRun(t *testing.T, timeoutSeconds int, steps ...model.StepDefinition) *run {
	t.Helper()
	r := &run{t: t, id: uuid.New(), now: t0}
	wf := model.Workflow{WorkflowUUID: uuid.New(), Version: 1, Steps: steps, TimeoutSeconds: timeoutSeconds, Seq: 1}
	r.decide(model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: r.id, WorkflowUUID: wf.WorkflowUUID}, t0), &wf)
	return r
}

func (r *run) decide(c model.Command, wf *model.Workflow) []model.Event {
	r.t.Helper()
	events, err := model.DecideExecution(r.x, c, wf, r.now)
	if err != nil {
		r.t.Fatalf("decide %s: %v", c.Type, err)
	}
	r.fold(events)
	return events
}

func (r *run) fold(events []model.Event) {
	r.t.Helper()
	x, err := model.FoldExecution(r.x, events)
	if err != nil {
		r.t.Fatal(err)
	}
	r.x = x
}

func (r *run) outcome(step, attempt int, out model.StepOutcome) []model.Event {
	r.t.Helper()
	c := model.RunStepCommand(r.id, step, 0, attempt, r.now)
	h, ok := r.x.Held()
	if !ok || h.Step != step || h.Attempt != attempt {
		// Not held by the append that started it: a RunStep claims it.
		claim, err := model.ClaimAttempt(r.x, c, r.now)
		if err != nil {
			r.t.Fatalf("claim attempt %d of step %d: %v", attempt, step, err)
		}
		r.fold(claim)
		if h, ok = r.x.Held(); !ok || h.Claim != claim[0].Seq {
			r.t.Fatalf("after the claim at seq %d: held %+v %v", claim[0].Seq, h, ok)
		}
	}
	out.Claim = h.Claim
	events, err := model.DecideStepOutcome(r.x, c, out, r.now)
	if err != nil {
		r.t.Fatalf("outcome of attempt %d: %v", attempt, err)
	}
	r.fold(events)
	return events
}

// claim returns the error of a claim on attempt attempt of step step at
// now (and folds the claim when there is none).
func (r *run) claim(step, attempt int, now time.Time) error {
	r.t.Helper()
	events, err := model.ClaimAttempt(r.x, model.RunStepCommand(r.id, step, 0, attempt, now), now)
	if err == nil {
		r.fold(events)
	}
	return err
}

func wantTransientAfter(t *testing.T, err error, after time.Duration) {
	t.Helper()
	var rej *model.Rejection
	if !errors.As(err, &rej) || !rej.Transient || rej.After != after {
		t.Fatalf("got %v, want a transient rejection to retry after %s", err, after)
	}
}

func TestHTTPStepRetriesWithBackoffThenCompletes(t *testing.T) {
	call := httpStep(func(s *model.StepDefinition) {
		s.Retry = &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: 3, BackoffSeconds: 2}}
	})
	r := startRun(t, 0, call, model.StepDefinition{Name: "after", Type: model.StepManual})
	if st := r.x.Steps[0]; st.Status != model.StepRunning || st.Attempts != 1 || st.DueAt != nil {
		t.Fatalf("http step after begin: %+v, want RUNNING, attempt 1 in progress", st)
	}
	r.outcome(0, 1, model.StepOutcome{Err: "status 500", Jitter: 0})
	if st := r.x.Steps[0]; st.Status != model.StepRunning || st.Attempts != 1 || st.DueAt == nil || !st.DueAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("after a failed attempt: %+v, want a retry due at +2s", st)
	}
	// Attempt 2 is not due before the backoff; attempt 1 is done with.
	wantTransientAfter(t, r.claim(0, 2, t0.Add(time.Second)), time.Second)
	wantRejection(t, r.claim(0, 1, t0.Add(time.Hour)), false, "not due")
	r.now = t0.Add(2 * time.Second)
	r.outcome(0, 2, model.StepOutcome{Err: "status 503", Jitter: 0.5})
	if st := r.x.Steps[0]; st.Attempts != 2 || !st.DueAt.Equal(r.now.Add(time.Duration(4*0.9*float64(time.Second)))) {
		t.Fatalf("after attempt 2: %+v, want a retry due 4s less 10%% jitter later", st)
	}
	r.now = r.now.Add(4 * time.Second)
	r.outcome(0, 3, model.StepOutcome{Output: json.RawMessage(`{"ok":true}`)})
	st := r.x.Steps[0]
	if st.Status != model.StepSucceeded || st.Attempts != 3 || string(st.Output) != `{"ok":true}` || st.DueAt != nil || st.Error != "" {
		t.Fatalf("after attempt 3: %+v, want SUCCEEDED on attempt 3 with the output", st)
	}
	if r.x.CurrentStep != 1 || r.x.Steps[1].Status != model.StepWaiting {
		t.Fatalf("execution moved to step %d (%s), want step 1 WAITING", r.x.CurrentStep, r.x.Steps[1].Status)
	}
}

func TestHTTPStepFailsTheExecution(t *testing.T) {
	for _, tt := range []struct {
		name     string
		attempts int
		out      model.StepOutcome
		want     string
	}{
		{"after_the_last_attempt", 1, model.StepOutcome{Err: "status 500"}, `step "call" failed: status 500`},
		{"at_once_when_final", 5, model.StepOutcome{Err: "host not allowed", Final: true}, `step "call" failed: host not allowed`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			call := httpStep(func(s *model.StepDefinition) {
				s.Retry = &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: tt.attempts, BackoffSeconds: 1}}
			})
			r := startRun(t, 0, call, model.StepDefinition{Name: "next", Type: model.StepManual})
			r.outcome(0, 1, tt.out)
			if r.x.Status != model.ExecutionFailed || r.x.Error != tt.want {
				t.Fatalf("execution %s %q, want FAILED %q", r.x.Status, r.x.Error, tt.want)
			}
			if r.x.Steps[0].Status != model.StepFailed || r.x.Steps[1].Status != model.StepSkipped {
				t.Fatalf("steps %s and %s, want FAILED and SKIPPED", r.x.Steps[0].Status, r.x.Steps[1].Status)
			}
			if _, ok := r.x.DueAt(maxDelay); ok {
				t.Fatal("a failed execution is still due for the cleanup")
			}
		})
	}
}

// A late outcome (the execution was cancelled while the request ran) is
// ignored: it is stale, and no retry of it is asked for.
func TestLateHTTPOutcomeIsIgnored(t *testing.T) {
	r := startRun(t, 0, httpStep(func(*model.StepDefinition) {}))
	r.decide(model.NewCommand(uuid.New(), model.CancelExecution{WorkflowExecutionUUID: r.id}, t0), nil)
	_, err := model.DecideStepOutcome(r.x, model.RunStepCommand(r.id, 0, 0, 1, t0), model.StepOutcome{Output: json.RawMessage(`1`)}, t0)
	wantRejection(t, err, false, "CANCELLED")
}

func TestWaitStepCompletesWhenItsTimerFires(t *testing.T) {
	r := startRun(t, 0, model.StepDefinition{Name: "pause", Type: model.StepWait, Seconds: 2}, model.StepDefinition{Name: "m", Type: model.StepManual})
	st := r.x.Steps[0]
	if st.Status != model.StepWaiting || st.DueAt == nil || !st.DueAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("wait step after begin: %+v, want WAITING until +2s", st)
	}
	increment := model.NewCommand(uuid.New(), model.IncrementExecution{WorkflowExecutionUUID: r.id, Step: 0}, t0)
	_, err := model.DecideExecution(r.x, increment, nil, t0)
	wantRejection(t, err, false, "step 0 is a wait step; only manual steps take increments")
	timer := model.TimerCommand(r.id, 0, 0, t0)
	_, err = model.DecideExecution(r.x, timer, nil, t0.Add(500*time.Millisecond))
	wantTransientAfter(t, err, 1500*time.Millisecond)
	r.now = t0.Add(2 * time.Second)
	r.decide(timer, nil)
	if r.x.Steps[0].Status != model.StepSucceeded || r.x.CurrentStep != 1 {
		t.Fatalf("after the timer: step 0 %s, current %d", r.x.Steps[0].Status, r.x.CurrentStep)
	}
	_, err = model.DecideExecution(r.x, timer, nil, r.now)
	wantRejection(t, err, false, "not the current step")
}

func TestDeadlinesTimeOutTheExecution(t *testing.T) {
	t.Run("execution_deadline", func(t *testing.T) {
		r := startRun(t, 2, model.StepDefinition{Name: "m", Type: model.StepManual})
		if due, ok := r.x.DueAt(maxDelay); !ok || !due.Equal(t0.Add(2*time.Second)) {
			t.Fatalf("DueAt: %v %v, want the deadline +2s", due, ok)
		}
		if _, ok := r.x.DueCommand(t0.Add(time.Second), maxDelay); ok {
			t.Fatal("DueCommand before the deadline: got one")
		}
		c, ok := r.x.DueCommand(t0.Add(2*time.Second), maxDelay)
		if !ok || c.Type != model.CommandTimeOutExecution || c.CommandUUID != model.SystemCommandUUID(r.id, "timeout", 0, 0) {
			t.Fatalf("DueCommand at the deadline: %+v %v", c, ok)
		}
		_, err := model.DecideExecution(r.x, c, nil, t0.Add(time.Second))
		wantTransientAfter(t, err, time.Second)
		r.now = t0.Add(2 * time.Second)
		r.decide(c, nil)
		if r.x.Status != model.ExecutionTimedOut || r.x.Steps[0].Status != model.StepFailed || r.x.Error == "" {
			t.Fatalf("after the timeout: %s %q, step %s", r.x.Status, r.x.Error, r.x.Steps[0].Status)
		}
		_, err = model.DecideExecution(r.x, c, nil, r.now)
		wantRejection(t, err, false, "already TIMED_OUT")
	})
	t.Run("step_deadline", func(t *testing.T) {
		r := startRun(t, 0, model.StepDefinition{Name: "m", Type: model.StepManual, TimeoutSeconds: 5})
		at, reason, ok := r.x.Deadline()
		if !ok || !at.Equal(t0.Add(5*time.Second)) || reason != `step "m" timed out after 5 seconds` {
			t.Fatalf("Deadline: %v %q %v", at, reason, ok)
		}
	})
	t.Run("manual_step_without_deadline_is_never_due", func(t *testing.T) {
		r := startRun(t, 0, model.StepDefinition{Name: "m", Type: model.StepManual})
		if due, ok := r.x.DueAt(maxDelay); ok {
			t.Fatalf("DueAt: %v, want none", due)
		}
	})
}

// The cleanup's view of what is due, for work the queue should have
// delivered, issues the same commands the dispatcher did.
func TestDueCommandsRepeatTheDispatchersCommands(t *testing.T) {
	r := startRun(t, 0, httpStep(func(s *model.StepDefinition) {
		s.Retry = &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: 3, BackoffSeconds: 1}}
	}))
	due, ok := r.x.DueAt(maxDelay)
	lost := t0.Add(model.DefaultHTTPTimeout*time.Second + model.AttemptGrace + model.CleanupGrace)
	if !ok || due.Before(lost) || due.Sub(lost) >= 5*time.Minute {
		t.Fatalf("DueAt of an attempt in progress: %v %v, want its holder's time and the graces, rounded up to 5 minutes (%v)", due, ok, lost)
	}
	if _, ok := r.x.DueCommand(t0.Add(time.Minute), maxDelay); ok {
		t.Fatal("an attempt a minute old is issued again")
	}
	if c, ok := r.x.DueCommand(due, maxDelay); !ok || c.CommandUUID != model.RunStepCommand(r.id, 0, 0, 1, t0).CommandUUID {
		t.Fatalf("DueCommand of a stuck attempt: %+v %v, want attempt 1 again", c, ok)
	}
	r.outcome(0, 1, model.StepOutcome{Err: "boom"})
	due, _ = r.x.DueAt(maxDelay)
	if due.Sub(t0) < 15*time.Minute {
		t.Fatalf("DueAt of a retry the queue delivers: %v, want after the longest attempt (it may be running)", due)
	}
	for _, at := range []time.Duration{time.Second, time.Minute, 10 * time.Minute} {
		if c, ok := r.x.DueCommand(t0.Add(at), maxDelay); ok {
			t.Fatalf("DueCommand %s after a retry the queue delivers: %+v, want none (it would run twice)", at, c)
		}
	}
	if c, ok := r.x.DueCommand(due, maxDelay); !ok || c.CommandUUID != model.RunStepCommand(r.id, 0, 0, 2, t0).CommandUUID {
		t.Fatalf("DueCommand of a retry that seems lost: %+v %v, want attempt 2", c, ok)
	}
	// A retry an hour off is the cleanup's to issue: at once when due, not
	// again while it runs, and again if it seems lost.
	hourly := startRun(t, 0, httpStep(func(s *model.StepDefinition) {
		s.Retry = &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: 3, BackoffSeconds: 3600}}
	}))
	hourly.outcome(0, 1, model.StepOutcome{Err: "boom"})
	retryAt := t0.Add(time.Hour)
	if due, _ := hourly.x.DueAt(maxDelay); !due.Equal(retryAt) {
		t.Fatalf("DueAt of an hour's retry: %v, want %v", due, retryAt)
	}
	if _, ok := hourly.x.DueCommand(retryAt, maxDelay); !ok {
		t.Fatal("DueCommand of an hour's retry when due: none")
	}
	if c, ok := hourly.x.DueCommand(retryAt.Add(5*time.Minute), maxDelay); ok {
		t.Fatalf("DueCommand 5 minutes into the retry: %+v, want none", c)
	}
	if _, ok := hourly.x.DueCommand(retryAt.Add(time.Hour), maxDelay); !ok {
		t.Fatal("DueCommand of an hour's retry lost for an hour: none")
	}
	long := startRun(t, 0, model.StepDefinition{Name: "w", Type: model.StepWait, Seconds: 3600})
	if due, _ := long.x.DueAt(maxDelay); !due.Equal(t0.Add(time.Hour)) {
		t.Fatalf("DueAt of an hour's wait: %v, want exactly when due (no delayed message)", due)
	}
}

func TestRetryDelay(t *testing.T) {
	s := model.StepDefinition{Retry: &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: 10, BackoffSeconds: 1, MaxBackoffSeconds: 5}}}
	for _, tt := range []struct {
		n      int
		jitter float64
		want   time.Duration
	}{
		{1, 0, time.Second}, {2, 0, 2 * time.Second}, {3, 0, 4 * time.Second}, {4, 0, 5 * time.Second}, {30, 0, 5 * time.Second},
		{1, 0.5, 900 * time.Millisecond}, {1, 1, 800 * time.Millisecond},
	} {
		if got := s.RetryDelay(tt.n, tt.jitter); got != tt.want {
			t.Errorf("RetryDelay(%d, %v): got %s, want %s", tt.n, tt.jitter, got, tt.want)
		}
	}
	if got := (model.StepDefinition{}).RetryDelay(1, 0); got != 0 {
		t.Errorf("no retry policy: got %s", got)
	}
}

// An execution's input and outputs stay within MaxExecutionData (its view
// must fit a DynamoDB item): an increment that would pass it is rejected,
// an http answer that would fails the step.
func TestOutputsThatWouldOverflowTheViewAreRefused(t *testing.T) {
	big := json.RawMessage(`"` + strings.Repeat("x", model.MaxExecutionData/2) + `"`)
	r := startRun(t, 0, model.StepDefinition{Name: "a", Type: model.StepManual}, model.StepDefinition{Name: "b", Type: model.StepManual},
		httpStep(func(s *model.StepDefinition) {
			s.Retry = &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: 5, BackoffSeconds: 1}}
		}))
	r.decide(model.NewCommand(uuid.New(), model.IncrementExecution{WorkflowExecutionUUID: r.id, Step: 0, Output: big}, t0), nil)
	_, err := model.DecideExecution(r.x, model.NewCommand(uuid.New(), model.IncrementExecution{WorkflowExecutionUUID: r.id, Step: 1, Output: big}, t0), nil, t0)
	wantRejection(t, err, false, "over the")
	r.decide(model.NewCommand(uuid.New(), model.IncrementExecution{WorkflowExecutionUUID: r.id, Step: 1, Output: json.RawMessage(`1`)}, t0), nil)
	r.outcome(2, 1, model.StepOutcome{Output: big})
	if r.x.Status != model.ExecutionFailed || !strings.Contains(r.x.Error, "over the") || r.x.Steps[2].Attempts != 1 {
		t.Fatalf("after an answer too big: %s %q attempts %d, want FAILED at once", r.x.Status, r.x.Error, r.x.Steps[2].Attempts)
	}
}

// The workflow's definition, copied into the execution, counts against
// MaxExecutionData too: a start whose definition and input pass it is
// rejected with the sizes (on both stores alike: nothing is written), and
// an output is refused when the definition, the input and the outputs
// together would pass it.
func TestTheDefinitionCountsAgainstTheExecutionsData(t *testing.T) {
	long := func(i int) model.StepDefinition {
		return model.StepDefinition{Name: fmt.Sprint("call-", i), Type: model.StepHTTP, URL: "http://127.0.0.1:9999/" + strings.Repeat("p", 2000)}
	}
	var steps []model.StepDefinition
	for i := range 60 {
		steps = append(steps, long(i))
	}
	wf := model.Workflow{WorkflowUUID: uuid.New(), Version: 1, Steps: steps, Seq: 1}
	input := json.RawMessage(`"` + strings.Repeat("i", 240<<10) + `"`)
	start := model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: uuid.New(), WorkflowUUID: wf.WorkflowUUID, Input: input}, t0)
	_, err := model.DecideExecution(model.Execution{}, start, &wf, t0)
	wantRejection(t, err, false, "the workflow's definition and the input take")

	// 100 KiB of definition and 100 KiB of input leave room for 120 KiB
	// of outputs, not for 150 (the input and outputs alone would fit).
	r := &run{t: t, id: uuid.New(), now: t0}
	manual := []model.StepDefinition{{Name: "m", Type: model.StepManual}}
	for i := range 50 { // 50 × 2 KB of URL
		manual = append(manual, long(i))
	}
	small := model.Workflow{WorkflowUUID: uuid.New(), Version: 1, Steps: manual, Seq: 1}
	r.decide(model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: r.id, WorkflowUUID: small.WorkflowUUID,
		Input: json.RawMessage(`"` + strings.Repeat("i", 100<<10) + `"`)}, t0), &small)
	out := json.RawMessage(`"` + strings.Repeat("o", 150<<10) + `"`)
	_, err = model.DecideExecution(r.x, model.NewCommand(uuid.New(), model.IncrementExecution{WorkflowExecutionUUID: r.id, Step: 0, Output: out}, t0), nil, t0)
	wantRejection(t, err, false, "definition, input and outputs")
}

// An http attempt has one holder at a time: the append that starts the
// step holds its first attempt; a RunStep claims a retry; another worker
// may take an attempt over only once its holder's time is up, and then
// only the new holder's outcome counts. Every claim is a StepAttemptStarted
// at the next seq, so two claimants race for one seq.
func TestAnHTTPAttemptHasOneHolder(t *testing.T) {
	r := startRun(t, 0, httpStep(func(s *model.StepDefinition) {
		s.TimeoutSeconds = 5
		s.Retry = &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: 3, BackoffSeconds: 1}}
	}), model.StepDefinition{Name: "after", Type: model.StepManual})
	first, ok := r.x.Held()
	if !ok || first.Step != 0 || first.Attempt != 1 || first.Claim != r.x.Version || !first.Until.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("after the start: held %+v %v, want attempt 1 held by the starting append (seq %d) until +5s", first, ok, r.x.Version)
	}
	takeover := t0.Add(5*time.Second + model.AttemptGrace)
	if !first.TakeoverAt().Equal(takeover) {
		t.Fatalf("TakeoverAt %v, want %v", first.TakeoverAt(), takeover)
	}
	wantTransientAfter(t, r.claim(0, 1, takeover.Add(-time.Millisecond)), time.Millisecond)
	wantRejection(t, r.claim(0, 2, takeover), false, "not due")

	claim, err := model.ClaimAttempt(r.x, model.RunStepCommand(r.id, 0, 0, 1, takeover), takeover)
	if err != nil {
		t.Fatalf("take over at TakeoverAt: %v", err)
	}
	var data model.StepAttemptStarted
	if len(claim) != 1 || claim[0].Type != model.EventStepAttemptStarted || claim[0].Seq != r.x.Version+1 {
		t.Fatalf("claim: %+v, want one StepAttemptStarted at the next seq", claim)
	}
	if err := json.Unmarshal(claim[0].Data, &data); err != nil || data != (model.StepAttemptStarted{Step: 0, Attempt: 1, Resumed: true}) {
		t.Fatalf("claim data %s (%v), want attempt 1 resumed", claim[0].Data, err)
	}
	twin, _ := model.ClaimAttempt(r.x, model.RunStepCommand(r.id, 0, 0, 1, takeover), takeover.Add(time.Second))
	if twin[0].EventUUID != claim[0].EventUUID {
		t.Fatal("two claims on one seq have different eventUUIDs: a backend could not tell them for twins")
	}
	r.now = takeover
	r.fold(claim)
	second, _ := r.x.Held()
	if second.Claim != claim[0].Seq || second.Attempt != 1 || !second.Until.Equal(takeover.Add(5*time.Second)) {
		t.Fatalf("after the takeover: held %+v", second)
	}
	// The first holder's late outcome is stale; the new holder's counts.
	run1 := model.RunStepCommand(r.id, 0, 0, 1, r.now)
	_, err = model.DecideStepOutcome(r.x, run1, model.StepOutcome{Output: json.RawMessage(`1`), Claim: first.Claim}, r.now)
	wantRejection(t, err, false, "taken over")
	if _, err := model.ClaimAttempt(r.x, run1, r.now); err == nil {
		t.Fatal("a second claim while the new holder's time runs: allowed")
	}
	failed, err := model.DecideStepOutcome(r.x, run1, model.StepOutcome{Err: "status 502", Claim: second.Claim}, r.now)
	if err != nil {
		t.Fatalf("the new holder's outcome: %v", err)
	}
	r.fold(failed)
	if _, ok := r.x.Held(); ok {
		t.Fatal("an attempt is held while its retry waits for its backoff")
	}
	// The retry is claimed by the RunStep the dispatcher delays.
	r.now = r.now.Add(time.Second)
	if err := r.claim(0, 2, r.now); err != nil {
		t.Fatalf("claim the retry when due: %v", err)
	}
	if h, ok := r.x.Held(); !ok || h.Attempt != 2 || h.Claim != r.x.Version {
		t.Fatalf("after the retry's claim: held %+v %v", h, ok)
	}
	if r.x.Steps[0].AttemptStartedAt == nil || !r.x.Steps[0].AttemptStartedAt.Equal(r.now) || r.x.Steps[0].DueAt != nil {
		t.Fatalf("step after the retry's claim: %+v", r.x.Steps[0])
	}
	wantTransientAfter(t, r.claim(0, 2, r.now), 5*time.Second+model.AttemptGrace)
}

// An http step an earlier build started (no Held mark) is run through the
// dispatcher's RunStep, whose claim needs no takeover.
func TestAnUnheldHTTPStepIsClaimedByItsRunStep(t *testing.T) {
	r := startRun(t, 0, httpStep(func(*model.StepDefinition) {}))
	st := &r.x.Steps[0]
	st.AttemptStartedAt = nil // as an earlier build folded it
	if _, ok := r.x.Held(); ok {
		t.Fatal("an unclaimed attempt is held")
	}
	if err := r.claim(0, 1, t0); err != nil {
		t.Fatalf("claim an unclaimed first attempt: %v", err)
	}
	if h, ok := r.x.Held(); !ok || h.Attempt != 1 {
		t.Fatalf("after the claim: %+v %v", h, ok)
	}
}

// An http step's deadline bounds all its attempts: a retry that would
// start past it fails the execution at once, and an attempt still running
// (or lost) at the deadline fails it through the cleanup's TimeOutExecution,
// with a reason that names the deadline; nothing is issued again after.
func TestAnHTTPStepsDeadlineBoundsItsAttempts(t *testing.T) {
	step := httpStep(func(s *model.StepDefinition) {
		s.DeadlineSeconds = 30
		s.Retry = &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: 5, BackoffSeconds: 20}}
	})
	r := startRun(t, 0, step)
	r.now = t0.Add(5 * time.Second)
	r.outcome(0, 1, model.StepOutcome{Err: "status 503"}) // retry at +25 s: within
	if r.x.Status != model.ExecutionRunning {
		t.Fatalf("after attempt 1: %s, want RUNNING with a retry", r.x.Status)
	}
	r.now = t0.Add(26 * time.Second)
	r.outcome(0, 2, model.StepOutcome{Err: "status 503"}) // next at +66 s: past it
	if r.x.Status != model.ExecutionFailed || !strings.Contains(r.x.Error, "after the step's deadline of 30 seconds") {
		t.Fatalf("after attempt 2: %s %q, want FAILED naming the deadline", r.x.Status, r.x.Error)
	}

	lost := startRun(t, 0, step)
	if due, ok := lost.x.DueAt(maxDelay); !ok || due.After(t0.Add(30*time.Second)) {
		t.Fatalf("DueAt %v %v, want at the deadline at the latest", due, ok)
	}
	if _, ok := lost.x.DueCommand(t0.Add(29*time.Second), maxDelay); ok {
		t.Fatal("a command is due before the deadline")
	}
	c, ok := lost.x.DueCommand(t0.Add(30*time.Second), maxDelay)
	if !ok || c.Type != model.CommandTimeOutExecution {
		t.Fatalf("DueCommand at the deadline: %+v %v, want TimeOutExecution", c, ok)
	}
	lost.now = t0.Add(30 * time.Second)
	lost.decide(c, nil)
	if lost.x.Status != model.ExecutionFailed || !strings.Contains(lost.x.Error, "did not succeed within its deadline of 30 seconds") {
		t.Fatalf("after the deadline: %s %q, want FAILED naming it", lost.x.Status, lost.x.Error)
	}
	if _, ok := lost.x.DueAt(maxDelay); ok {
		t.Fatal("a failed execution is still due")
	}
}
