package api_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/workflowd/workflowd/model"
)

// The starts of a workflow read it once a second at most; a deletion this
// API accepted is seen by the next start at once.
func TestStartsShareTheCheckOfTheirWorkflow(t *testing.T) {
	e := newEnv(t)
	wf := e.seedWorkflow(t, definition("orders", 1), t0)
	start := func() *response {
		return e.do(t, http.MethodPost, "/v1/workflow-executions", map[string]any{"workflowUUID": wf.WorkflowUUID.String()})
	}
	e.views.workflowGets.Store(0)
	for range 5 {
		start().wantStatus(t, http.StatusAccepted)
	}
	if n := e.views.workflowGets.Load(); n != 1 {
		t.Fatalf("5 starts read the workflow %d times, want 1", n)
	}
	e.do(t, http.MethodDelete, fmt.Sprintf("/v1/workflows/%s", wf.WorkflowUUID), nil).wantStatus(t, http.StatusAccepted)
	e.runWorkflow(t, wf, model.DeleteWorkflow{WorkflowUUID: wf.WorkflowUUID}, t0.Add(time.Hour)) // applied
	start().wantStatus(t, http.StatusConflict)
}
