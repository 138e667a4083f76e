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

// BenchmarkFoldAndViewOfTenSteps: what a worker and a projector pay for an
// execution they do not hold in memory: the history of a 10-step manual
// execution, five steps in, folded from the start, and its view decoded,
// folded on by one increment and encoded again.
func BenchmarkFoldAndViewOfTenSteps(b *testing.B) {
	var steps []model.StepDefinition
	for i := range 10 {
		steps = append(steps, model.StepDefinition{Name: string(rune('a' + i)), Type: model.StepManual})
	}
	wf := model.Workflow{WorkflowUUID: uuid.New(), Version: 1, Steps: steps, Seq: 1}
	id := uuid.New()
	history, err := model.DecideExecution(model.Execution{}, model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: id, WorkflowUUID: wf.WorkflowUUID, Input: json.RawMessage(`{"order":7}`)}, t0), &wf, t0)
	if err != nil {
		b.Fatal(err)
	}
	x, _ := model.FoldExecution(model.Execution{}, history)
	for step := range 6 {
		ev, err := model.DecideExecution(x, model.NewCommand(uuid.New(), model.IncrementExecution{WorkflowExecutionUUID: id, Step: step, Output: json.RawMessage(`{"ok":true}`)}, t0), nil, t0)
		if err != nil {
			b.Fatal(err)
		}
		x, _ = model.FoldExecution(x, ev)
		history = append(history, ev...)
	}
	last := history[len(history)-2:]
	before, _ := model.FoldExecution(model.Execution{}, history[:len(history)-2])
	view, _ := json.Marshal(before)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := model.FoldExecution(model.Execution{}, history); err != nil {
			b.Fatal(err)
		}
		var v model.Execution
		if err := json.Unmarshal(view, &v); err != nil {
			b.Fatal(err)
		}
		v.Version = before.Version
		next, err := model.FoldExecution(v, last)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(next); err != nil {
			b.Fatal(err)
		}
	}
}
