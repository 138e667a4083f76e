package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/internal/backoff"
	"github.com/workflowd/workflowd/metrics"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/secrets"
	"github.com/workflowd/workflowd/store"
)

// EventLog is what the workers need of the event log.
type EventLog interface {
	Append(ctx context.Context, events []model.Event) error
	Load(ctx context.Context, aggregateID string, afterSeq int64) ([]model.Event, error)
}

// CommandFinisher records the outcome of a command.
type CommandFinisher interface {
	FinishCommand(ctx context.Context, c model.CommandStatus) error
}

// RetryError is what Handle returns for a message to leave for a later
// delivery: the consumer (Consume, HandleSQSEvent) makes it visible again
// after After instead of after a backoff, and logs Reason.
type RetryError struct {
	After  time.Duration
	Reason string
}

func (e *RetryError) Error() string { return "retry in " + e.After.String() + ": " + e.Reason }

// maxConflictRetries bounds the reload-and-decide loop of one delivery. Each
// round means another writer appended to the same aggregate in between.
const maxConflictRetries = 50

// CommandWorker handles command messages of both queues: workflow commands
// and execution commands.
type CommandWorker struct {
	Log      EventLog
	Commands CommandFinisher
	Logger   *slog.Logger
	Now      func() time.Time
	// TransientAttempts is how many deliveries a transiently rejected command
	// (an execution of a workflow not applied yet) gets before it is rejected
	// for good. Default 5.
	TransientAttempts int
	// OnFinished, if set, is called after a command is marked REJECTED.
	OnFinished func(commandUUID uuid.UUID)
	// TrustCache lets a command be decided on the cached state of its
	// aggregate without reading the log first. The append's seq condition
	// catches a cache that is behind (a conflict: then the worker reads and
	// decides again), and a rejection is always decided again on a state
	// just read, so the outcome is the same; what changes is the cost. It
	// saves a read per command where one process handles most commands of
	// an aggregate (the embedded runtime, one workflowd on AWS). Leave it
	// off where consecutive commands land on different processes (Lambda):
	// there a stale cache costs a failed write, dearer than the read.
	TrustCache bool
	// MaxDelay is the longest delay of the bus's delayed messages: a
	// command that came early waits at most this long before it is
	// decided again (0: no bound).
	MaxDelay time.Duration
	// HTTP runs the attempts of http steps (nil: a zero HTTPCaller, which
	// allows no host, so every http step fails with that reason).
	HTTP *HTTPCaller
	// Secrets resolves the secret references of http steps (nil: a step
	// that has one fails with secret.unavailable).
	Secrets secrets.Source
	// Metrics, if set, counts commands by outcome and http attempts.
	Metrics *metrics.Metrics
	// Jitter draws the random share of a retry's backoff (nil:
	// model.Jitter); a deterministic simulation draws it from its seed.
	Jitter func() float64

	cacheOnce sync.Once
	states    *lru[aggregate]
	workflows freshReads // the workflows StartExecutions name
}

// Handle processes one command message body. receiveCount is the delivery's
// receive count (1 on the first delivery).
//
// It returns nil when the message is done with and may be deleted: the
// command was applied, was already applied (a redelivery), or was rejected
// (its status says why). It returns a *RetryError for a transient condition,
// and any other error for a failure the consumer should retry by redelivery
// (a malformed message thus ends in the dead-letter queue).
func (w *CommandWorker) Handle(ctx context.Context, body []byte, receiveCount int) error {
	cmd, err := model.DecodeCommand(body)
	if err != nil {
		return err
	}
	return w.HandleCommand(ctx, cmd, receiveCount)
}

// HandleCommand is Handle for a decoded command.
func (w *CommandWorker) HandleCommand(ctx context.Context, cmd model.Command, receiveCount int) error {
	if run, ok := cmd.Payload.(model.RunStep); ok {
		return w.runStep(ctx, cmd, run, receiveCount)
	}
	agg, appended, err := w.appendDecided(ctx, cmd, w.TrustCache, func(agg aggregate) ([]model.Event, error) {
		return w.decide(ctx, cmd, agg)
	})
	var rej *model.Rejection
	if errors.As(err, &rej) {
		return w.rejected(ctx, cmd, rej, receiveCount)
	}
	if err != nil {
		return err
	}
	if len(appended) > 0 {
		w.Metrics.Command(cmd.Type, metrics.Applied)
	} else {
		w.Metrics.Command(cmd.Type, metrics.Duplicate)
	}
	return w.follow(ctx, cmd, agg, appended, receiveCount)
}

