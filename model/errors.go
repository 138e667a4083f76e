package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/workflowd/workflowd/expr"
)

// Names of the failures the service decides (docs/api.md, "Errors"). A
// client that fails a manual step, and a fail step, name their own.
const (
	ErrHTTPStatus4xx      = "http.status.4xx"
	ErrHTTPStatus5xx      = "http.status.5xx"
	ErrHTTPTimeout        = "http.timeout"
	ErrHTTPConnection     = "http.connection"
	ErrHTTPRedirect       = "http.redirect"
	ErrHTTPBadResponse    = "http.bad-response" // over the size bound, or not JSON
	ErrHTTPHostNotAllowed = "http.host-not-allowed"
	ErrHTTPInvalidRequest = "http.invalid-request"
	ErrStepTimeout        = "step.timeout"
	ErrExecutionTimeout   = "execution.timeout"
	ErrManualFailed       = "manual.failed"
	ErrOutputTooLarge     = "output.too-large"
	ErrExpression         = "expression.failed"
	ErrChoiceNoMatch      = "choice.no-match"
	ErrStepsExceeded      = "execution.steps-exceeded"
	ErrSecretUnavailable  = "secret.unavailable" // a secret reference the worker could not resolve
)

// HTTPStatusError names the failure of an http answer with status code:
// http.status.4xx, http.status.5xx (http.status.3xx: a redirect not
// followed without a Location).
func HTTPStatusError(code int) string {
	return fmt.Sprintf("http.status.%dxx", code/100)
}

// Limits of retry and catch rules.
const (
	MaxRetryRules = 20
	MaxCatchRules = 20
	// MaxRetries bounds a retry rule's maxAttempts; all attempts of one
	// step together are bounded by MaxHTTPAttempts.
	MaxRetries           = MaxHTTPAttempts - 1
	MaxRetryInterval     = 24 * 3600
	MaxRetryBackoffRate  = 10
	DefaultRetries       = 3
	DefaultRetryInterval = 1
	DefaultBackoffRate   = 2.0
	MaxErrorPatterns     = 20
)

// Jitter strategies of a retry rule.
const (
	JitterFull = "FULL"
	JitterNone = "NONE"
)

// Retry is a step's retry field: a list of rules (RetryRule, as Step
// Functions' retriers), or, for an http step, the single policy of
// earlier builds (RetryPolicy), kept as it was written.
type Retry struct {
	Policy *RetryPolicy
	Rules  []RetryRule
}

// RetryRule retries a failure whose name matches Errors: up to
// MaxAttempts times (default 3; 0: never), the n-th retry after
// IntervalSeconds × BackoffRate^(n-1) (default 1 s and 2), at most
// MaxDelaySeconds; with Jitter FULL, a delay drawn between 0 and that.
// Each rule counts its own retries; the first rule that matches decides.
type RetryRule struct {
	Errors          []string `json:"errors"`
	MaxAttempts     *int     `json:"maxAttempts,omitempty"`
	IntervalSeconds *int     `json:"intervalSeconds,omitempty"`
	BackoffRate     *float64 `json:"backoffRate,omitempty"`
	MaxDelaySeconds int      `json:"maxDelaySeconds,omitempty"`
	Jitter          string   `json:"jitter,omitempty"`
}

// CatchRule routes a failure whose name matches Errors, once no retry
// rule retries it, to the step Next: the failed step ends FAILED and the
// execution goes on, with the failure as the expressions' error.
type CatchRule struct {
	Errors []string `json:"errors"`
	Next   string   `json:"next"`
}

// MarshalJSON writes the rules as a list, or the policy as it was.
func (r Retry) MarshalJSON() ([]byte, error) {
	if r.Policy != nil {
		return json.Marshal(r.Policy)
	}
	if r.Rules == nil {
		return []byte("[]"), nil
	}
	return json.Marshal(r.Rules)
}

// UnmarshalJSON reads a list of rules or an object (a policy), refusing
// unknown fields.
func (r *Retry) UnmarshalJSON(b []byte) error {
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		var p RetryPolicy
		if err := strictUnmarshal(b, &p); err != nil {
			return fmt.Errorf("retry: %w", err)
		}
		*r = Retry{Policy: &p}
		return nil
	}
	var rules []RetryRule
	if err := strictUnmarshal(b, &rules); err != nil {
		return fmt.Errorf("retry: %w (a list of rules, or an http step's {maxAttempts, backoffSeconds} policy)", err)
	}
	if rules == nil {
		rules = []RetryRule{}
	}
	*r = Retry{Rules: rules}
	return nil
}

