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

// AggregateResource returns the API path of an aggregate ("" for an id that
// does not parse).
func AggregateResource(aggregateID string) string {
	kind, id, err := ParseAggregateID(aggregateID)
	switch {
	case err != nil:
		return ""
	case kind == KindWorkflow:
		return "/v1/workflows/" + id.String()
	}
	return "/v1/workflow-executions/" + id.String()
}

// ResourcePath returns the API path of the aggregate a command changes.
func ResourcePath(p Payload) string { return AggregateResource(p.AggregateID()) }

// ResourceAggregate is the inverse of AggregateResource: the aggregate id of
// an API path ("" and false for a path that names no aggregate).
func ResourceAggregate(path string) (aggregateID string, ok bool) {
	for kind, prefix := range map[string]string{KindWorkflow: "/v1/workflows/", KindExecution: "/v1/workflow-executions/"} {
		if text, found := strings.CutPrefix(path, prefix); found {
			if id, err := uuid.Parse(text); err == nil && len(text) == 36 {
				return kind + ":" + id.String(), true
			}
		}
	}
	return "", false
}