// follow makes the http attempt the command's append holds (it started an
// http step), and those its outcomes hold in turn: the worker that wins
// the conditional append is the attempt's only caller, and no RunStep
// message is sent for it. A command already in the history (a
// redelivery) whose execution has an attempt in progress may come from a
// worker that died holding it: it takes the attempt over once the
// holder's time is up (runStep; until then it comes back later). Receive
// counts cannot tell a redelivery after a crash from a twin: the
// embedded bus does not sync them.
func (w *CommandWorker) follow(ctx context.Context, cmd model.Command, agg aggregate, appended []model.Event, receiveCount int) error {
	if model.AggregateKind(cmd.AggregateID()) != model.KindExecution {
		return nil
	}
	if len(appended) > 0 {
		if h, ok := claimedBy(agg, appended); ok {
			return w.runAttempts(ctx, agg, h, receiveCount)
		}
		return nil
	}
	h, ok := agg.execution.Held()
	if !ok {
		return nil // nothing in progress as far as the state found says
	}
	// runStep reads the log again: on a state moved on, the claim is
	// stale and nothing is done.
	run := model.RunStepCommand(agg.execution.WorkflowExecutionUUID, h.Step, h.Run, h.Attempt, w.now())
	return w.runStep(ctx, run, run.Payload.(model.RunStep), receiveCount)
}

// appendDecided is the reload-decide-append loop every command goes
// through. It takes the state of the command's aggregate (the cached one
// if trust is set and there is one, else one just read), acknowledges a
// command its history holds already (a redelivery), asks decide for the
// events, and appends them at the next seq. When another writer took that
// seq first, it reads the state again and decides again. A *model.Rejection
// decided on a cached state is decided again on a state just read (the
// cache may be behind); one decided on a state just read is returned.
//
// It returns the aggregate's state after the command and the events this
// call appended: none when the command was in the history already (the
// state is the one the command was found in), or when its events were
// found there on appending them (a racing delivery appended first, or the
// store took this very append but its answer was lost and the SDK sent it
// again): the state is then read again, so that it holds them.
func (w *CommandWorker) appendDecided(ctx context.Context, cmd model.Command, trust bool, decide func(aggregate) ([]model.Event, error)) (aggregate, []model.Event, error) {
	aggregateID := cmd.AggregateID()
	for range maxConflictRetries {
		agg, read, err := w.state(ctx, aggregateID, trust)
		if err != nil {
			return agg, nil, err
		}
		trust = false // from the second round on, always read
		if agg.commands[cmd.CommandUUID] {
			w.logger().Debug("duplicate command acknowledged", "command", cmd.CommandUUID, "type", cmd.Type)
			return agg, nil, nil
		}
		events, err := decide(agg)
		var rej *model.Rejection
		if errors.As(err, &rej) && !read {
			continue
		}
		if err != nil {
			return agg, nil, err
		}
		switch next, res, err := w.append(ctx, aggregateID, agg, events); {
		case err != nil:
			return agg, nil, err
		case res == appended:
			return next, events, nil
		case res == twin:
			fresh, err := w.load(ctx, aggregateID)
			return fresh, nil, err
		}
		// Another command won this seq: catch up and decide again.
	}
	return aggregate{}, nil, &RetryError{After: time.Second, Reason: "too many concurrent writers on " + aggregateID}
}

// appendResult is what became of an append.
type appendResult int

const (
	appended appendResult = iota // the events are in the log
	twin                         // a racing delivery of the same command appended first
	lost                         // another command took the seq: catch up and decide again
)

// append appends the events a command decided on agg and returns the
// state after them (the cache moves on) if they were appended.
func (w *CommandWorker) append(ctx context.Context, aggregateID string, agg aggregate, events []model.Event) (aggregate, appendResult, error) {
	err := w.Log.Append(ctx, events)
	switch {
	case err == nil:
		next, err := agg.with(events)
		if err != nil {
			w.cache().remove(aggregateID)
			next, err = w.load(ctx, aggregateID)
			return next, appended, err
		}
		w.cache().put(aggregateID, next)
		return next, appended, nil
	case errors.Is(err, store.ErrDuplicate):
		return agg, twin, nil
	case errors.Is(err, store.ErrConflict):
		return agg, lost, nil
	}
	return agg, lost, fmt.Errorf("append %s: %w", aggregateID, err)
}

