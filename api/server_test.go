package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/api"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// definition returns a valid definition with n manual steps.
func definition(name string, n int) model.Definition {
	d := model.Definition{Name: name, Description: "the " + name + " workflow"}
	for i := range n {
		d.Steps = append(d.Steps, model.StepDefinition{Name: fmt.Sprintf("step-%d", i+1), Type: model.StepManual})
	}
	return d
}

// seedWorkflow creates a workflow through model.Decide and Apply and stores
// its events and view.
func (e *env) seedWorkflow(tb testing.TB, d model.Definition, at time.Time) model.Workflow {
	tb.Helper()
	id := uuid.New()
	return e.runWorkflow(tb, model.Workflow{}, model.CreateWorkflow{WorkflowUUID: id, Definition: d}, at)
}

func (e *env) runWorkflow(tb testing.TB, s model.Workflow, p model.Payload, at time.Time) model.Workflow {
	tb.Helper()
	cmd := model.NewCommand(uuid.New(), p, at)
	events, err := model.DecideWorkflow(s, cmd, at)
	if err != nil {
		tb.Fatalf("decide %s: %v", cmd.Type, err)
	}
	s, err = model.FoldWorkflow(s, events)
	if err != nil {
		tb.Fatalf("fold %s: %v", cmd.Type, err)
	}
	e.events.append(events...)
	e.views.putWorkflow(s)
	return s
}

// seedExecution starts an execution of wf and completes its
// first `increments` steps.
func (e *env) seedExecution(tb testing.TB, wf model.Workflow, at time.Time, increments int) model.Execution {
	tb.Helper()
	id := uuid.New()
	x := e.runExecution(tb, model.Execution{}, &wf, model.StartExecution{
		WorkflowExecutionUUID: id, WorkflowUUID: wf.WorkflowUUID, Input: json.RawMessage(`{"order":42}`),
	}, at)
	for i := range increments {
		x = e.runExecution(tb, x, nil, model.IncrementExecution{
			WorkflowExecutionUUID: id, Step: i, Output: json.RawMessage(fmt.Sprintf(`{"done":%d}`, i)),
		}, at.Add(time.Duration(i+2)*time.Second))
	}
	return x
}

// commandUUID returns the UUID of a command seeded at at.
func (e *env) commandUUID(at time.Time) uuid.UUID {
	if e.timedCommands {
		return model.NewCommandUUID(at)
	}
	return uuid.New()
}

func (e *env) runExecution(tb testing.TB, s model.Execution, wf *model.Workflow, p model.Payload, at time.Time) model.Execution {
	tb.Helper()
	cmd := model.NewCommand(e.commandUUID(at), p, at)
	events, err := model.DecideExecution(s, cmd, wf, at)
	if err != nil {
		tb.Fatalf("decide %s: %v", cmd.Type, err)
	}
	s, err = model.FoldExecution(s, events)
	if err != nil {
		tb.Fatalf("fold %s: %v", cmd.Type, err)
	}
	e.events.append(events...)
	e.views.putExecution(s)
	return s
}

// decodeMessage decodes a published message and checks its routing.
func decodeMessage(tb testing.TB, msg bus.Message) model.Command {
	tb.Helper()
	cmd, err := model.DecodeCommand(msg.Body)
	if err != nil {
		tb.Fatalf("published message %s does not decode: %v", msg.Body, err)
	}
	if got, want := msg.Attributes[bus.TargetAttribute], bus.QueueFor(cmd.Type); got != want || want == "" {
		tb.Errorf("message of a %s command: got %s attribute %q, want %q", cmd.Type, bus.TargetAttribute, got, want)
	}
	return cmd
}

