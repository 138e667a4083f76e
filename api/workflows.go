package api

import (
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// Page is a listing answer.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

func (s *Server) registerWorkflowRoutes() {
	s.handle("/v1/workflows", s.createWorkflow, http.MethodPost)
	s.handle("/v1/workflows", s.listWorkflows, http.MethodGet)
	s.handle("/v1/workflows/{workflowUUID}", s.getWorkflow, http.MethodGet)
	s.handle("/v1/workflows/{workflowUUID}", s.updateWorkflow, http.MethodPut)
	s.handle("/v1/workflows/{workflowUUID}", s.deleteWorkflow, http.MethodDelete)
}

func (s *Server) decodeDefinition(w http.ResponseWriter, r *http.Request) (model.Definition, error) {
	body, err := readBody(w, r, false)
	if err != nil {
		return model.Definition{}, err
	}
	var d model.Definition
	if err := decodeStrict(body, &d); err != nil {
		return d, err
	}
	if err := d.Validate(); err != nil {
		return d, err
	}
	if limit := s.cfg.MaxHTTPTimeout; limit > 0 {
		for i, st := range d.Steps {
			if st.Type == model.StepHTTP && st.AttemptTimeout() > limit {
				return d, invalidField(&model.FieldError{Field: fmt.Sprintf("steps[%d].timeoutSeconds", i),
					Problem: fmt.Sprintf("is %d, over the %d seconds an http attempt may take on this deployment (the worker's timeout less a margin)", int(st.AttemptTimeout().Seconds()), int(limit.Seconds()))})
			}
		}
	}
	return d, nil
}

func (s *Server) createWorkflow(w http.ResponseWriter, r *http.Request) error {
	d, err := s.decodeDefinition(w, r)
	if err != nil {
		return err
	}
	return s.accept(w, r, d, func(commandUUID uuid.UUID) model.Payload {
		return model.CreateWorkflow{WorkflowUUID: model.DerivedUUID(commandUUID, "workflow"), Definition: d}
	})
}

func (s *Server) updateWorkflow(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(mux.Vars(r), "workflowUUID")
	if err != nil {
		return err
	}
	d, err := s.decodeDefinition(w, r)
	if err != nil {
		return err
	}
	if err := s.requireWorkflow(r, id); err != nil {
		return err
	}
	return s.accept(w, r, d, func(uuid.UUID) model.Payload {
		return model.UpdateWorkflow{WorkflowUUID: id, Definition: d}
	})
}

func (s *Server) deleteWorkflow(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(mux.Vars(r), "workflowUUID")
	if err != nil {
		return err
	}
	body, err := readBody(w, r, true)
	if err != nil {
		return err
	}
	// The body is optional; when given it must be an empty JSON object.
	if err := decodeStrict(body, &struct{}{}); err != nil {
		return err
	}
	if err := s.requireWorkflow(r, id); err != nil {
		return err
	}
	s.live.forget(id)
	return s.accept(w, r, struct{}{}, func(uuid.UUID) model.Payload {
		return model.DeleteWorkflow{WorkflowUUID: id}
	})
}

// requireWorkflow answers 404 for a workflow the views do not know. (One
// created a moment ago may not be projected yet: the client waits for its
// creation command to be APPLIED first, as the README shows.)
func (s *Server) requireWorkflow(r *http.Request, id uuid.UUID) error {
	_, err := s.cfg.Views.GetWorkflow(r.Context(), id)
	if err != nil {
		if isNotFound(err) {
			return notFound("workflow " + id.String() + " not found")
		}
		return err
	}
	return nil
}

func (s *Server) getWorkflow(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(mux.Vars(r), "workflowUUID")
	if err != nil {
		return err
	}
	wf, err := s.cfg.Views.GetWorkflow(r.Context(), id)
	if isNotFound(err) {
		return notFound("workflow " + id.String() + " not found")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "application/json", wf)
	return nil
}

func (s *Server) listWorkflows(w http.ResponseWriter, r *http.Request) error {
	q, err := queryParams(r, "limit", "cursor")
	if err != nil {
		return err
	}
	lq, err := listQuery(q)
	if err != nil {
		return err
	}
	return listPage(w, lq.Limit, lq.After, func(q store.ListQuery) ([]model.Workflow, error) {
		return s.cfg.Views.ListWorkflows(r.Context(), q)
	}, func(wf model.Workflow) store.Position {
		return store.Position{CreatedAt: wf.CreatedAt, ID: wf.WorkflowUUID}
	})
}
