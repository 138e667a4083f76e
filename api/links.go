package api

import (
	"strings"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
)

// resourcePath returns the API path of an aggregate: where a client reads
// the view of the aggregate a command changes ("" for an id that does not
// parse). The domain names aggregates by id; only the API knows paths.
func resourcePath(aggregateID string) string {
	kind, id, err := model.ParseAggregateID(aggregateID)
	switch {
	case err != nil:
		return ""
	case kind == model.KindWorkflow:
		return "/v1/workflows/" + id.String()
	}
	return "/v1/workflow-executions/" + id.String()
}

// statusResource is the API path of the resource a command status names
// ("" if none).
func statusResource(st model.CommandStatus) string {
	aggregateID, _ := statusAggregate(st)
	return resourcePath(aggregateID)
}

// statusAggregate returns the aggregate a command status names, and
// whether it names one. Statuses written before 02/12/2026 hold the API path
// of the aggregate's resource instead of its id: those are read too.
func statusAggregate(st model.CommandStatus) (string, bool) {
	if _, _, err := model.ParseAggregateID(st.AggregateID); err == nil {
		return st.AggregateID, true
	}
	for kind, prefix := range map[string]string{model.KindWorkflow: "/v1/workflows/", model.KindExecution: "/v1/workflow-executions/"} {
		if text, found := strings.CutPrefix(st.AggregateID, prefix); found {
			if id, err := uuid.Parse(text); err == nil && len(text) == 36 {
				return kind + ":" + id.String(), true
			}
		}
	}
	return "", false
}
