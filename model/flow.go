package model

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/workflowd/workflowd/expr"
)

// Limits of control flow.
const (
	// MaxRules bounds a choice step's rules.
	MaxRules = 50
	// MaxErrorNameLen and MaxCauseLen bound a fail step's error and cause.
	MaxErrorNameLen = 100
	MaxCauseLen     = 1000
	// MaxStepsRun bounds the steps one execution runs, loops included:
	// the step that would go past it is not started, and the execution
	// FAILS with a reason that says so.
	MaxStepsRun = 1000
)

// errorName is what a fail step's error may be: a dotted name.
var errorName = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// validateDecided checks a choice, succeed or fail step's own fields.
func (s StepDefinition) validateDecided(field string, bad func(f, problem string, args ...any) error, notFor func(f string, set bool) error) error {
	switch s.Type {
	case StepChoice:
		if err := refuse(notFor, setField{"error", s.Error != ""}, setField{"cause", s.Cause != ""}); err != nil {
			return err
		}
		switch {
		case len(s.Rules) == 0:
			return bad(".rules", "must hold at least one rule")
		case len(s.Rules) > MaxRules:
			return bad(".rules", "must hold at most %d rules", MaxRules)
		}
		for i, r := range s.Rules {
			f := fmt.Sprintf(".rules[%d]", i)
			if _, err := compile(r.When, expr.Bool); err != nil {
				return bad(f+".when", "%v", err)
			}
			if r.Next == "" {
				return bad(f+".next", "is required")
			}
		}
	case StepFail:
		if err := refuse(notFor, setField{"rules", s.Rules != nil}, setField{"default", s.Default != ""}); err != nil {
			return err
		}
		switch {
		case s.Error == "":
			return bad(".error", "is required")
		case len(s.Error) > MaxErrorNameLen || !errorName.MatchString(s.Error):
			return bad(".error", "must be a dotted name of letters, digits, _ and - (order.rejected), at most %d characters", MaxErrorNameLen)
		case utf8.RuneCountInString(s.Cause) > MaxCauseLen:
			return bad(".cause", "must be at most %d characters", MaxCauseLen)
		}
	case StepSucceed:
		if err := refuse(notFor, setField{"rules", s.Rules != nil}, setField{"default", s.Default != ""}, setField{"error", s.Error != ""}, setField{"cause", s.Cause != ""}); err != nil {
			return err
		}
	}
	return nil
}