// aggregate is the folded state of one aggregate, and the commands its
// history holds. Values are never changed in place (with returns a copy), so
// the cache can share them between goroutines.
type aggregate struct {
	seq       int64
	workflow  model.Workflow
	execution model.Execution
	commands  map[uuid.UUID]bool
}

// with returns a copy of a with events (the next ones in seq order) folded in.
func (a aggregate) with(events []model.Event) (aggregate, error) {
	if len(events) == 0 {
		return a, nil
	}
	n := a
	n.commands = make(map[uuid.UUID]bool, len(a.commands)+len(events))
	for id := range a.commands {
		n.commands[id] = true
	}
	var err error
	if model.AggregateKind(events[0].AggregateID) == model.KindExecution {
		// One copy of the state for the whole batch (a history read cold).
		if n.execution, err = model.FoldExecution(n.execution, events); err != nil {
			return a, err
		}
	}
	for _, e := range events {
		if model.AggregateKind(e.AggregateID) == model.KindWorkflow {
			if n.workflow, err = model.ApplyWorkflow(n.workflow, e); err != nil {
				return a, err
			}
		}
		n.seq = e.Seq
		n.commands[e.CommandUUID] = true
	}
	return n, nil
}

// stateCacheSize bounds the aggregates a worker keeps folded in memory.
const stateCacheSize = 1024

func (w *CommandWorker) cache() *lru[aggregate] {
	w.cacheOnce.Do(func() { w.states = newLRU[aggregate](stateCacheSize) })
	return w.states
}

// state returns the aggregate's cached state if trust is set and there is
// one (read is false then), and otherwise loads it.
func (w *CommandWorker) state(ctx context.Context, aggregateID string, trust bool) (agg aggregate, read bool, err error) {
	if trust {
		if agg, ok := w.cache().get(aggregateID); ok {
			return agg, false, nil
		}
	}
	agg, err = w.load(ctx, aggregateID)
	return agg, true, err
}

// load returns the aggregate's current state: the cached fold, brought up
// to date with the events appended since (by this or any other worker), or
// a fold of the whole history.
func (w *CommandWorker) load(ctx context.Context, aggregateID string) (aggregate, error) {
	agg, _ := w.cache().get(aggregateID)
	events, err := w.Log.Load(ctx, aggregateID, agg.seq)
	if err != nil {
		return agg, fmt.Errorf("load %s: %w", aggregateID, err)
	}
	next, err := agg.with(events)
	if err != nil {
		w.cache().remove(aggregateID)
		return agg, fmt.Errorf("fold %s: %w", aggregateID, err)
	}
	if len(events) > 0 {
		w.cache().put(aggregateID, next)
	}
	return next, nil
}

// decide decides cmd on agg with the rule of its aggregate's kind; a
// StartExecution also reads the workflow it names, in a read that began
// after the command was issued (shared with the other starts it can
// serve: freshReads).
func (w *CommandWorker) decide(ctx context.Context, cmd model.Command, agg aggregate) ([]model.Event, error) {
	now := w.now()
	if model.AggregateKind(cmd.AggregateID()) == model.KindWorkflow {
		return model.DecideWorkflow(agg.workflow, cmd, now)
	}
	var wf *model.Workflow
	if start, ok := cmd.Payload.(model.StartExecution); ok {
		w, err := w.workflows.get(ctx, model.WorkflowAggregateID(start.WorkflowUUID), cmd.IssuedAt.Add(IssueClockSkew), w.now, w.load)
		if err != nil {
			return nil, err
		}
		if w.seq > 0 {
			wf = &w.workflow
		}
	}
	return model.DecideExecution(agg.execution, cmd, wf, now)
}