// jsonEqual fails unless got holds the JSON encoding of want.
func jsonEqual(tb testing.TB, got []byte, want any) {
	tb.Helper()
	wantJSON, err := json.Marshal(want)
	if err != nil {
		tb.Fatalf("encode want: %v", err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		tb.Fatalf("decode got %s: %v", truncate(got), err)
	}
	if err := json.Unmarshal(wantJSON, &w); err != nil {
		tb.Fatalf("decode want: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("got body\n%s\nwant\n%s", truncate(got), truncate(wantJSON))
	}
}

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestCommandRoutesAnswer202AndPublish(t *testing.T) {
	e := newEnv(t)
	wf := e.seedWorkflow(t, definition("orders", 2), t0)
	x := e.seedExecution(t, wf, t0, 0)
	wfPath := "/v1/workflows/" + wf.WorkflowUUID.String()
	xPath := "/v1/workflow-executions/" + x.WorkflowExecutionUUID.String()

	tests := []struct {
		name     string
		method   string
		path     string
		body     any
		wantType string
		// newResource: the Location is the resource the command creates
		// (else the command's status).
		newResource bool
		check       func(t *testing.T, a api.Accepted, p model.Payload)
	}{
		{
			name: "create_workflow", method: http.MethodPost, path: "/v1/workflows",
			body:     definition("billing", 3),
			wantType: model.CommandCreateWorkflow, newResource: true,
			check: func(t *testing.T, a api.Accepted, p model.Payload) {
				c := p.(model.CreateWorkflow)
				if c.WorkflowUUID != a.WorkflowUUID || a.WorkflowUUID == uuid.Nil {
					t.Errorf("got workflowUUID %s in the command, %s in the answer; want equal and set", c.WorkflowUUID, a.WorkflowUUID)
				}
				if !reflect.DeepEqual(c.Definition, definition("billing", 3)) {
					t.Errorf("got definition %+v, want %+v", c.Definition, definition("billing", 3))
				}
				if want := "/v1/workflows/" + a.WorkflowUUID.String(); a.Links.Resource != want {
					t.Errorf("got links.resource %q, want %q", a.Links.Resource, want)
				}
			},
		},
		{
			name: "update_workflow", method: http.MethodPut, path: wfPath,
			body:     definition("orders-v2", 1),
			wantType: model.CommandUpdateWorkflow,
			check: func(t *testing.T, a api.Accepted, p model.Payload) {
				c := p.(model.UpdateWorkflow)
				if c.WorkflowUUID != wf.WorkflowUUID || c.Name != "orders-v2" {
					t.Errorf("got %+v, want an update of %s to orders-v2", c, wf.WorkflowUUID)
				}
				if a.Links.Resource != wfPath {
					t.Errorf("got links.resource %q, want %q", a.Links.Resource, wfPath)
				}
			},
		},
		{
			name: "delete_workflow_without_body", method: http.MethodDelete, path: wfPath,
			wantType: model.CommandDeleteWorkflow,
			check: func(t *testing.T, a api.Accepted, p model.Payload) {
				if c := p.(model.DeleteWorkflow); c.WorkflowUUID != wf.WorkflowUUID {
					t.Errorf("got %+v, want a delete of %s", c, wf.WorkflowUUID)
				}
			},
		},
		{
			name: "delete_workflow_with_empty_object", method: http.MethodDelete, path: wfPath, body: "{}",
			wantType: model.CommandDeleteWorkflow,
		},
		{
			name: "start_execution", method: http.MethodPost, path: "/v1/workflow-executions",
			body:     map[string]any{"workflowUUID": wf.WorkflowUUID, "input": map[string]any{"customer": "c-1"}},
			wantType: model.CommandStartExecution, newResource: true,
			check: func(t *testing.T, a api.Accepted, p model.Payload) {
				c := p.(model.StartExecution)
				if c.WorkflowExecutionUUID != a.WorkflowExecutionUUID || c.WorkflowUUID != wf.WorkflowUUID || a.WorkflowUUID != wf.WorkflowUUID {
					t.Errorf("got command %+v and answer %+v, want the same execution of %s", c, a, wf.WorkflowUUID)
				}
				if got, want := string(c.Input), `{"customer":"c-1"}`; got != want {
					t.Errorf("got input %s, want %s", got, want)
				}
				if want := "/v1/workflow-executions/" + a.WorkflowExecutionUUID.String() + "/events"; a.Links.Events != want {
					t.Errorf("got links.events %q, want %q", a.Links.Events, want)
				}
			},
		},
		{
			name: "start_execution_of_unknown_workflow_is_left_to_the_worker", method: http.MethodPost, path: "/v1/workflow-executions",
			body:     map[string]any{"workflowUUID": uuid.New()},
			wantType: model.CommandStartExecution, newResource: true,
		},
		{
			name: "increment", method: http.MethodPost, path: xPath + "/increments",
			body:     map[string]any{"step": 0, "output": []int{1, 2}},
			wantType: model.CommandIncrementExecution,
			check: func(t *testing.T, a api.Accepted, p model.Payload) {
				c := p.(model.IncrementExecution)
				if c.WorkflowExecutionUUID != x.WorkflowExecutionUUID || c.Step != 0 || string(c.Output) != "[1,2]" {
					t.Errorf("got %+v, want step 0 of %s with output [1,2]", c, x.WorkflowExecutionUUID)
				}
			},
		},
		{
			name: "cancel_with_reason", method: http.MethodPost, path: xPath + "/cancellations",
			body:     map[string]any{"reason": "customer asked"},
			wantType: model.CommandCancelExecution,
			check: func(t *testing.T, a api.Accepted, p model.Payload) {
				c := p.(model.CancelExecution)
				if c.WorkflowExecutionUUID != x.WorkflowExecutionUUID || c.Reason != "customer asked" {
					t.Errorf("got %+v, want a cancellation of %s for %q", c, x.WorkflowExecutionUUID, "customer asked")
				}
			},
		},
		{
			name: "cancel_without_body", method: http.MethodPost, path: xPath + "/cancellations",
			wantType: model.CommandCancelExecution,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.pub.published())
			r := e.do(t, tt.method, tt.path, tt.body)
			r.wantStatus(t, http.StatusAccepted)
			var a api.Accepted
			r.decode(t, &a)
			if a.CommandUUID == uuid.Nil || a.Status != model.CommandAccepted {
				t.Errorf("got commandUUID %s status %q, want a UUID and %q", a.CommandUUID, a.Status, model.CommandAccepted)
			}
			if want := "/v1/commands/" + a.CommandUUID.String(); a.Links.Command != want {
				t.Errorf("got links.command %q, want %q", a.Links.Command, want)
			}
			wantLocation := a.Links.Command
			if tt.newResource {
				wantLocation = a.Links.Resource
			}
			if got := r.header.Get("Location"); got != wantLocation || got == "" {
				t.Errorf("got Location %q, want %q", got, wantLocation)
			}

			msgs := e.pub.published()[before:]
			if len(msgs) != 1 {
				t.Fatalf("got %d messages published, want 1", len(msgs))
			}
			cmd := decodeMessage(t, msgs[0])
			if cmd.Type != tt.wantType || cmd.CommandUUID != a.CommandUUID {
				t.Errorf("got a %s command %s, want a %s command %s", cmd.Type, cmd.CommandUUID, tt.wantType, a.CommandUUID)
			}
			if !cmd.IssuedAt.Equal(e.now) {
				t.Errorf("got issuedAt %s, want the server's clock %s", cmd.IssuedAt, e.now)
			}
			st, err := e.cmds.GetCommand(t.Context(), a.CommandUUID)
			if err != nil || st.Status != model.CommandAccepted || st.Type != tt.wantType || st.AggregateID != cmd.AggregateID() {
				t.Errorf("got command status %+v, %v; want ACCEPTED %s on %s", st, err, tt.wantType, cmd.AggregateID())
			}
			if tt.check != nil {
				tt.check(t, a, cmd.Payload)
			}
		})
	}
}

func TestStartExecutionKeepsInputNumbersExact(t *testing.T) {
	e := newEnv(t)
	wf := e.seedWorkflow(t, definition("orders", 1), t0)
	body := `{"workflowUUID":"` + wf.WorkflowUUID.String() + `","input":{"id": 12345678901234567890, "price": 1.50, "tiny": 1e-7}}`
	r := e.do(t, http.MethodPost, "/v1/workflow-executions", body)
	r.wantStatus(t, http.StatusAccepted)
	msgs := e.pub.published()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	c := decodeMessage(t, msgs[0]).Payload.(model.StartExecution)
	if got, want := string(c.Input), `{"id":12345678901234567890,"price":1.50,"tiny":1e-7}`; got != want {
		t.Errorf("got input %s, want %s", got, want)
	}
}

