package model

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Redrive, pause and resume (docs/api.md, "Redrive, pause and resume").

// Limits of redrives.
const (
	// RedriveWindow is how long after it ended a FAILED or TIMED_OUT
	// execution may be redriven.
	RedriveWindow = 14 * 24 * time.Hour
	// MaxRedrives bounds the redrives of one execution.
	MaxRedrives = 1000
)

// RedriveExecution continues a FAILED or TIMED_OUT execution from the step
// it ended at, keeping the steps that completed and their outputs.
type RedriveExecution struct {
	WorkflowExecutionUUID uuid.UUID `json:"workflowExecutionUUID"`
	Reason                string    `json:"reason,omitempty"`
}

// PauseExecution stops a running execution from starting steps, firing
// timers and retrying until a ResumeExecution.
type PauseExecution struct {
	WorkflowExecutionUUID uuid.UUID `json:"workflowExecutionUUID"`
	Reason                string    `json:"reason,omitempty"`
}

// ResumeExecution lets a paused execution go on.
type ResumeExecution struct {
	WorkflowExecutionUUID uuid.UUID `json:"workflowExecutionUUID"`
	Reason                string    `json:"reason,omitempty"`
}

func (RedriveExecution) CommandType() string { return CommandRedriveExecution }
func (c RedriveExecution) AggregateID() string {
	return ExecutionAggregateID(c.WorkflowExecutionUUID)
}
func (c RedriveExecution) Validate() error { return validateReason(c.WorkflowExecutionUUID, c.Reason) }

func (PauseExecution) CommandType() string { return CommandPauseExecution }
func (c PauseExecution) AggregateID() string {
	return ExecutionAggregateID(c.WorkflowExecutionUUID)
}
func (c PauseExecution) Validate() error { return validateReason(c.WorkflowExecutionUUID, c.Reason) }

func (ResumeExecution) CommandType() string { return CommandResumeExecution }
func (c ResumeExecution) AggregateID() string {
	return ExecutionAggregateID(c.WorkflowExecutionUUID)
}
func (c ResumeExecution) Validate() error { return validateReason(c.WorkflowExecutionUUID, c.Reason) }

func validateReason(id uuid.UUID, reason string) error {
	if err := requireUUID("workflowExecutionUUID", id); err != nil {
		return err
	}
	if len(reason) > MaxReasonLen {
		return &FieldError{Field: "reason", Problem: fmt.Sprintf("must be at most %d bytes", MaxReasonLen)}
	}
	return nil
}

// redrive is the rule of RedriveExecution: a FAILED or TIMED_OUT
// execution, within RedriveWindow of its end, goes on from the step it
// ended at (a new run of it), in the same append; the steps that
// completed keep their outputs. Its timeoutSeconds counts again from now.
func (s Execution) redrive(p RedriveExecution, now time.Time) ([]draft, error) {
	if err := s.requireExists(); err != nil {
		return nil, err
	}
	switch {
	case s.Status != ExecutionFailed && s.Status != ExecutionTimedOut:
		return nil, reject("execution is %s: only a FAILED or TIMED_OUT execution is redriven", s.Status)
	case now.Sub(s.UpdatedAt) > RedriveWindow:
		return nil, reject("execution ended at %s, more than %d days ago: it can no longer be redriven", s.UpdatedAt.UTC().Format(time.RFC3339), int(RedriveWindow.Hours()/24))
	case s.Redrives >= MaxRedrives:
		return nil, reject("execution was redriven %d times, the most it may be", s.Redrives)
	}
	i := s.CurrentStep
	out := []draft{{EventExecutionRedriven, Redriven{Step: i, Redrive: s.Redrives + 1, Reason: p.Reason}}}
	// Decided over the state the redrive makes: running, from now.
	next := s
	next.Status, next.Paused, next.redriving = ExecutionRunning, false, true
	next.RedrivenAt = &now
	if i >= len(s.Steps) {
		// It failed at its end (its output expression): end again.
		done := s.lastDone(-1)
		return append(out, next.succeeded(done.Step, done)), nil
	}
	return next.enter(out, i, s.lastDone(i), now), nil
}

// lastDone is the step of step i's container (i -1: the execution's own
// steps) that completed last, with its output (Step -1: none): the step
// before the one a redrive or a resume enters.
func (s Execution) lastDone(i int) StepCompleted {
	parallel, branch := "", 0
	if i >= 0 && i < len(s.Steps) {
		parallel, branch = s.Steps[i].Parallel, s.Steps[i].Branch
	}
	done := StepCompleted{Step: -1}
	var at time.Time
	for j, st := range s.Steps {
		if st.Parallel == parallel && st.Branch == branch && st.Status == StepSucceeded && st.FinishedAt != nil && !st.FinishedAt.Before(at) {
			done, at = StepCompleted{Step: j, Output: st.Output}, *st.FinishedAt
		}
	}
	return done
}

// pause is the rule of PauseExecution: a RUNNING execution that is not
// paused is paused.
func (s Execution) pause(p PauseExecution) ([]draft, error) {
	if err := s.requireLive(); err != nil {
		return nil, err
	}
	switch {
	case s.Status != ExecutionRunning:
		return nil, reject("execution is %s, not %s", s.Status, ExecutionRunning)
	case s.Paused:
		return nil, reject("execution is already paused")
	}
	return []draft{{EventExecutionPaused, Paused{Reason: p.Reason}}}, nil
}

// resume is the rule of ResumeExecution: a paused execution goes on. A
// step that a completion during the pause led to is entered in the same
// append, as is the end of a wait step whose time passed; a timer or a
// retry the pause held back is named in the event, for the dispatcher to
// issue again.
func (s Execution) resume(p ResumeExecution, now time.Time) ([]draft, error) {
	if err := s.requireLive(); err != nil {
		return nil, err
	}
	if !s.Paused {
		return nil, reject("execution is not paused")
	}
	next := s
	next.Paused = false
	resumed := Paused{Reason: p.Reason}
	out := []draft{{EventExecutionResumed, resumed}}
	// Each step in progress (several, in parallel branches) that the pause
	// held: entered, or ended; each change may lead to another.
	t := next.after(out, now)
	for range len(s.Steps) + 1 {
		acted := false
		for _, i := range t.activeSteps() {
			switch st := t.Steps[i]; {
			case st.Status == StepPending:
				out, acted = t.enter(out, i, t.lastDone(i), now), true
			case st.Type == StepWait && st.Status == StepWaiting && st.DueAt != nil && !now.Before(*st.DueAt):
				out, acted = t.complete(StepCompleted{Step: i}, now, out...), true
			}
			if acted {
				break
			}
		}
		if !acted {
			break
		}
		t = t.after(out, now)
	}
	// The first timer or retry the pause held back, for the dispatcher to
	// issue again (the cleanup issues any other when it is due).
	for _, i := range t.activeSteps() {
		st := t.Steps[i]
		if st.DueAt != nil && (st.Type == StepWait && st.Status == StepWaiting || st.Type == StepHTTP && st.Status == StepRunning) {
			resumed.Step, resumed.Type, resumed.Run, resumed.DueAt = &i, st.Type, st.Runs, st.DueAt
			if st.Type == StepHTTP {
				resumed.Attempt = st.Attempts + 1
			}
			out[0] = draft{EventExecutionResumed, resumed}
			break
		}
	}
	return out, nil
}

// requireUnpaused rejects the work a paused execution does not do.
func (s Execution) requireUnpaused() error {
	if s.Paused {
		return reject("execution is paused")
	}
	return nil
}
