package model

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/expr"
)

// Step types (their fields: docs/api.md and the StepDefinition schema of
// api/openapi.json).
const (
	StepManual = "manual"
	StepHTTP   = "http"
	StepWait   = "wait"
	// StepChoice goes on to the next of the first rule whose condition
	// holds, or to its default.
	StepChoice = "choice"
	// StepSucceed ends the execution as SUCCEEDED.
	StepSucceed = "succeed"
	// StepFail ends the execution as FAILED with its error and cause.
	StepFail = "fail"
)

// decided reports whether steps of type t are decided in the append of
// the step before them: they wait for nothing and call nothing.
func decided(t string) bool { return t == StepChoice || t == StepSucceed || t == StepFail }

// validateSteps checks a list of steps (the workflow's, or a branch's, whose
// fields begin with prefix): each step's fields, names unique in the whole
// workflow (seen), at most MaxSteps in all (count), and their flow.
func validateSteps(prefix string, steps []StepDefinition, seen map[string]bool, count *int, depth int) error {
	for i, s := range steps {
		field := fmt.Sprintf("%ssteps[%d]", prefix, i)
		*count++
		switch {
		case *count > MaxSteps:
			return &FieldError{Field: field, Problem: fmt.Sprintf("is past the %d steps a workflow may hold, its branches' included", MaxSteps)}
		case s.Name == "":
			return &FieldError{Field: field + ".name", Problem: "is required"}
		case utf8.RuneCountInString(s.Name) > MaxNameLen:
			return &FieldError{Field: field + ".name", Problem: fmt.Sprintf("must be at most %d characters", MaxNameLen)}
		case seen[s.Name]:
			return &FieldError{Field: field + ".name", Problem: fmt.Sprintf("%q is used by an earlier step (names are unique in the whole workflow, branches included)", s.Name)}
		case s.Type == "":
			return &FieldError{Field: field + ".type", Problem: "is required"}
		}
		if err := s.validate(field); err != nil {
			return err
		}
		seen[s.Name] = true
		if s.Type == StepParallel {
			if err := s.validateParallel(field, seen, count, depth+1); err != nil {
				return err
			}
		}
	}
	return validateFlow(prefix, steps)
}

// Limits on what a workflow definition may hold.
const (
	MaxNameLen        = 200
	MaxDescriptionLen = 2000
	MaxSteps          = 100
	MaxTimeoutSeconds = 365 * 24 * 3600
)

// StepDefinition is one step of a workflow version. Type decides which of
// the other fields apply (steps.go validates them):
//   - manual: waits for an increment from a client; TimeoutSeconds bounds
//     the wait (then the execution is TIMED_OUT).
//   - wait: completes by itself Seconds after it starts; TimeoutSeconds
//     likewise bounds it.
//   - http: the worker sends the execution's input and the earlier steps'
//     outputs to URL; TimeoutSeconds bounds each attempt (default 10 s);
//     Retry says how often and how soon to try again.
type StepDefinition struct {
	Name           string `json:"name"`
	Type           string `json:"type"`
	TimeoutSeconds int    `json:"timeoutSeconds,omitempty"`

	// Seconds is how long a wait step waits.
	Seconds int `json:"seconds,omitempty"`

	// URL and the Headers' values may hold {{ expression }} parts, and
	// Body is an expression whose value is the request's body (default:
	// the service's envelope of input and outputs); see data.go.
	URL     string            `json:"url,omitempty"`
	Method  string            `json:"method,omitempty"` // default POST
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
	// Retry says when a failed attempt is tried again: a list of rules
	// (http and manual steps), or an http step's policy of earlier
	// builds.
	Retry *Retry `json:"retry,omitempty"`
	// DeadlineSeconds bounds an http step's attempts together, from the
	// step's start (default DefaultHTTPDeadline): past it the execution
	// FAILS, with the reason, whatever attempts were left.
	DeadlineSeconds int `json:"deadlineSeconds,omitempty"`

	// Next names the step that follows a manual, wait or http step
	// (default: the next in the list; after the last, the execution
	// succeeds); End ends the execution after it, as SUCCEEDED.
	Next string `json:"next,omitempty"`
	End  bool   `json:"end,omitempty"`

	// Catch routes a failure no retry rule retries to another step
	// (manual, wait and http steps).
	Catch []CatchRule `json:"catch,omitempty"`

	// Rules are a choice step's conditions, tried in order; Default is
	// where it goes when none holds (none: the execution FAILS).
	Rules   []ChoiceRule `json:"rules,omitempty"`
	Default string       `json:"default,omitempty"`

	// Error and Cause are what a fail step ends the execution with.
	Error string `json:"error,omitempty"`
	Cause string `json:"cause,omitempty"`

	// Output is an expression whose value becomes the step's output, over
	// the step's own answer (result) and the execution's data (manual,
	// wait, http and parallel steps).
	Output string `json:"output,omitempty"`

	// Branches are a parallel step's (parallel.go).
	Branches []Branch `json:"branches,omitempty"`
}

