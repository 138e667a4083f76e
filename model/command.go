package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Command types.
const (
	CommandCreateWorkflow     = "CreateWorkflow"
	CommandUpdateWorkflow     = "UpdateWorkflow"
	CommandDeleteWorkflow     = "DeleteWorkflow"
	CommandStartExecution     = "StartExecution"
	CommandBeginExecution     = "BeginExecution"
	CommandIncrementExecution = "IncrementExecution"
	CommandCancelExecution    = "CancelExecution"
	CommandRunStep            = "RunStep"
	CommandFireTimer          = "FireTimer"
	CommandTimeOutExecution   = "TimeOutExecution"
	CommandRedriveExecution   = "RedriveExecution"
	CommandPauseExecution     = "PauseExecution"
	CommandResumeExecution    = "ResumeExecution"
)

// CommandTypes lists every command type.
var CommandTypes = []string{
	CommandCreateWorkflow, CommandUpdateWorkflow, CommandDeleteWorkflow,
	CommandStartExecution, CommandBeginExecution, CommandIncrementExecution, CommandCancelExecution,
	CommandRunStep, CommandFireTimer, CommandTimeOutExecution,
	CommandRedriveExecution, CommandPauseExecution, CommandResumeExecution,
}

// IsSystemCommand reports whether commands of type t come from the service
// itself (the dispatcher, the cleanup), never from a client: they carry
// deterministic UUIDs, have no status record, and a stale one is dropped
// without a REJECTED status.
func IsSystemCommand(t string) bool {
	switch t {
	case CommandBeginExecution, CommandRunStep, CommandFireTimer, CommandTimeOutExecution:
		return true
	}
	return false
}

// Command statuses, as the command-status view and the API show them.
const (
	CommandAccepted = "ACCEPTED"
	CommandApplied  = "APPLIED"
	CommandRejected = "REJECTED"
)

// MaxReasonLen bounds a cancellation reason.
const MaxReasonLen = 1000

// Payload is the typed body of a command.
type Payload interface {
	// CommandType is the command's type name.
	CommandType() string
	// AggregateID names the aggregate the command changes.
	AggregateID() string
	// Validate reports a *FieldError for a malformed payload.
	Validate() error
}

// Command asks an aggregate to change. It travels as JSON through the bus.
type Command struct {
	CommandUUID uuid.UUID `json:"commandUUID"`
	Type        string    `json:"type"`
	IssuedAt    time.Time `json:"issuedAt"`
	Payload     Payload   `json:"-"`
}

// NewCommand wraps p in a command envelope.
func NewCommand(id uuid.UUID, p Payload, at time.Time) Command {
	return Command{CommandUUID: id, Type: p.CommandType(), IssuedAt: at.UTC(), Payload: p}
}

// AggregateID names the aggregate the command changes.
func (c Command) AggregateID() string { return c.Payload.AggregateID() }

type wireCommand struct {
	CommandUUID uuid.UUID       `json:"commandUUID"`
	Type        string          `json:"type"`
	IssuedAt    time.Time       `json:"issuedAt"`
	Data        json.RawMessage `json:"data"`
}

// MarshalJSON encodes the envelope with the payload under "data".
func (c Command) MarshalJSON() ([]byte, error) {
	data, err := json.Marshal(c.Payload)
	if err != nil {
		return nil, err
	}
	return json.Marshal(wireCommand{c.CommandUUID, c.Type, c.IssuedAt, data})
}

// ErrBadCommand is wrapped by every error DecodeCommand returns.
var ErrBadCommand = errors.New("bad command message")

