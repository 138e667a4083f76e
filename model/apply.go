package model

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/workflowd/workflowd/expr"
)

// ApplyWorkflow folds one event into workflow state. Events must come in seq
// order with no gap; anything else is an error and s is returned unchanged.
func ApplyWorkflow(s Workflow, e Event) (Workflow, error) {
	if e.Seq != s.Seq+1 {
		return s, fmt.Errorf("apply %s: seq %d after %d", e.AggregateID, e.Seq, s.Seq)
	}
	n := s.Clone()
	switch e.Type {
	case EventWorkflowCreated, EventWorkflowVersionCreated:
		var d WorkflowDefined
		if err := decodeData(e, &d); err != nil {
			return s, err
		}
		if e.Type == EventWorkflowCreated {
			n.WorkflowUUID = d.WorkflowUUID
			n.CreatedAt = e.OccurredAt
		}
		n.Name, n.Description, n.TimeoutSeconds, n.Output = d.Name, d.Description, d.TimeoutSeconds, d.Output
		n.Steps = append([]StepDefinition(nil), d.Steps...)
		n.Version = d.Version
	case EventWorkflowDeleted:
		at := e.OccurredAt
		n.DeletedAt = &at
	default:
		return s, fmt.Errorf("apply %s seq %d: unknown workflow event %q", e.AggregateID, e.Seq, e.Type)
	}
	n.UpdatedAt = e.OccurredAt
	n.Seq = e.Seq
	n.RecentCommands = remember(n.RecentCommands, e.CommandUUID)
	return n, nil
}

// ApplyExecution folds one event into execution state, with the same rules
// as ApplyWorkflow.
func ApplyExecution(s Execution, e Event) (Execution, error) {
	n := s.Clone()
	if err := n.apply(e); err != nil {
		return s, err
	}
	return n, nil
}

