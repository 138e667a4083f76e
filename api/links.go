package api

import "github.com/workflowd/workflowd/model"

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
