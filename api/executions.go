package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

func (s *Server) registerExecutionRoutes() {
	s.handle("/v1/workflow-executions", s.startExecution, http.MethodPost)
	s.handle("/v1/workflow-executions", s.listExecutions, http.MethodGet)
	s.handle("/v1/workflow-executions/{id}", s.getExecution, http.MethodGet)
	s.handle("/v1/workflow-executions/{id}/events", s.listEvents, http.MethodGet)
	s.handle("/v1/workflow-executions/{id}/stream", s.streamExecution, http.MethodGet)
	s.handle("/v1/workflow-executions/{id}/increments", s.increment, http.MethodPost)
	s.handle("/v1/workflow-executions/{id}/cancellations", s.operation(func(id uuid.UUID, reason string) model.Payload {
		return model.CancelExecution{WorkflowExecutionUUID: id, Reason: reason}
	}), http.MethodPost)
	s.handle("/v1/workflow-executions/{id}/redrives", s.operation(func(id uuid.UUID, reason string) model.Payload {
		return model.RedriveExecution{WorkflowExecutionUUID: id, Reason: reason}
	}), http.MethodPost)
	s.handle("/v1/workflow-executions/{id}/pauses", s.operation(func(id uuid.UUID, reason string) model.Payload {
		return model.PauseExecution{WorkflowExecutionUUID: id, Reason: reason}
	}), http.MethodPost)
	s.handle("/v1/workflow-executions/{id}/resumes", s.operation(func(id uuid.UUID, reason string) model.Payload {
		return model.ResumeExecution{WorkflowExecutionUUID: id, Reason: reason}
	}), http.MethodPost)
}

// StartExecutionRequest is the body of POST /v1/workflow-executions.
type StartExecutionRequest struct {
	WorkflowUUID *string         `json:"workflowUUID"`
	Input        json.RawMessage `json:"input,omitempty"`
}

// IncrementRequest is the body of POST .../increments: it completes the
// manual step with Output, or, with Error or Cause, fails it.
type IncrementRequest struct {
	Step   *int            `json:"step"`
	Output json.RawMessage `json:"output,omitempty"`
	Run    int             `json:"run,omitempty"`
	Error  string          `json:"error,omitempty"`
	Cause  string          `json:"cause,omitempty"`
}

// CancelRequest is the body of POST .../cancellations, .../redrives,
// .../pauses and .../resumes (which may also be empty).
type CancelRequest struct {
	Reason string `json:"reason,omitempty"`
}

func (s *Server) startExecution(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, false)
	if err != nil {
		return err
	}
	var req StartExecutionRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	if req.WorkflowUUID == nil {
		return invalidField(&model.FieldError{Field: "workflowUUID", Problem: "is required"})
	}
	wf, err := parseUUID(*req.WorkflowUUID)
	if err != nil || wf == uuid.Nil {
		return invalidField(&model.FieldError{Field: "workflowUUID", Problem: "must be a UUID in its 36-character form"})
	}
	req.Input = compactJSON(req.Input)
	defBytes, err := s.requireLiveWorkflow(r, wf)
	if err != nil {
		return err
	}
	// The worker refuses an execution over the limit in any case (and
	// measures it exactly); this answers the common case at once.
	if n := defBytes + len(req.Input); n > model.MaxExecutionData {
		return problem(http.StatusRequestEntityTooLarge, "too-large", "Request too large",
			fmt.Sprintf("the workflow's definition (%d bytes) and this input (%d bytes) take more than the %d bytes an execution may hold; make the input smaller, or pass a reference to it", defBytes, len(req.Input), model.MaxExecutionData))
	}
	return s.accept(w, r, req, func(commandUUID uuid.UUID) model.Payload {
		return model.StartExecution{
			WorkflowExecutionUUID: model.DerivedUUID(commandUUID, "execution"),
			WorkflowUUID:          wf,
			Input:                 req.Input,
		}
	})
}

