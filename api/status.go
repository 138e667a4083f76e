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
// The store records ACCEPTED (the API, before it publishes) and REJECTED
// (a worker, with the reason). APPLIED is not written: a command is APPLIED
// once the view of the aggregate it changes shows its events (docs/guarantees.md),
// which is what this reads:
//   - the view's RecentCommands tell at once for a command among the last
//     few of its aggregate, or for any command while the list is not full;
//   - for an older one, the event log gives the command's last seq, and the
//     view shows it when its version has reached that seq. A command younger
//     than recentGrace is not looked up there: it is almost always still on
//     its way (the first poll right after the POST), and reading the log for
//     it would cost a read per poll. Should it have been applied and pushed
//     out of the list already (RecentCommandsCap later commands on the same
//     aggregate within recentGrace), it reads ACCEPTED until then: late,
//     never wrong, and a Waiter still wakes its long poll with APPLIED.
//
// Skipping that write saves one DynamoDB write unit per command, a quarter
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
	old := s.cfg.Now().Sub(st.CreatedAt) >= recentGrace
	applied, at, err := s.applied(ctx, aggregateID, id, old)
	if err != nil {
		return st, fmt.Errorf("status of command %s: %w", id, err)
	}
	if applied {
		st.Status, st.UpdatedAt = model.CommandApplied, at
	}
	return st, nil
}

// recentGrace is how old a command must be before a status read looks for
// it in the event log when the view's recent commands do not settle it.
const recentGrace = 5 * time.Second

// applied reports whether the view of aggregateID shows the command's
// events, and the view's updatedAt. It reads the event log only when the
// view's recent commands do not tell and old is set.
func (s *Server) applied(ctx context.Context, aggregateID string, id uuid.UUID, old bool) (bool, time.Time, error) {
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
	if applied, known := model.Recent(recent, id); known || !old {
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
