package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/workflowd/workflowd/expr"
)

// Data between steps (docs/api.md, "Data"): an http step's url and header
// values may hold {{ expression }} parts, its body may be an expression,
// and a step's output, and the execution's, may be shaped by one. Every
// expression is compiled when the workflow is defined; the http step's
// are evaluated by the worker when it makes the call (Execution.Request),
// the output expressions by the model when the step completes.

// templatePart is a literal, an expression whose value is put in its
// place (expr), or a secret reference (secret: its name) whose value is
// resolved when the call is made and recorded nowhere.
type templatePart struct {
	lit, expr, secret string
}

// secretName is what a secret reference may name.
var secretName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)

// hasTemplate reports whether s holds an expression part.
func hasTemplate(s string) bool { return strings.Contains(s, "{{") }

// parseTemplate splits s into literals and {{ expression }} parts. An
// expression cannot hold "}}".
func parseTemplate(s string) ([]templatePart, error) {
	var parts []templatePart
	for s != "" {
		i := strings.Index(s, "{{")
		if i < 0 {
			parts = append(parts, templatePart{lit: s})
			break
		}
		if i > 0 {
			parts = append(parts, templatePart{lit: s[:i]})
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("has a {{ without its }}")
		}
		e := strings.TrimSpace(s[i+2 : i+2+j])
		if e == "" {
			return nil, fmt.Errorf("has an empty {{ }}")
		}
		if name, ok := strings.CutPrefix(e, "secret:"); ok {
			if name = strings.TrimSpace(name); !secretName.MatchString(name) {
				return nil, fmt.Errorf("has a secret reference %q whose name is not 1 to 100 letters, digits, _ . and -", e)
			}
			parts = append(parts, templatePart{secret: name})
		} else {
			parts = append(parts, templatePart{expr: e})
		}
		s = s[i+2+j+2:]
	}
	return parts, nil
}

// compileTemplate checks every expression of the template s.
func compileTemplate(s string) ([]templatePart, error) {
	parts, err := parseTemplate(s)
	if err != nil {
		return nil, err
	}
	for _, p := range parts {
		if p.expr == "" {
			continue // a literal, or a secret reference
		}
		if _, err := compile(p.expr, expr.Any); err != nil {
			return nil, fmt.Errorf("{{ %s }}: %v", p.expr, err)
		}
	}
	return parts, nil
}

// render evaluates the template s over v, each value written as text
// (a string as itself, null as nothing, anything else as JSON) and passed
// through escape; secret references are resolved by c.secret, and their
// values added to c.Secrets.
func (c *Call) render(s string, v expr.Vars, escape func(string) string) (string, error) {
	parts, err := compileTemplate(s)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, p := range parts {
		if p.secret != "" {
			value, err := c.secret(p.secret)
			if err != nil {
				return "", &SecretError{Name: p.secret, Err: err}
			}
			c.Secrets = append(c.Secrets, value)
			b.WriteString(escape(value))
			continue
		}
		if p.expr == "" {
			b.WriteString(p.lit)
			continue
		}
		prg, err := compile(p.expr, expr.Any)
		if err != nil {
			return "", err
		}
		val, err := prg.Eval(v)
		if err != nil {
			return "", fmt.Errorf("{{ %s }}: %v", p.expr, err)
		}
		b.WriteString(escape(asText(val)))
	}
	return b.String(), nil
}

// asText is a JSON value as text in a URL or a header.
func asText(val json.RawMessage) string {
	var s string
	switch {
	case string(val) == "null":
		return ""
	case json.Unmarshal(val, &s) == nil:
		return s
	}
	return string(val)
}

