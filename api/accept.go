package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/metrics"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// Accepted is the 202 answer to every command-issuing request.
type Accepted struct {
	CommandUUID           uuid.UUID `json:"commandUUID"`
	WorkflowUUID          uuid.UUID `json:"workflowUUID,omitzero"`
	WorkflowExecutionUUID uuid.UUID `json:"workflowExecutionUUID,omitzero"`
	Status                string    `json:"status"`
	Links                 Links     `json:"links"`
}

// Links point to related resources.
type Links struct {
	Self     string `json:"self,omitempty"`
	Command  string `json:"command,omitempty"`
	Resource string `json:"resource,omitempty"`
	Events   string `json:"events,omitempty"`
}

// accept publishes the command that build makes and answers 202.
//
// canonical is the decoded request, re-encoded: with an Idempotency-Key,
// the command UUID derives from the key and the route, so a repeat (or a
// racing twin) names the same command, which the workers apply once; the
// key's first request is remembered with a hash of the canonical request so
// that the same key with another body is refused with 422. The command is
// built, validated and encoded before the key is claimed, so a request
// refused with a 4xx does not use up its key.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, canonical any, build func(commandUUID uuid.UUID) model.Payload) error {
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := s.cfg.Now().UTC()
	route := r.Method + " " + r.URL.Path
	// Every command gets a new UUID, which carries the time it was
	// accepted (model.NewCommandUUID: its status is keyed by it); a replay
	// with a live Idempotency-Key takes the one its key's record holds. (A
	// UUID derived from the key would name the same command again once
	// the key expired, and the workers would drop the new request as a
	// duplicate.)
	commandUUID := s.cfg.NewCommandUUID(now)

	cmd := model.NewCommand(commandUUID, build(commandUUID), now)
	if err := cmd.Payload.Validate(); err != nil {
		return err
	}
	msg, err := bus.CommandMessage(cmd)
	if errors.Is(err, bus.ErrTooLarge) {
		return problem(http.StatusRequestEntityTooLarge, "too-large", "Request too large",
			"the command would exceed the queue's message size limit")
	}
	if err != nil {
		return err
	}
	aggregateID := cmd.AggregateID()
	resource := resourcePath(aggregateID)

	publish := true
	if key != "" {
		hash, err := requestHash(route, canonical)
		if err != nil {
			return err
		}
		rec, err := s.cfg.Commands.ClaimIdempotencyKey(ctx, store.IdempotencyRecord{
			Key: route + "\x00" + key, RequestHash: hash, CommandUUID: commandUUID,
			CreatedAt: now, ExpiresAt: now.Add(s.cfg.IdempotencyTTL),
		})
		switch {
		case errors.Is(err, store.ErrDuplicate):
			if rec.RequestHash != hash {
				return problem(http.StatusUnprocessableEntity, "idempotency-key-reused", "Idempotency-Key reused",
					"this Idempotency-Key was used with a different request; use a new key for a new request")
			}
			// The first request's command, built again from the same body.
			commandUUID = rec.CommandUUID
			cmd = model.NewCommand(commandUUID, build(commandUUID), now)
			if msg, err = bus.CommandMessage(cmd); err != nil {
				return err
			}
			aggregateID = cmd.AggregateID()
			resource = resourcePath(aggregateID)
			// A replay. A finished command needs no second publish; an
			// unfinished one is published again, in case the first request
			// died before its publish (the workers ignore the duplicate).
			// Either way the answer is the first one (same key, same body,
			// same answer: docs/api.md); the command's current status is
			// at links.command.
			if st, err := s.commandStatus(ctx, commandUUID); err == nil && st.Status != model.CommandAccepted {
				publish = false
			}
		case err != nil:
			return fmt.Errorf("claim idempotency key: %w", err)
		}
	}
	if publish {
		err := s.cfg.Commands.PutCommand(ctx, model.CommandStatus{
			CommandUUID: commandUUID, Type: cmd.Type, Status: model.CommandAccepted,
			AggregateID: aggregateID, CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return fmt.Errorf("record command: %w", err)
		}
		if err := s.cfg.Publisher.Publish(ctx, msg); err != nil {
			s.log.Error("publish failed", "command", commandUUID, "type", cmd.Type, "err", err, "published", !bus.NotPublished(err))
			w.Header().Set("Retry-After", "1")
			switch {
			case key != "":
				// It stays ACCEPTED: the retry with the key publishes it
				// (again, if it went through: the workers drop a duplicate).
				return problem(http.StatusServiceUnavailable, "unavailable", "Service unavailable",
					"the command may not have been queued; retry with the same Idempotency-Key and body")
			case bus.NotPublished(err):
				// Nothing was sent, and nobody can send this command
				// again: close its status.
				s.abandon(ctx, cmd)
				return problem(http.StatusServiceUnavailable, "unavailable", "Service unavailable",
					"the command was not queued (its status, "+"/v1/commands/"+commandUUID.String()+", reads REJECTED); retry it, with an Idempotency-Key to stay safe")
			}
			// The publish may have gone through: the status stays
			// ACCEPTED, and the event log decides (APPLIED if the workers
			// got it). REJECTED would be a lie if it did.
			return problem(http.StatusServiceUnavailable, "unavailable", "Service unavailable",
				"the command may or may not have been queued: its status at /v1/commands/"+commandUUID.String()+" reads APPLIED or REJECTED if the workers got it, and stays ACCEPTED if not; send requests with an Idempotency-Key to retry them safely")
		}
		s.cfg.Metrics.Command(cmd.Type, metrics.Accepted)
	}

	commandPath := "/v1/commands/" + commandUUID.String()
	ans := Accepted{CommandUUID: commandUUID, Status: model.CommandAccepted, Links: Links{Command: commandPath, Resource: resource}}
	location := commandPath
	switch p := cmd.Payload.(type) {
	case model.CreateWorkflow:
		ans.WorkflowUUID, location = p.WorkflowUUID, resource
	case model.StartExecution:
		ans.WorkflowExecutionUUID, location = p.WorkflowExecutionUUID, resource
		ans.WorkflowUUID = p.WorkflowUUID
		ans.Links.Events = resource + "/events"
	}
	w.Header().Set("Location", location)
	writeJSON(w, http.StatusAccepted, "application/json", ans)
	return nil
}

// abandon marks a command that was never queued as REJECTED.
func (s *Server) abandon(ctx context.Context, cmd model.Command) {
	now := s.cfg.Now().UTC()
	err := s.cfg.Commands.FinishCommand(context.WithoutCancel(ctx), model.CommandStatus{
		CommandUUID: cmd.CommandUUID, Type: cmd.Type, Status: model.CommandRejected,
		Error:       "the command could not be queued (the API answered 503); nothing was changed",
		AggregateID: cmd.AggregateID(), CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		s.log.Error("record abandoned command", "command", cmd.CommandUUID, "err", err)
	}
}

// requestHash fingerprints a request for the Idempotency-Key check.
func requestHash(route string, canonical any) (string, error) {
	b, err := json.Marshal(canonical)
	if err != nil {
		return "", fmt.Errorf("hash request: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(route))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}
