package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/internal/parallel"
	"github.com/workflowd/workflowd/model"
)

// Publisher is what the dispatcher needs of the bus.
type Publisher interface {
	Publish(ctx context.Context, msg bus.Message) error
}

// Scheduler delivers a message after a delay: the executions queue's
// delayed delivery (at most the Dispatcher's MaxDelay).
type Scheduler interface {
	Send(ctx context.Context, msg bus.Message, delay time.Duration) error
}

// Dispatcher starts the follow-up work that events call for, by publishing
// commands. It never runs after a worker's own write: it reads the event log
// (the outbox), so a crash between append and publish loses nothing, and the
// commands it publishes have UUIDs derived from the event, so reading an
// event twice publishes a duplicate that the workers ignore.
//
// It begins created executions, and schedules, through the executions
// queue's delayed delivery, the end of a wait step and the retry of a
// failed http attempt. (The first attempt of an http step is made by the
// worker whose append started the step; only for a StepStarted of an
// earlier build, not marked Held, does the dispatcher issue it.) What
// is due later than MaxDelay is left to the cleanup, which issues the
// same commands (model.Execution.DueCommand).
type Dispatcher struct {
	Publisher Publisher
	// Scheduler delays timers and retries (nil: they are left to the cleanup).
	Scheduler Scheduler
	// MaxDelay is the longest delay Scheduler takes (the bus's; 0: none,
	// every timer and retry is left to the cleanup).
	MaxDelay time.Duration
	Logger   *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// followUp is a command to send, after a delay or at once.
type followUp struct {
	cmd   model.Command
	delay time.Duration
	event model.Event
}

// Handle dispatches the follow-ups of a batch of events, concurrently (so
// that the bus can batch them); it returns the first error (the caller
// retries the batch, and the duplicates it sends again are ignored).
func (d *Dispatcher) Handle(ctx context.Context, events []model.Event) error {
	var work []followUp
	for i, e := range events {
		if e.Type == model.EventExecutionCreated && begunBy(events, i) {
			continue // created and begun in one append (an execution of this build)
		}
		f, ok, err := d.followUp(e)
		if err != nil {
			return err
		}
		if ok {
			work = append(work, f)
		}
	}
	for _, err := range parallel.Each(len(work), sendLimit, func(i int) error { return d.send(ctx, work[i]) }) {
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *Dispatcher) send(ctx context.Context, f followUp) error {
	msg, err := bus.CommandMessage(f.cmd)
	if err != nil {
		return err
	}
	switch {
	case f.delay <= 0:
		err = d.Publisher.Publish(ctx, msg)
	case f.delay > d.MaxDelay || d.Scheduler == nil:
		return nil // the cleanup issues it when it is due
	default:
		err = d.Scheduler.Send(ctx, msg, f.delay)
	}
	if err != nil {
		return fmt.Errorf("dispatch %s for %s seq %d: %w", f.cmd.Type, f.event.AggregateID, f.event.Seq, err)
	}
	return nil
}

// begunBy reports whether the event after events[i] in the batch is the
// same aggregate's ExecutionStarted: the append that created the execution
// began it too, and BeginExecution would only be refused.
func begunBy(events []model.Event, i int) bool {
	if i+1 >= len(events) {
		return false
	}
	next := events[i+1]
	return next.Type == model.EventExecutionStarted && next.AggregateID == events[i].AggregateID && next.Seq == events[i].Seq+1
}

// followUp returns the command event e calls for, if any. (An
// ExecutionCreated an earlier build appended alone calls for
// BeginExecution.)
func (d *Dispatcher) followUp(e model.Event) (followUp, bool, error) {
	_, id, err := model.ParseAggregateID(e.AggregateID)
	if err != nil {
		return followUp{}, false, fmt.Errorf("dispatch: %w", err)
	}
	decode := func(v any) error {
		if err := json.Unmarshal(e.Data, v); err != nil {
			return fmt.Errorf("dispatch %s seq %d (%s): %w", e.AggregateID, e.Seq, e.Type, err)
		}
		return nil
	}
	now := d.now()
	switch e.Type {
	case model.EventExecutionCreated:
		return followUp{cmd: model.BeginCommand(id, e.OccurredAt), event: e}, true, nil
	case model.EventStepStarted:
		var data model.StepStarted
		if err := decode(&data); err != nil {
			return followUp{}, false, err
		}
		switch {
		case data.Type == model.StepHTTP && data.Held:
			// The worker that appended it makes the attempt (CommandWorker.follow).
		case data.Type == model.StepHTTP:
			return followUp{cmd: model.RunStepCommand(id, data.Step, data.Run, 1, e.OccurredAt), event: e}, true, nil
		case data.Type == model.StepWait && data.DueAt != nil:
			return followUp{cmd: model.TimerCommand(id, data.Step, data.Run, e.OccurredAt), delay: delayUntil(*data.DueAt, now), event: e}, true, nil
		}
	case model.EventStepAttemptFailed:
		var data model.StepAttemptFailed
		if err := decode(&data); err != nil {
			return followUp{}, false, err
		}
		return followUp{cmd: model.RunStepCommand(id, data.Step, data.Run, data.Attempt+1, e.OccurredAt), delay: delayUntil(data.RetryAt, now), event: e}, true, nil
	case model.EventExecutionResumed:
		// The timer or retry the pause held back, issued again (its
		// command, dropped while paused, has the same UUID).
		var data model.Paused
		if err := decode(&data); err != nil {
			return followUp{}, false, err
		}
		switch {
		case data.Step == nil || data.DueAt == nil:
		case data.Type == model.StepWait:
			return followUp{cmd: model.TimerCommand(id, *data.Step, data.Run, e.OccurredAt), delay: delayUntil(*data.DueAt, now), event: e}, true, nil
		case data.Type == model.StepHTTP:
			return followUp{cmd: model.RunStepCommand(id, *data.Step, data.Run, data.Attempt, e.OccurredAt), delay: delayUntil(*data.DueAt, now), event: e}, true, nil
		}
	}
	return followUp{}, false, nil
}

// delayUntil returns the delay to at, at least a millisecond, so that a
// timer always goes through the scheduler (and a feed replayed late sends
// it at once, as the queue delivers a delay rounded up to whole seconds).
func delayUntil(at, now time.Time) time.Duration {
	return max(at.Sub(now), time.Millisecond)
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}
