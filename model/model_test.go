package model_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func manualSteps(names ...string) []model.StepDefinition {
	var s []model.StepDefinition
	for _, n := range names {
		s = append(s, model.StepDefinition{Name: n, Type: model.StepManual})
	}
	return s
}

func TestDefinitionValidate(t *testing.T) {
	valid := func() model.Definition {
		return model.Definition{Name: "orders", Description: "d", TimeoutSeconds: 60, Steps: manualSteps("a", "b")}
	}
	tests := []struct {
		name      string
		change    func(d *model.Definition)
		wantField string // "" means valid
	}{
		{name: "valid", change: func(d *model.Definition) {}},
		{name: "minimal", change: func(d *model.Definition) { *d = model.Definition{Name: "n", Steps: manualSteps("a")} }},
		{name: "name_at_max_in_runes", change: func(d *model.Definition) { d.Name = strings.Repeat("é", model.MaxNameLen) }},
		{name: "max_steps", change: func(d *model.Definition) {
			d.Steps = nil
			for i := range model.MaxSteps {
				d.Steps = append(d.Steps, model.StepDefinition{Name: fmt.Sprint(i), Type: model.StepManual})
			}
		}},
		{name: "timeout_at_max", change: func(d *model.Definition) { d.TimeoutSeconds = model.MaxTimeoutSeconds }},
		{name: "missing_name", change: func(d *model.Definition) { d.Name = "" }, wantField: "name"},
		{name: "name_too_long", change: func(d *model.Definition) { d.Name = strings.Repeat("n", model.MaxNameLen+1) }, wantField: "name"},
		{name: "description_too_long", change: func(d *model.Definition) { d.Description = strings.Repeat("d", model.MaxDescriptionLen+1) }, wantField: "description"},
		{name: "negative_timeout", change: func(d *model.Definition) { d.TimeoutSeconds = -1 }, wantField: "timeoutSeconds"},
		{name: "timeout_over_max", change: func(d *model.Definition) { d.TimeoutSeconds = model.MaxTimeoutSeconds + 1 }, wantField: "timeoutSeconds"},
		{name: "no_steps", change: func(d *model.Definition) { d.Steps = nil }, wantField: "steps"},
		{name: "too_many_steps", change: func(d *model.Definition) {
			for i := range model.MaxSteps {
				d.Steps = append(d.Steps, model.StepDefinition{Name: fmt.Sprint(i), Type: model.StepManual})
			}
		}, wantField: "steps"},
		{name: "step_without_name", change: func(d *model.Definition) { d.Steps[1].Name = "" }, wantField: "steps[1].name"},
		{name: "step_name_too_long", change: func(d *model.Definition) { d.Steps[0].Name = strings.Repeat("s", model.MaxNameLen+1) }, wantField: "steps[0].name"},
		{name: "duplicate_step_name", change: func(d *model.Definition) { d.Steps[1].Name = "a" }, wantField: "steps[1].name"},
		{name: "step_without_type", change: func(d *model.Definition) { d.Steps[0].Type = "" }, wantField: "steps[0].type"},
		{name: "wait_step", change: func(d *model.Definition) {
			d.Steps[1] = model.StepDefinition{Name: "w", Type: model.StepWait, Seconds: 2}
		}},
		{name: "wait_step_with_timeout", change: func(d *model.Definition) {
			d.Steps[1] = model.StepDefinition{Name: "w", Type: model.StepWait, Seconds: 2, TimeoutSeconds: 1}
		}},
		{name: "http_step_minimal", change: func(d *model.Definition) { d.Steps[0] = httpStep(func(*model.StepDefinition) {}) }},
		{name: "http_step_full", change: func(d *model.Definition) {
			d.Steps[0] = httpStep(func(s *model.StepDefinition) {
				s.Method, s.TimeoutSeconds, s.Headers = "PUT", model.MaxHTTPTimeout, map[string]string{"Authorization": "Bearer {{secret:api-token}}", "X-Trace": "1"}
				s.Retry = &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: model.MaxHTTPAttempts, BackoffSeconds: 0.5, MaxBackoffSeconds: 60}}
			})
		}},
		{name: "wait_without_seconds", change: func(d *model.Definition) { d.Steps[1].Type = model.StepWait }, wantField: "steps[1].seconds"},
		{name: "wait_seconds_over_max", change: func(d *model.Definition) {
			d.Steps[1] = model.StepDefinition{Name: "w", Type: model.StepWait, Seconds: model.MaxTimeoutSeconds + 1}
		}, wantField: "steps[1].seconds"},
		{name: "wait_with_url", change: func(d *model.Definition) {
			d.Steps[1] = model.StepDefinition{Name: "w", Type: model.StepWait, Seconds: 1, URL: "http://x"}
		}, wantField: "steps[1].url"},
		{name: "manual_with_seconds", change: func(d *model.Definition) { d.Steps[0].Seconds = 3 }, wantField: "steps[0].seconds"},
		{name: "manual_with_retry", change: func(d *model.Definition) { d.Steps[0].Retry = &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: 1}} }, wantField: "steps[0].retry"},
		{name: "http_without_url", change: func(d *model.Definition) { d.Steps[0].Type = model.StepHTTP }, wantField: "steps[0].url"},
		{name: "http_relative_url", change: func(d *model.Definition) { d.Steps[0] = httpStep(func(s *model.StepDefinition) { s.URL = "/hook" }) }, wantField: "steps[0].url"},
		{name: "http_ftp_url", change: func(d *model.Definition) {
			d.Steps[0] = httpStep(func(s *model.StepDefinition) { s.URL = "ftp://h/x" })
		}, wantField: "steps[0].url"},
		{name: "http_url_with_credentials", change: func(d *model.Definition) {
			d.Steps[0] = httpStep(func(s *model.StepDefinition) { s.URL = "http://u:p@h/x" })
		}, wantField: "steps[0].url"},
		{name: "http_url_too_long", change: func(d *model.Definition) {
			d.Steps[0] = httpStep(func(s *model.StepDefinition) { s.URL = "http://h/" + strings.Repeat("x", model.MaxURLLen) })
		}, wantField: "steps[0].url"},
		{name: "http_bad_method", change: func(d *model.Definition) { d.Steps[0] = httpStep(func(s *model.StepDefinition) { s.Method = "post" }) }, wantField: "steps[0].method"},
		{name: "http_bad_header_name", change: func(d *model.Definition) {
			d.Steps[0] = httpStep(func(s *model.StepDefinition) { s.Headers = map[string]string{"Bad Name": "v"} })
		}, wantField: "steps[0].headers"},
		{name: "http_reserved_header", change: func(d *model.Definition) {
			d.Steps[0] = httpStep(func(s *model.StepDefinition) { s.Headers = map[string]string{"idempotency-key": "mine"} })
		}, wantField: "steps[0].headers"},
		{name: "http_header_with_newline", change: func(d *model.Definition) {
			d.Steps[0] = httpStep(func(s *model.StepDefinition) { s.Headers = map[string]string{"X-A": "v\r\nX-B: w"} })
		}, wantField: "steps[0].headers"},
		{name: "http_timeout_over_max", change: func(d *model.Definition) {
			d.Steps[0] = httpStep(func(s *model.StepDefinition) { s.TimeoutSeconds = model.MaxHTTPTimeout + 1 })
		}, wantField: "steps[0].timeoutSeconds"},
		{name: "http_deadline_over_max", change: func(d *model.Definition) {
			d.Steps[0] = httpStep(func(s *model.StepDefinition) { s.DeadlineSeconds = model.MaxHTTPDeadline + 1 })
		}, wantField: "steps[0].deadlineSeconds"},
		{name: "deadline_on_a_manual_step", change: func(d *model.Definition) {
			d.Steps[0] = model.StepDefinition{Name: "m", Type: model.StepManual, DeadlineSeconds: 60}
		}, wantField: "steps[0].deadlineSeconds"},
		{name: "http_zero_attempts", change: func(d *model.Definition) {
			d.Steps[0] = httpStep(func(s *model.StepDefinition) { s.Retry = &model.Retry{Policy: &model.RetryPolicy{}} })
		}, wantField: "steps[0].retry.maxAttempts"},
		{name: "http_negative_backoff", change: func(d *model.Definition) {
			d.Steps[0] = httpStep(func(s *model.StepDefinition) {
				s.Retry = &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: 2, BackoffSeconds: -1}}
			})
		}, wantField: "steps[0].retry.backoffSeconds"},
		{name: "http_max_backoff_below_backoff", change: func(d *model.Definition) {
			d.Steps[0] = httpStep(func(s *model.StepDefinition) {
				s.Retry = &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: 2, BackoffSeconds: 10, MaxBackoffSeconds: 5}}
			})
		}, wantField: "steps[0].retry.maxBackoffSeconds"},
		{name: "http_with_seconds", change: func(d *model.Definition) { d.Steps[0] = httpStep(func(s *model.StepDefinition) { s.Seconds = 1 }) }, wantField: "steps[0].seconds"},
		{name: "unknown_step_type", change: func(d *model.Definition) { d.Steps[0].Type = "Manual" }, wantField: "steps[0].type"},
		{name: "negative_step_timeout", change: func(d *model.Definition) { d.Steps[1].TimeoutSeconds = -1 }, wantField: "steps[1].timeoutSeconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := valid()
			tt.change(&d)
			err := d.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			var fe *model.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *model.FieldError on %s", err, tt.wantField)
			}
			if fe.Field != tt.wantField || fe.Problem == "" {
				t.Errorf("got field %q problem %q, want field %q with a problem", fe.Field, fe.Problem, tt.wantField)
			}
		})
	}
}