// rejected handles a rejection: a transient one is retried (after the time
// it names, as a timer that came early; else with a growing delay, a few
// times), a final one is recorded as REJECTED with its reason. A system
// command's final rejection is only logged: it is stale (the execution
// moved on without it), and nobody reads its status.
func (w *CommandWorker) rejected(ctx context.Context, cmd model.Command, rej *model.Rejection, receiveCount int) error {
	switch {
	case rej.Transient && rej.After > 0:
		return &RetryError{After: w.boundDelay(rej.After), Reason: rej.Reason}
	case rej.Transient && receiveCount < w.transientAttempts():
		return &RetryError{After: transientDelay(receiveCount), Reason: rej.Reason}
	case model.IsSystemCommand(cmd.Type):
		w.logger().Debug("stale command dropped", "command", cmd.CommandUUID, "type", cmd.Type, "reason", rej.Reason)
		w.Metrics.Command(cmd.Type, metrics.Dropped)
		return nil
	}
	w.Metrics.Command(cmd.Type, metrics.Rejected)
	return w.reject(ctx, cmd, rej.Reason)
}

func (w *CommandWorker) reject(ctx context.Context, cmd model.Command, reason string) error {
	now := w.now()
	err := w.Commands.FinishCommand(ctx, model.CommandStatus{
		CommandUUID: cmd.CommandUUID,
		Type:        cmd.Type,
		Status:      model.CommandRejected,
		Error:       reason,
		AggregateID: cmd.AggregateID(),
		CreatedAt:   now,
		UpdatedAt:   now,
	})
	if err != nil {
		return fmt.Errorf("record rejection of %s: %w", cmd.CommandUUID, err)
	}
	w.logger().Info("command rejected", "command", cmd.CommandUUID, "type", cmd.Type, "reason", reason)
	if w.OnFinished != nil {
		w.OnFinished(cmd.CommandUUID)
	}
	return nil
}

// boundDelay bounds the wait of a command that came early (a timer before
// its time) by MaxDelay, if set: it comes back then and is decided again.
func (w *CommandWorker) boundDelay(d time.Duration) time.Duration {
	if w.MaxDelay > 0 {
		return min(d, w.MaxDelay)
	}
	return d
}

func (w *CommandWorker) transientAttempts() int {
	if w.TransientAttempts > 0 {
		return w.TransientAttempts
	}
	return 5
}

func (w *CommandWorker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *CommandWorker) jitter() float64 {
	if w.Jitter != nil {
		return w.Jitter()
	}
	return model.Jitter()
}

func (w *CommandWorker) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.Default()
}

// runStep runs an attempt a RunStep names (a retry the dispatcher
// delayed, an attempt the cleanup or a redelivery takes over, or the first
// attempt of a step an earlier build started): it reads the execution
// (never trusting the cache, as a request is about to go out) and claims
// the attempt with a conditional append (model.ClaimAttempt). The claim
// that wins the seq makes its worker the attempt's only caller; one that
// loses reads again and finds the attempt held (a transient rejection:
// the message comes back when the holder's time is up). Then runAttempts.
func (w *CommandWorker) runStep(ctx context.Context, cmd model.Command, run model.RunStep, receiveCount int) error {
	aggregateID := cmd.AggregateID()
	for range maxConflictRetries {
		agg, err := w.load(ctx, aggregateID)
		if err != nil {
			return err
		}
		if agg.commands[cmd.CommandUUID] {
			return nil // its outcome is in the log: a redelivery
		}
		_, held := agg.execution.Held()
		claim, err := model.ClaimAttempt(agg.execution, cmd, w.now())
		var rej *model.Rejection
		if errors.As(err, &rej) {
			return w.rejected(ctx, cmd, rej, receiveCount)
		} else if err != nil {
			return err
		}
		next, res, err := w.append(ctx, aggregateID, agg, claim)
		if err != nil {
			return err
		}
		if h, ok := next.execution.Held(); res == appended && ok && h.Claim == claim[0].Seq {
			if held {
				w.logger().Info("http attempt taken over: its holder's time is up", "execution", run.WorkflowExecutionUUID, "step", run.Step, "attempt", run.Attempt)
			}
			return w.runAttempts(ctx, next, h, receiveCount)
		}
		// Another claim or command took the seq: read again.
	}
	return &RetryError{After: time.Second, Reason: "too many concurrent writers on " + aggregateID}
}