func TestGetViews(t *testing.T) {
	e := newEnv(t)
	wf := e.seedWorkflow(t, definition("orders", 3), t0)
	deleted := e.seedWorkflow(t, definition("old", 1), t0)
	deleted = e.runWorkflow(t, deleted, model.DeleteWorkflow{WorkflowUUID: deleted.WorkflowUUID}, t0.Add(time.Hour))
	running := e.seedExecution(t, wf, t0, 1)
	done := e.seedExecution(t, wf, t0, 3)
	cancelled := e.seedExecution(t, wf, t0, 0)
	cancelled = e.runExecution(t, cancelled, nil, model.CancelExecution{WorkflowExecutionUUID: cancelled.WorkflowExecutionUUID, Reason: "stop"}, t0.Add(time.Minute))

	t.Run("workflow", func(t *testing.T) {
		for _, w := range []model.Workflow{wf, deleted} {
			r := e.do(t, http.MethodGet, "/v1/workflows/"+w.WorkflowUUID.String(), nil)
			r.wantStatus(t, http.StatusOK)
			jsonEqual(t, r.body, w)
			var got model.Workflow
			r.decode(t, &got)
			if got.Deleted() != w.Deleted() {
				t.Errorf("got deleted %v, want %v", got.Deleted(), w.Deleted())
			}
		}
	})
	t.Run("execution", func(t *testing.T) {
		for _, x := range []model.Execution{running, done, cancelled} {
			r := e.do(t, http.MethodGet, "/v1/workflow-executions/"+x.WorkflowExecutionUUID.String(), nil)
			r.wantStatus(t, http.StatusOK)
			jsonEqual(t, r.body, x)
		}
	})
	t.Run("events", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "/v1/workflow-executions/"+done.WorkflowExecutionUUID.String()+"/events", nil)
		r.wantStatus(t, http.StatusOK)
		want, _ := e.events.Load(t.Context(), model.ExecutionAggregateID(done.WorkflowExecutionUUID), 0)
		jsonEqual(t, r.body, map[string]any{"items": want})
		var page api.Page[model.Event]
		r.decode(t, &page)
		for i, ev := range page.Items {
			if ev.Seq != int64(i+1) {
				t.Errorf("event %d: got seq %d, want %d", i, ev.Seq, i+1)
			}
		}
		if got := page.Items[len(page.Items)-1].Type; got != model.EventExecutionSucceeded {
			t.Errorf("got last event %s, want %s", got, model.EventExecutionSucceeded)
		}
	})
}

func TestGetCommand(t *testing.T) {
	waiter := api.NewWaiter()
	for _, tt := range []struct {
		name   string
		waiter *api.Waiter
	}{
		{name: "polling_the_store"},
		{name: "woken_by_the_waiter", waiter: waiter},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *api.Config) { c.Waiter = tt.waiter })
			r := e.do(t, http.MethodPost, "/v1/workflows", definition("orders", 1))
			r.wantStatus(t, http.StatusAccepted)
			var a api.Accepted
			r.decode(t, &a)

			t.Run("accepted_at_once", func(t *testing.T) {
				r := e.do(t, http.MethodGet, a.Links.Command, nil)
				r.wantStatus(t, http.StatusOK)
				var c api.CommandAnswer
				r.decode(t, &c)
				want := api.CommandAnswer{
					CommandUUID: a.CommandUUID, Type: model.CommandCreateWorkflow, Status: model.CommandAccepted,
					CreatedAt: e.now, UpdatedAt: e.now,
					Links: api.Links{Self: a.Links.Command, Resource: a.Links.Resource},
				}
				if !reflect.DeepEqual(c, want) {
					t.Errorf("got %+v, want %+v", c, want)
				}
			})
			t.Run("wait_runs_out_while_accepted", func(t *testing.T) {
				start := time.Now()
				r := e.do(t, http.MethodGet, a.Links.Command+"?wait=60ms", nil)
				r.wantStatus(t, http.StatusOK)
				var c api.CommandAnswer
				r.decode(t, &c)
				if c.Status != model.CommandAccepted {
					t.Errorf("got status %s, want %s", c.Status, model.CommandAccepted)
				}
				if d := time.Since(start); d < 60*time.Millisecond {
					t.Errorf("answered after %s, want at least the 60ms wait", d)
				}
			})
			t.Run("wait_ends_when_the_command_finishes", func(t *testing.T) {
				go func() {
					time.Sleep(30 * time.Millisecond)
					e.cmds.finish(a.CommandUUID, model.CommandRejected, "workflow exists")
					if tt.waiter != nil {
						tt.waiter.Notify(a.CommandUUID)
					}
				}()
				start := time.Now()
				r := e.do(t, http.MethodGet, a.Links.Command+"?wait=10s", nil)
				r.wantStatus(t, http.StatusOK)
				var c api.CommandAnswer
				r.decode(t, &c)
				if c.Status != model.CommandRejected || c.Error != "workflow exists" {
					t.Errorf("got status %s error %q, want REJECTED with its reason", c.Status, c.Error)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("answered after %s, want soon after the command finished", d)
				}
			})
			if tt.waiter == nil {
				return
			}
			t.Run("projector_wakes_the_wait_with_applied", func(t *testing.T) {
				// The projector calls Applied after its view write; the
				// answer needs no read (the fake store knows nothing of it).
				r := e.do(t, http.MethodPost, "/v1/workflows", definition("orders", 1))
				var b api.Accepted
				r.decode(t, &b)
				answered := make(chan struct{})
				defer close(answered)
				go func() { // until the poll has subscribed and been woken
					for {
						select {
						case <-answered:
							return
						case <-time.After(20 * time.Millisecond):
							tt.waiter.Applied(b.CommandUUID)
						}
					}
				}()
				r = e.do(t, http.MethodGet, b.Links.Command+"?wait=10s", nil)
				r.wantStatus(t, http.StatusOK)
				var c api.CommandAnswer
				r.decode(t, &c)
				if c.Status != model.CommandApplied || c.Type != model.CommandCreateWorkflow || c.Links.Resource != b.Links.Resource {
					t.Errorf("got %+v, want APPLIED with the command's type and resource", c)
				}
			})
		})
	}
}

