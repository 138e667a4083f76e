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
