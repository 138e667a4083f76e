package model

import (
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// Aggregate kinds: the part of an aggregate id before the colon.
const (
	KindWorkflow  = "workflow"
	KindExecution = "execution"
)

// WorkflowAggregateID returns the event-log key of the workflow with this UUID.
func WorkflowAggregateID(id uuid.UUID) string { return KindWorkflow + ":" + id.String() }

// ExecutionAggregateID returns the event-log key of the execution with this UUID.
func ExecutionAggregateID(id uuid.UUID) string { return KindExecution + ":" + id.String() }

// AggregateKind returns the kind of an aggregate id, the part before its
// colon, without checking the UUID after it (ParseAggregateID does).
func AggregateKind(aggregateID string) string {
	kind, _, _ := strings.Cut(aggregateID, ":")
	return kind
}

// ParseAggregateID splits an aggregate id into its kind and UUID.
func ParseAggregateID(aggregateID string) (kind string, id uuid.UUID, err error) {
	kind, text, _ := strings.Cut(aggregateID, ":")
	if kind != KindWorkflow && kind != KindExecution {
		return "", uuid.Nil, fmt.Errorf("aggregate id %q: unknown kind %q", aggregateID, kind)
	}
	if id, err = uuid.Parse(text); err != nil {
		return "", uuid.Nil, fmt.Errorf("aggregate id %q: %w", aggregateID, err)
	}
	return kind, id, nil
}