// httpStep returns a valid http step changed by change.
func httpStep(change func(*model.StepDefinition)) model.StepDefinition {
	s := model.StepDefinition{Name: "call", Type: model.StepHTTP, URL: "http://127.0.0.1:9999/hook"}
	change(&s)
	return s
}

// wantRejection fails unless err is a *model.Rejection with the given
// transience whose reason contains want.
func wantRejection(t *testing.T, err error, transient bool, want string) {
	t.Helper()
	var r *model.Rejection
	if !errors.As(err, &r) {
		t.Fatalf("got %v, want a *model.Rejection", err)
	}
	if r.Transient != transient || !strings.Contains(r.Reason, want) {
		t.Errorf("got rejection %+v, want transient=%v with a reason containing %q", r, transient, want)
	}
}

func eventTypes(events []model.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

// checkEvents checks the envelope of a command's events: consecutive seqs
// after lastSeq, deterministic eventUUIDs, the command's UUID, one time.
func checkEvents(t *testing.T, events []model.Event, c model.Command, lastSeq int64, at time.Time) {
	t.Helper()
	for i, e := range events {
		if e.Seq != lastSeq+int64(i)+1 || e.AggregateID != c.AggregateID() || e.CommandUUID != c.CommandUUID ||
			e.EventUUID != model.EventUUID(c.CommandUUID, i) || !e.OccurredAt.Equal(at) {
			t.Errorf("event %d: got %+v, want seq %d of %s from command %s at %s", i, e, lastSeq+int64(i)+1, c.AggregateID(), c.CommandUUID, at)
		}
	}
}

func decideWorkflow(t *testing.T, s model.Workflow, p model.Payload, at time.Time) (model.Workflow, []model.Event) {
	t.Helper()
	c := model.NewCommand(uuid.New(), p, at)
	events, err := model.DecideWorkflow(s, c, at)
	if err != nil {
		t.Fatalf("decide %s: %v", c.Type, err)
	}
	checkEvents(t, events, c, s.Seq, at)
	n, err := model.FoldWorkflow(s, events)
	if err != nil {
		t.Fatalf("fold %s: %v", c.Type, err)
	}
	return n, events
}

// commandsOf returns the commands of events, each once, in order.
func commandsOf(events []model.Event) []uuid.UUID {
	var ids []uuid.UUID
	for _, e := range events {
		if !slices.Contains(ids, e.CommandUUID) {
			ids = append(ids, e.CommandUUID)
		}
	}
	return ids
}

func TestDecideWorkflow(t *testing.T) {
	id := uuid.New()
	def := model.Definition{Name: "orders", Description: "v1", TimeoutSeconds: 30, Steps: manualSteps("a", "b")}
	created, events := decideWorkflow(t, model.Workflow{}, model.CreateWorkflow{WorkflowUUID: id, Definition: def}, t0)
	if got, want := eventTypes(events), []string{model.EventWorkflowCreated}; !reflect.DeepEqual(got, want) {
		t.Fatalf("create: got events %v, want %v", got, want)
	}
	want := model.Workflow{WorkflowUUID: id, Name: "orders", Description: "v1", TimeoutSeconds: 30, Version: 1,
		Steps: def.Steps, CreatedAt: t0, UpdatedAt: t0, Seq: 1, RecentCommands: commandsOf(events)}
	if !reflect.DeepEqual(created, want) {
		t.Fatalf("create: got %+v, want %+v", created, want)
	}

	t1 := t0.Add(time.Hour)
	def2 := model.Definition{Name: "orders", Steps: manualSteps("only")}
	updated, events := decideWorkflow(t, created, model.UpdateWorkflow{WorkflowUUID: id, Definition: def2}, t1)
	if got, want := eventTypes(events), []string{model.EventWorkflowVersionCreated}; !reflect.DeepEqual(got, want) {
		t.Fatalf("update: got events %v, want %v", got, want)
	}
	want = model.Workflow{WorkflowUUID: id, Name: "orders", Version: 2, Steps: def2.Steps, CreatedAt: t0, UpdatedAt: t1, Seq: 2,
		RecentCommands: append(slices.Clone(created.RecentCommands), commandsOf(events)...)}
	if !reflect.DeepEqual(updated, want) {
		t.Fatalf("update: got %+v, want %+v", updated, want)
	}

	t2 := t1.Add(time.Hour)
	deleted, events := decideWorkflow(t, updated, model.DeleteWorkflow{WorkflowUUID: id}, t2)
	if got, want := eventTypes(events), []string{model.EventWorkflowDeleted}; !reflect.DeepEqual(got, want) {
		t.Fatalf("delete: got events %v, want %v", got, want)
	}
	if !deleted.Deleted() || !deleted.DeletedAt.Equal(t2) || deleted.Version != 2 || deleted.Seq != 3 {
		t.Fatalf("delete: got %+v, want deleted at %s, version 2, seq 3", deleted, t2)
	}

	rejections := []struct {
		name    string
		state   model.Workflow
		payload model.Payload
		reason  string
	}{
		{"create_existing", created, model.CreateWorkflow{WorkflowUUID: id, Definition: def}, "already exists"},
		{"update_missing", model.Workflow{}, model.UpdateWorkflow{WorkflowUUID: id, Definition: def}, "not found"},
		{"update_deleted", deleted, model.UpdateWorkflow{WorkflowUUID: id, Definition: def}, "deleted"},
		{"delete_missing", model.Workflow{}, model.DeleteWorkflow{WorkflowUUID: id}, "not found"},
		{"delete_deleted", deleted, model.DeleteWorkflow{WorkflowUUID: id}, "deleted"},
		{"execution_command", created, model.BeginExecution{WorkflowExecutionUUID: uuid.New()}, "not a workflow command"},
	}
	for _, tt := range rejections {
		t.Run(tt.name, func(t *testing.T) {
			events, err := model.DecideWorkflow(tt.state, model.NewCommand(uuid.New(), tt.payload, t2), t2)
			if events != nil {
				t.Errorf("got events %v, want none", eventTypes(events))
			}
			wantRejection(t, err, false, tt.reason)
		})
	}
}

// execFixture is an execution moved through its life by Decide and Apply.
type execFixture struct {
	t  *testing.T
	id uuid.UUID
	wf model.Workflow
	x  model.Execution
	at time.Time
}

func newExecFixture(t *testing.T, steps ...string) *execFixture {
	wf, _ := decideWorkflow(t, model.Workflow{}, model.CreateWorkflow{WorkflowUUID: uuid.New(),
		Definition: model.Definition{Name: "wf", TimeoutSeconds: 90, Steps: manualSteps(steps...)}}, t0)
	return &execFixture{t: t, id: uuid.New(), wf: wf, at: t0}
}

// run decides p on the fixture's state, checks the events' types and
// envelope, and applies them.
func (f *execFixture) run(p model.Payload, wantTypes ...string) []model.Event {
	f.t.Helper()
	f.at = f.at.Add(time.Minute)
	c := model.NewCommand(uuid.New(), p, f.at)
	events, err := model.DecideExecution(f.x, c, &f.wf, f.at)
	if err != nil {
		f.t.Fatalf("decide %s: %v", c.Type, err)
	}
	if got := eventTypes(events); !reflect.DeepEqual(got, wantTypes) {
		f.t.Fatalf("decide %s: got events %v, want %v", c.Type, got, wantTypes)
	}
	checkEvents(f.t, events, c, f.x.Version, f.at)
	if f.x, err = model.FoldExecution(f.x, events); err != nil {
		f.t.Fatalf("fold %s: %v", c.Type, err)
	}
	return events
}

func (f *execFixture) start() {
	f.t.Helper()
	f.run(model.StartExecution{WorkflowExecutionUUID: f.id, WorkflowUUID: f.wf.WorkflowUUID, Input: json.RawMessage(`{"in":1}`)},
		model.EventExecutionCreated, model.EventExecutionStarted, model.EventStepStarted)
}

// createPending gives the fixture a PENDING execution, as builds before
// entry 27 of the architecture log created them: ExecutionCreated alone,
// begun later by BeginExecution.
func (f *execFixture) createPending() {
	f.t.Helper()
	f.at = f.at.Add(time.Minute)
	c := model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: f.id, WorkflowUUID: f.wf.WorkflowUUID, Input: json.RawMessage(`{"in":1}`)}, f.at)
	events, err := model.DecideExecution(f.x, c, &f.wf, f.at)
	if err != nil || len(events) == 0 || events[0].Type != model.EventExecutionCreated {
		f.t.Fatalf("decide StartExecution: got %v, %v; want ExecutionCreated first", eventTypes(events), err)
	}
	if f.x, err = model.FoldExecution(f.x, events[:1]); err != nil {
		f.t.Fatal(err)
	}
}

