package api

import (
	"testing"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
)

func TestResourcePathOfAnAggregate(t *testing.T) {
	id := uuid.New()
	tests := []struct{ name, aggregateID, want string }{
		{"workflow", model.WorkflowAggregateID(id), "/v1/workflows/" + id.String()},
		{"execution", model.ExecutionAggregateID(id), "/v1/workflow-executions/" + id.String()},
		{"empty", "", ""},
		{"unknown_kind", "job:" + id.String(), ""},
		{"bad_uuid", "execution:nope", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resourcePath(tt.aggregateID); got != tt.want {
				t.Errorf("resourcePath(%q): got %q, want %q", tt.aggregateID, got, tt.want)
			}
		})
	}
}

// A command status names its aggregate by id; one written by an earlier
// build holds the resource's path, and still names the same aggregate.
func TestStatusAggregateReadsIdsAndEarlierPaths(t *testing.T) {
	id := uuid.New()
	tests := []struct {
		name, stored, want string
		ok                 bool
	}{
		{"aggregate_id", model.ExecutionAggregateID(id), model.ExecutionAggregateID(id), true},
		{"earlier_workflow_path", "/v1/workflows/" + id.String(), model.WorkflowAggregateID(id), true},
		{"earlier_execution_path", "/v1/workflow-executions/" + id.String(), model.ExecutionAggregateID(id), true},
		{"empty", "", "", false},
		{"path_without_uuid", "/v1/workflows/nope", "", false},
		{"path_with_more", "/v1/workflows/" + id.String() + "/x", "", false},
		{"other_path", "/v1/jobs/" + id.String(), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := statusAggregate(model.CommandStatus{AggregateID: tt.stored})
			if got != tt.want || ok != tt.ok {
				t.Errorf("statusAggregate(%q): got %q %v, want %q %v", tt.stored, got, ok, tt.want, tt.ok)
			}
			if want := resourcePath(tt.want); statusResource(model.CommandStatus{AggregateID: tt.stored}) != want {
				t.Errorf("statusResource(%q): want %q", tt.stored, want)
			}
		})
	}
}
