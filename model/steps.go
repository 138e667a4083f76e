package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"
)

// RetryPolicy, the retry of earlier builds, says how an http step tries
// again after a failed attempt (whatever the failure's name, unless
// retrying cannot help):
// up to MaxAttempts attempts in all, the n-th retry after BackoffSeconds ×
// 2^(n-1), at most MaxBackoffSeconds (default DefaultMaxBackoffSeconds),
// each delay with up to 20% jitter taken off.
type RetryPolicy struct {
	MaxAttempts       int     `json:"maxAttempts"`
	BackoffSeconds    float64 `json:"backoffSeconds"`
	MaxBackoffSeconds float64 `json:"maxBackoffSeconds,omitempty"`
}

// Limits of step definitions.
const (
	MaxHTTPAttempts          = 20
	MaxBackoffSeconds        = 24 * 3600
	DefaultMaxBackoffSeconds = 300
	DefaultHTTPTimeout       = 10 // seconds, per attempt
	MaxHTTPTimeout           = 900
	DefaultHTTPDeadline      = 24 * 3600 // seconds, all attempts of a step
	MaxHTTPDeadline          = 7 * 24 * 3600
	MaxURLLen                = 2048
	MaxHeaders               = 50
	MaxHeaderLen             = 4096
	DefaultHTTPMethod        = "POST"
)

// httpMethods are the methods an http step may use.
var httpMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE"}

// reservedHeaders are set by the worker; a step may not set them.
var reservedHeaders = []string{"idempotency-key", "content-length", "host", "transfer-encoding", "connection", "content-type"}

// validate checks one step's fields for its type; field is its path
// ("steps[2]").
func (s StepDefinition) validate(field string) error {
	bad := func(f, problem string, args ...any) error {
		return &FieldError{Field: field + f, Problem: fmt.Sprintf(problem, args...)}
	}
	if s.TimeoutSeconds < 0 || s.TimeoutSeconds > MaxTimeoutSeconds {
		return bad(".timeoutSeconds", "must be between 0 and %d", MaxTimeoutSeconds)
	}
	notFor := func(f string, set bool) error {
		if set {
			return bad("."+f, "is not a field of %s steps", s.Type)
		}
		return nil
	}
	httpOnly := func() error {
		return refuse(notFor, setField{"url", s.URL != ""}, setField{"method", s.Method != ""}, setField{"headers", s.Headers != nil},
			setField{"body", s.Body != ""}, setField{"deadlineSeconds", s.DeadlineSeconds != 0})
	}
	flowOnly := func() error {
		if err := refuse(notFor, setField{"rules", s.Rules != nil}, setField{"default", s.Default != ""}, setField{"error", s.Error != ""}, setField{"cause", s.Cause != ""}); err != nil {
			return err
		}
		if s.Next != "" && s.End {
			return bad(".end", "cannot be set with next: a step either names the next one or ends the execution")
		}
		return s.validateCatch(field)
	}
	if s.Type != StepParallel {
		if err := notFor("branches", s.Branches != nil); err != nil {
			return err
		}
	}
	if decided(s.Type) {
		if err := refuse(notFor, setField{"timeoutSeconds", s.TimeoutSeconds != 0}, setField{"seconds", s.Seconds != 0}, setField{"next", s.Next != ""}, setField{"end", s.End},
			setField{"retry", s.Retry != nil}, setField{"catch", s.Catch != nil}, setField{"output", s.Output != ""}); err != nil {
			return err
		}
		if err := httpOnly(); err != nil {
			return err
		}
		return s.validateDecided(field, bad, notFor)
	}
	if err := flowOnly(); err != nil {
		return err
	}
	switch s.Type {
	case StepParallel:
		if s.Retry != nil {
			return bad(".retry", "is not a field of parallel steps: retry the steps inside its branches, and catch the parallel step's failure")
		}
		if err := refuse(notFor, setField{"timeoutSeconds", s.TimeoutSeconds != 0}, setField{"seconds", s.Seconds != 0}); err != nil {
			return err
		}
		if err := httpOnly(); err != nil {
			return err
		}
		return s.validateData(bad) // its output; its branches: validateParallel
	case StepManual:
		if err := notFor("seconds", s.Seconds != 0); err != nil {
			return err
		}
		if s.Retry != nil && s.Retry.Policy != nil {
			return bad(".retry", "of a manual step is a list of rules ({errors, maxAttempts, intervalSeconds, …}); the {maxAttempts, backoffSeconds} form is an http step's")
		}
		if err := httpOnly(); err != nil {
			return err
		}
		if err := s.validateData(bad); err != nil {
			return err
		}
		return s.validateRetry(field)
	case StepWait:
		if s.Seconds < 1 || s.Seconds > MaxTimeoutSeconds {
			return bad(".seconds", "must be between 1 and %d", MaxTimeoutSeconds)
		}
		if s.Retry != nil {
			return bad(".retry", "is not a field of wait steps: a wait step fails only by its timeout, which a retry would meet again (catch it instead)")
		}
		if err := httpOnly(); err != nil {
			return err
		}
		return s.validateData(bad)
	case StepHTTP:
		if err := notFor("seconds", s.Seconds != 0); err != nil {
			return err
		}
		if err := s.validateHTTP(bad); err != nil {
			return err
		}
		if err := s.validateData(bad); err != nil {
			return err
		}
		return s.validateRetry(field)
	}
	return bad(".type", "unknown step type %q; use %s", s.Type, strings.Join(StepTypes, ", "))
}