// ChoiceRule is one rule of a choice step: When, an expression over the
// execution's data (package expr) that must be a bool, and Next, the step
// to go on to when it holds.
type ChoiceRule struct {
	When string `json:"when"`
	Next string `json:"next"`
}

// Definition is what a client supplies to create a workflow or a new version
// of it.
type Definition struct {
	Name           string           `json:"name"`
	Description    string           `json:"description,omitempty"`
	TimeoutSeconds int              `json:"timeoutSeconds,omitempty"`
	Steps          []StepDefinition `json:"steps"`
	// Output is an expression whose value becomes the output of an
	// execution that succeeds (default: the last step's output).
	Output string `json:"output,omitempty"`
}

// Validate reports the first problem with d as a *FieldError, or nil.
func (d Definition) Validate() error {
	switch {
	case d.Name == "":
		return &FieldError{Field: "name", Problem: "is required"}
	case utf8.RuneCountInString(d.Name) > MaxNameLen:
		return &FieldError{Field: "name", Problem: fmt.Sprintf("must be at most %d characters", MaxNameLen)}
	case utf8.RuneCountInString(d.Description) > MaxDescriptionLen:
		return &FieldError{Field: "description", Problem: fmt.Sprintf("must be at most %d characters", MaxDescriptionLen)}
	case d.TimeoutSeconds < 0 || d.TimeoutSeconds > MaxTimeoutSeconds:
		return &FieldError{Field: "timeoutSeconds", Problem: fmt.Sprintf("must be between 0 and %d", MaxTimeoutSeconds)}
	case len(d.Steps) == 0:
		return &FieldError{Field: "steps", Problem: "must hold at least one step"}
	case len(d.Steps) > MaxSteps:
		return &FieldError{Field: "steps", Problem: fmt.Sprintf("must hold at most %d steps", MaxSteps)}
	}
	if d.Output != "" {
		if _, err := compile(d.Output, expr.Any); err != nil {
			return &FieldError{Field: "output", Problem: err.Error()}
		}
	}
	count := 0
	return validateSteps("", d.Steps, make(map[string]bool, len(d.Steps)), &count, 0)
}

// FieldError says which field of a request or command is wrong and why.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + " " + e.Problem }

// Workflow is the state of a workflow aggregate and its current-state view.
type Workflow struct {
	WorkflowUUID   uuid.UUID        `json:"workflowUUID"`
	Name           string           `json:"name"`
	Description    string           `json:"description"`
	TimeoutSeconds int              `json:"timeoutSeconds,omitempty"`
	Version        int              `json:"version"`
	Steps          []StepDefinition `json:"steps"`
	Output         string           `json:"output,omitempty"`
	CreatedAt      time.Time        `json:"createdAt"`
	UpdatedAt      time.Time        `json:"updatedAt"`
	DeletedAt      *time.Time       `json:"deletedAt,omitempty"`

	// Seq is the seq of the last event folded into this state; views are
	// written on condition of it. Stores persist it; the API does not show it.
	Seq int64 `json:"-"`
	// RecentCommands are the commands of the last events folded in, oldest
	// first (model.Recent reads them). Stores persist them; the API does not
	// show them.
	RecentCommands []uuid.UUID `json:"-"`
}

// Exists reports whether the workflow has been created.
func (w Workflow) Exists() bool { return w.Seq > 0 }

// Deleted reports whether the workflow was deleted.
func (w Workflow) Deleted() bool { return w.DeletedAt != nil }

// Clone returns a deep copy of w (stores and tests must not alias slices).
func (w Workflow) Clone() Workflow {
	w.Steps = append([]StepDefinition(nil), w.Steps...)
	if w.DeletedAt != nil {
		t := *w.DeletedAt
		w.DeletedAt = &t
	}
	return w
}
