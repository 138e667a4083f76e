package model_test

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
)

// BenchmarkIncrementDecideAndFold: an increment of a 3-step manual
// execution decided and folded, as the worker does per step.
func BenchmarkIncrementDecideAndFold(b *testing.B) {
	steps := []model.StepDefinition{{Name: "a", Type: model.StepManual}, {Name: "b", Type: model.StepManual}, {Name: "c", Type: model.StepManual}}
	wf := model.Workflow{WorkflowUUID: uuid.New(), Version: 1, Steps: steps, Seq: 1}
	id := uuid.New()
	ev, err := model.DecideExecution(model.Execution{}, model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: id, WorkflowUUID: wf.WorkflowUUID, Input: json.RawMessage(`{"order":7}`)}, t0), &wf, t0)
	if err != nil {
		b.Fatal(err)
	}
	x, err := model.FoldExecution(model.Execution{}, ev)
	if err != nil {
		b.Fatal(err)
	}
	c := model.NewCommand(uuid.New(), model.IncrementExecution{WorkflowExecutionUUID: id, Step: 0, Output: json.RawMessage(`{"ok":true}`)}, t0)
	b.ReportAllocs()
	for b.Loop() {
		ev, err := model.DecideExecution(x, c, nil, t0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := model.FoldExecution(x, ev); err != nil {
			b.Fatal(err)
		}
	}
}