// apply folds e into n in place; n must share no memory with a state
// anyone else holds (a Clone). On an error n is left part-changed.
func (n *Execution) apply(e Event) error {
	if e.Seq != n.Version+1 {
		return fmt.Errorf("apply %s: seq %d after %d", e.AggregateID, e.Seq, n.Version)
	}
	at := e.OccurredAt
	switch e.Type {
	case EventExecutionCreated:
		var d ExecutionCreated
		if err := decodeData(e, &d); err != nil {
			return err
		}
		n.WorkflowExecutionUUID = d.WorkflowExecutionUUID
		n.WorkflowUUID = d.WorkflowUUID
		n.WorkflowVersion = d.WorkflowVersion
		n.TimeoutSeconds = d.TimeoutSeconds
		n.Input = cloneRaw(d.Input)
		n.createdBytes = len(e.Data)
		n.Status = ExecutionPending
		n.Definitions = d.Steps
		n.OutputExpression = d.OutputExpression
		var parent, branch []int
		if hasParallel(d.Steps) {
			n.Definitions, parent, branch = flatten(d.Steps)
		}
		n.Steps = make([]StepState, len(n.Definitions))
		for i, st := range n.Definitions {
			n.Steps[i] = StepState{Name: st.Name, Type: st.Type, TimeoutSeconds: st.TimeoutSeconds, Status: StepPending}
			if parent != nil && parent[i] >= 0 {
				n.Steps[i].Parallel, n.Steps[i].Branch = n.Definitions[parent[i]].Name, branch[i]
			}
		}
		n.CreatedAt = at
	case EventExecutionStarted:
		n.Status = ExecutionRunning
	case EventStepStarted:
		var d StepStarted
		if err := decodeData(e, &d); err != nil {
			return err
		}
		if d.Step < 0 || d.Step >= len(n.Steps) {
			return fmt.Errorf("apply %s seq %d: step %d out of range", e.AggregateID, e.Seq, d.Step)
		}
		st := &n.Steps[d.Step]
		if st.Status != StepPending {
			// A loop came back to it: a new run.
			st.Attempts, st.Error, st.ErrorName, st.FinishedAt, st.AttemptStartedAt, st.claim, st.retried = 0, "", "", nil, nil, 0, nil
			st.Failures = nil
		}
		st.Status = StepRunning
		if st.Type == StepManual || st.Type == StepWait {
			st.Status = StepWaiting
		}
		st.Runs++
		st.Attempts++
		st.StartedAt = &at
		st.DueAt = cloneTime(d.DueAt)
		if d.Held {
			st.AttemptStartedAt, st.claim = &at, e.Seq
		}
		if st.Type == StepParallel {
			kept := st.Branches
			st.Branches = make([]BranchState, len(d.Branches))
			for k, start := range d.Branches {
				if start < 0 && k < len(kept) {
					st.Branches[k] = kept[k] // a redrive keeps a branch that succeeded
				} else {
					st.Branches[k] = BranchState{Status: BranchRunning, CurrentStep: start, last: -1}
				}
			}
		}
		*n.cursorOf(d.Step) = d.Step
	case EventStepAttemptStarted:
		var d StepAttemptStarted
		if err := decodeData(e, &d); err != nil {
			return err
		}
		st, err := n.step(e, d.Step)
		if err != nil {
			return err
		}
		st.Attempts = max(st.Attempts, d.Attempt)
		st.DueAt = nil
		st.AttemptStartedAt, st.claim = &at, e.Seq
	case EventStepCompleted:
		var d StepCompleted
		if err := decodeData(e, &d); err != nil {
			return err
		}
		if d.Step < 0 || d.Step >= len(n.Steps) {
			return fmt.Errorf("apply %s seq %d: step %d out of range", e.AggregateID, e.Seq, d.Step)
		}
		st := &n.Steps[d.Step]
		st.Status = StepSucceeded
		st.Output = cloneRaw(d.Output)
		st.FinishedAt = &at
		st.DueAt = nil
		st.Error, st.ErrorName = "", ""
		st.Attempts = max(st.Attempts, d.Attempt)
		st.claim = 0
		next := d.Step + 1
		if d.Next != nil {
			next = *d.Next
		}
		if st.Parallel != "" {
			if next >= 0 && next < len(n.Steps) {
				*n.cursorOf(d.Step) = next
			} // else the branch ends here (BranchSucceeded)
			break
		}
		n.CurrentStep = next
		if n.CurrentStep < 0 {
			n.CurrentStep = len(n.Steps)
		}
	case EventStepAttemptFailed:
		var d StepAttemptFailed
		if err := decodeData(e, &d); err != nil {
			return err
		}
		st, err := n.step(e, d.Step)
		if err != nil {
			return err
		}
		st.Attempts = max(st.Attempts, d.Attempt)
		st.Error, st.ErrorName = d.Error, d.Name
		st.failed(d.Attempt, d.Name, at)
		retryAt := d.RetryAt
		st.DueAt = &retryAt
		st.claim = 0
		if d.Rule > 0 {
			for len(st.retried) < d.Rule {
				st.retried = append(st.retried, 0)
			}
			st.retried[d.Rule-1]++
		}
	case EventStepFailed:
		var d StepCaught
		if err := decodeData(e, &d); err != nil {
			return err
		}
		st, err := n.step(e, d.Step)
		if err != nil {
			return err
		}
		if d.Next < 0 || d.Next >= len(n.Steps) {
			return fmt.Errorf("apply %s seq %d: next step %d out of range", e.AggregateID, e.Seq, d.Next)
		}
		st.Status = StepFailed
		st.Attempts = max(st.Attempts, d.Attempt)
		st.Error, st.ErrorName = d.Error, d.Name
		st.failed(d.Attempt, d.Name, at)
		st.FinishedAt = &at
		st.DueAt = nil
		st.claim = 0
		n.Caught = &expr.Caught{Name: d.Name, Cause: d.Error, Step: st.Name}
		*n.cursorOf(d.Step) = d.Next
	case EventExecutionFailed:
		var d Failure
		if err := decodeData(e, &d); err != nil {
			return err
		}
		st, err := n.step(e, d.Step)
		if err != nil {
			return err
		}
		st.Attempts = max(st.Attempts, d.Attempt)
		n.ErrorName = d.Name
		running := st.Status == StepRunning || st.Status == StepWaiting
		n.end(ExecutionFailed, d.Error, d.Error, at)
		if running {
			st.ErrorName = d.Name
			st.failed(max(st.Attempts, 1), d.Name, at)
		}
	case EventExecutionTimedOut:
		var d TimedOut
		if err := decodeData(e, &d); err != nil {
			return err
		}
		n.ErrorName = d.Name
		running := d.Step >= 0 && d.Step < len(n.Steps) && (n.Steps[d.Step].Status == StepRunning || n.Steps[d.Step].Status == StepWaiting)
		n.end(ExecutionTimedOut, d.Reason, "timed out", at)
		if running {
			st := &n.Steps[d.Step]
			st.ErrorName = d.Name
			st.failed(max(st.Attempts, 1), d.Name, at)
		}
	case EventExecutionRedriven:
		var d Redriven
		if err := decodeData(e, &d); err != nil {
			return err
		}
		if d.Step < 0 || d.Step > len(n.Steps) {
			return fmt.Errorf("apply %s seq %d: step %d out of range", e.AggregateID, e.Seq, d.Step)
		}
		n.Status, n.Error, n.ErrorName, n.Output, n.Paused = ExecutionRunning, "", "", nil, false
		n.Redrives, n.RedrivenAt, n.CurrentStep = d.Redrive, &at, d.Step
		for i := range n.Steps {
			if n.Steps[i].Status == StepSkipped {
				n.Steps[i].Status = StepPending
			}
		}
	case EventBranchSucceeded, EventBranchFailed:
		var d BranchEnded
		if err := decodeData(e, &d); err != nil {
			return err
		}
		if d.Step < 0 || d.Step >= len(n.Steps) || d.Branch < 0 || d.Branch >= len(n.Steps[d.Step].Branches) {
			return fmt.Errorf("apply %s seq %d: branch %d of step %d out of range", e.AggregateID, e.Seq, d.Branch, d.Step)
		}
		ps := &n.Steps[d.Step]
		br := &ps.Branches[d.Branch]
		if e.Type == EventBranchSucceeded {
			br.Status, br.last = BranchSucceeded, -1
			if d.Last != nil {
				br.last = *d.Last
			}
			break
		}
		br.Status = BranchFailed
		if f := d.FailedStep; f != nil && *f >= 0 && *f < len(n.Steps) {
			st := &n.Steps[*f]
			st.Status, st.Error, st.ErrorName = StepFailed, d.Error, d.Name
			st.Attempts = max(st.Attempts, d.Attempt)
			st.failed(max(d.Attempt, 1), d.Name, at)
			st.FinishedAt, st.DueAt, st.claim = &at, nil, 0
		}
		reason := fmt.Sprintf("cancelled: branch %d of %q failed", d.Branch, ps.Name)
		for k := range ps.Branches {
			if ps.Branches[k].Status == BranchRunning {
				n.cancelBranch(d.Step, k, reason, at)
			}
		}
	case EventExecutionPaused:
		n.Paused = true
	case EventExecutionResumed:
		n.Paused = false
	case EventExecutionSucceeded, EventExecutionCancelled:
		var d ExecutionFinished
		if err := decodeData(e, &d); err != nil {
			return err
		}
		if e.Type == EventExecutionSucceeded {
			n.Status = ExecutionSucceeded
			n.Output = cloneRaw(d.Output)
			n.CurrentStep = len(n.Steps)
			for i := range n.Steps {
				if n.Steps[i].Status == StepPending {
					n.Steps[i].Status = StepSkipped // not on the path taken
				}
			}
		} else {
			n.end(ExecutionCancelled, d.Reason, "cancelled", at)
		}
	default:
		return fmt.Errorf("apply %s seq %d: unknown execution event %q", e.AggregateID, e.Seq, e.Type)
	}
	n.UpdatedAt = at
	n.Version = e.Seq
	n.RecentCommands = remember(n.RecentCommands, e.CommandUUID)
	return nil
}