// StepTypes lists the step types.
var StepTypes = []string{StepManual, StepWait, StepHTTP, StepChoice, StepSucceed, StepFail, StepParallel}

func (s StepDefinition) validateHTTP(bad func(f, problem string, args ...any) error) error {
	if s.TimeoutSeconds > MaxHTTPTimeout {
		return bad(".timeoutSeconds", "of an http step bounds each attempt and must be between 0 and %d", MaxHTTPTimeout)
	}
	if s.DeadlineSeconds < 0 || s.DeadlineSeconds > MaxHTTPDeadline {
		return bad(".deadlineSeconds", "bounds all attempts of an http step and must be between 1 and %d (0: %d)", MaxHTTPDeadline, DefaultHTTPDeadline)
	}
	switch {
	case s.URL == "":
		return bad(".url", "is required")
	case len(s.URL) > MaxURLLen:
		return bad(".url", "must be at most %d bytes", MaxURLLen)
	}
	literal := s.URL
	if hasTemplate(s.URL) {
		var err error
		if literal, err = validateURLTemplate(s.URL); err != nil {
			return bad(".url", "%v", err)
		}
	}
	u, err := url.Parse(literal)
	switch {
	case err != nil:
		return bad(".url", "is not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return bad(".url", "must be an http or https URL")
	case u.Host == "" || u.Hostname() == "":
		return bad(".url", "must name a host")
	case u.User != nil:
		return bad(".url", "must not hold credentials; use headers")
	case u.Fragment != "":
		return bad(".url", "must not have a fragment")
	}
	if s.Method != "" && !slices.Contains(httpMethods, s.Method) {
		return bad(".method", "must be one of %s", strings.Join(httpMethods, ", "))
	}
	if len(s.Headers) > MaxHeaders {
		return bad(".headers", "must hold at most %d headers", MaxHeaders)
	}
	for name, value := range s.Headers {
		switch {
		case !validHeaderName(name):
			return bad(".headers", "name %q is not a valid header name", name)
		case slices.Contains(reservedHeaders, strings.ToLower(name)):
			return bad(".headers", "%s is set by the service and cannot be set by a step", name)
		case len(value) > MaxHeaderLen || strings.ContainsAny(value, "\r\n\x00"):
			return bad(".headers", "value of %s must be at most %d bytes with no line breaks", name, MaxHeaderLen)
		case credentialHeader(name) && !strings.Contains(value, "{{"):
			return bad(".headers", "%s holds a credential in the definition, which every reader of the workflow and of its executions' history sees: reference a secret instead, as \"Bearer {{secret:NAME}}\" (docs/api.md, \"Secrets\")", name)
		}
	}
	if s.Retry != nil && s.Retry.Policy != nil {
		r := s.Retry.Policy
		switch {
		case r.MaxAttempts < 1 || r.MaxAttempts > MaxHTTPAttempts:
			return bad(".retry.maxAttempts", "must be between 1 and %d", MaxHTTPAttempts)
		case r.BackoffSeconds < 0 || r.BackoffSeconds > MaxBackoffSeconds || math.IsNaN(r.BackoffSeconds):
			return bad(".retry.backoffSeconds", "must be between 0 and %d", MaxBackoffSeconds)
		case r.MaxBackoffSeconds < 0 || r.MaxBackoffSeconds > MaxBackoffSeconds || math.IsNaN(r.MaxBackoffSeconds):
			return bad(".retry.maxBackoffSeconds", "must be between 0 and %d", MaxBackoffSeconds)
		case r.MaxBackoffSeconds != 0 && r.MaxBackoffSeconds < r.BackoffSeconds:
			return bad(".retry.maxBackoffSeconds", "must not be below backoffSeconds")
		}
	}
	return nil
}

// credentialHeader reports whether a header carries credentials, which a
// definition may hold only as secret references.
func credentialHeader(name string) bool {
	switch strings.ToLower(name) {
	case "authorization", "proxy-authorization", "x-api-key", "cookie":
		return true
	}
	return false
}

// setField is a field of a step definition and whether it is set.
type setField struct {
	name string
	set  bool
}

// refuse returns notFor's error for the first of fields that is set.
func refuse(notFor func(f string, set bool) error, fields ...setField) error {
	for _, f := range fields {
		if err := notFor(f.name, f.set); err != nil {
			return err
		}
	}
	return nil
}

// validHeaderName reports whether name is an HTTP token (RFC 9110).
func validHeaderName(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// HTTPMethod returns the step's method (POST by default).
func (s StepDefinition) HTTPMethod() string {
	if s.Method == "" {
		return DefaultHTTPMethod
	}
	return s.Method
}

// Deadline returns how long all attempts of an http step may take, from
// the step's start.
func (s StepDefinition) Deadline() time.Duration {
	if s.DeadlineSeconds > 0 {
		return time.Duration(s.DeadlineSeconds) * time.Second
	}
	return DefaultHTTPDeadline * time.Second
}

// AttemptTimeout returns how long one attempt of an http step may take.
func (s StepDefinition) AttemptTimeout() time.Duration {
	if s.TimeoutSeconds > 0 {
		return time.Duration(s.TimeoutSeconds) * time.Second
	}
	return DefaultHTTPTimeout * time.Second
}

// RetryDelay returns how long to wait after failed attempt n (1-based)
// before the next: BackoffSeconds × 2^(n-1), capped, minus up to 20%
// jitter drawn from jitter (a number in [0, 1): the worker draws it once
// and records the result in the event, so replays agree).
func (s StepDefinition) RetryDelay(n int, jitter float64) time.Duration {
	if s.Retry == nil || s.Retry.Policy == nil || n < 1 {
		return 0
	}
	p := s.Retry.Policy
	limit := p.MaxBackoffSeconds
	if limit == 0 {
		limit = math.Max(DefaultMaxBackoffSeconds, p.BackoffSeconds)
	}
	d := math.Min(p.BackoffSeconds*math.Pow(2, float64(min(n-1, 40))), limit)
	d *= 1 - 0.2*min(max(jitter, 0), 1)
	return time.Duration(d * float64(time.Second))
}

// Jitter draws the jitter RetryDelay takes.
func Jitter() float64 { return rand.Float64() }