func (f *execFixture) increment(step int, wantTypes ...string) {
	f.t.Helper()
	f.run(model.IncrementExecution{WorkflowExecutionUUID: f.id, Step: step, Output: json.RawMessage(fmt.Sprintf(`{"step":%d}`, step))}, wantTypes...)
}

// reject decides p and wants a rejection, leaving the state alone.
func (f *execFixture) reject(p model.Payload, wf *model.Workflow, transient bool, reason string) {
	f.t.Helper()
	events, err := model.DecideExecution(f.x, model.NewCommand(uuid.New(), p, f.at), wf, f.at)
	if events != nil {
		f.t.Errorf("got events %v, want none", eventTypes(events))
	}
	wantRejection(f.t, err, transient, reason)
}

func TestDecideExecution(t *testing.T) {
	t.Run("start_begins_at_once", func(t *testing.T) {
		f := newExecFixture(t, "a", "b")
		f.start()
		s := f.x.Steps[0]
		if f.x.Status != model.ExecutionRunning || f.x.Version != 3 || f.x.WorkflowVersion != 1 || f.x.TimeoutSeconds != 90 ||
			string(f.x.Input) != `{"in":1}` || len(f.x.Steps) != 2 || f.x.CurrentStep != 0 || s.Status != model.StepWaiting ||
			s.Attempts != 1 || s.StartedAt == nil || !s.StartedAt.Equal(f.at) || f.x.Steps[1].Status != model.StepPending {
			t.Fatalf("after start: got %+v, want a RUNNING execution of version 1 with step 0 WAITING and step 1 PENDING", f.x)
		}
		f.reject(model.BeginExecution{WorkflowExecutionUUID: f.id}, nil, false, "not PENDING")
		f.reject(model.StartExecution{WorkflowExecutionUUID: f.id, WorkflowUUID: f.wf.WorkflowUUID}, &f.wf, false, "already exists")
	})
	t.Run("begin_of_an_execution_an_earlier_build_created", func(t *testing.T) {
		f := newExecFixture(t, "a", "b")
		f.createPending()
		if f.x.Status != model.ExecutionPending || len(f.x.Steps) != 2 || f.x.Steps[0].Status != model.StepPending {
			t.Fatalf("after create: got %+v, want a PENDING execution with 2 PENDING steps", f.x)
		}
		f.run(model.BeginExecution{WorkflowExecutionUUID: f.id}, model.EventExecutionStarted, model.EventStepStarted)
		if s := f.x.Steps[0]; f.x.Status != model.ExecutionRunning || s.Status != model.StepWaiting || s.Attempts != 1 {
			t.Fatalf("after begin: got %+v, want RUNNING with step 0 WAITING", f.x)
		}
	})
	t.Run("start_of_missing_workflow_is_transient", func(t *testing.T) {
		f := newExecFixture(t, "a")
		f.reject(model.StartExecution{WorkflowExecutionUUID: f.id, WorkflowUUID: uuid.New()}, nil, true, "not found")
		f.reject(model.StartExecution{WorkflowExecutionUUID: f.id, WorkflowUUID: uuid.New()}, &model.Workflow{}, true, "not found")
	})
	t.Run("start_of_deleted_workflow_is_rejected", func(t *testing.T) {
		f := newExecFixture(t, "a")
		deleted, _ := decideWorkflow(t, f.wf, model.DeleteWorkflow{WorkflowUUID: f.wf.WorkflowUUID}, t0)
		f.reject(model.StartExecution{WorkflowExecutionUUID: f.id, WorkflowUUID: f.wf.WorkflowUUID}, &deleted, false, "deleted")
	})
	t.Run("increment_moves_on_then_succeeds", func(t *testing.T) {
		f := newExecFixture(t, "a", "b", "c")
		f.start()
		f.increment(0, model.EventStepCompleted, model.EventStepStarted)
		if f.x.CurrentStep != 1 || f.x.Steps[0].Status != model.StepSucceeded || string(f.x.Steps[0].Output) != `{"step":0}` ||
			f.x.Steps[0].FinishedAt == nil || f.x.Steps[1].Status != model.StepWaiting || f.x.Status != model.ExecutionRunning {
			t.Fatalf("after increment 0: got %+v, want step 0 SUCCEEDED and step 1 WAITING", f.x)
		}
		f.increment(1, model.EventStepCompleted, model.EventStepStarted)
		f.increment(2, model.EventStepCompleted, model.EventExecutionSucceeded)
		if f.x.Status != model.ExecutionSucceeded || f.x.CurrentStep != 3 || string(f.x.Output) != `{"step":2}` {
			t.Fatalf("after the last increment: got %+v, want SUCCEEDED with the last output", f.x)
		}
		for i, s := range f.x.Steps {
			if s.Status != model.StepSucceeded || s.Attempts != 1 {
				t.Errorf("step %d: got %+v, want SUCCEEDED after 1 attempt", i, s)
			}
		}
		f.reject(model.IncrementExecution{WorkflowExecutionUUID: f.id, Step: 3}, nil, false, "SUCCEEDED")
	})
	t.Run("stale_or_repeated_step_is_rejected", func(t *testing.T) {
		f := newExecFixture(t, "a", "b", "c")
		f.start()
		f.increment(0, model.EventStepCompleted, model.EventStepStarted)
		before := f.x.Clone()
		f.reject(model.IncrementExecution{WorkflowExecutionUUID: f.id, Step: 0}, nil, false, "not the current step")
		f.reject(model.IncrementExecution{WorkflowExecutionUUID: f.id, Step: 2}, nil, false, "not the current step")
		f.reject(model.IncrementExecution{WorkflowExecutionUUID: f.id, Step: 50}, nil, false, "not the current step")
		if !reflect.DeepEqual(f.x, before) {
			t.Errorf("a rejected command changed the state")
		}
	})
	t.Run("increment_before_begin_is_transient", func(t *testing.T) {
		f := newExecFixture(t, "a")
		f.createPending()
		f.reject(model.IncrementExecution{WorkflowExecutionUUID: f.id, Step: 0}, nil, true, "not started")
	})
	t.Run("commands_on_a_missing_execution_are_rejected", func(t *testing.T) {
		f := newExecFixture(t, "a")
		f.reject(model.BeginExecution{WorkflowExecutionUUID: f.id}, nil, false, "not found")
		f.reject(model.IncrementExecution{WorkflowExecutionUUID: f.id, Step: 0}, nil, false, "not found")
		f.reject(model.CancelExecution{WorkflowExecutionUUID: f.id}, nil, false, "not found")
		f.reject(model.CreateWorkflow{WorkflowUUID: uuid.New()}, nil, false, "not an execution command")
	})
	t.Run("cancel_running", func(t *testing.T) {
		f := newExecFixture(t, "a", "b", "c")
		f.start()
		f.increment(0, model.EventStepCompleted, model.EventStepStarted)
		f.run(model.CancelExecution{WorkflowExecutionUUID: f.id, Reason: "customer asked"}, model.EventExecutionCancelled)
		want := []string{model.StepSucceeded, model.StepFailed, model.StepSkipped}
		var got []string
		for _, s := range f.x.Steps {
			got = append(got, s.Status)
		}
		if f.x.Status != model.ExecutionCancelled || f.x.Error != "customer asked" || !reflect.DeepEqual(got, want) {
			t.Fatalf("got status %s error %q steps %v, want CANCELLED %q with steps %v", f.x.Status, f.x.Error, got, "customer asked", want)
		}
		f.reject(model.CancelExecution{WorkflowExecutionUUID: f.id}, nil, false, "already CANCELLED")
		f.reject(model.IncrementExecution{WorkflowExecutionUUID: f.id, Step: 1}, nil, false, "CANCELLED")
	})
	t.Run("cancel_pending", func(t *testing.T) {
		f := newExecFixture(t, "a")
		f.createPending()
		f.run(model.CancelExecution{WorkflowExecutionUUID: f.id}, model.EventExecutionCancelled)
		if f.x.Status != model.ExecutionCancelled || f.x.Steps[0].Status != model.StepSkipped {
			t.Fatalf("got %+v, want CANCELLED with its step SKIPPED", f.x)
		}
		f.reject(model.BeginExecution{WorkflowExecutionUUID: f.id}, nil, false, "CANCELLED")
	})
	t.Run("cancel_of_terminal_is_rejected", func(t *testing.T) {
		f := newExecFixture(t, "a")
		f.start()
		f.increment(0, model.EventStepCompleted, model.EventExecutionSucceeded)
		f.reject(model.CancelExecution{WorkflowExecutionUUID: f.id}, nil, false, "already SUCCEEDED")
	})
}