// DecodeCommand parses and validates a command message. Unknown fields,
// unknown types, missing UUIDs and invalid payloads are errors wrapping
// ErrBadCommand: such a message can never succeed and is rejected at once.
func DecodeCommand(b []byte) (Command, error) {
	var w wireCommand
	if err := strictUnmarshal(b, &w); err != nil {
		return Command{}, fmt.Errorf("%w: %v", ErrBadCommand, err)
	}
	if w.CommandUUID == uuid.Nil {
		return Command{}, fmt.Errorf("%w: commandUUID is required", ErrBadCommand)
	}
	var p Payload
	switch w.Type {
	case CommandCreateWorkflow:
		p = &CreateWorkflow{}
	case CommandUpdateWorkflow:
		p = &UpdateWorkflow{}
	case CommandDeleteWorkflow:
		p = &DeleteWorkflow{}
	case CommandStartExecution:
		p = &StartExecution{}
	case CommandBeginExecution:
		p = &BeginExecution{}
	case CommandIncrementExecution:
		p = &IncrementExecution{}
	case CommandCancelExecution:
		p = &CancelExecution{}
	case CommandRunStep:
		p = &RunStep{}
	case CommandFireTimer:
		p = &FireTimer{}
	case CommandTimeOutExecution:
		p = &TimeOutExecution{}
	case CommandRedriveExecution:
		p = &RedriveExecution{}
	case CommandPauseExecution:
		p = &PauseExecution{}
	case CommandResumeExecution:
		p = &ResumeExecution{}
	default:
		return Command{}, fmt.Errorf("%w: unknown type %q", ErrBadCommand, w.Type)
	}
	if len(w.Data) == 0 || string(w.Data) == "null" {
		return Command{}, fmt.Errorf("%w: data is required", ErrBadCommand)
	}
	if err := strictUnmarshal(w.Data, p); err != nil {
		return Command{}, fmt.Errorf("%w: %s data: %v", ErrBadCommand, w.Type, err)
	}
	if err := p.Validate(); err != nil {
		return Command{}, fmt.Errorf("%w: %s: %v", ErrBadCommand, w.Type, err)
	}
	return Command{CommandUUID: w.CommandUUID, Type: w.Type, IssuedAt: w.IssuedAt, Payload: derefPayload(p)}, nil
}

// derefPayload turns the decoding pointer into the value type the rest of
// the code switches on.
func derefPayload(p Payload) Payload {
	switch v := p.(type) {
	case *CreateWorkflow:
		return *v
	case *UpdateWorkflow:
		return *v
	case *DeleteWorkflow:
		return *v
	case *StartExecution:
		return *v
	case *BeginExecution:
		return *v
	case *IncrementExecution:
		return *v
	case *CancelExecution:
		return *v
	case *RunStep:
		return *v
	case *FireTimer:
		return *v
	case *TimeOutExecution:
		return *v
	case *RedriveExecution:
		return *v
	case *PauseExecution:
		return *v
	case *ResumeExecution:
		return *v
	}
	return p
}

func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

func requireUUID(field string, id uuid.UUID) error {
	if id == uuid.Nil {
		return &FieldError{Field: field, Problem: "is required"}
	}
	return nil
}

// CreateWorkflow creates version 1 of a workflow.
type CreateWorkflow struct {
	WorkflowUUID uuid.UUID `json:"workflowUUID"`
	Definition
}

func (CreateWorkflow) CommandType() string   { return CommandCreateWorkflow }
func (c CreateWorkflow) AggregateID() string { return WorkflowAggregateID(c.WorkflowUUID) }
func (c CreateWorkflow) Validate() error {
	if err := requireUUID("workflowUUID", c.WorkflowUUID); err != nil {
		return err
	}
	return c.Definition.Validate()
}

// UpdateWorkflow creates the next version of a workflow.
type UpdateWorkflow struct {
	WorkflowUUID uuid.UUID `json:"workflowUUID"`
	Definition
}

func (UpdateWorkflow) CommandType() string   { return CommandUpdateWorkflow }
func (c UpdateWorkflow) AggregateID() string { return WorkflowAggregateID(c.WorkflowUUID) }
func (c UpdateWorkflow) Validate() error {
	if err := requireUUID("workflowUUID", c.WorkflowUUID); err != nil {
		return err
	}
	return c.Definition.Validate()
}

// DeleteWorkflow stops new executions of a workflow; its history stays.
type DeleteWorkflow struct {
	WorkflowUUID uuid.UUID `json:"workflowUUID"`
}

