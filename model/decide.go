package model

import (
	"fmt"
	"time"
)

// Rejection is a command the aggregate refuses, with a reason a client can
// read. A Transient rejection may succeed later (the workflow an execution
// names may not be applied yet): workers retry it before giving up.
type Rejection struct {
	Reason    string
	Transient bool
}

func (r *Rejection) Error() string { return "rejected: " + r.Reason }

func reject(format string, args ...any) error {
	return &Rejection{Reason: fmt.Sprintf(format, args...)}
}

// DecideWorkflow returns the events a workflow command produces from state s,
// or a *Rejection. It is pure: the same inputs give the same events.
func DecideWorkflow(s Workflow, c Command, now time.Time) ([]Event, error) {
	switch p := c.Payload.(type) {
	case CreateWorkflow:
		if s.Exists() {
			return nil, reject("workflow %s already exists", p.WorkflowUUID)
		}
		return eventsFor(p.AggregateID(), s.Seq, c, now,
			[]string{EventWorkflowCreated},
			[]any{WorkflowDefined{WorkflowUUID: p.WorkflowUUID, Version: 1, Definition: p.Definition}})
	case UpdateWorkflow:
		if err := requireLiveWorkflow(s); err != nil {
			return nil, err
		}
		return eventsFor(p.AggregateID(), s.Seq, c, now,
			[]string{EventWorkflowVersionCreated},
			[]any{WorkflowDefined{WorkflowUUID: p.WorkflowUUID, Version: s.Version + 1, Definition: p.Definition}})
	case DeleteWorkflow:
		if err := requireLiveWorkflow(s); err != nil {
			return nil, err
		}
		return eventsFor(p.AggregateID(), s.Seq, c, now,
			[]string{EventWorkflowDeleted}, []any{struct{}{}})
	}
	return nil, reject("command %s is not a workflow command", c.Type)
}

func requireLiveWorkflow(s Workflow) error {
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
// when it does not exist); other commands ignore it.
func DecideExecution(s Execution, c Command, wf *Workflow, now time.Time) ([]Event, error) {
	switch p := c.Payload.(type) {
	case StartExecution:
		if s.Exists() {
			return nil, reject("execution %s already exists", p.WorkflowExecutionUUID)
		}
		if wf == nil || !wf.Exists() {
			return nil, &Rejection{Reason: fmt.Sprintf("workflow %s not found", p.WorkflowUUID), Transient: true}
		}
		if wf.Deleted() {
			return nil, reject("workflow %s is deleted", p.WorkflowUUID)
		}
		return eventsFor(p.AggregateID(), s.Version, c, now,
			[]string{EventExecutionCreated},
			[]any{ExecutionCreated{
				WorkflowExecutionUUID: p.WorkflowExecutionUUID,
				WorkflowUUID:          wf.WorkflowUUID,
				WorkflowVersion:       wf.Version,
				TimeoutSeconds:        wf.TimeoutSeconds,
				Steps:                 wf.Steps,
				Input:                 p.Input,
			}})
	case BeginExecution:
		if !s.Exists() {
			return nil, reject("execution not found")
		}
		if s.Status != ExecutionPending {
			return nil, reject("execution is %s, not %s", s.Status, ExecutionPending)
		}
		return eventsFor(p.AggregateID(), s.Version, c, now,
			[]string{EventExecutionStarted, EventStepStarted},
			[]any{struct{}{}, StepStarted{Step: 0}})
	case IncrementExecution:
		if !s.Exists() {
			return nil, reject("execution not found")
		}
		if s.Status == ExecutionPending {
			// The dispatcher begins a new execution a moment after it is
			// created: an increment that overtook it is retried, not refused.
			return nil, &Rejection{Reason: "execution has not started yet", Transient: true}
		}
		if s.Status != ExecutionRunning {
			return nil, reject("execution is %s, not %s", s.Status, ExecutionRunning)
		}
		if p.Step != s.CurrentStep {
			return nil, reject("step %d is not the current step (%d)", p.Step, s.CurrentStep)
		}
		if t := s.Steps[p.Step].Type; t != StepManual {
			return nil, reject("step %d is a %s step; only manual steps take increments", p.Step, t)
		}
		types := []string{EventStepCompleted}
		data := []any{StepCompleted{Step: p.Step, Output: p.Output}}
		if next := p.Step + 1; next < len(s.Steps) {
			types = append(types, EventStepStarted)
			data = append(data, StepStarted{Step: next})
		} else {
			types = append(types, EventExecutionSucceeded)
			data = append(data, ExecutionFinished{Output: p.Output})
		}
		return eventsFor(p.AggregateID(), s.Version, c, now, types, data)
	case CancelExecution:
		if !s.Exists() {
			return nil, reject("execution not found")
		}
		if IsTerminal(s.Status) {
			return nil, reject("execution is already %s", s.Status)
		}
		return eventsFor(p.AggregateID(), s.Version, c, now,
			[]string{EventExecutionCancelled}, []any{ExecutionFinished{Reason: p.Reason}})
	}
	return nil, reject("command %s is not an execution command", c.Type)
}
