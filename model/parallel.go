package model

import (
	"encoding/json"
	"fmt"
	"time"
)

// Parallel steps (docs/api.md, "Parallel steps"). A parallel step runs two
// or more branches, each a list of steps, at once; it completes when every
// branch has, with the branches' outputs in order, and fails when one
// fails (the others are cancelled).
//
// An execution holds its steps flat: the workflow's own steps first, at
// the indexes of its list, then the steps of each parallel step's
// branches, branch after branch (breadth first), each StepState naming
// the parallel step and branch it belongs to. Every step is in one
// container: the execution, or a branch, with a cursor of its own (the
// execution's CurrentStep, a branch's BranchState.CurrentStep); a step is
// active when it is its container's cursor and the container runs.

// StepParallel runs branches of steps at once.
const StepParallel = "parallel"

// Limits of parallel steps.
const (
	MinBranches = 2
	MaxBranches = 10
	// MaxNesting bounds parallel steps within branches of parallel steps.
	MaxNesting = 3
)

// Branch is one branch of a parallel step: steps run in order from the
// first, as a workflow's own (next, end, choice, loops), within the branch.
type Branch struct {
	Steps []StepDefinition `json:"steps"`
}

// Branch statuses.
const (
	BranchRunning   = "RUNNING"
	BranchSucceeded = "SUCCEEDED"
	BranchFailed    = "FAILED"
	BranchCancelled = "CANCELLED"
)

// BranchState is the state of one branch of a parallel step's run.
type BranchState struct {
	Status string `json:"status"`
	// CurrentStep is the index (in the execution's steps) of the branch's
	// step in progress, or of the one it ended at.
	CurrentStep int `json:"currentStep"`
	// last is the step whose output is the branch's (-1: none), folded
	// from BranchSucceeded.
	last int
}

// BranchEnded is the data of EventBranchSucceeded (Last: the step whose
// output is the branch's, -1 for none) and EventBranchFailed (the step
// FailedStep failed, with the failure Name and Error, and nothing caught
// it in the branch: the other branches are cancelled).
type BranchEnded struct {
	Step       int    `json:"step"`
	Branch     int    `json:"branch"`
	Last       *int   `json:"last,omitempty"`
	FailedStep *int   `json:"failedStep,omitempty"`
	Attempt    int    `json:"attempt,omitempty"`
	Name       string `json:"name,omitempty"`
	Error      string `json:"error,omitempty"`
}

// hasParallel reports whether steps hold a parallel step.
func hasParallel(steps []StepDefinition) bool {
	for _, s := range steps {
		if s.Type == StepParallel {
			return true
		}
	}
	return false
}

// flatten lays steps out as an execution holds them: the workflow's own,
// then each parallel step's branches, breadth first. parent[i] is the
// index of step i's parallel step (-1: the execution's own) and branch[i]
// its branch.
func flatten(steps []StepDefinition) (flat []StepDefinition, parent, branch []int) {
	flat = append(make([]StepDefinition, 0, len(steps)), steps...)
	parent, branch = make([]int, len(steps)), make([]int, len(steps))
	for i := range parent {
		parent[i] = -1
	}
	for p := 0; p < len(flat); p++ {
		for b, br := range flat[p].Branches {
			for _, s := range br.Steps {
				flat = append(flat, s)
				parent, branch = append(parent, p), append(branch, b)
			}
		}
	}
	return flat, parent, branch
}

// container returns the parallel step step i belongs to (-1: the
// execution) and its branch, from the steps' views (which the projector
// has too).
func (s Execution) container(i int) (p, b int) {
	if i < 0 || i >= len(s.Steps) || s.Steps[i].Parallel == "" {
		return -1, 0
	}
	return s.stateNamed(s.Steps[i].Parallel), s.Steps[i].Branch
}

// stateNamed returns the index of the step called name, from the steps'
// views, or -1.
func (s Execution) stateNamed(name string) int {
	for i := range s.Steps {
		if s.Steps[i].Name == name {
			return i
		}
	}
	return -1
}