func (DeleteWorkflow) CommandType() string   { return CommandDeleteWorkflow }
func (c DeleteWorkflow) AggregateID() string { return WorkflowAggregateID(c.WorkflowUUID) }
func (c DeleteWorkflow) Validate() error     { return requireUUID("workflowUUID", c.WorkflowUUID) }

// StartExecution creates an execution of the workflow's current version.
type StartExecution struct {
	WorkflowExecutionUUID uuid.UUID       `json:"workflowExecutionUUID"`
	WorkflowUUID          uuid.UUID       `json:"workflowUUID"`
	Input                 json.RawMessage `json:"input,omitempty"`
}

func (StartExecution) CommandType() string { return CommandStartExecution }
func (c StartExecution) AggregateID() string {
	return ExecutionAggregateID(c.WorkflowExecutionUUID)
}
func (c StartExecution) Validate() error {
	if err := requireUUID("workflowExecutionUUID", c.WorkflowExecutionUUID); err != nil {
		return err
	}
	return requireUUID("workflowUUID", c.WorkflowUUID)
}

// BeginExecution moves a PENDING execution to RUNNING and starts its first
// step. The dispatcher issues it when it sees ExecutionCreated.
type BeginExecution struct {
	WorkflowExecutionUUID uuid.UUID `json:"workflowExecutionUUID"`
}

func (BeginExecution) CommandType() string { return CommandBeginExecution }
func (c BeginExecution) AggregateID() string {
	return ExecutionAggregateID(c.WorkflowExecutionUUID)
}
func (c BeginExecution) Validate() error {
	return requireUUID("workflowExecutionUUID", c.WorkflowExecutionUUID)
}

// IncrementExecution completes manual step Step (0-based) and moves
// currentStep on. A Step other than currentStep is stale and rejected.
//
// Run, when set, is the run of the step the increment completes (a loop
// may come back to a step): an increment of an earlier run is refused, so
// a stale one changes nothing. 0 completes whatever run is current.
//
// Error or Cause, when set, fail the step instead: the failure is named
// Error (default manual.failed), and Cause says why.
type IncrementExecution struct {
	WorkflowExecutionUUID uuid.UUID       `json:"workflowExecutionUUID"`
	Step                  int             `json:"step"`
	Output                json.RawMessage `json:"output,omitempty"`
	Run                   int             `json:"run,omitempty"`
	Error                 string          `json:"error,omitempty"`
	Cause                 string          `json:"cause,omitempty"`
}

// Failed reports whether the increment fails its step.
func (c IncrementExecution) Failed() bool { return c.Error != "" || c.Cause != "" }

func (IncrementExecution) CommandType() string { return CommandIncrementExecution }
func (c IncrementExecution) AggregateID() string {
	return ExecutionAggregateID(c.WorkflowExecutionUUID)
}
func (c IncrementExecution) Validate() error {
	if err := requireUUID("workflowExecutionUUID", c.WorkflowExecutionUUID); err != nil {
		return err
	}
	if c.Step < 0 || c.Step >= MaxSteps {
		return &FieldError{Field: "step", Problem: fmt.Sprintf("must be between 0 and %d", MaxSteps-1)}
	}
	return ValidateStepFailure(c.Error, c.Cause, c.Output)
}

// ValidateStepFailure checks the error and cause a client fails a manual
// step with (none: the increment completes it with output).
func ValidateStepFailure(name, cause string, output json.RawMessage) error {
	switch {
	case name != "" && (len(name) > MaxErrorNameLen || !errorName.MatchString(name)):
		return &FieldError{Field: "error", Problem: fmt.Sprintf("must be a dotted name of letters, digits, _ and - (order.rejected), at most %d characters", MaxErrorNameLen)}
	case utf8.RuneCountInString(cause) > MaxCauseLen:
		return &FieldError{Field: "cause", Problem: fmt.Sprintf("must be at most %d characters", MaxCauseLen)}
	case (name != "" || cause != "") && len(output) > 0 && string(output) != "null":
		return &FieldError{Field: "output", Problem: "cannot be given with error or cause: an increment either completes the step or fails it"}
	}
	return nil
}

