package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"github.com/workflowd/workflowd/model"
)

// CommandAnswer is the answer of GET /v1/commands/{commandUUID}.
type CommandAnswer struct {
	CommandUUID uuid.UUID `json:"commandUUID"`
	Type        string    `json:"type,omitempty"`
	Status      string    `json:"status"`
	Error       string    `json:"error,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
	Links       Links     `json:"links"`
}

func (s *Server) registerCommandRoutes() {
	s.handle("/v1/commands/{commandUUID}", s.getCommand, http.MethodGet)
}

func (s *Server) getCommand(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(mux.Vars(r), "commandUUID")
	if err != nil {
		return err
	}
	q, err := queryParams(r, "wait")
	if err != nil {
		return err
	}
	wait, err := parseWait(q.Get("wait"))
	if err != nil {
		return err
	}
	if err := s.checkRetention(id); err != nil {
		return err
	}
	st, err := s.waitCommand(r.Context(), id, wait)
	if isNotFound(err) {
		return notFound("command " + id.String() + " not found")
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "application/json", CommandAnswer{
		CommandUUID: st.CommandUUID, Type: st.Type, Status: st.Status, Error: st.Error,
		CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt,
		Links: Links{Self: "/v1/commands/" + id.String(), Resource: statusResource(st)},
	})
	return nil
}

// checkRetention answers 410 for a command accepted longer than the
// command retention ago (the time its UUID carries): its status may be
// deleted already, or soon (DynamoDB's TTL deletes within days, not at
// once), and an answer must not depend on which.
func (s *Server) checkRetention(id uuid.UUID) error {
	at, ok := model.CommandTime(id)
	if !ok || s.cfg.CommandRetention <= 0 || s.cfg.Now().Sub(at) <= s.cfg.CommandRetention {
		return nil
	}
	return problem(http.StatusGone, "command-expired", "Command status expired",
		fmt.Sprintf("command %s was accepted at %s; statuses are kept for %s after a command is accepted, "+
			"so its status is gone (its effect, if any, stays: read the resource and its history)",
			id, at.Format(time.RFC3339), s.cfg.CommandRetention))
}

// isClosed reports whether c is closed (without waiting).
func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// waitCommand returns the command's status, waiting up to wait for it to
// leave ACCEPTED. It wakes on the Waiter when there is one (and answers
// APPLIED without another read when the projector woke it), and otherwise
// polls the store with a growing interval.
func (s *Server) waitCommand(ctx context.Context, id uuid.UUID, wait time.Duration) (model.CommandStatus, error) {
	// A request that must end sooner (a Lambda invocation's deadline)
	// answers two seconds before it.
	if end, ok := ctx.Deadline(); ok {
		wait = max(0, min(wait, time.Until(end)-2*time.Second))
	}
	deadline := time.Now().Add(wait)
	// Without a Waiter each poll is a read of the store (a read unit on
	// DynamoDB): start at 50ms and back off.
	poll := 50 * time.Millisecond
	for {
		var k *wake
		var woken <-chan struct{}
		var done func()
		if s.cfg.Waiter != nil && wait > 0 {
			k, done = s.cfg.Waiter.subscribe(id)
			woken = k.c
		}
		st, err := s.commandStatus(ctx, id)
		finished := err == nil && st.Status != model.CommandAccepted
		left := time.Until(deadline)
		// An unknown command is answered at once: the API records a status
		// before it publishes, so there is nothing to wait for.
		if finished || left <= 0 || err != nil {
			if done != nil {
				done()
			}
			return st, err
		}
		step := min(poll, left)
		if woken != nil {
			step = min(time.Second, left) // the waiter wakes us; poll rarely as a safety net
		}
		t := time.NewTimer(step)
		select {
		case <-ctx.Done():
		case <-woken:
		case <-t.C:
		}
		t.Stop()
		if done != nil {
			done()
		}
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		if k != nil && isClosed(k.c) && k.applied {
			st.Status, st.UpdatedAt = model.CommandApplied, s.cfg.Now().UTC()
			return st, nil
		}
		poll = min(poll*2, time.Second)
	}
}