// Matches reports whether the failure name matches one of patterns: "*"
// matches every name, "http.*" every name that begins "http.", and any
// other pattern only itself.
func Matches(patterns []string, name string) bool {
	for _, p := range patterns {
		switch {
		case p == "*" || p == name:
			return true
		case strings.HasSuffix(p, ".*") && strings.HasPrefix(name, p[:len(p)-1]):
			return true
		}
	}
	return false
}

// validatePatterns checks a rule's error patterns.
func validatePatterns(field string, patterns []string) error {
	switch {
	case len(patterns) == 0:
		return &FieldError{Field: field, Problem: `must name at least one error ("*" matches every one)`}
	case len(patterns) > MaxErrorPatterns:
		return &FieldError{Field: field, Problem: fmt.Sprintf("must name at most %d errors", MaxErrorPatterns)}
	}
	for i, p := range patterns {
		name := strings.TrimSuffix(p, ".*")
		if p == "*" {
			continue
		}
		if len(p) > MaxErrorNameLen || !errorName.MatchString(name) {
			return &FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Problem: fmt.Sprintf(`%q is not an error name or pattern ("http.timeout", "http.*" or "*")`, p)}
		}
	}
	return nil
}

// validateRetry checks a step's retry rules (an http step's policy is
// checked by validateHTTP).
func (s StepDefinition) validateRetry(field string) error {
	if s.Retry == nil || s.Retry.Policy != nil {
		return nil
	}
	if len(s.Retry.Rules) > MaxRetryRules {
		return &FieldError{Field: field + ".retry", Problem: fmt.Sprintf("must hold at most %d rules", MaxRetryRules)}
	}
	for i, r := range s.Retry.Rules {
		f := fmt.Sprintf("%s.retry[%d]", field, i)
		bad := func(name, problem string, args ...any) error {
			return &FieldError{Field: f + "." + name, Problem: fmt.Sprintf(problem, args...)}
		}
		if err := validatePatterns(f+".errors", r.Errors); err != nil {
			return err
		}
		switch {
		case r.MaxAttempts != nil && (*r.MaxAttempts < 0 || *r.MaxAttempts > MaxRetries):
			return bad("maxAttempts", "counts retries and must be between 0 and %d", MaxRetries)
		case r.IntervalSeconds != nil && (*r.IntervalSeconds < 1 || *r.IntervalSeconds > MaxRetryInterval):
			return bad("intervalSeconds", "must be between 1 and %d", MaxRetryInterval)
		case r.BackoffRate != nil && (math.IsNaN(*r.BackoffRate) || *r.BackoffRate < 1 || *r.BackoffRate > MaxRetryBackoffRate):
			return bad("backoffRate", "must be between 1 and %d", MaxRetryBackoffRate)
		case r.MaxDelaySeconds < 0 || r.MaxDelaySeconds > MaxRetryInterval:
			return bad("maxDelaySeconds", "must be between 1 and %d (0: no bound)", MaxRetryInterval)
		case r.Jitter != "" && r.Jitter != JitterFull && r.Jitter != JitterNone:
			return bad("jitter", "must be %s or %s", JitterFull, JitterNone)
		}
	}
	return nil
}

// validateCatch checks a step's catch rules (their next steps are
// resolved with the flow).
func (s StepDefinition) validateCatch(field string) error {
	if len(s.Catch) > MaxCatchRules {
		return &FieldError{Field: field + ".catch", Problem: fmt.Sprintf("must hold at most %d rules", MaxCatchRules)}
	}
	for i, c := range s.Catch {
		f := fmt.Sprintf("%s.catch[%d]", field, i)
		if err := validatePatterns(f+".errors", c.Errors); err != nil {
			return err
		}
		if c.Next == "" {
			return &FieldError{Field: f + ".next", Problem: "is required"}
		}
	}
	return nil
}