func TestEventUUIDsAreDeterministic(t *testing.T) {
	f := newExecFixture(t, "a", "b")
	f.start()
	at := f.at.Add(time.Minute)
	inc := model.IncrementExecution{WorkflowExecutionUUID: f.id, Step: 0}
	cmd := model.NewCommand(uuid.New(), inc, at)
	first, err := model.DecideExecution(f.x, cmd, nil, at)
	if err != nil {
		t.Fatal(err)
	}
	again, err := model.DecideExecution(f.x, cmd, nil, at.Add(time.Hour)) // redelivered later
	if err != nil {
		t.Fatal(err)
	}
	other, err := model.DecideExecution(f.x, model.NewCommand(uuid.New(), inc, at), nil, at)
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || len(again) != 2 || len(other) != 2 {
		t.Fatalf("got %d, %d and %d events, want 2 each", len(first), len(again), len(other))
	}
	seen := map[uuid.UUID]bool{}
	for i := range first {
		if first[i].EventUUID != again[i].EventUUID {
			t.Errorf("event %d: got %s then %s for the same command, want equal", i, first[i].EventUUID, again[i].EventUUID)
		}
		if first[i].EventUUID == other[i].EventUUID {
			t.Errorf("event %d: got %s for two different commands, want different", i, first[i].EventUUID)
		}
		if !reflect.DeepEqual(first[i].Data, again[i].Data) || first[i].Seq != again[i].Seq {
			t.Errorf("event %d: got %+v then %+v, want the same data and seq", i, first[i], again[i])
		}
		seen[first[i].EventUUID], seen[other[i].EventUUID] = true, true
	}
	if len(seen) != 4 {
		t.Errorf("got %d distinct eventUUIDs among 4 events, want 4", len(seen))
	}
	if model.DerivedUUID(cmd.CommandUUID, "execution") != model.DerivedUUID(cmd.CommandUUID, "execution") ||
		model.DerivedUUID(cmd.CommandUUID, "execution") == model.DerivedUUID(cmd.CommandUUID, "workflow") {
		t.Errorf("DerivedUUID: want the same UUID for the same inputs and another for another purpose")
	}
}

