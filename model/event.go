package model

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Event types.
const (
	EventWorkflowCreated        = "WorkflowCreated"
	EventWorkflowVersionCreated = "WorkflowVersionCreated"
	EventWorkflowDeleted        = "WorkflowDeleted"
	EventExecutionCreated       = "ExecutionCreated"
	EventExecutionStarted       = "ExecutionStarted"
	EventStepStarted            = "StepStarted"
	EventStepCompleted          = "StepCompleted"
	EventExecutionSucceeded     = "ExecutionSucceeded"
	EventExecutionCancelled     = "ExecutionCancelled"
	EventStepAttemptFailed      = "StepAttemptFailed"
	EventStepFailed             = "StepFailed"
	EventStepAttemptStarted     = "StepAttemptStarted"
	EventExecutionFailed        = "ExecutionFailed"
	EventExecutionTimedOut      = "ExecutionTimedOut"
	EventExecutionRedriven      = "ExecutionRedriven"
	EventExecutionPaused        = "ExecutionPaused"
	EventExecutionResumed       = "ExecutionResumed"
	EventBranchSucceeded        = "BranchSucceeded"
	EventBranchFailed           = "BranchFailed"
)

// EventTypes lists every event type.
var EventTypes = []string{
	EventWorkflowCreated, EventWorkflowVersionCreated, EventWorkflowDeleted,
	EventExecutionCreated, EventExecutionStarted, EventStepStarted, EventStepCompleted,
	EventExecutionSucceeded, EventExecutionCancelled, EventStepAttemptFailed, EventExecutionFailed, EventExecutionTimedOut,
	EventStepAttemptStarted, EventStepFailed, EventExecutionRedriven, EventExecutionPaused, EventExecutionResumed,
	EventBranchSucceeded, EventBranchFailed,
}

// Event is one immutable fact in an aggregate's log: the envelope every
// backend stores and the events endpoint shows (docs/api.md).
// All events one command produces are appended together, with consecutive
// seqs, and their eventUUIDs derive from the command's UUID.
type Event struct {
	AggregateID string          `json:"aggregateId"`
	Seq         int64           `json:"seq"`
	EventUUID   uuid.UUID       `json:"eventUUID"`
	Type        string          `json:"type"`
	Data        json.RawMessage `json:"data"`
	CommandUUID uuid.UUID       `json:"commandUUID"`
	OccurredAt  time.Time       `json:"occurredAt"`
}

// Clone returns a copy of e that shares no memory with it.
func (e Event) Clone() Event {
	e.Data = cloneRaw(e.Data)
	return e
}

// WorkflowDefined is the data of WorkflowCreated and WorkflowVersionCreated.
type WorkflowDefined struct {
	WorkflowUUID uuid.UUID `json:"workflowUUID"`
	Version      int       `json:"version"`
	Definition
}

// ExecutionCreated is the data of EventExecutionCreated: the execution keeps
// a copy of the steps of the workflow version it was started on.
type ExecutionCreated struct {
	WorkflowExecutionUUID uuid.UUID        `json:"workflowExecutionUUID"`
	WorkflowUUID          uuid.UUID        `json:"workflowUUID"`
	WorkflowVersion       int              `json:"workflowVersion"`
	TimeoutSeconds        int              `json:"timeoutSeconds,omitempty"`
	Steps                 []StepDefinition `json:"steps"`
	Input                 json.RawMessage  `json:"input,omitempty"`
	// OutputExpression is the workflow version's output expression.
	OutputExpression string `json:"outputExpression,omitempty"`
}

// StepStarted is the data of EventStepStarted. Type is the step's type
// (the dispatcher acts on http and wait steps without the execution's
// state); DueAt is when a wait step ends. Held marks an http step whose
// first attempt the worker that appended the event makes at once: the
// event is that worker's claim on the attempt (see ClaimAttempt). An http
// StepStarted without it (appended by an earlier build) is run through a
// RunStep the dispatcher issues.
//
// Run counts the times the step has started, this one included, when it
// is more than one (a loop came back to it): the commands the dispatcher
// issues for it carry it in their UUIDs, so they are not taken for those
// of an earlier run.
type StepStarted struct {
	Step  int        `json:"step"`
	Type  string     `json:"type,omitempty"`
	DueAt *time.Time `json:"dueAt,omitempty"`
	Held  bool       `json:"held,omitempty"`
	Run   int        `json:"run,omitempty"`
	// Branches are a parallel step's: the step each branch starts at
	// (-1: a branch a redrive keeps, which succeeded).
	Branches []int `json:"branches,omitempty"`
}

// StepAttemptStarted is the data of EventStepAttemptStarted: the worker
// that appended it makes attempt Attempt of http step Step (a retry, or an
// attempt whose earlier holder seems to have died: Resumed, the call is
// repeated with the same Idempotency-Key).
type StepAttemptStarted struct {
	Step    int  `json:"step"`
	Attempt int  `json:"attempt"`
	Resumed bool `json:"resumed,omitempty"`
}