// retries returns, for the failure name of step i's attempt attempt, the
// rule that retries it (1-based; 0: the http policy of earlier builds)
// and the delay before the next attempt, or false when nothing retries
// it. retried counts the retries each rule has made in the step's run.
// A final failure is never retried, and no step makes more than
// MaxHTTPAttempts attempts.
func (def StepDefinition) retries(name string, final bool, attempt int, retried []int, jitter float64) (int, time.Duration, bool) {
	if def.Retry == nil || final || attempt >= MaxHTTPAttempts {
		return 0, 0, false
	}
	if def.Retry.Policy != nil {
		if attempt >= def.Retry.Policy.MaxAttempts {
			return 0, 0, false
		}
		return 0, def.RetryDelay(attempt, jitter), true
	}
	for i, r := range def.Retry.Rules {
		if !Matches(r.Errors, name) {
			continue
		}
		n := 0
		if i < len(retried) {
			n = retried[i]
		}
		if n >= valueOr(r.MaxAttempts, DefaultRetries) {
			return 0, 0, false // the first rule that matches decides
		}
		d := float64(valueOr(r.IntervalSeconds, DefaultRetryInterval)) * math.Pow(valueOr(r.BackoffRate, DefaultBackoffRate), float64(n))
		if r.MaxDelaySeconds > 0 {
			d = math.Min(d, float64(r.MaxDelaySeconds))
		}
		d = math.Min(d, MaxRetryInterval)
		if r.Jitter == JitterFull {
			d *= min(max(jitter, 0), 1)
		}
		return i + 1, time.Duration(d * float64(time.Second)), true
	}
	return 0, 0, false
}

// catches returns the step a catch rule of def routes failure name to.
func (def StepDefinition) catches(name string) (string, bool) {
	for _, c := range def.Catch {
		if Matches(c.Errors, name) {
			return c.Next, true
		}
	}
	return "", false
}

func valueOr[T any](p *T, dflt T) T {
	if p == nil {
		return dflt
	}
	return *p
}

// stepFailure is a failure of the current step: its name, its cause
// (what a catch passes on), the attempt, and whether retrying it can
// help.
type stepFailure struct {
	step, attempt int
	name, cause   string
	final         bool
	jitter        float64
}

// fail returns the events of the current step failing as f says: a
// retry (StepAttemptFailed, the next attempt at its retryAt) when a rule
// retries it; else the step FAILED and the step a catch rule names
// entered (StepFailed, then that step's events); else the event end
// returns for the cause, which ends the execution.
func (s Execution) fail(f stepFailure, now time.Time, end func(cause string) draft) []draft {
	return s.failAfter(nil, f, now, end)
}

// failAfter is fail after the drafts out of the same append: it returns
// them with its own. A failure of a step in a branch of a parallel step
// that no rule of the step takes fails the branch (failBranch) instead of
// the execution.
func (s Execution) failAfter(out []draft, f stepFailure, now time.Time, end func(cause string) draft) []draft {
	var def StepDefinition
	if f.step < len(s.Definitions) {
		def = s.Definitions[f.step]
	}
	st := s.Steps[f.step]
	if rule, delay, ok := def.retries(f.name, f.final, f.attempt, st.retried, f.jitter); ok {
		retryAt := now.UTC().Add(delay)
		at, _, hok := s.httpDeadlineOf(f.step)
		if !hok || retryAt.Before(at) {
			return append(out, draft{EventStepAttemptFailed, StepAttemptFailed{Step: f.step, Attempt: f.attempt, Error: f.cause, Name: f.name, Rule: rule, RetryAt: retryAt, Run: s.runNow(f.step)}})
		}
		f.cause += fmt.Sprintf("; the next would start after the step's deadline of %d seconds", int(def.Deadline().Seconds()))
	}
	if target, ok := def.catches(f.name); ok {
		next := s.stepNamed(target)
		failed := StepCaught{Step: f.step, Attempt: f.attempt, Name: f.name, Error: f.cause, Next: next, Run: s.runNow(f.step)}
		caught := s
		caught.Caught = &expr.Caught{Name: f.name, Cause: f.cause, Step: st.Name}
		return caught.enter(append(out, draft{EventStepFailed, failed}), next, StepCompleted{Step: -1}, now)
	}
	if p, b := s.container(f.step); p >= 0 {
		return s.failBranch(out, p, b, f, now, end)
	}
	return append(out, end(f.cause))
}