func TestApplyRejectsOutOfOrderEvents(t *testing.T) {
	wfID := uuid.New()
	created, wfEvents := decideWorkflow(t, model.Workflow{}, model.CreateWorkflow{WorkflowUUID: wfID,
		Definition: model.Definition{Name: "n", Steps: manualSteps("a")}}, t0)
	f := newExecFixture(t, "a")
	f.start()
	data, _ := json.Marshal(model.StepStarted{Step: 0})

	t.Run("workflow", func(t *testing.T) {
		tests := []struct {
			name  string
			state model.Workflow
			event model.Event
		}{
			{"gap", model.Workflow{}, model.Event{AggregateID: wfEvents[0].AggregateID, Seq: 2, Type: model.EventWorkflowDeleted, Data: []byte(`{}`)}},
			{"repeat", created, wfEvents[0]},
			{"zero_seq", model.Workflow{}, model.Event{Seq: 0, Type: model.EventWorkflowDeleted, Data: []byte(`{}`)}},
			{"unknown_type", created, model.Event{Seq: 2, Type: "WorkflowRenamed", Data: []byte(`{}`)}},
			{"bad_data", model.Workflow{}, model.Event{Seq: 1, Type: model.EventWorkflowCreated, Data: []byte(`[`)}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := model.ApplyWorkflow(tt.state, tt.event)
				if err == nil {
					t.Fatalf("got nil error, want one")
				}
				if !reflect.DeepEqual(got, tt.state) {
					t.Errorf("got state %+v, want it unchanged", got)
				}
			})
		}
	})
	t.Run("execution", func(t *testing.T) {
		aggregate := model.ExecutionAggregateID(f.id)
		tests := []struct {
			name  string
			event model.Event
		}{
			{"gap", model.Event{AggregateID: aggregate, Seq: f.x.Version + 2, Type: model.EventStepStarted, Data: data}},
			{"repeat", model.Event{AggregateID: aggregate, Seq: f.x.Version, Type: model.EventStepStarted, Data: data}},
			{"unknown_type", model.Event{AggregateID: aggregate, Seq: f.x.Version + 1, Type: "StepExploded", Data: data}},
			{"step_out_of_range", model.Event{AggregateID: aggregate, Seq: f.x.Version + 1, Type: model.EventStepStarted, Data: []byte(`{"step":7}`)}},
			{"bad_data", model.Event{AggregateID: aggregate, Seq: f.x.Version + 1, Type: model.EventStepCompleted, Data: []byte(`"x"`)}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := f.x.Clone()
				got, err := model.ApplyExecution(f.x, tt.event)
				if err == nil {
					t.Fatalf("got nil error, want one")
				}
				if !reflect.DeepEqual(got, before) {
					t.Errorf("got state %+v, want it unchanged", got)
				}
			})
		}
	})
}

