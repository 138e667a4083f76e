package model

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Event types.
const (
	EventWorkflowCreated        = "WorkflowCreated"
	EventWorkflowVersionCreated = "WorkflowVersionCreated"
	EventWorkflowDeleted        = "WorkflowDeleted"
	EventExecutionCreated       = "ExecutionCreated"
	EventExecutionStarted       = "ExecutionStarted"
	EventStepStarted            = "StepStarted"
	EventStepCompleted          = "StepCompleted"
	EventExecutionSucceeded     = "ExecutionSucceeded"
	EventExecutionCancelled     = "ExecutionCancelled"
)

// Event is one immutable fact in an aggregate's log (DESIGN.md §4 envelope).
// All events one command produces are appended together, with consecutive
// seqs, and their eventUUIDs derive from the command's UUID.
type Event struct {
	AggregateID string          `json:"aggregateId"`
	Seq         int64           `json:"seq"`
	EventUUID   uuid.UUID       `json:"eventUUID"`
	Type        string          `json:"type"`
	Data        json.RawMessage `json:"data"`
	CommandUUID uuid.UUID       `json:"commandUUID"`
	OccurredAt  time.Time       `json:"occurredAt"`
}

// Clone returns a copy of e that shares no memory with it.
func (e Event) Clone() Event {
	e.Data = cloneRaw(e.Data)
	return e
}

// WorkflowDefined is the data of WorkflowCreated and WorkflowVersionCreated.
type WorkflowDefined struct {
	WorkflowUUID uuid.UUID `json:"workflowUUID"`
	Version      int       `json:"version"`
	Definition
}

// ExecutionCreated is the data of EventExecutionCreated: the execution keeps
// a copy of the steps of the workflow version it was started on.
type ExecutionCreated struct {
	WorkflowExecutionUUID uuid.UUID        `json:"workflowExecutionUUID"`
	WorkflowUUID          uuid.UUID        `json:"workflowUUID"`
	WorkflowVersion       int              `json:"workflowVersion"`
	TimeoutSeconds        int              `json:"timeoutSeconds,omitempty"`
	Steps                 []StepDefinition `json:"steps"`
	Input                 json.RawMessage  `json:"input,omitempty"`
}

// StepStarted is the data of EventStepStarted.
type StepStarted struct {
	Step int `json:"step"`
}

// StepCompleted is the data of EventStepCompleted.
type StepCompleted struct {
	Step   int             `json:"step"`
	Output json.RawMessage `json:"output,omitempty"`
}

// ExecutionFinished is the data of the events that end an execution.
type ExecutionFinished struct {
	Output json.RawMessage `json:"output,omitempty"`
	Reason string          `json:"reason,omitempty"`
}

// decodeData decodes an event's data into v, naming the event on failure.
func decodeData(e Event, v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("event %s seq %d (%s): bad data: %w", e.AggregateID, e.Seq, e.Type, err)
	}
	return nil
}

// eventsFor builds the events of one command: consecutive seqs after lastSeq,
// eventUUIDs derived from the command, one timestamp.
func eventsFor(aggregateID string, lastSeq int64, c Command, now time.Time, types []string, data []any) ([]Event, error) {
	out := make([]Event, len(types))
	for i, t := range types {
		b, err := json.Marshal(data[i])
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", t, err)
		}
		out[i] = Event{
			AggregateID: aggregateID,
			Seq:         lastSeq + int64(i) + 1,
			EventUUID:   EventUUID(c.CommandUUID, i),
			Type:        t,
			Data:        b,
			CommandUUID: c.CommandUUID,
			OccurredAt:  now.UTC(),
		}
	}
	return out, nil
}
