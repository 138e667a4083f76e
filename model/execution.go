package model

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/workflowd/workflowd/expr"
)

// Execution statuses.
const (
	ExecutionPending   = "PENDING"
	ExecutionRunning   = "RUNNING"
	ExecutionSucceeded = "SUCCEEDED"
	ExecutionFailed    = "FAILED"
	ExecutionCancelled = "CANCELLED"
	ExecutionTimedOut  = "TIMED_OUT"
)

// Step statuses.
const (
	StepPending   = "PENDING"
	StepRunning   = "RUNNING"
	StepWaiting   = "WAITING"
	StepSucceeded = "SUCCEEDED"
	StepFailed    = "FAILED"
	StepSkipped   = "SKIPPED"
)

// ExecutionStatuses lists every execution status, for validation.
var ExecutionStatuses = []string{ExecutionPending, ExecutionRunning, ExecutionSucceeded, ExecutionFailed, ExecutionCancelled, ExecutionTimedOut}

// IsTerminalEvent reports whether an event of type t ends an execution.
func IsTerminalEvent(t string) bool {
	switch t {
	case EventExecutionSucceeded, EventExecutionFailed, EventExecutionCancelled, EventExecutionTimedOut:
		return true
	}
	return false
}

// IsTerminal reports whether an execution in status s has ended: it
// changes no more, but for a redrive of a FAILED or TIMED_OUT one.
func IsTerminal(s string) bool {
	switch s {
	case ExecutionSucceeded, ExecutionFailed, ExecutionCancelled, ExecutionTimedOut:
		return true
	}
	return false
}

// MaxFailuresShown bounds a step view's Failures: the view must stay
// well within a DynamoDB item whatever the retries.
const MaxFailuresShown = 5

// AttemptFailure is one failed attempt of a step, in its view: the
// attempt, the failure's name and when (Error holds the latest's cause).
type AttemptFailure struct {
	Attempt int       `json:"attempt"`
	Name    string    `json:"name,omitempty"`
	At      time.Time `json:"failedAt"`
}

// failed records a failed attempt in the step's view.
func (st *StepState) failed(attempt int, name string, at time.Time) {
	if len(st.Failures) >= MaxFailuresShown {
		st.Failures = st.Failures[len(st.Failures)-MaxFailuresShown+1:]
	}
	st.Failures = append(st.Failures, AttemptFailure{Attempt: attempt, Name: name, At: at})
}

// StepState is the state of one step of an execution.
type StepState struct {
	Name           string `json:"name"`
	Type           string `json:"type"`
	TimeoutSeconds int    `json:"timeoutSeconds,omitempty"`
	// Parallel and Branch say which parallel step and which of its
	// branches the step is in ("": the workflow's own).
	Parallel string `json:"parallel,omitempty"`
	Branch   int    `json:"branch,omitempty"`
	Status   string `json:"status"`
	// Branches are a parallel step's, in its latest run.
	Branches []BranchState `json:"branches,omitempty"`
	// Runs counts the times the step started (more than once: a loop came
	// back to it); Attempts and the rest are of its latest run.
	Runs     int             `json:"runs,omitempty"`
	Attempts int             `json:"attempts"`
	Output   json.RawMessage `json:"output"`
	Error    string          `json:"error,omitempty"`
	// ErrorName names the failure Error describes (docs/api.md, "Errors").
	ErrorName string `json:"errorName,omitempty"`
	// Failures are the latest failed attempts of the step's run, oldest
	// first, at most MaxFailuresShown (the history has every one).
	Failures   []AttemptFailure `json:"failures,omitempty"`
	StartedAt  *time.Time       `json:"startedAt"`
	FinishedAt *time.Time       `json:"finishedAt"`
	// DueAt is when a waiting wait step ends, or when a failed http
	// attempt is retried.
	DueAt *time.Time `json:"dueAt,omitempty"`
	// AttemptStartedAt is when the latest http attempt was claimed
	// (ClaimAttempt). While it is in progress (the step RUNNING, no retry
	// due), its holder calls until then plus the attempt's timeout, and
	// AttemptGrace later another worker may take it over.
	AttemptStartedAt *time.Time `json:"attemptStartedAt,omitempty"`
	// claim is the seq of the event that claimed the attempt in progress
	// (0: none): the holder's token, which its outcome must match. The
	// workers fold it from the log; views do not keep it.
	claim int64
	// retried counts the retries each retry rule made in the step's run
	// (folded from the log, like claim).
	retried []int
}

