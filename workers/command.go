package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// EventLog is what the workers need of the event log.
type EventLog interface {
	Append(ctx context.Context, events []model.Event) error
	Load(ctx context.Context, aggregateID string, afterSeq int64) ([]model.Event, error)
}

// CommandFinisher records the outcome of a command.
type CommandFinisher interface {
	FinishCommand(ctx context.Context, c model.CommandStatus) error
}

// ErrRetry is wrapped by Handle errors that mean "leave the message for a
// later delivery"; the consumer makes it visible again after RetryAfter.
var ErrRetry = errors.New("retry later")

// RetryError asks the consumer to retry after a delay.
type RetryError struct {
	After  time.Duration
	Reason string
}

func (e *RetryError) Error() string { return "retry in " + e.After.String() + ": " + e.Reason }
func (e *RetryError) Unwrap() error { return ErrRetry }

// maxConflictRetries bounds the reload-and-decide loop of one delivery. Each
// round means another writer appended to the same aggregate in between.
const maxConflictRetries = 50

// CommandWorker handles command messages of both queues: workflow commands
// and execution commands.
type CommandWorker struct {
	Log      EventLog
	Commands CommandFinisher
	Logger   *slog.Logger
	Now      func() time.Time
	// TransientAttempts is how many deliveries a transiently rejected command
	// (an execution of a workflow not applied yet) gets before it is rejected
	// for good. Default 5.
	TransientAttempts int
	// OnFinished, if set, is called after a command is marked REJECTED.
	OnFinished func(commandUUID uuid.UUID)
}

// Handle processes one command message body. receiveCount is the delivery's
// receive count (1 on the first delivery).
//
// It returns nil when the message is done with and may be deleted: the
// command was applied, was already applied (a redelivery), or was rejected
// (its status says why). It returns a *RetryError for a transient condition,
// and any other error for a failure the consumer should retry by redelivery
// (a malformed message thus ends in the dead-letter queue).
func (w *CommandWorker) Handle(ctx context.Context, body []byte, receiveCount int) error {
	cmd, err := model.DecodeCommand(body)
	if err != nil {
		return err
	}
	return w.HandleCommand(ctx, cmd, receiveCount)
}

// HandleCommand is Handle for a decoded command.
func (w *CommandWorker) HandleCommand(ctx context.Context, cmd model.Command, receiveCount int) error {
	aggregateID := cmd.AggregateID()
	for attempt := 0; attempt < maxConflictRetries; attempt++ {
		history, err := w.Log.Load(ctx, aggregateID, 0)
		if err != nil {
			return fmt.Errorf("load %s: %w", aggregateID, err)
		}
		if appliedBefore(history, cmd.CommandUUID) {
			w.logger().Debug("duplicate command acknowledged", "command", cmd.CommandUUID, "type", cmd.Type)
			return nil
		}
		events, err := w.decide(ctx, cmd, history)
		var rej *model.Rejection
		if errors.As(err, &rej) {
			if rej.Transient && receiveCount < w.transientAttempts() {
				return &RetryError{After: transientDelay(receiveCount), Reason: rej.Reason}
			}
			return w.reject(ctx, cmd, rej.Reason)
		}
		if err != nil {
			return err
		}
		err = w.Log.Append(ctx, events)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, store.ErrDuplicate):
			return nil // a racing delivery of the same command won
		case errors.Is(err, store.ErrConflict):
			continue // another command won this seq: reload and decide again
		default:
			return fmt.Errorf("append %s: %w", aggregateID, err)
		}
	}
	return &RetryError{After: time.Second, Reason: "too many concurrent writers on " + aggregateID}
}

func (w *CommandWorker) decide(ctx context.Context, cmd model.Command, history []model.Event) ([]model.Event, error) {
	now := w.now()
	switch model.QueueFor(cmd.Type) {
	case model.QueueWorkflows:
		s, err := model.FoldWorkflow(model.Workflow{}, history)
		if err != nil {
			return nil, err
		}
		return model.DecideWorkflow(s, cmd, now)
	case model.QueueExecutions:
		s, err := model.FoldExecution(model.Execution{}, history)
		if err != nil {
			return nil, err
		}
		var wf *model.Workflow
		if start, ok := cmd.Payload.(model.StartExecution); ok {
			if wf, err = w.loadWorkflow(ctx, start.WorkflowUUID); err != nil {
				return nil, err
			}
		}
		return model.DecideExecution(s, cmd, wf, now)
	}
	return nil, fmt.Errorf("command type %q has no worker", cmd.Type)
}

func (w *CommandWorker) loadWorkflow(ctx context.Context, id uuid.UUID) (*model.Workflow, error) {
	events, err := w.Log.Load(ctx, model.WorkflowAggregateID(id), 0)
	if err != nil {
		return nil, fmt.Errorf("load workflow %s: %w", id, err)
	}
	if len(events) == 0 {
		return nil, nil
	}
	wf, err := model.FoldWorkflow(model.Workflow{}, events)
	if err != nil {
		return nil, err
	}
	return &wf, nil
}

func (w *CommandWorker) reject(ctx context.Context, cmd model.Command, reason string) error {
	now := w.now()
	err := w.Commands.FinishCommand(ctx, model.CommandStatus{
		CommandUUID: cmd.CommandUUID,
		Type:        cmd.Type,
		Status:      model.CommandRejected,
		Error:       reason,
		Resource:    model.ResourcePath(cmd.Payload),
		CreatedAt:   now,
		UpdatedAt:   now,
	})
	if err != nil {
		return fmt.Errorf("record rejection of %s: %w", cmd.CommandUUID, err)
	}
	w.logger().Info("command rejected", "command", cmd.CommandUUID, "type", cmd.Type, "reason", reason)
	if w.OnFinished != nil {
		w.OnFinished(cmd.CommandUUID)
	}
	return nil
}

func appliedBefore(history []model.Event, commandUUID uuid.UUID) bool {
	for i := len(history) - 1; i >= 0; i-- {
		if history[i].CommandUUID == commandUUID {
			return true
		}
	}
	return false
}

func (w *CommandWorker) transientAttempts() int {
	if w.TransientAttempts > 0 {
		return w.TransientAttempts
	}
	return 5
}

func (w *CommandWorker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *CommandWorker) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.Default()
}

// transientDelay is the wait before redelivering a transiently rejected
// command after its n-th receive: 200ms, 400ms, 800ms…
func transientDelay(n int) time.Duration {
	return 200 * time.Millisecond << min(max(n-1, 0), 6)
}
