package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/model"
)

// Publisher is what the dispatcher needs of the bus.
type Publisher interface {
	Publish(ctx context.Context, msg bus.Message) error
}

// Dispatcher starts the follow-up work that events call for, by publishing
// commands. It never runs after a worker's own write: it reads the event log
// (the outbox), so a crash between append and publish loses nothing, and the
// commands it publishes have UUIDs derived from the event, so reading an
// event twice publishes a duplicate that the workers ignore.
type Dispatcher struct {
	Publisher Publisher
	Logger    *slog.Logger
}

// Handle dispatches a batch of events in order; it returns the first error
// (the caller retries the batch).
func (d *Dispatcher) Handle(ctx context.Context, events []model.Event) error {
	for _, e := range events {
		cmd, ok, err := d.followUp(e)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		msg, err := bus.CommandMessage(cmd)
		if err != nil {
			return err
		}
		if err := d.Publisher.Publish(ctx, msg); err != nil {
			return fmt.Errorf("dispatch %s for %s seq %d: %w", cmd.Type, e.AggregateID, e.Seq, err)
		}
	}
	return nil
}

// followUp returns the command event e calls for, if any.
func (d *Dispatcher) followUp(e model.Event) (model.Command, bool, error) {
	switch e.Type {
	case model.EventExecutionCreated:
		var data model.ExecutionCreated
		if err := json.Unmarshal(e.Data, &data); err != nil {
			return model.Command{}, false, fmt.Errorf("dispatch %s seq %d: %w", e.AggregateID, e.Seq, err)
		}
		id := model.DerivedUUID(e.EventUUID, "begin")
		return model.NewCommand(id, model.BeginExecution{WorkflowExecutionUUID: data.WorkflowExecutionUUID}, e.OccurredAt), true, nil
	}
	return model.Command{}, false, nil
}