// runAttempts makes attempt h, which this worker holds, and appends its
// outcome through appendDecided, starting from the state it holds: if the
// append conflicts, the same outcome is decided again on the new state,
// without a second request, and an execution cancelled in between (or an
// attempt taken over) ignores it. If the outcome starts the next http
// step, its append holds that step's first attempt: runAttempts makes it
// too, and so on. If ctx ends during a call, no outcome is appended: the
// message comes back, and the attempt is taken over with the same
// Idempotency-Key once its time is up.
func (w *CommandWorker) runAttempts(ctx context.Context, agg aggregate, h model.HeldAttempt, receiveCount int) error {
	for {
		x := agg.execution
		if err := w.timeFor(ctx, x, h); err != nil {
			return err
		}
		out := w.call(ctx, x, h)
		out.Claim = h.Claim
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("attempt %d of step %d of %s cut short: %w", h.Attempt, h.Step, x.WorkflowExecutionUUID, err)
		}
		run := model.RunStepCommand(x.WorkflowExecutionUUID, h.Step, h.Run, h.Attempt, w.now())
		next, appended, err := w.appendDecided(ctx, run, true, func(agg aggregate) ([]model.Event, error) {
			return model.DecideStepOutcome(agg.execution, run, out, w.now())
		})
		var rej *model.Rejection
		if errors.As(err, &rej) {
			w.logger().Info("http step outcome ignored", "execution", x.WorkflowExecutionUUID, "step", h.Step, "attempt", h.Attempt, "reason", rej.Reason)
			return nil
		}
		if err != nil {
			return err
		}
		if len(appended) == 0 {
			// The outcome is in the log, appended by a twin or by this
			// very call (a write whose answer was lost, sent again by the
			// SDK): the next attempt it holds, if any, may have no live
			// holder, so it is taken over once its time is up.
			return w.follow(ctx, run, next, nil, receiveCount)
		}
		nh, ok := claimedBy(next, appended)
		if !ok {
			return nil
		}
		agg, h = next, nh
	}
}

// claimedBy returns the http attempt in progress in agg if the events
// just appended claimed it (a StepStarted marked held among them): their
// appender holds it.
func claimedBy(agg aggregate, appended []model.Event) (model.HeldAttempt, bool) {
	h, ok := agg.execution.Held()
	return h, ok && len(appended) > 0 && h.Claim >= appended[0].Seq
}

// outcomeMargin is the time an attempt leaves before its handler's
// deadline, to append its outcome.
const outcomeMargin = 2 * time.Second

// timeFor returns a *RetryError if ctx (a Lambda invocation's) ends before
// attempt h could run its whole timeout and append its outcome: no call is
// made, and the message comes back once the attempt may be taken over, by
// a delivery with the time for it (a chain of http steps in one invocation
// goes on in the next).
func (w *CommandWorker) timeFor(ctx context.Context, x model.Execution, h model.HeldAttempt) error {
	deadline, ok := ctx.Deadline()
	if !ok || h.Step >= len(x.Definitions) {
		return nil
	}
	now := w.now()
	need := min(x.Definitions[h.Step].AttemptTimeout(), h.CallBy().Sub(now)) + outcomeMargin
	if time.Until(deadline) >= need {
		return nil
	}
	return &RetryError{After: max(h.TakeoverAt().Sub(now), time.Second),
		Reason: fmt.Sprintf("%s left in this invocation, too little for attempt %d of step %d (%s and %s to append its outcome)", time.Until(deadline).Round(time.Millisecond), h.Attempt, h.Step, need-outcomeMargin, outcomeMargin)}
}

