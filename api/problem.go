package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// Problem is an RFC 9457 problem detail, and the error type handlers return
// for anything a client should see.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Instance is the request path the problem is about.
	Instance string `json:"instance,omitempty"`
	// Errors lists field problems of a validation failure.
	Errors []FieldProblem `json:"errors,omitempty"`
}

// FieldProblem names one invalid field.
type FieldProblem struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

func (p *Problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail) }

// Problem kinds. The type URIs are stable; docs/problems.md describes them.
func problem(status int, slug, title, detail string) *Problem {
	return &Problem{Type: "urn:workflowd:problem:" + slug, Title: title, Status: status, Detail: detail}
}

func badRequest(detail string) *Problem {
	return problem(http.StatusBadRequest, "bad-request", "Bad request", detail)
}

func invalidField(err *model.FieldError) *Problem {
	p := problem(http.StatusBadRequest, "validation", "Invalid request", err.Error())
	p.Errors = []FieldProblem{{Field: err.Field, Problem: err.Problem}}
	return p
}

func notFound(detail string) *Problem {
	return problem(http.StatusNotFound, "not-found", "Not found", detail)
}

// writeError turns any error into a problem+json answer. Problems go out as
// they are; store sentinels map to their statuses (ErrUnavailable to 503
// with Retry-After); anything else is a 500 whose text is logged, never
// shown.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var p *Problem
	var fe *model.FieldError
	switch {
	case errors.As(err, &p):
	case errors.As(err, &fe):
		p = invalidField(fe)
	case errors.Is(err, store.ErrNotFound):
		p = notFound("no such resource")
	case errors.Is(err, r.Context().Err()) && r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		p = problem(499, "client-closed", "Client closed request", "")
	case errors.Is(err, store.ErrUnavailable):
		// The store did not answer in time or refused under load: a
		// retry is the cure, not a bug report.
		log.Warn("request failed: the store is unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", "1")
		p = problem(http.StatusServiceUnavailable, "unavailable", "Service unavailable",
			"the store did not answer in time; retry (a POST, PUT or DELETE with the same Idempotency-Key and body)")
	default:
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		p = problem(http.StatusInternalServerError, "internal", "Internal error", "the server failed to handle the request; it has been logged")
	}
	if p.Instance == "" {
		p.Instance = r.URL.Path
	}
	writeJSON(w, p.Status, "application/problem+json", p)
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		contentType = "application/problem+json"
		b = []byte(`{"type":"urn:workflowd:problem:internal","title":"Internal error","status":500}`)
	}
	writeBytes(w, status, contentType, b)
}

// writeBytes writes b, a JSON document, as the answer.
func writeBytes(w http.ResponseWriter, status int, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