// escapeURLPart percent-encodes every byte but the unreserved ones
// (letters, digits, - . _ ~): a value is one path segment or one query
// value, whatever it holds ("/", "?", "&", "#").
func escapeURLPart(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func noEscape(s string) string { return s }

// validateURLTemplate checks a url with expressions: they compile, and
// they come after the scheme and host:port, which stay literal (the
// allowlist's and the reader's). It returns the URL with each expression
// replaced by a placeholder, for the checks of a literal URL.
func validateURLTemplate(s string) (string, error) {
	parts, err := compileTemplate(s)
	if err != nil {
		return "", err
	}
	rest, ok := strings.CutPrefix(strings.ToLower(s), "http://")
	if !ok {
		rest, ok = strings.CutPrefix(strings.ToLower(s), "https://")
	}
	if ok {
		authority := rest
		if k := strings.IndexAny(rest, "/?#"); k >= 0 {
			authority = rest[:k]
		}
		if strings.Contains(authority, "{{") {
			return "", fmt.Errorf("must keep its scheme and host:port literal: expressions may stand only in the path and the query")
		}
	}
	var b strings.Builder
	for _, p := range parts {
		if p.lit != "" {
			b.WriteString(p.lit)
		} else {
			b.WriteString("x")
		}
	}
	return b.String(), nil
}

// validateData checks a step's expressions: url and header templates and
// body (http steps), and output (manual, wait and http steps).
func (s StepDefinition) validateData(bad func(f, problem string, args ...any) error) error {
	for name, value := range s.Headers {
		if !hasTemplate(value) {
			continue
		}
		if _, err := compileTemplate(value); err != nil {
			return bad(".headers", "value of %s %v", name, err)
		}
	}
	if s.Body != "" {
		if s.Method == "GET" {
			return bad(".body", "is not sent by a GET: use the url's query, or another method")
		}
		if _, err := compile(s.Body, expr.Any); err != nil {
			return bad(".body", "%v", err)
		}
	}
	if s.Output != "" {
		if _, err := compile(s.Output, expr.Any); err != nil {
			return bad(".output", "%v", err)
		}
	}
	return nil
}

// Call is an http step's call as its expressions and secret references
// build it: the URL, the headers, the body (nil: the service's envelope
// of input and outputs), and the values of the secrets it holds, which no
// answer, event, log line or error may quote.
type Call struct {
	URL     string
	Headers map[string]string
	Body    json.RawMessage
	Secrets []string
	secret  func(name string) (string, error)
}

// SecretError is a secret reference that could not be resolved.
type SecretError struct {
	Name string
	Err  error
}

func (e *SecretError) Error() string { return fmt.Sprintf("secret %q: %v", e.Name, e.Err) }
func (e *SecretError) Unwrap() error { return e.Err }

// Request is the call of http step i, its expressions evaluated and its
// secret references resolved by secret. An expression that fails is an
// error saying which and why (the step then fails, expression.failed); a
// secret that cannot be resolved, a *SecretError (secret.unavailable).
func (s Execution) Request(i int, secret func(name string) (string, error)) (Call, error) {
	if i < 0 || i >= len(s.Definitions) {
		return Call{}, fmt.Errorf("step %d has no definition", i)
	}
	def := s.Definitions[i]
	c := Call{URL: def.URL, Headers: def.Headers, secret: secret}
	if !hasTemplate(def.URL) && def.Body == "" && !templatedHeaders(def.Headers) {
		return c, nil
	}
	if c.secret == nil {
		c.secret = func(string) (string, error) { return "", errors.New("no secrets are configured") }
	}
	v := s.vars(StepCompleted{Step: -1})
	var err error
	if c.URL, err = c.render(def.URL, v, escapeURLPart); err != nil {
		return Call{}, fmt.Errorf("url: %w", err)
	}
	if _, perr := url.Parse(c.URL); perr != nil {
		return Call{}, errors.New("url: the built URL is not a URL")
	}
	if templatedHeaders(def.Headers) {
		c.Headers = make(map[string]string, len(def.Headers))
		for name, value := range def.Headers {
			if c.Headers[name], err = c.render(value, v, noEscape); err != nil {
				return Call{}, fmt.Errorf("header %s: %w", name, err)
			}
		}
	}
	if def.Body != "" {
		prg, cerr := compile(def.Body, expr.Any)
		if cerr != nil {
			return Call{}, fmt.Errorf("body: %v", cerr)
		}
		if c.Body, err = prg.Eval(v); err != nil {
			return Call{}, fmt.Errorf("body: %v", err)
		}
	}
	return c, nil
}

func templatedHeaders(h map[string]string) bool {
	for _, v := range h {
		if hasTemplate(v) {
			return true
		}
	}
	return false
}

// shapeOutput returns the output of the step done completes, shaped by
// its output expression, or the failure of the expression (final:
// expression.failed, or output.too-large).
func (s Execution) shapeOutput(done StepCompleted) (json.RawMessage, *stepFailure) {
	def := s.Definitions[done.Step]
	attempt := done.Attempt
	if attempt == 0 {
		attempt = s.manualAttempt(done.Step)
	}
	f := &stepFailure{step: done.Step, attempt: attempt, name: ErrExpression, final: true}
	out, err := s.shape(def.Output, done.Output, StepCompleted{Step: -1})
	if err != nil {
		f.cause = fmt.Sprintf("step %q: output: %v", def.Name, err)
		return nil, f
	}
	if err := s.roomFor(out); err != nil {
		f.name, f.cause = ErrOutputTooLarge, fmt.Sprintf("step %q: output: %v", def.Name, err)
		return nil, f
	}
	return out, nil
}

// succeeded is the event of the execution succeeding after done, its
// output shaped by the execution's output expression, or, if that
// fails, of it failing (expression.failed, output.too-large) at step i.
func (s Execution) succeeded(i int, done StepCompleted) draft {
	if s.OutputExpression == "" {
		return draft{EventExecutionSucceeded, ExecutionFinished{Output: done.Output}}
	}
	out, err := s.shape(s.OutputExpression, done.Output, done)
	name := ErrExpression
	if err == nil {
		if err = s.roomFor(out); err == nil {
			return draft{EventExecutionSucceeded, ExecutionFinished{Output: out}}
		}
		name = ErrOutputTooLarge
	}
	return draft{EventExecutionFailed, Failure{Step: i, Name: name, Error: fmt.Sprintf("the execution's output: %v", err)}}
}

// shape evaluates an output expression over s with result, the answer it
// shapes.
func (s Execution) shape(source string, result json.RawMessage, done StepCompleted) (json.RawMessage, error) {
	prg, err := compile(source, expr.Any)
	if err != nil {
		return nil, err
	}
	v := s.vars(done)
	v.Result = result
	return prg.Eval(v)
}