// cursorOf returns a pointer to the cursor of step i's container.
func (n *Execution) cursorOf(i int) *int {
	p, b := n.container(i)
	if p < 0 {
		return &n.CurrentStep
	}
	br := n.Steps[p].Branches
	if b >= len(br) {
		return new(int) // a malformed history: a cursor nobody reads
	}
	return &br[b].CurrentStep
}

// active reports whether step i is in progress: its container's cursor
// in a container that runs.
func (s Execution) active(i int) bool {
	if s.Status != ExecutionRunning || i < 0 || i >= len(s.Steps) {
		return false
	}
	p, b := s.container(i)
	if p < 0 {
		return s.CurrentStep == i
	}
	ps := s.Steps[p]
	return ps.Status == StepRunning && b < len(ps.Branches) && ps.Branches[b].Status == BranchRunning &&
		ps.Branches[b].CurrentStep == i && s.active(p)
}

// activeSteps returns the steps in progress that are not parallel steps:
// the current step, or, inside a running parallel step, each running
// branch's.
func (s Execution) activeSteps() []int {
	if s.Status != ExecutionRunning || s.CurrentStep >= len(s.Steps) {
		return nil
	}
	var out []int
	var walk func(i int)
	walk = func(i int) {
		st := s.Steps[i]
		if st.Type != StepParallel || st.Status == StepPending {
			out = append(out, i)
			return
		}
		if st.Status != StepRunning {
			return
		}
		for _, br := range st.Branches {
			if br.Status == BranchRunning && br.CurrentStep >= 0 && br.CurrentStep < len(s.Steps) {
				walk(br.CurrentStep)
			}
		}
	}
	walk(s.CurrentStep)
	return out
}

// after returns s with the drafts of out it has not folded yet folded in,
// as the append will leave it: what the rules of parallel steps decide on
// when one draft depends on those before it in the same append (a branch
// that ends after another). Its drafted counts them.
func (s Execution) after(out []draft, now time.Time) Execution {
	t := s
	for _, d := range out[min(s.drafted, len(out)):] {
		data, err := json.Marshal(d.data)
		if raw, ok := d.data.(json.RawMessage); ok {
			data, err = raw, nil
		}
		if err != nil {
			panic(fmt.Sprintf("model: encode %s: %v", d.typ, err))
		}
		next, err := ApplyExecution(t, Event{AggregateID: ExecutionAggregateID(s.WorkflowExecutionUUID), Seq: t.Version + 1, Type: d.typ, Data: data, OccurredAt: now.UTC()})
		if err != nil {
			panic(fmt.Sprintf("model: fold %s while deciding: %v", d.typ, err))
		}
		t = next
	}
	t.drafted = len(out)
	return t
}

// enterParallel returns out with the events of entering parallel step p:
// its StepStarted, then each branch's first step entered (on a redrive,
// only the branches that did not succeed, each from the step it stopped
// at), in the same append.
func (s Execution) enterParallel(out []draft, p int, now time.Time) []draft {
	var firsts []int
	branchOf := map[int]int{}
	for i := p + 1; i < len(s.Steps); i++ {
		if q, b := s.container(i); q == p {
			if _, ok := branchOf[b]; !ok {
				branchOf[b] = i
				firsts = append(firsts, i)
			}
		}
	}
	starts := append([]int(nil), firsts...)
	if s.redriving && s.Steps[p].Status == StepFailed {
		for b, br := range s.Steps[p].Branches {
			switch {
			case b >= len(starts):
			case br.Status == BranchSucceeded:
				starts[b] = -1
			default:
				starts[b] = br.CurrentStep
			}
		}
	}
	out = append(out, draft{EventStepStarted, StepStarted{Step: p, Type: StepParallel, Run: s.runField(p), Branches: starts}})
	for _, i := range starts {
		if i < 0 {
			continue
		}
		t := s.after(out, now)
		if !t.active(p) {
			return out // a branch ended it (a failure) and the execution went on
		}
		out = t.enter(out, i, StepCompleted{Step: -1}, now)
	}
	if t := s.after(out, now); t.active(p) && t.branchesDone(p) {
		// Every branch was kept by a redrive: the step completes now.
		return t.completeParallel(out, p, now)
	}
	return out
}