func TestListingsPageEveryItemOnce(t *testing.T) {
	e := newEnv(t)
	var wfs []model.Workflow
	for i := range 5 {
		// Two share a createdAt: the ID breaks the tie.
		at := t0.Add(time.Duration(min(i, 3)) * time.Minute)
		wfs = append(wfs, e.seedWorkflow(t, definition(fmt.Sprintf("wf-%d", i), 1), at))
	}
	var xs []model.Execution
	for i := range 5 {
		xs = append(xs, e.seedExecution(t, wfs[0], t0.Add(time.Duration(i)*time.Hour), 0))
	}
	xs[4] = e.runExecution(t, xs[4], nil, model.CancelExecution{WorkflowExecutionUUID: xs[4].WorkflowExecutionUUID}, t0.Add(10*time.Hour))
	other := e.seedExecution(t, wfs[1], t0, 0)

	walk := func(t *testing.T, base string, limit int) (ids []uuid.UUID, pages int) {
		t.Helper()
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		path := fmt.Sprintf("%s%slimit=%d", base, sep, limit)
		for {
			pages++
			if pages > 10 {
				t.Fatalf("more than 10 pages: the cursor does not advance")
			}
			r := e.do(t, http.MethodGet, path, nil)
			r.wantStatus(t, http.StatusOK)
			var p struct {
				Items []struct {
					WorkflowUUID          uuid.UUID `json:"workflowUUID"`
					WorkflowExecutionUUID uuid.UUID `json:"workflowExecutionUUID"`
				} `json:"items"`
				NextCursor string `json:"nextCursor"`
			}
			if err := json.Unmarshal(r.body, &p); err != nil {
				t.Fatalf("decode page: %v", err)
			}
			if len(p.Items) > limit {
				t.Fatalf("got %d items, want at most limit %d", len(p.Items), limit)
			}
			for _, it := range p.Items {
				id := it.WorkflowUUID
				if it.WorkflowExecutionUUID != uuid.Nil {
					id = it.WorkflowExecutionUUID
				}
				ids = append(ids, id)
			}
			if p.NextCursor == "" {
				return ids, pages
			}
			path = fmt.Sprintf("%s%slimit=%d&cursor=%s", base, sep, limit, p.NextCursor)
		}
	}
	newest := func(n int, pos func(i int) (time.Time, uuid.UUID)) []uuid.UUID {
		type item struct {
			at time.Time
			id uuid.UUID
		}
		var items []item
		for i := range n {
			at, id := pos(i)
			items = append(items, item{at, id})
		}
		// Newest first, then ID descending: the store contract's order.
		for i := range items {
			for j := i + 1; j < len(items); j++ {
				a, b := items[i], items[j]
				if b.at.After(a.at) || (b.at.Equal(a.at) && b.id.String() > a.id.String()) {
					items[i], items[j] = b, a
				}
			}
		}
		var ids []uuid.UUID
		for _, it := range items {
			ids = append(ids, it.id)
		}
		return ids
	}

	tests := []struct {
		name      string
		base      string
		limit     int
		want      []uuid.UUID
		wantPages int
	}{
		{
			name: "workflows_by_two", base: "/v1/workflows", limit: 2, wantPages: 3,
			want: newest(5, func(i int) (time.Time, uuid.UUID) { return wfs[i].CreatedAt, wfs[i].WorkflowUUID }),
		},
		{
			name: "workflows_in_one_page", base: "/v1/workflows", limit: 5, wantPages: 1,
			want: newest(5, func(i int) (time.Time, uuid.UUID) { return wfs[i].CreatedAt, wfs[i].WorkflowUUID }),
		},
		{
			name: "executions_of_one_workflow_by_two", base: "/v1/workflow-executions?workflowUUID=" + wfs[0].WorkflowUUID.String(), limit: 2, wantPages: 3,
			want: newest(5, func(i int) (time.Time, uuid.UUID) { return xs[i].CreatedAt, xs[i].WorkflowExecutionUUID }),
		},
		{
			name: "executions_by_status", base: "/v1/workflow-executions?status=CANCELLED", limit: 2, wantPages: 1,
			want: []uuid.UUID{xs[4].WorkflowExecutionUUID},
		},
		{
			name: "all_executions_by_four", base: "/v1/workflow-executions", limit: 4, wantPages: 2,
			want: newest(6, func(i int) (time.Time, uuid.UUID) {
				if i == 5 {
					return other.CreatedAt, other.WorkflowExecutionUUID
				}
				return xs[i].CreatedAt, xs[i].WorkflowExecutionUUID
			}),
		},
		{
			name: "no_match_is_an_empty_page", base: "/v1/workflow-executions?status=FAILED", limit: 2, wantPages: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, pages := walk(t, tt.base, tt.limit)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got items\n%v\nwant each once, newest first\n%v", got, tt.want)
			}
			if pages != tt.wantPages {
				t.Errorf("got %d pages, want %d", pages, tt.wantPages)
			}
		})
	}
	t.Run("empty_listing_has_items", func(t *testing.T) {
		r := newEnv(t).do(t, http.MethodGet, "/v1/workflows", nil)
		r.wantStatus(t, http.StatusOK)
		if got := strings.TrimSpace(string(r.body)); got != `{"items":[]}` {
			t.Errorf("got %s, want {\"items\":[]}", got)
		}
	})
}

