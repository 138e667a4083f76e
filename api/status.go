package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// commandStatus returns a command's status as clients see it.
//
// The store records ACCEPTED (the API, before it publishes), REJECTED (a
// worker, with the reason), and APPLIED only for a command the projector
// pushed out of its view's recent commands (model.Evicted). APPLIED is
// otherwise not written: a command is APPLIED once the view of the
// aggregate it changes shows its events (docs/guarantees.md), which the
// view's RecentCommands tell. A status read so takes two reads, the
// status and the view, whatever the length of the aggregate's history
// (docs/architecture-log.md, entry 37). Two cases read the event log:
//   - a status written by a build before 3 December 2026 (its UUID carries
//     no time), whose command may have been pushed out of the list without
//     a mark; it is not looked up until recentGrace old, since the first
//     polls right after the POST find it on its way;
//   - a command of an execution whose view is gone, expired after the
//     retention period (expired).
//
// Skipping the write saves one DynamoDB write unit per command, a quarter
// of a step's writes (docs/architecture-log.md, entry 18); a status read
// costs a view read more instead.
func (s *Server) commandStatus(ctx context.Context, id uuid.UUID) (model.CommandStatus, error) {
	st, err := s.cfg.Commands.GetCommand(ctx, id)
	if err != nil || st.Status != model.CommandAccepted {
		return st, err
	}
	aggregateID, ok := statusAggregate(st)
	if !ok {
		return st, nil // no aggregate to look at: it stays ACCEPTED
	}
	_, marked := model.CommandTime(id) // this build marks what it pushes out
	legacy := !marked && s.cfg.Now().Sub(st.CreatedAt) >= recentGrace
	applied, at, err := s.applied(ctx, aggregateID, id, legacy)
	if err != nil {
		return st, fmt.Errorf("status of command %s: %w", id, err)
	}
	if applied {
		st.Status, st.UpdatedAt = model.CommandApplied, at
	}
	return st, nil
}

// recentGrace is how old a command of an earlier build must be before a
// status read looks for it in the event log when the view's recent
// commands do not settle it.
const recentGrace = 5 * time.Second

// applied reports whether the view of aggregateID shows the command's
// events, and the view's updatedAt. It reads the event log only when the
// view's recent commands do not tell and searchLog is set (a status of an
// earlier build), or when the execution's view is missing.
func (s *Server) applied(ctx context.Context, aggregateID string, id uuid.UUID, searchLog bool) (bool, time.Time, error) {
	kind, key, err := model.ParseAggregateID(aggregateID)
	if err != nil {
		return false, time.Time{}, err
	}
	var recent []uuid.UUID
	var version int64
	var at time.Time
	switch kind {
	case model.KindWorkflow:
		w, err := s.cfg.Views.GetWorkflow(ctx, key)
		if err != nil {
			return false, at, notYet(err)
		}
		recent, version, at = w.RecentCommands, w.Seq, w.UpdatedAt
	default:
		x, err := s.cfg.Views.GetExecution(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return s.expired(ctx, aggregateID, id)
		}
		if err != nil {
			return false, at, err
		}
		recent, version, at = x.RecentCommands, x.Version, x.UpdatedAt
	}
	if applied, known := model.Recent(recent, id); known || !searchLog {
		return applied, at, nil
	}
	events, err := s.cfg.Events.Load(ctx, aggregateID, 0)
	if err != nil {
		return false, at, err
	}
	last := int64(0)
	for _, e := range events {
		if e.CommandUUID == id {
			last = e.Seq
		}
	}
	return last > 0 && last <= version, at, nil
}

// expired answers for a command of an execution whose view is missing:
// not projected yet (ACCEPTED), or finished and expired after the
// retention period, which the event log tells: the command's events are
// there and the execution ended longer than the retention ago (APPLIED).
func (s *Server) expired(ctx context.Context, aggregateID string, id uuid.UUID) (bool, time.Time, error) {
	if s.cfg.Retention <= 0 {
		return false, time.Time{}, nil // views never expire
	}
	if t, ok := model.CommandTime(id); ok && s.cfg.Now().Sub(t) < s.cfg.Retention {
		// The execution ended after its command was accepted, and its
		// view is kept for the retention after the end: not projected yet.
		return false, time.Time{}, nil
	}
	events, err := s.cfg.Events.Load(ctx, aggregateID, 0)
	if err != nil || len(events) == 0 {
		return false, time.Time{}, err
	}
	end := events[len(events)-1]
	if !model.IsTerminalEvent(end.Type) || s.cfg.Now().Before(end.OccurredAt.Add(s.cfg.Retention)) {
		return false, time.Time{}, nil
	}
	for _, e := range events {
		if e.CommandUUID == id {
			return true, end.OccurredAt, nil
		}
	}
	return false, time.Time{}, nil
}

// notYet turns a view's absence into "not applied yet" (nil) and keeps
// other errors.
func notYet(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