// step returns step i of n, or an error naming event e if there is none.
func (n *Execution) step(e Event, i int) (*StepState, error) {
	if i < 0 || i >= len(n.Steps) {
		return nil, fmt.Errorf("apply %s seq %d: step %d out of range", e.AggregateID, e.Seq, i)
	}
	return &n.Steps[i], nil
}

// end finishes n with status and reason: the step in progress fails with
// stepError, the steps not started are skipped.
func (n *Execution) end(status, reason, stepError string, at time.Time) {
	n.Status = status
	n.Paused = false
	for i := range n.Steps {
		for k := range n.Steps[i].Branches {
			if n.Steps[i].Branches[k].Status == BranchRunning {
				n.Steps[i].Branches[k].Status = BranchCancelled
			}
		}
	}
	n.Error = reason
	for i := range n.Steps {
		st := &n.Steps[i]
		switch st.Status {
		case StepPending:
			st.Status = StepSkipped
		case StepRunning, StepWaiting:
			st.Status = StepFailed
			st.Error = stepError
			st.FinishedAt = &at
			st.DueAt = nil
		}
	}
}

// cancelBranch ends branch k of parallel step p as CANCELLED: its step in
// progress (and, in a parallel step, its branches) fails with reason.
func (n *Execution) cancelBranch(p, k int, reason string, at time.Time) {
	br := &n.Steps[p].Branches[k]
	br.Status = BranchCancelled
	if br.CurrentStep < 0 || br.CurrentStep >= len(n.Steps) {
		return
	}
	cur := br.CurrentStep
	st := &n.Steps[cur]
	if st.Type == StepParallel && st.Status == StepRunning {
		for kk := range st.Branches {
			if st.Branches[kk].Status == BranchRunning {
				n.cancelBranch(cur, kk, reason, at)
			}
		}
	}
	if st.Status == StepRunning || st.Status == StepWaiting {
		st.Status, st.Error, st.FinishedAt, st.DueAt, st.claim = StepFailed, reason, &at, nil, 0
	}
}