func TestHealthAndReadiness(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		ready      []api.Pinger
		wantStatus int
	}{
		{name: "healthz", path: "/healthz", wantStatus: http.StatusOK},
		{name: "ready_without_checks", path: "/readyz", wantStatus: http.StatusOK},
		{name: "ready_when_all_answer", path: "/readyz", ready: []api.Pinger{pinger{}, pinger{}}, wantStatus: http.StatusOK},
		{name: "not_ready_when_one_fails", path: "/readyz", ready: []api.Pinger{pinger{}, pinger{errors.New("store down")}}, wantStatus: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *api.Config) { c.Ready = tt.ready })
			r := e.do(t, http.MethodGet, tt.path, nil)
			r.wantStatus(t, tt.wantStatus)
			if tt.wantStatus == http.StatusServiceUnavailable && strings.Contains(string(r.body), "store down") {
				t.Errorf("the problem shows the internal error: %s", r.body)
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	const key = "order-7f3a"
	t.Run("key_reused_after_its_expiry_is_a_new_command", func(t *testing.T) {
		e := newEnv(t)
		var first, second api.Accepted
		e.do(t, http.MethodPost, "/v1/workflows", definition("orders", 2), "Idempotency-Key", key).decode(t, &first)
		e.now = e.now.Add(25 * time.Hour) // the key's record expired (24 h)
		r := e.do(t, http.MethodPost, "/v1/workflows", definition("invoices", 1), "Idempotency-Key", key)
		r.wantStatus(t, http.StatusAccepted)
		r.decode(t, &second)
		if second.CommandUUID == first.CommandUUID || second.WorkflowUUID == first.WorkflowUUID {
			t.Fatalf("after the key expired: command %s, workflow %s; want a new command and workflow, not the first's (%s, %s): the workers would drop it as a duplicate",
				second.CommandUUID, second.WorkflowUUID, first.CommandUUID, first.WorkflowUUID)
		}
		msgs := e.pub.published()
		if len(msgs) != 2 || decodeMessage(t, msgs[1]).CommandUUID != second.CommandUUID {
			t.Fatalf("published %d messages, want the second request's command %s last", len(msgs), second.CommandUUID)
		}
	})
	t.Run("same_key_same_body_gives_the_same_answer", func(t *testing.T) {
		e := newEnv(t)
		first := e.do(t, http.MethodPost, "/v1/workflows", definition("orders", 2), "Idempotency-Key", key)
		first.wantStatus(t, http.StatusAccepted)
		// The same request, encoded differently: the same JSON value.
		again := e.do(t, http.MethodPost, "/v1/workflows",
			"{\n  \"steps\": [{\"type\":\"manual\",\"name\":\"step-1\"},{\"name\":\"step-2\",\"type\":\"manual\"}],\n  \"description\":\"the orders workflow\", \"name\": \"orders\"}",
			"Idempotency-Key", key)
		again.wantStatus(t, http.StatusAccepted)
		if string(first.body) != string(again.body) || first.header.Get("Location") != again.header.Get("Location") {
			t.Errorf("got answers\n%s (Location %s)\n%s (Location %s)\nwant the same", first.body, first.header.Get("Location"), again.body, again.header.Get("Location"))
		}
		var a api.Accepted
		first.decode(t, &a)
		if want := e.cmds.keyRecord("POST /v1/workflows\x00" + key).CommandUUID; a.CommandUUID != want {
			t.Errorf("got commandUUID %s, want %s, the one the key's record holds", a.CommandUUID, want)
		}
		if c, k := e.cmds.counts(); c != 1 || k != 1 {
			t.Errorf("got %d commands and %d keys recorded, want 1 and 1", c, k)
		}
		// While the command is ACCEPTED the repeat publishes it again (the
		// first publish may have been lost); it is the same command.
		msgs := e.pub.published()
		if len(msgs) != 2 {
			t.Fatalf("got %d messages, want 2", len(msgs))
		}
		c1, c2 := decodeMessage(t, msgs[0]), decodeMessage(t, msgs[1])
		if c1.CommandUUID != a.CommandUUID || c2.CommandUUID != a.CommandUUID ||
			c1.Payload.(model.CreateWorkflow).WorkflowUUID != c2.Payload.(model.CreateWorkflow).WorkflowUUID {
			t.Errorf("got commands %+v and %+v, want the same command twice", c1, c2)
		}
	})
	t.Run("finished_command_is_not_published_again", func(t *testing.T) {
		for _, status := range []string{model.CommandApplied, model.CommandRejected} {
			t.Run(status, func(t *testing.T) {
				e := newEnv(t)
				first := e.do(t, http.MethodPost, "/v1/workflows", definition("orders", 1), "Idempotency-Key", key)
				first.wantStatus(t, http.StatusAccepted)
				var a api.Accepted
				first.decode(t, &a)
				e.cmds.finish(a.CommandUUID, status, "")
				again := e.do(t, http.MethodPost, "/v1/workflows", definition("orders", 1), "Idempotency-Key", key)
				again.wantStatus(t, http.StatusAccepted)
				if string(first.body) != string(again.body) {
					t.Errorf("got answers\n%s\n%s\nwant the same", first.body, again.body)
				}
				if n := len(e.pub.published()); n != 1 {
					t.Errorf("got %d messages published, want 1: a %s command is not published again", n, status)
				}
				if st, _ := e.cmds.GetCommand(t.Context(), a.CommandUUID); st.Status != status {
					t.Errorf("got command status %s, want it left %s", st.Status, status)
				}
			})
		}
	})
	t.Run("same_key_other_body_is_422", func(t *testing.T) {
		e := newEnv(t)
		e.do(t, http.MethodPost, "/v1/workflows", definition("orders", 1), "Idempotency-Key", key).wantStatus(t, http.StatusAccepted)
		r := e.do(t, http.MethodPost, "/v1/workflows", definition("orders", 2), "Idempotency-Key", key)
		r.wantStatus(t, http.StatusUnprocessableEntity)
		if n := len(e.pub.published()); n != 1 {
			t.Errorf("got %d messages published, want 1", n)
		}
		if c, _ := e.cmds.counts(); c != 1 {
			t.Errorf("got %d commands recorded, want 1", c)
		}
	})
	t.Run("keys_are_per_route", func(t *testing.T) {
		e := newEnv(t)
		wf := e.seedWorkflow(t, definition("orders", 2), t0)
		x1 := e.seedExecution(t, wf, t0, 0)
		x2 := e.seedExecution(t, wf, t0, 0)
		requests := []struct {
			method, path string
			body         any
		}{
			{http.MethodPost, "/v1/workflows", definition("orders", 1)},
			{http.MethodPut, "/v1/workflows/" + wf.WorkflowUUID.String(), definition("orders", 1)},
			{http.MethodPost, "/v1/workflow-executions", map[string]any{"workflowUUID": wf.WorkflowUUID}},
			{http.MethodPost, "/v1/workflow-executions/" + x1.WorkflowExecutionUUID.String() + "/increments", map[string]int{"step": 0}},
			{http.MethodPost, "/v1/workflow-executions/" + x2.WorkflowExecutionUUID.String() + "/increments", map[string]int{"step": 0}},
			{http.MethodPost, "/v1/workflow-executions/" + x1.WorkflowExecutionUUID.String() + "/cancellations", nil},
			{http.MethodDelete, "/v1/workflows/" + wf.WorkflowUUID.String(), nil},
		}
		seen := map[uuid.UUID]string{}
		for _, rq := range requests {
			r := e.do(t, rq.method, rq.path, rq.body, "Idempotency-Key", key)
			r.wantStatus(t, http.StatusAccepted)
			var a api.Accepted
			r.decode(t, &a)
			if other, ok := seen[a.CommandUUID]; ok {
				t.Errorf("%s %s and %s got the same command %s: keys must be per route", rq.method, rq.path, other, a.CommandUUID)
			}
			seen[a.CommandUUID] = rq.method + " " + rq.path
		}
		if n := len(e.pub.published()); n != len(requests) {
			t.Errorf("got %d messages, want %d", n, len(requests))
		}
	})
	t.Run("refused_request_does_not_use_up_the_key", func(t *testing.T) {
		e := newEnv(t)
		path := "/v1/workflow-executions/" + uuid.NewString() + "/increments"
		e.do(t, http.MethodPost, path, map[string]int{"step": 500}, "Idempotency-Key", key).wantStatus(t, http.StatusBadRequest)
		e.do(t, http.MethodPost, path, map[string]int{"step": 0}, "Idempotency-Key", key).wantStatus(t, http.StatusAccepted)
	})
	t.Run("bad_keys_are_400", func(t *testing.T) {
		e := newEnv(t)
		for _, k := range []string{"has space", strings.Repeat("k", 256), "tab\tkey", "ünïcode"} {
			r := e.do(t, http.MethodPost, "/v1/workflows", definition("orders", 1), "Idempotency-Key", k)
			r.wantStatus(t, http.StatusBadRequest)
		}
		r := e.do(t, http.MethodPost, "/v1/workflows", definition("orders", 1), "Idempotency-Key", "a", "Idempotency-Key", "b")
		r.wantStatus(t, http.StatusBadRequest)
		if n := len(e.pub.published()); n != 0 {
			t.Errorf("got %d messages, want none", n)
		}
	})
}