// Execution is the state of a workflow execution aggregate and its view.
type Execution struct {
	WorkflowExecutionUUID uuid.UUID       `json:"workflowExecutionUUID"`
	WorkflowUUID          uuid.UUID       `json:"workflowUUID"`
	WorkflowVersion       int             `json:"workflowVersion"`
	Status                string          `json:"status"`
	CurrentStep           int             `json:"currentStep"`
	Steps                 []StepState     `json:"steps"`
	TimeoutSeconds        int             `json:"timeoutSeconds,omitempty"`
	Input                 json.RawMessage `json:"input"`
	Output                json.RawMessage `json:"output"`
	Error                 string          `json:"error,omitempty"`
	// ErrorName is the name of the failure that ended the execution, when
	// it has one (a fail step's error).
	ErrorName string `json:"errorName,omitempty"`
	// Paused: the execution starts no step and fires no timer until it
	// is resumed.
	Paused bool `json:"paused,omitempty"`
	// Redrives counts the redrives; RedrivenAt is the latest, from which
	// the execution's timeoutSeconds counts.
	Redrives   int        `json:"redrives,omitempty"`
	RedrivenAt *time.Time `json:"redrivenAt,omitempty"`
	// Version is the seq of the last event folded into this state.
	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`

	// RecentCommands are the commands of the last events folded in, oldest
	// first (model.Recent reads them). Stores persist them; the API does not
	// show them.
	RecentCommands []uuid.UUID `json:"-"`
	// Due is when the cleanup must next look at the execution (zero:
	// never), as the projector computed it (DueAt) when it wrote the view.
	// Stores index executions by it (ListDue) and return it with the view;
	// the API does not show it.
	Due time.Time `json:"-"`
	// Definitions are the steps of the workflow version the execution runs,
	// as ExecutionCreated copied them (URLs, headers, retry policies). The
	// workers, which fold the whole history, have them; views do not keep
	// them (the API does not show them), and nothing folding a view needs
	// them.
	Definitions []StepDefinition `json:"-"`
	// OutputExpression shapes the output of the execution when it
	// succeeds (Definition.Output), as ExecutionCreated copied it; like
	// Definitions, only the workers have it.
	OutputExpression string `json:"-"`
	// Caught is the failure the last catch routed: what expressions see
	// as error. The workers fold it from the log; views do not keep it.
	Caught *expr.Caught `json:"-"`
	// createdBytes is the size of the ExecutionCreated data (definition and
	// input), folded from the log: its share of MaxExecutionData.
	createdBytes int
	// drafted counts the drafts of the command being decided folded into
	// this state (Execution.after); redriving marks the state a redrive
	// decides on (a parallel step entered again keeps the branches that
	// succeeded).
	drafted   int
	redriving bool
}

// Exists reports whether the execution has been created.
func (x Execution) Exists() bool { return x.Version > 0 }

// Clone returns a deep copy of x.
func (x Execution) Clone() Execution {
	x.Steps = append([]StepState(nil), x.Steps...)
	for i := range x.Steps {
		x.Steps[i].Output = cloneRaw(x.Steps[i].Output)
		x.Steps[i].StartedAt = cloneTime(x.Steps[i].StartedAt)
		x.Steps[i].FinishedAt = cloneTime(x.Steps[i].FinishedAt)
		x.Steps[i].DueAt = cloneTime(x.Steps[i].DueAt)
		x.Steps[i].AttemptStartedAt = cloneTime(x.Steps[i].AttemptStartedAt)
		x.Steps[i].Failures = append([]AttemptFailure(nil), x.Steps[i].Failures...)
		x.Steps[i].Branches = append([]BranchState(nil), x.Steps[i].Branches...)
		x.Steps[i].retried = append([]int(nil), x.Steps[i].retried...)
	}
	x.Input = cloneRaw(x.Input)
	x.Output = cloneRaw(x.Output)
	x.RedrivenAt = cloneTime(x.RedrivenAt)
	return x
}

func cloneRaw(r json.RawMessage) json.RawMessage {
	if r == nil {
		return nil
	}
	return append(json.RawMessage(nil), r...)
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}