func TestCloneSharesNoMemory(t *testing.T) {
	f := newExecFixture(t, "a", "b")
	f.start()
	f.increment(0, model.EventStepCompleted, model.EventStepStarted)
	c := f.x.Clone()
	c.Steps[0].Output[0] = 'X'
	*c.Steps[0].StartedAt = time.Time{}
	c.Input[0] = 'X'
	c.Steps[1].Status = "CHANGED"
	if f.x.Steps[0].Output[0] == 'X' || f.x.Steps[0].StartedAt.IsZero() || f.x.Input[0] == 'X' || f.x.Steps[1].Status == "CHANGED" {
		t.Errorf("changing a clone changed the original: %+v", f.x)
	}
	w := f.wf
	del := t0
	w.DeletedAt = &del
	wc := w.Clone()
	*wc.DeletedAt = time.Time{}
	wc.Steps[0].Name = "changed"
	if w.DeletedAt.IsZero() || w.Steps[0].Name == "changed" {
		t.Errorf("changing a workflow clone changed the original: %+v", w)
	}
}

func TestAggregateIDsRoundTrip(t *testing.T) {
	id := uuid.New()
	tests := []struct {
		name, aggregateID, wantKind string
	}{
		{"workflow", model.WorkflowAggregateID(id), model.KindWorkflow},
		{"execution", model.ExecutionAggregateID(id), model.KindExecution},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, got, err := model.ParseAggregateID(tt.aggregateID)
			if err != nil || kind != tt.wantKind || got != id {
				t.Fatalf("ParseAggregateID(%q): got %q %s %v", tt.aggregateID, kind, got, err)
			}
			if k := model.AggregateKind(tt.aggregateID); k != tt.wantKind {
				t.Fatalf("AggregateKind(%q): got %q, want %q", tt.aggregateID, k, tt.wantKind)
			}
		})
	}
	for _, bad := range []string{"", "workflow", "job:" + id.String(), "execution:nope"} {
		if _, _, err := model.ParseAggregateID(bad); err == nil {
			t.Errorf("ParseAggregateID(%q): got nil error", bad)
		}
	}
}