// branchesDone reports whether every branch of parallel step p succeeded.
func (s Execution) branchesDone(p int) bool {
	for _, br := range s.Steps[p].Branches {
		if br.Status != BranchSucceeded {
			return false
		}
	}
	return len(s.Steps[p].Branches) > 0
}

// branchSucceeded returns out with branch b of parallel step p ending
// with the output of step last (done), and, if it was the last branch
// running, the parallel step completing with the branches' outputs.
func (s Execution) branchSucceeded(out []draft, p, b int, done StepCompleted, now time.Time) []draft {
	last := done.Step
	out = append(out, draft{EventBranchSucceeded, BranchEnded{Step: p, Branch: b, Last: &last}})
	t := s.after(out, now)
	if !t.branchesDone(p) {
		return out
	}
	return t.completeParallel(out, p, now)
}

// completeParallel returns out with parallel step p completing: its
// output the list of its branches' outputs, in order.
func (s Execution) completeParallel(out []draft, p int, now time.Time) []draft {
	outputs := make([]json.RawMessage, len(s.Steps[p].Branches))
	for k, br := range s.Steps[p].Branches {
		outputs[k] = json.RawMessage("null")
		if br.last >= 0 && br.last < len(s.Steps) && s.Steps[br.last].Output != nil {
			outputs[k] = s.Steps[br.last].Output
		}
	}
	output, err := json.Marshal(outputs)
	if err != nil {
		panic(fmt.Sprintf("model: encode the outputs of parallel step %d: %v", p, err))
	}
	if err := s.roomFor(output); err != nil {
		f := stepFailure{step: p, attempt: 1, name: ErrOutputTooLarge, cause: fmt.Sprintf("parallel step %q: %v", s.Steps[p].Name, err), final: true}
		return s.failAfter(out, f, now, s.failedAt(f))
	}
	return s.complete(StepCompleted{Step: p, Output: output}, now, out...)
}

// failedAt is the end an uncaught failure f gives the execution: FAILED.
func (s Execution) failedAt(f stepFailure) func(cause string) draft {
	return func(cause string) draft {
		return draft{EventExecutionFailed, Failure{Step: f.step, Attempt: f.attempt, Name: f.name, Error: cause}}
	}
}

// failBranch returns out with the failure f of a step in branch b of
// parallel step p, which nothing in the branch caught: the branch fails,
// the others are cancelled, and the parallel step fails with f's name
// (its own catch rules, or its container's, decide what follows; end is
// the execution's end if nothing catches it).
func (s Execution) failBranch(out []draft, p, b int, f stepFailure, now time.Time, end func(cause string) draft) []draft {
	failed := f.step
	out = append(out, draft{EventBranchFailed, BranchEnded{Step: p, Branch: b, FailedStep: &failed, Attempt: f.attempt, Name: f.name, Error: f.cause}})
	t := s.after(out, now)
	pf := stepFailure{step: p, attempt: max(t.Steps[p].Attempts, 1), name: f.name, final: true,
		cause: fmt.Sprintf("branch %d, step %q: %s", b, s.Steps[f.step].Name, f.cause)}
	return t.failAfter(out, pf, now, end)
}

// validateParallel checks a parallel step's branches (their steps, as a
// workflow's, within each branch), with the names seen so far and the
// count of steps; depth is the parallel step's nesting.
func (s StepDefinition) validateParallel(field string, seen map[string]bool, count *int, depth int) error {
	bad := func(f, problem string, args ...any) error {
		return &FieldError{Field: field + f, Problem: fmt.Sprintf(problem, args...)}
	}
	switch {
	case depth > MaxNesting:
		return bad("", "nests parallel steps more than %d deep", MaxNesting)
	case len(s.Branches) < MinBranches || len(s.Branches) > MaxBranches:
		return bad(".branches", "must hold %d to %d branches", MinBranches, MaxBranches)
	}
	for k, br := range s.Branches {
		prefix := fmt.Sprintf("%s.branches[%d].", field, k)
		if len(br.Steps) == 0 {
			return &FieldError{Field: prefix + "steps", Problem: "must hold at least one step"}
		}
		if err := validateSteps(prefix, br.Steps, seen, count, depth); err != nil {
			return err
		}
	}
	return nil
}