// requireLiveWorkflow refuses at once an execution of a workflow the views
// show as deleted. An unknown workflow is let through: it may be one whose
// creation is not projected yet; the worker then retries for a few seconds
// before rejecting the command with "workflow not found".
//
// A workflow read as live is taken as live for liveRecheck without a read.
// It returns the encoded size of the workflow's definition (0 if unknown).
func (s *Server) requireLiveWorkflow(r *http.Request, id uuid.UUID) (int, error) {
	now := s.cfg.Now()
	if n, ok := s.live.fresh(id, now); ok {
		return n, nil
	}
	wf, err := s.cfg.Views.GetWorkflow(r.Context(), id)
	switch {
	case isNotFound(err):
		return 0, nil
	case err != nil:
		return 0, err
	case wf.Deleted():
		return 0, problem(http.StatusConflict, "workflow-deleted", "Workflow deleted",
			"workflow "+id.String()+" is deleted; it takes no new executions")
	}
	steps, err := json.Marshal(wf.Steps)
	if err != nil {
		return 0, err
	}
	s.live.remember(id, now, len(steps))
	return len(steps), nil
}

func (s *Server) increment(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(mux.Vars(r), "id")
	if err != nil {
		return err
	}
	body, err := readBody(w, r, false)
	if err != nil {
		return err
	}
	var req IncrementRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	if req.Step == nil {
		return invalidField(&model.FieldError{Field: "step", Problem: "is required"})
	}
	if req.Run < 0 || req.Run > model.MaxStepsRun {
		return invalidField(&model.FieldError{Field: "run", Problem: fmt.Sprintf("must be between 1 and %d (0 or absent: the step's current run)", model.MaxStepsRun)})
	}
	req.Output = compactJSON(req.Output)
	return s.accept(w, r, req, func(uuid.UUID) model.Payload {
		return model.IncrementExecution{WorkflowExecutionUUID: id, Step: *req.Step, Output: req.Output, Run: req.Run, Error: req.Error, Cause: req.Cause}
	})
}

// operation is the handler of a command on an execution whose body is
// at most a reason (CancelRequest): cancel, redrive, pause, resume. The
// worker decides whether the execution is in a state it applies to.
func (s *Server) operation(payload func(id uuid.UUID, reason string) model.Payload) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathUUID(mux.Vars(r), "id")
		if err != nil {
			return err
		}
		body, err := readBody(w, r, true)
		if err != nil {
			return err
		}
		var req CancelRequest
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
		return s.accept(w, r, req, func(uuid.UUID) model.Payload { return payload(id, req.Reason) })
	}
}

func (s *Server) getExecution(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(mux.Vars(r), "id")
	if err != nil {
		return err
	}
	x, err := s.cfg.Views.GetExecution(r.Context(), id)
	if isNotFound(err) {
		return notFound("workflow execution " + id.String() + " not found")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "application/json", x)
	return nil
}

func (s *Server) listExecutions(w http.ResponseWriter, r *http.Request) error {
	q, err := queryParams(r, "workflowUUID", "status", "limit", "cursor")
	if err != nil {
		return err
	}
	lq, err := listQuery(q)
	if err != nil {
		return err
	}
	eq := store.ExecutionQuery{ListQuery: lq}
	if v := q.Get("workflowUUID"); v != "" || q.Has("workflowUUID") {
		if eq.WorkflowUUID, err = parseUUID(v); err != nil {
			return badRequest("query parameter workflowUUID: " + err.Error())
		}
	}
	if v := q.Get("status"); v != "" || q.Has("status") {
		if !slices.Contains(model.ExecutionStatuses, v) {
			return badRequest(fmt.Sprintf("status must be one of %s, not %q", strings.Join(model.ExecutionStatuses, ", "), v))
		}
		eq.Status = v
	}
	return listPage(w, eq.Limit, eq.After, func(q store.ListQuery) ([]model.Execution, error) {
		eq.ListQuery = q
		return s.cfg.Views.ListExecutions(r.Context(), eq)
	}, func(x model.Execution) store.Position {
		return store.Position{CreatedAt: x.CreatedAt, ID: x.WorkflowExecutionUUID}
	})
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(mux.Vars(r), "id")
	if err != nil {
		return err
	}
	if _, err := queryParams(r); err != nil {
		return err
	}
	events, err := s.cfg.Events.Load(r.Context(), model.ExecutionAggregateID(id), 0)
	if err != nil {
		return err
	}
	if len(events) == 0 {
		return notFound("workflow execution " + id.String() + " not found")
	}
	writeJSON(w, http.StatusOK, "application/json", Page[model.Event]{Items: events})
	return nil
}

// compactJSON normalises client JSON (already known to be valid) so that
// equal values hash equal for the Idempotency-Key check. Numbers keep their
// literal text (UseNumber): a large integer in an input must not lose digits.
func compactJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return raw
	}
	out, err := json.Marshal(v)
	if err != nil {
		return raw
	}
	return json.RawMessage(out)
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