// StepCompleted is the data of EventStepCompleted. Attempt is the http
// attempt that succeeded (0 for other steps). Next is the step that
// follows when it is not the next in the list (a next, a choice's rule;
// -1: none, the execution ends).
type StepCompleted struct {
	Step    int             `json:"step"`
	Output  json.RawMessage `json:"output,omitempty"`
	Attempt int             `json:"attempt,omitempty"`
	Next    *int            `json:"next,omitempty"`
}

// StepAttemptFailed is the data of EventStepAttemptFailed: attempt Attempt
// of step Step failed with the failure Name (Error says why), and the
// next runs at RetryAt (an http step's), or is offered then (a manual
// step's). Rule is the retry rule that retries it (1-based; 0: an http
// step's policy of earlier builds, or an event of one).
//
// Run is the step's run, when it is not the first (StepStarted.Run).
type StepAttemptFailed struct {
	Step    int       `json:"step"`
	Attempt int       `json:"attempt"`
	Error   string    `json:"error"`
	Name    string    `json:"name,omitempty"`
	Rule    int       `json:"rule,omitempty"`
	RetryAt time.Time `json:"retryAt"`
	Run     int       `json:"run,omitempty"`
}

// StepCaught is the data of EventStepFailed: step Step failed for good
// with the failure Name (Error says why) and a catch rule routed the
// execution to step Next, which the same append enters.
type StepCaught struct {
	Step    int    `json:"step"`
	Attempt int    `json:"attempt,omitempty"`
	Name    string `json:"name"`
	Error   string `json:"error"`
	Next    int    `json:"next"`
	Run     int    `json:"run,omitempty"`
}

// Failure is the data of EventExecutionFailed: step Step failed for
// good (its last attempt, or one retrying cannot help), and so did the
// execution.
//
// Name is the failure's name when it has one (a fail step's error,
// ErrChoiceNoMatch, …) and Cause a fail step's cause.
type Failure struct {
	Step    int    `json:"step"`
	Attempt int    `json:"attempt,omitempty"`
	Error   string `json:"error"`
	Name    string `json:"name,omitempty"`
	Cause   string `json:"cause,omitempty"`
}

// TimedOut is the data of EventExecutionTimedOut: the execution, or its
// current step Step, ran past its timeoutSeconds.
type TimedOut struct {
	Step   int    `json:"step"`
	Reason string `json:"reason"`
	Name   string `json:"name,omitempty"` // execution.timeout or step.timeout
}

// ExecutionFinished is the data of the events that end an execution.
type ExecutionFinished struct {
	Output json.RawMessage `json:"output,omitempty"`
	Reason string          `json:"reason,omitempty"`
}

// Redriven is the data of EventExecutionRedriven: a FAILED or TIMED_OUT
// execution goes on from Step (the one it ended at), its Redrive-th
// redrive; the same append enters the step again, as a new run.
type Redriven struct {
	Step    int    `json:"step"`
	Redrive int    `json:"redrive"`
	Reason  string `json:"reason,omitempty"`
}

// Paused is the data of EventExecutionPaused and EventExecutionResumed.
// A resume names the work a pause held back that the dispatcher issues
// again: the timer of wait step Step (Type wait) or attempt Attempt of
// http step Step (Type http), due at DueAt, in the step's run Run.
type Paused struct {
	Reason  string     `json:"reason,omitempty"`
	Step    *int       `json:"step,omitempty"`
	Type    string     `json:"type,omitempty"`
	Run     int        `json:"run,omitempty"`
	Attempt int        `json:"attempt,omitempty"`
	DueAt   *time.Time `json:"dueAt,omitempty"`
}

// decodeData decodes an event's data into v, naming the event on failure.
func decodeData(e Event, v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("event %s seq %d (%s): bad data: %w", e.AggregateID, e.Seq, e.Type, err)
	}
	return nil
}

// draft is an event a decision produces, before eventsFor gives it its
// place in the log: its type and its data.
type draft struct {
	typ  string
	data any
}

// eventsFor builds the events of one command from its drafts: consecutive
// seqs after lastSeq, eventUUIDs derived from the command, one timestamp.
func eventsFor(aggregateID string, lastSeq int64, c Command, now time.Time, drafts ...draft) ([]Event, error) {
	out := make([]Event, len(drafts))
	for i, d := range drafts {
		b, err := json.Marshal(d.data)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", d.typ, err)
		}
		out[i] = Event{
			AggregateID: aggregateID,
			Seq:         lastSeq + int64(i) + 1,
			EventUUID:   EventUUID(c.CommandUUID, i),
			Type:        d.typ,
			Data:        b,
			CommandUUID: c.CommandUUID,
			OccurredAt:  now.UTC(),
		}
	}
	return out, nil
}