func TestPublisherFailureIs503(t *testing.T) {
	e := newEnv(t)
	e.pub.fail(errors.New("topic unreachable: arn:aws:sns:secret"))
	const key = "retry-me"
	r := e.do(t, http.MethodPost, "/v1/workflows", definition("orders", 1), "Idempotency-Key", key)
	r.wantStatus(t, http.StatusServiceUnavailable)
	if got := r.header.Get("Retry-After"); got == "" {
		t.Errorf("got no Retry-After header, want one")
	}
	if p := r.problem(t); strings.Contains(p.Detail, "arn:") {
		t.Errorf("the problem shows the internal error: %q", p.Detail)
	}

	// The retry with the same key goes through, as the same command.
	e.pub.fail(nil)
	r = e.do(t, http.MethodPost, "/v1/workflows", definition("orders", 1), "Idempotency-Key", key)
	r.wantStatus(t, http.StatusAccepted)
	var a api.Accepted
	r.decode(t, &a)
	if want := e.cmds.keyRecord("POST /v1/workflows\x00" + key).CommandUUID; a.CommandUUID != want {
		t.Errorf("got commandUUID %s, want %s, the failed request's", a.CommandUUID, want)
	}
	if msgs := e.pub.published(); len(msgs) != 1 || decodeMessage(t, msgs[0]).CommandUUID != a.CommandUUID {
		t.Errorf("got %d messages, want the one command %s", len(msgs), a.CommandUUID)
	}
}

// A publish that fails without a key: REJECTED only when nothing can have
// been published; when the outcome is unknown (a timeout, a cancelled
// request: the message may be queued), the status stays ACCEPTED and the
// event log decides.
func TestPublisherFailureWithoutKey(t *testing.T) {
	for _, tt := range []struct {
		name   string
		err    error
		status string
	}{
		{"nothing_sent_is_rejected", fmt.Errorf("bus closed (%w)", bus.ErrNotPublished), model.CommandRejected},
		{"outcome_unknown_stays_accepted", errors.New("topic unreachable: context deadline exceeded"), model.CommandAccepted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.pub.fail(tt.err)
			r := e.do(t, http.MethodPost, "/v1/workflows", definition("orders", 1))
			r.wantStatus(t, http.StatusServiceUnavailable)
			e.cmds.mu.Lock()
			defer e.cmds.mu.Unlock()
			if len(e.cmds.commands) != 1 {
				t.Fatalf("got %d command statuses, want 1", len(e.cmds.commands))
			}
			for id, st := range e.cmds.commands {
				if st.Status != tt.status || (tt.status == model.CommandRejected) != (st.Error != "") {
					t.Errorf("got status %s %q, want %s", st.Status, st.Error, tt.status)
				}
				if p := r.problem(t); !strings.Contains(p.Detail, "/v1/commands/"+id.String()) {
					t.Errorf("the problem does not name the command's status: %q", p.Detail)
				}
			}
		})
	}
}

func TestInternalErrorsAre500WithoutDetails(t *testing.T) {
	t.Run("panic_is_recovered", func(t *testing.T) {
		e := newEnv(t, func(c *api.Config) { c.Views = panickyViews{newFakeViews()} })
		id := uuid.NewString()
		for _, rq := range []struct {
			method string
			body   any
		}{{http.MethodGet, nil}, {http.MethodPut, definition("x", 1)}, {http.MethodDelete, nil}} {
			r := e.do(t, rq.method, "/v1/workflows/"+id, rq.body)
			r.wantStatus(t, http.StatusInternalServerError)
			if p := r.problem(t); strings.Contains(p.Detail, "exploded") {
				t.Errorf("the problem shows the panic: %q", p.Detail)
			}
		}
		// The server is still up.
		e.do(t, http.MethodGet, "/healthz", nil).wantStatus(t, http.StatusOK)
		if n := len(e.pub.published()); n != 0 {
			t.Errorf("got %d messages, want none", n)
		}
	})
	t.Run("backend_error", func(t *testing.T) {
		e := newEnv(t, func(c *api.Config) { c.Views = failingViews{fakeViews: newFakeViews()} })
		r := e.do(t, http.MethodGet, "/v1/workflow-executions/"+uuid.NewString(), nil)
		r.wantStatus(t, http.StatusInternalServerError)
		if strings.Contains(string(r.body), "secret") {
			t.Errorf("the problem shows the internal error: %s", r.body)
		}
	})
	// A store that did not answer in time is 503 with Retry-After: the
	// client's retry is the cure.
	t.Run("store_unavailable", func(t *testing.T) {
		cause := &store.Error{Op: "get execution", Err: fmt.Errorf("%w (%w)", errBackend, store.ErrUnavailable)}
		e := newEnv(t, func(c *api.Config) { c.Views = failingViews{fakeViews: newFakeViews(), err: cause} })
		r := e.do(t, http.MethodGet, "/v1/workflow-executions/"+uuid.NewString(), nil)
		r.wantStatus(t, http.StatusServiceUnavailable)
		if r.header.Get("Retry-After") == "" {
			t.Errorf("a 503 without Retry-After")
		}
		if p := r.problem(t); p.Type != "urn:workflowd:problem:unavailable" || strings.Contains(string(r.body), "secret") {
			t.Errorf("problem %s", r.body)
		}
	})
}