// CancelExecution ends a running or pending execution as CANCELLED.
type CancelExecution struct {
	WorkflowExecutionUUID uuid.UUID `json:"workflowExecutionUUID"`
	Reason                string    `json:"reason,omitempty"`
}

func (CancelExecution) CommandType() string { return CommandCancelExecution }
func (c CancelExecution) AggregateID() string {
	return ExecutionAggregateID(c.WorkflowExecutionUUID)
}
func (c CancelExecution) Validate() error {
	if err := requireUUID("workflowExecutionUUID", c.WorkflowExecutionUUID); err != nil {
		return err
	}
	if len(c.Reason) > MaxReasonLen {
		return &FieldError{Field: "reason", Problem: fmt.Sprintf("must be at most %d bytes", MaxReasonLen)}
	}
	return nil
}

// RunStep runs attempt Attempt (1-based) of http step Step. The dispatcher
// issues attempt 1 when the step starts and each later one when a failed
// attempt's backoff ends; the cleanup issues them again for a step that
// seems stuck. Its UUID is SystemCommandUUID(execution, "run", step,
// attempt), so every copy is one command.
type RunStep struct {
	WorkflowExecutionUUID uuid.UUID `json:"workflowExecutionUUID"`
	Step                  int       `json:"step"`
	Attempt               int       `json:"attempt"`
}

func (RunStep) CommandType() string { return CommandRunStep }
func (c RunStep) AggregateID() string {
	return ExecutionAggregateID(c.WorkflowExecutionUUID)
}
func (c RunStep) Validate() error {
	if err := validateStep(c.WorkflowExecutionUUID, c.Step); err != nil {
		return err
	}
	if c.Attempt < 1 || c.Attempt > MaxHTTPAttempts {
		return &FieldError{Field: "attempt", Problem: fmt.Sprintf("must be between 1 and %d", MaxHTTPAttempts)}
	}
	return nil
}

// FireTimer completes wait step Step once its time has come.
type FireTimer struct {
	WorkflowExecutionUUID uuid.UUID `json:"workflowExecutionUUID"`
	Step                  int       `json:"step"`
}

func (FireTimer) CommandType() string { return CommandFireTimer }
func (c FireTimer) AggregateID() string {
	return ExecutionAggregateID(c.WorkflowExecutionUUID)
}
func (c FireTimer) Validate() error { return validateStep(c.WorkflowExecutionUUID, c.Step) }

// TimeOutExecution ends an execution past its deadline, or past its
// current step's, as TIMED_OUT. The cleanup issues it.
type TimeOutExecution struct {
	WorkflowExecutionUUID uuid.UUID `json:"workflowExecutionUUID"`
}

func (TimeOutExecution) CommandType() string { return CommandTimeOutExecution }
func (c TimeOutExecution) AggregateID() string {
	return ExecutionAggregateID(c.WorkflowExecutionUUID)
}
func (c TimeOutExecution) Validate() error {
	return requireUUID("workflowExecutionUUID", c.WorkflowExecutionUUID)
}

func validateStep(id uuid.UUID, step int) error {
	if err := requireUUID("workflowExecutionUUID", id); err != nil {
		return err
	}
	if step < 0 || step >= MaxSteps {
		return &FieldError{Field: "step", Problem: fmt.Sprintf("must be between 0 and %d", MaxSteps-1)}
	}
	return nil
}

// CommandStatus is the command-status view: what became of a command.
type CommandStatus struct {
	CommandUUID uuid.UUID `json:"commandUUID"`
	Type        string    `json:"type"`
	Status      string    `json:"status"`
	Error       string    `json:"error,omitempty"`
	// AggregateID names the aggregate the command changes (the API links
	// to its resource). Stores keep it under "resource", where statuses
	// written before 02/12/2026 hold the resource's API path instead (the
	// API reads both).
	AggregateID string    `json:"resource"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}