// validateFlow checks the steps as a graph: every step named as a next
// exists, every step can be reached from the first, and no cycle is made
// of choice steps alone (it would never wait or call, and never end).
// In a branch (prefix "steps[2].branches[0].") every name must be of a
// step of the same branch.
func validateFlow(prefix string, steps []StepDefinition) error {
	d := Definition{Steps: steps}
	index := make(map[string]int, len(d.Steps))
	for i, s := range d.Steps {
		index[s.Name] = i
	}
	resolve := func(field, name string) (int, error) {
		i, ok := index[name]
		if !ok && prefix != "" {
			return 0, &FieldError{Field: field, Problem: fmt.Sprintf("names no step of its branch: %q (a branch's steps go only to steps of the same branch)", name)}
		}
		if !ok {
			return 0, &FieldError{Field: field, Problem: fmt.Sprintf("names no step: %q", name)}
		}
		return i, nil
	}
	succ := make([][]int, len(d.Steps))
	for i, s := range d.Steps {
		field := fmt.Sprintf("%ssteps[%d]", prefix, i)
		switch {
		case s.Type == StepChoice:
			for j, r := range s.Rules {
				n, err := resolve(fmt.Sprintf("%s.rules[%d].next", field, j), r.Next)
				if err != nil {
					return err
				}
				succ[i] = append(succ[i], n)
			}
			if s.Default != "" {
				n, err := resolve(field+".default", s.Default)
				if err != nil {
					return err
				}
				succ[i] = append(succ[i], n)
			}
		case s.Type == StepSucceed || s.Type == StepFail || s.End:
		case s.Next != "":
			n, err := resolve(field+".next", s.Next)
			if err != nil {
				return err
			}
			succ[i] = append(succ[i], n)
		case i+1 < len(d.Steps):
			succ[i] = append(succ[i], i+1)
		}
		for j, c := range s.Catch {
			n, err := resolve(fmt.Sprintf("%s.catch[%d].next", field, j), c.Next)
			if err != nil {
				return err
			}
			succ[i] = append(succ[i], n)
		}
	}
	reached := make([]bool, len(d.Steps))
	queue := []int{0}
	reached[0] = true
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, n := range succ[i] {
			if !reached[n] {
				reached[n] = true
				queue = append(queue, n)
			}
		}
	}
	for i, ok := range reached {
		if !ok {
			return &FieldError{Field: fmt.Sprintf("%ssteps[%d]", prefix, i), Problem: fmt.Sprintf("(%q) cannot be reached from the first step", d.Steps[i].Name)}
		}
	}
	// A cycle of choice steps: depth-first over the choice steps alone.
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, len(d.Steps))
	var visit func(i int) error
	visit = func(i int) error {
		state[i] = onPath
		for _, n := range succ[i] {
			if d.Steps[n].Type != StepChoice {
				continue
			}
			switch state[n] {
			case onPath:
				return &FieldError{Field: fmt.Sprintf("%ssteps[%d]", prefix, n), Problem: fmt.Sprintf("(%q) is in a loop of choice steps alone, which would never end", d.Steps[n].Name)}
			case unseen:
				if err := visit(n); err != nil {
					return err
				}
			}
		}
		state[i] = done
		return nil
	}
	for i, s := range d.Steps {
		if s.Type == StepChoice && state[i] == unseen {
			if err := visit(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// programs caches compiled expressions by kind and source: a workflow's
// are compiled when it is defined, and a decision finds them here.
var programs struct {
	sync.Mutex
	m map[programKey]*expr.Program
}

type programKey struct {
	kind   expr.Kind
	source string
}

// maxPrograms bounds the cache; past it, it is dropped whole (a workload
// with that many distinct expressions pays a compile per decision).
const maxPrograms = 10_000

func compile(source string, k expr.Kind) (*expr.Program, error) {
	key := programKey{k, source}
	programs.Lock()
	p, ok := programs.m[key]
	programs.Unlock()
	if ok {
		return p, nil
	}
	p, err := expr.Compile(source, k)
	if err != nil {
		return nil, err
	}
	programs.Lock()
	if programs.m == nil || len(programs.m) >= maxPrograms {
		programs.m = make(map[programKey]*expr.Program)
	}
	programs.m[key] = p
	programs.Unlock()
	return p, nil
}

// vars returns what an expression sees in s: its input, the outputs of
// its steps that succeeded (extra, the step completing now, on top), and
// its metadata.
func (s Execution) vars(extra StepCompleted) expr.Vars {
	outputs := make(map[string]json.RawMessage, len(s.Steps))
	for _, st := range s.Steps {
		if st.Status == StepSucceeded && st.Output != nil {
			outputs[st.Name] = st.Output
		}
	}
	if extra.Step >= 0 && extra.Step < len(s.Steps) {
		name := s.Steps[extra.Step].Name
		if extra.Output != nil {
			outputs[name] = extra.Output
		} else {
			delete(outputs, name)
		}
	}
	return expr.Vars{
		Input: s.Input,
		Steps: outputs,
		Error: s.Caught,
		Execution: expr.Execution{
			ID: s.WorkflowExecutionUUID.String(), WorkflowID: s.WorkflowUUID.String(),
			WorkflowVersion: s.WorkflowVersion, StartedAt: s.CreatedAt.UTC().Format(time.RFC3339Nano),
		},
	}
}

// successor returns the step after step i of s, or -1 when its container
// (the execution, or its branch) ends after it (End, or the last step of
// the container without a next).
func (s Execution) successor(i int) int {
	if i < len(s.Definitions) {
		switch def := &s.Definitions[i]; {
		case def.End:
			return -1
		case def.Next != "":
			return s.stepNamed(def.Next)
		}
	}
	if j := i + 1; i >= 0 && j < len(s.Steps) && s.Steps[j].Parallel == s.Steps[i].Parallel && s.Steps[j].Branch == s.Steps[i].Branch {
		return j
	}
	return -1
}

// stepNamed returns the index of the step called name, or -1.
func (s Execution) stepNamed(name string) int {
	for i, d := range s.Definitions {
		if d.Name == name {
			return i
		}
	}
	return -1
}

// choose returns where choice step i of s goes, with vars v, or the
// failure (its name and reason) the execution fails with.
func (s Execution) choose(i int, v expr.Vars) (next int, name, why string) {
	def := &s.Definitions[i]
	for j, r := range def.Rules {
		p, err := compile(r.When, expr.Bool)
		if err != nil {
			return -1, ErrExpression, fmt.Sprintf("choice step %q: rule %d does not compile: %v", def.Name, j, err)
		}
		ok, err := p.EvalBool(v)
		if err != nil {
			return -1, ErrExpression, fmt.Sprintf("choice step %q: rule %d (%s): %v", def.Name, j, r.When, err)
		}
		if ok {
			return s.stepNamed(r.Next), "", ""
		}
	}
	if def.Default != "" {
		return s.stepNamed(def.Default), "", ""
	}
	return -1, ErrChoiceNoMatch, fmt.Sprintf("choice step %q: no rule holds and it has no default", def.Name)
}

// enter returns the events of entering step i of s (after the events of
// the step before, in the same append): a step that waits or calls
// starts; a choice is decided and goes on; succeed and fail end the
// execution. done is the step completing in the same append (Step -1:
// none): the choices see its output, and the execution ends with it if it
// succeeds here. The events are appended to out.
func (s Execution) enter(out []draft, i int, done StepCompleted, now time.Time) []draft {
	var v *expr.Vars // built at the first choice: most steps meet none
	started := s.stepsRun()
	from := done.Step // the step whose container ends when i < 0
	for hops := 0; ; hops++ {
		if s.Paused && i >= 0 {
			return out // entered on resume
		}
		if i < 0 {
			if p, b := s.container(from); p >= 0 {
				return s.branchSucceeded(out, p, b, done, now)
			}
			last := done.Step
			if last < 0 {
				last = s.CurrentStep
			}
			return append(out, s.succeeded(last, done))
		}
		if started >= MaxStepsRun || hops > len(s.Steps) {
			return append(out, draft{EventExecutionFailed, Failure{Step: i, Name: ErrStepsExceeded,
				Error: fmt.Sprintf("the execution would run more than %d steps, the most one may run", MaxStepsRun)}})
		}
		started++
		if i < len(s.Definitions) && s.Definitions[i].Type == StepParallel {
			return s.enterParallel(out, i, now)
		}
		if i >= len(s.Definitions) || !decided(s.Definitions[i].Type) {
			st := s.startStep(i, now)
			if st.Held && holds(out) {
				st.Held = false // one holder per append: the dispatcher issues this one
			}
			return append(out, draft{EventStepStarted, st})
		}
		def := &s.Definitions[i]
		out = append(out, draft{EventStepStarted, StepStarted{Step: i, Type: def.Type, Run: s.runField(i)}})
		p, b := s.container(i)
		switch def.Type {
		case StepSucceed:
			out = append(out, draft{EventStepCompleted, StepCompleted{Step: i}})
			if p >= 0 {
				return s.branchSucceeded(out, p, b, done, now)
			}
			return append(out, s.succeeded(i, done))
		case StepFail:
			reason := def.Error
			if def.Cause != "" {
				reason += ": " + def.Cause
			}
			failure := Failure{Step: i, Name: def.Error, Cause: def.Cause, Error: reason}
			if p >= 0 {
				f := stepFailure{step: i, attempt: 1, name: def.Error, cause: reason, final: true}
				return s.failBranch(out, p, b, f, now, func(string) draft { return draft{EventExecutionFailed, failure} })
			}
			return append(out, draft{EventExecutionFailed, failure})
		}
		if v == nil {
			vv := s.vars(done)
			v = &vv
		}
		next, name, why := s.choose(i, *v)
		if why != "" && p >= 0 {
			f := stepFailure{step: i, attempt: 1, name: name, cause: why, final: true}
			return s.failBranch(out, p, b, f, now, s.failedAt(f))
		}
		if why != "" {
			return append(out, draft{EventExecutionFailed, Failure{Step: i, Name: name, Error: why}})
		}
		out = append(out, draft{EventStepCompleted, StepCompleted{Step: i, Next: &next}})
		from, i = i, next
	}
}

// holds reports whether a StepStarted of out claims an http attempt for
// the worker that appends them.
func holds(out []draft) bool {
	for _, d := range out {
		if st, ok := d.data.(StepStarted); ok && st.Held {
			return true
		}
	}
	return false
}

// runField is StepStarted.Run for step i started now: the run it
// begins, or 0 for the first.
func (s Execution) runField(i int) int {
	if i < len(s.Steps) && s.Steps[i].Runs > 0 {
		return s.Steps[i].Runs + 1
	}
	return 0
}

// stepsRun counts the steps s has started, each run of each (MaxStepsRun
// bounds it).
func (s Execution) stepsRun() int {
	n := 0
	for _, st := range s.Steps {
		n += st.Runs
	}
	return n
}

// runNow is the run step i is in, for the events of that run: 0 for the
// first.
func (s Execution) runNow(i int) int {
	if i < len(s.Steps) && s.Steps[i].Runs > 1 {
		return s.Steps[i].Runs
	}
	return 0
}