// APPLIED is derived, not stored: the store holds a command ACCEPTED until
// a worker rejects it, and a status read asks the view (its recent commands)
// or, for an older command, the event log and the view's version.
func TestCommandStatusIsDerivedFromTheView(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	const increments = model.RecentCommandsCap + 4
	const commands = increments + 1 // and start
	wf := e.seedWorkflow(t, definition("orders", increments+1), t0)
	x := e.seedExecution(t, wf, t0, increments)
	aggregateID := model.ExecutionAggregateID(x.WorkflowExecutionUUID)
	log, _ := e.events.Load(ctx, aggregateID, 0)
	applied := commandsOf(log)
	if len(applied) != commands || len(x.RecentCommands) != model.RecentCommandsCap {
		t.Fatalf("seeded %d commands, %d recent; want %d and a full list", len(applied), len(x.RecentCommands), commands)
	}
	// A command whose events are in the log but not yet in the view.
	next := model.NewCommand(uuid.New(), model.IncrementExecution{WorkflowExecutionUUID: x.WorkflowExecutionUUID, Step: increments}, t0)
	events, err := model.DecideExecution(x, next, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	e.events.append(events...)
	unknown, rejected, noView := uuid.New(), uuid.New(), uuid.New()
	young := applied[1] // applied, out of the recent list, and accepted just now
	accepted := map[uuid.UUID]string{unknown: aggregateID, rejected: aggregateID, next.CommandUUID: aggregateID,
		noView: model.ExecutionAggregateID(uuid.New())}
	for _, id := range applied {
		if id != young {
			accepted[id] = aggregateID
		}
	}
	// A status an earlier build wrote names its resource by path.
	earlier := applied[commands-2]
	accepted[earlier] = "/v1/workflow-executions/" + x.WorkflowExecutionUUID.String()
	// All were accepted long ago (a zero createdAt) but young, accepted
	// now: the log is not read for it.
	for id, res := range accepted {
		if err := e.cmds.PutCommand(ctx, model.CommandStatus{CommandUUID: id, Type: model.CommandIncrementExecution, Status: model.CommandAccepted, AggregateID: res}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.cmds.PutCommand(ctx, model.CommandStatus{CommandUUID: young, Type: model.CommandIncrementExecution, Status: model.CommandAccepted, AggregateID: aggregateID, CreatedAt: e.now}); err != nil {
		t.Fatal(err)
	}
	e.cmds.finish(rejected, model.CommandRejected, "nope")

	tests := []struct {
		name string
		id   uuid.UUID
		want string
	}{
		{"recent_command", applied[commands-1], model.CommandApplied},
		{"oldest_recent_command", applied[commands-model.RecentCommandsCap], model.CommandApplied},
		{"older_command_from_the_log", applied[0], model.CommandApplied},
		{"in_the_log_not_yet_in_the_view", next.CommandUUID, model.CommandAccepted},
		{"in_neither", unknown, model.CommandAccepted},
		{"no_view_yet", noView, model.CommandAccepted},
		{"rejected_stays_rejected", rejected, model.CommandRejected},
		{"young_command_out_of_the_list_reads_accepted_for_a_while", young, model.CommandAccepted},
		{"status_of_an_earlier_build_names_a_path", earlier, model.CommandApplied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, http.MethodGet, "/v1/commands/"+tt.id.String(), nil)
			r.wantStatus(t, http.StatusOK)
			var a api.CommandAnswer
			r.decode(t, &a)
			if a.Status != tt.want {
				t.Fatalf("status: got %s, want %s", a.Status, tt.want)
			}
			if want := "/v1/workflow-executions/" + x.WorkflowExecutionUUID.String(); tt.id != noView && a.Links.Resource != want {
				t.Errorf("links.resource: got %q, want %q", a.Links.Resource, want)
			}
		})
	}
}

// A status read of a command this build accepted (its UUID carries its
// time) takes the status and the view, never the event log, however long
// the history: a command the view no longer remembers is either not
// applied yet or was marked APPLIED by the projector when it left the list.
func TestCommandStatusReadsNoLog(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.Retention = time.Hour })
	e.timedCommands = true
	ctx := t.Context()
	const increments = model.RecentCommandsCap + 20
	wf := e.seedWorkflow(t, definition("orders", increments+1), t0)
	x := e.seedExecution(t, wf, t0, increments)
	aggregateID := model.ExecutionAggregateID(x.WorkflowExecutionUUID)
	log, _ := e.events.Load(ctx, aggregateID, 0)
	applied := commandsOf(log)
	for _, id := range applied {
		if err := e.cmds.PutCommand(ctx, model.CommandStatus{CommandUUID: id, Type: model.CommandIncrementExecution,
			Status: model.CommandAccepted, AggregateID: aggregateID, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	marked, unmarked, recent := applied[0], applied[1], applied[len(applied)-1]
	e.cmds.finish(marked, model.CommandApplied, "")
	notProjected := model.NewCommandUUID(t0)
	if err := e.cmds.PutCommand(ctx, model.CommandStatus{CommandUUID: notProjected, Type: model.CommandStartExecution,
		Status: model.CommandAccepted, AggregateID: model.ExecutionAggregateID(uuid.New()), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	e.now = t0.Add(10 * time.Minute)
	for _, tt := range []struct {
		name string
		id   uuid.UUID
		want string
	}{
		{"recent", recent, model.CommandApplied},
		{"pushed_out_and_marked", marked, model.CommandApplied},
		{"pushed_out_mark_not_made_yet_reads_late_not_wrong", unmarked, model.CommandAccepted},
		{"no_view_yet_within_the_retention", notProjected, model.CommandAccepted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := e.events.loaded()
			var a api.CommandAnswer
			r := e.do(t, http.MethodGet, "/v1/commands/"+tt.id.String(), nil)
			r.wantStatus(t, http.StatusOK)
			r.decode(t, &a)
			if a.Status != tt.want {
				t.Fatalf("status %s, want %s", a.Status, tt.want)
			}
			if n := e.events.loaded() - before; n != 0 {
				t.Fatalf("the status read loaded the event log %d times, want none", n)
			}
		})
	}
}

// A finished execution's view expires after the retention period; its
// commands still read APPLIED, from the event log. Before the retention has
// passed a missing view means "not projected yet".
func TestCommandOfAnExpiredExecutionStaysApplied(t *testing.T) {
	for _, tt := range []struct {
		name      string
		retention time.Duration
		after     time.Duration
		want      string
	}{
		{"expired", time.Hour, 2 * time.Hour, model.CommandApplied},
		{"within_the_retention", time.Hour, 30 * time.Minute, model.CommandAccepted},
		{"no_retention", 0, 1000 * time.Hour, model.CommandAccepted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *api.Config) { c.Retention = tt.retention })
			wf := e.seedWorkflow(t, definition("orders", 1), t0)
			x := e.seedExecution(t, wf, t0, 1) // start, begin, the increment that ends it
			events, _ := e.events.Load(t.Context(), model.ExecutionAggregateID(x.WorkflowExecutionUUID), 0)
			if x.Status != model.ExecutionSucceeded {
				t.Fatalf("seeded execution %s", x.Status)
			}
			e.views.remove(x.WorkflowExecutionUUID) // expired
			last := events[len(events)-1]
			e.now = last.OccurredAt.Add(tt.after)
			cmd := events[0].CommandUUID
			if err := e.cmds.PutCommand(t.Context(), model.CommandStatus{CommandUUID: cmd, Type: model.CommandStartExecution,
				Status: model.CommandAccepted, AggregateID: last.AggregateID}); err != nil {
				t.Fatal(err)
			}
			var a api.CommandAnswer
			r := e.do(t, http.MethodGet, "/v1/commands/"+cmd.String(), nil)
			r.wantStatus(t, http.StatusOK)
			r.decode(t, &a)
			if a.Status != tt.want {
				t.Fatalf("status %s, want %s", a.Status, tt.want)
			}
		})
	}
}