// FoldWorkflow folds events into s, in order.
func FoldWorkflow(s Workflow, events []Event) (Workflow, error) {
	var err error
	for _, e := range events {
		if s, err = ApplyWorkflow(s, e); err != nil {
			return s, err
		}
	}
	return s, nil
}

// FoldExecution folds events into s, in order.
//
// It clones s once for all of them: folding a whole history costs one
// copy of the state, not one per event. On an error it returns s as it
// was.
func FoldExecution(s Execution, events []Event) (Execution, error) {
	if len(events) == 0 {
		return s, nil
	}
	n := s.Clone()
	for _, e := range events {
		if err := n.apply(e); err != nil {
			return s, err
		}
	}
	return n, nil
}

// CheckHistory reports the first break of two promises in an execution's
// history: no run of a step completes twice, and the execution ends at
// most once between redrives. The simulator and the property test read
// histories with it.
func CheckHistory(events []Event) error {
	type stepRun struct{ step, run int }
	runs := map[int]int{}
	completed := map[stepRun]bool{}
	ended := false
	for _, e := range events {
		switch {
		case e.Type == EventStepStarted:
			var d StepStarted
			_ = json.Unmarshal(e.Data, &d)
			runs[d.Step]++
		case e.Type == EventStepCompleted:
			var d StepCompleted
			_ = json.Unmarshal(e.Data, &d)
			r := stepRun{d.Step, runs[d.Step]}
			if completed[r] {
				return fmt.Errorf("run %d of step %d completed twice (seq %d)", r.run, r.step, e.Seq)
			}
			completed[r] = true
		case e.Type == EventExecutionRedriven:
			ended = false
		case IsTerminalEvent(e.Type):
			if ended {
				return fmt.Errorf("ended twice (seq %d, %s)", e.Seq, e.Type)
			}
			ended = true
		}
	}
	return nil
}