// The views remember the commands of their last events, so a status read
// can tell APPLIED without a status write per command.
func TestViewsRememberTheirRecentCommands(t *testing.T) {
	names := make([]string, model.RecentCommandsCap+3)
	for i := range names {
		names[i] = fmt.Sprint("s", i)
	}
	wf := model.Workflow{WorkflowUUID: uuid.New(), Version: 1, Steps: manualSteps(names...)}
	x := model.Execution{}
	xid := uuid.New()
	var cmds []uuid.UUID
	seq := int64(0)
	add := func(cmd uuid.UUID, events ...model.Event) {
		t.Helper()
		for _, e := range events {
			seq++
			e.AggregateID, e.Seq, e.CommandUUID, e.OccurredAt = model.ExecutionAggregateID(xid), seq, cmd, t0
			var err error
			if x, err = model.ApplyExecution(x, e); err != nil {
				t.Fatal(err)
			}
		}
		cmds = append(cmds, cmd)
	}
	data := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	add(uuid.New(), model.Event{Type: model.EventExecutionCreated, Data: data(model.ExecutionCreated{
		WorkflowExecutionUUID: xid, WorkflowUUID: wf.WorkflowUUID, WorkflowVersion: 1, Steps: wf.Steps})})
	if applied, known := model.Recent(x.RecentCommands, cmds[0]); !applied || !known {
		t.Fatalf("after one command: applied %v known %v, want both", applied, known)
	}
	if applied, known := model.Recent(x.RecentCommands, uuid.New()); applied || !known {
		t.Fatalf("unknown command with a list not full: applied %v known %v, want false true", applied, known)
	}
	// One command with two events is remembered once.
	add(uuid.New(), model.Event{Type: model.EventExecutionStarted}, model.Event{Type: model.EventStepStarted, Data: data(model.StepStarted{Step: 0})})
	for step := range model.RecentCommandsCap + 1 {
		add(uuid.New(), model.Event{Type: model.EventStepCompleted, Data: data(model.StepCompleted{Step: step})},
			model.Event{Type: model.EventStepStarted, Data: data(model.StepStarted{Step: step + 1})})
	}
	want := cmds[len(cmds)-model.RecentCommandsCap:]
	if !reflect.DeepEqual(x.RecentCommands, want) {
		t.Fatalf("RecentCommands: got %v, want the last %d commands %v", x.RecentCommands, model.RecentCommandsCap, want)
	}
	if applied, known := model.Recent(x.RecentCommands, cmds[0]); applied || known {
		t.Fatalf("a command that left the full list: applied %v known %v, want neither (its status tells)", applied, known)
	}
	// A command the service issues (a timer, an http attempt) is not
	// remembered: it has no status, and would push client commands out.
	before := x.RecentCommands
	sys := model.SystemCommandUUID(xid, "timer", 3, 0)
	add(sys, model.Event{Type: model.EventStepCompleted, Data: data(model.StepCompleted{Step: model.RecentCommandsCap + 1})},
		model.Event{Type: model.EventStepStarted, Data: data(model.StepStarted{Step: model.RecentCommandsCap + 2})})
	if !reflect.DeepEqual(x.RecentCommands, before) {
		t.Fatalf("after a system command: RecentCommands %v, want them unchanged %v", x.RecentCommands, before)
	}
	// Evicted names what a fold pushed out: of the list before it and of
	// its own events, client commands only.
	c1, c2 := uuid.New(), uuid.New()
	folded := []model.Event{{CommandUUID: c1}, {CommandUUID: sys}, {CommandUUID: c2}}
	after := append(append([]uuid.UUID(nil), before[3:]...), c2)
	if got, want := model.Evicted(before, folded, after), append(append([]uuid.UUID(nil), before[:3]...), c1); !reflect.DeepEqual(got, want) {
		t.Fatalf("Evicted: got %v, want %v", got, want)
	}
	if got := model.Evicted(before, nil, before); got != nil {
		t.Fatalf("Evicted of a fold that pushed nothing out: %v", got)
	}
	if b, _ := json.Marshal(x); strings.Contains(string(b), cmds[len(cmds)-1].String()) {
		t.Fatalf("the view's JSON shows its recent commands: %s", b)
	}
}