// Workflows of every step type go through the API as the OpenAPI document
// says (e.do checks each request and answer against it).
func TestStepTypesRoundTripThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	def := `{"name":"mixed","steps":[{"name":"approve","type":"manual","timeoutSeconds":60},{"name":"pause","type":"wait","seconds":2},` +
		`{"name":"charge","type":"http","url":"https://pay.example.com:8443/charge","method":"PUT","headers":{"X-Tenant":"t1"},"timeoutSeconds":5,` +
		`"retry":{"maxAttempts":3,"backoffSeconds":0.5,"maxBackoffSeconds":10}}]}`
	e.do(t, http.MethodPost, "/v1/workflows", json.RawMessage(def)).wantStatus(t, http.StatusAccepted)
	msgs := e.pub.published()
	cmd := decodeMessage(t, msgs[len(msgs)-1])
	create := cmd.Payload.(model.CreateWorkflow)
	wf := e.runWorkflow(t, model.Workflow{}, create, t0)
	r := e.do(t, http.MethodGet, "/v1/workflows/"+wf.WorkflowUUID.String(), nil)
	r.wantStatus(t, http.StatusOK)
	var got model.Workflow
	r.decode(t, &got)
	if len(got.Steps) != 3 || got.Steps[1].Seconds != 2 || got.Steps[2].Retry == nil || got.Steps[2].Retry.Policy == nil || got.Steps[2].Retry.Policy.MaxAttempts != 3 || got.Steps[2].Headers["X-Tenant"] != "t1" {
		t.Fatalf("steps read back: %+v", got.Steps)
	}
	x := e.seedExecution(t, wf, t0, 1) // the manual step done: the wait step runs
	r = e.do(t, http.MethodGet, "/v1/workflow-executions/"+x.WorkflowExecutionUUID.String(), nil)
	r.wantStatus(t, http.StatusOK)
	var view model.Execution
	r.decode(t, &view)
	if st := view.Steps[1]; st.Status != model.StepWaiting || st.DueAt == nil {
		t.Fatalf("the wait step: %+v, want WAITING with its due time", st)
	}
}

// A start whose input, with the workflow's definition, would take the
// execution over model.MaxExecutionData is refused at once with 413 and
// the sizes, and nothing is published (the worker would reject it).
func TestStartOverTheExecutionDataLimitIs413(t *testing.T) {
	e := newEnv(t)
	d := model.Definition{Name: "wide"}
	for i := range 60 {
		d.Steps = append(d.Steps, model.StepDefinition{Name: fmt.Sprint("call-", i), Type: model.StepHTTP, URL: "http://127.0.0.1:9/" + strings.Repeat("p", 2000)})
	}
	wf := e.seedWorkflow(t, d, t0)
	body := fmt.Sprintf(`{"workflowUUID":%q,"input":%q}`, wf.WorkflowUUID, strings.Repeat("i", 240<<10))
	r := e.do(t, http.MethodPost, "/v1/workflow-executions", body)
	r.wantStatus(t, http.StatusRequestEntityTooLarge)
	if p := r.problem(t); !strings.HasSuffix(p.Type, ":too-large") || !strings.Contains(p.Detail, "an execution may hold") {
		t.Fatalf("problem %+v, want too-large naming the limit", p)
	}
	if n := len(e.pub.published()); n != 0 {
		t.Fatalf("%d messages published, want none", n)
	}
	// A small input is accepted.
	e.do(t, http.MethodPost, "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q,"input":{"n":1}}`, wf.WorkflowUUID)).wantStatus(t, http.StatusAccepted)
}

// On a deployment whose workers cannot run an attempt as long as a step
// asks (Lambda: the worker function's timeout), the workflow is refused
// with 400 naming the step's field.
func TestHTTPTimeoutOverTheDeploymentsCapIs400(t *testing.T) {
	e := newEnv(t, func(c *api.Config) { c.MaxHTTPTimeout = 110 * time.Second })
	wf := func(seconds int) model.Definition {
		return model.Definition{Name: "n", Steps: []model.StepDefinition{
			{Name: "m", Type: model.StepManual},
			{Name: "call", Type: model.StepHTTP, URL: "http://127.0.0.1:9/x", TimeoutSeconds: seconds},
		}}
	}
	r := e.do(t, http.MethodPost, "/v1/workflows", wf(300))
	r.wantStatus(t, http.StatusBadRequest)
	if p := r.problem(t); !strings.Contains(p.Detail, "steps[1].timeoutSeconds") || !strings.Contains(p.Detail, "110 seconds") {
		t.Fatalf("problem %+v, want the field and the cap", p)
	}
	e.do(t, http.MethodPost, "/v1/workflows", wf(110)).wantStatus(t, http.StatusAccepted)
}

// A listing page is bounded in bytes as well as in items: of twenty
// executions of 300 KiB each, a page of limit 50 holds what fits in
// MaxPageBytes and a nextCursor, and the pages together hold each once.
func TestListingPagesAreBoundedInBytes(t *testing.T) {
	e := newEnv(t)
	wf := e.seedWorkflow(t, definition("big", 1), t0)
	input := json.RawMessage(`"` + strings.Repeat("x", 300<<10) + `"`)
	want := map[uuid.UUID]bool{}
	for i := range 20 {
		id := uuid.New()
		e.runExecution(t, model.Execution{}, &wf, model.StartExecution{WorkflowExecutionUUID: id, WorkflowUUID: wf.WorkflowUUID, Input: input}, t0.Add(time.Duration(i)*time.Second))
		want[id] = true
	}
	seen := map[uuid.UUID]bool{}
	cursor, pages := "", 0
	for {
		r := e.do(t, http.MethodGet, "/v1/workflow-executions?limit=50"+cursor, nil)
		r.wantStatus(t, http.StatusOK)
		if len(r.body) > api.MaxPageBytes+64<<10 {
			t.Fatalf("page %d is %d bytes, over MaxPageBytes (%d)", pages, len(r.body), api.MaxPageBytes)
		}
		var page api.Page[model.Execution]
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		pages++
		for _, x := range page.Items {
			if seen[x.WorkflowExecutionUUID] {
				t.Fatalf("execution %s on two pages", x.WorkflowExecutionUUID)
			}
			seen[x.WorkflowExecutionUUID] = true
		}
		if page.NextCursor == "" {
			break
		}
		cursor = "&cursor=" + page.NextCursor
	}
	if len(seen) != len(want) || pages < 2 {
		t.Fatalf("saw %d of %d executions in %d pages, want all in 2 or more", len(seen), len(want), pages)
	}
}

// The command UUIDs the API gives come from Config.NewCommandUUID (a
// simulation draws them from its seed).
func TestCommandUUIDsComeFromTheConfiguredSource(t *testing.T) {
	fixed := model.NewCommandUUID(t0)
	e := newEnv(t, func(c *api.Config) { c.NewCommandUUID = func(time.Time) uuid.UUID { return fixed } })
	r := e.do(t, http.MethodPost, "/v1/workflows", definition("orders", 1))
	r.wantStatus(t, http.StatusAccepted)
	var a api.Accepted
	r.decode(t, &a)
	if a.CommandUUID != fixed {
		t.Fatalf("commandUUID %s, want the configured %s", a.CommandUUID, fixed)
	}
}

// commandsOf returns the commands of a log's events, in order, each once.
func commandsOf(log []model.Event) []uuid.UUID {
	var out []uuid.UUID
	for _, ev := range log {
		if !slices.Contains(out, ev.CommandUUID) {
			out = append(out, ev.CommandUUID)
		}
	}
	return out
}