// call makes the request of the http attempt h of x: its URL, headers
// and body as the step's expressions build them (model.Execution.Request;
// one that fails is a final expression.failed), the body by default the
// execution's input and the outputs of the steps before, by name; the
// Idempotency-Key names the execution, the step and the attempt; the
// request must end by h.CallBy(), well before another worker may take the
// attempt over.
func (w *CommandWorker) call(ctx context.Context, x model.Execution, h model.HeldAttempt) model.StepOutcome {
	if h.Step >= len(x.Definitions) {
		return model.StepOutcome{Err: "the step's definition is missing", Name: model.ErrHTTPInvalidRequest, Final: true}
	}
	def := x.Definitions[h.Step]
	timeout := min(def.AttemptTimeout(), h.CallBy().Sub(w.now()))
	if timeout <= 0 {
		return model.StepOutcome{Err: fmt.Sprintf("timed out: the attempt's %s had passed before its request was sent", def.AttemptTimeout()), Name: model.ErrHTTPTimeout, Jitter: w.jitter()}
	}
	c, err := x.Request(h.Step, func(name string) (string, error) {
		if w.Secrets == nil {
			return "", errors.New("no secrets are configured")
		}
		return w.Secrets.Secret(ctx, name)
	})
	var unresolved *model.SecretError
	switch {
	case errors.As(err, &unresolved):
		// Another attempt may find it (an operator adds it, a store
		// answers again): retryable.
		return model.StepOutcome{Err: fmt.Sprintf("step %q: %v", def.Name, err), Name: model.ErrSecretUnavailable, Jitter: w.jitter()}
	case err != nil:
		return model.StepOutcome{Err: fmt.Sprintf("step %q: %v", def.Name, err), Name: model.ErrExpression, Final: true}
	}
	target, headers, body := c.URL, c.Headers, c.Body
	if body == nil {
		outputs := make(map[string]json.RawMessage, h.Step)
		for _, st := range x.Steps[:h.Step] {
			outputs[st.Name] = st.Output
		}
		body, err = json.Marshal(stepRequest{
			WorkflowExecutionUUID: x.WorkflowExecutionUUID, WorkflowUUID: x.WorkflowUUID,
			Step: h.Step, StepName: def.Name, Attempt: h.Attempt, Input: x.Input, Outputs: outputs,
		})
		if err != nil {
			return model.StepOutcome{Err: "encode the request: " + err.Error(), Name: model.ErrHTTPInvalidRequest, Final: true}
		}
	}
	caller := w.HTTP
	if caller == nil {
		caller = &HTTPCaller{}
	}
	start := time.Now()
	output, err := caller.Call(ctx, HTTPRequest{
		URL: target, Method: def.HTTPMethod(), Headers: headers, Timeout: timeout, Body: body, Secrets: c.Secrets,
		IdempotencyKey: attemptKey(x.WorkflowExecutionUUID, h),
	})
	took := time.Since(start)
	log := w.logger().With("execution", x.WorkflowExecutionUUID, "step", h.Step, "attempt", h.Attempt, "took", took)
	if err == nil {
		log.Debug("http step attempt succeeded")
		w.Metrics.Attempt(model.StepHTTP, "", took)
		return model.StepOutcome{Output: output}
	}
	var se *StepError
	if !errors.As(err, &se) {
		se = &StepError{Name: model.ErrHTTPConnection, Reason: err.Error(), Retryable: true}
	}
	w.Metrics.Attempt(model.StepHTTP, se.Name, took)
	log.Info("http step attempt failed", "error", se.Name, "reason", se.Reason, "retryable", se.Retryable)
	return model.StepOutcome{Err: se.Reason, Name: se.Name, Final: !se.Retryable, Jitter: w.jitter()}
}

// attemptKey is the Idempotency-Key of http attempt h of execution x:
// execution:step:attempt, and @run after it when a loop came back to the
// step (each run's attempts are calls of their own).
func attemptKey(x uuid.UUID, h model.HeldAttempt) string {
	if h.Run > 1 {
		return fmt.Sprintf("%s:%d:%d@%d", x, h.Step, h.Attempt, h.Run)
	}
	return fmt.Sprintf("%s:%d:%d", x, h.Step, h.Attempt)
}

// stepRequest is the JSON body an http step sends.
type stepRequest struct {
	WorkflowExecutionUUID uuid.UUID                  `json:"workflowExecutionUUID"`
	WorkflowUUID          uuid.UUID                  `json:"workflowUUID"`
	Step                  int                        `json:"step"`
	StepName              string                     `json:"stepName"`
	Attempt               int                        `json:"attempt"`
	Input                 json.RawMessage            `json:"input"`
	Outputs               map[string]json.RawMessage `json:"outputs"`
}

// transientDelay is the wait before redelivering a transiently rejected
// command after its n-th receive: 200ms, 400ms, 800ms…
func transientDelay(n int) time.Duration {
	return backoff.Exponential(n, 200*time.Millisecond, 12800*time.Millisecond)
}
