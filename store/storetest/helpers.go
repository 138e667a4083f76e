package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// occurredAt is a fixed, nanosecond-precise UTC time for test events.
var occurredAt = time.Date(2030, 1, 2, 3, 4, 5, 600700800, time.UTC)

// NewAggregateID returns an aggregate id no other test uses.
func NewAggregateID() string { return "storetest:" + uuid.NewString() }

// NewEvent returns an event of aggregateID at seq with a fresh eventUUID
// and some data.
func NewEvent(aggregateID string, seq int64) model.Event {
	return model.Event{
		AggregateID: aggregateID,
		Seq:         seq,
		EventUUID:   uuid.New(),
		Type:        "StoreTested",
		Data:        json.RawMessage(fmt.Sprintf(`{"seq": %d, "note": "spaces kept"}`, seq)),
		CommandUUID: uuid.New(),
		OccurredAt:  occurredAt.Add(time.Duration(seq) * time.Millisecond),
	}
}

// NewEvents returns n events of aggregateID with consecutive seqs from first.
func NewEvents(aggregateID string, first int64, n int) []model.Event {
	out := make([]model.Event, n)
	for i := range out {
		out[i] = NewEvent(aggregateID, first+int64(i))
	}
	return out
}

// MustAppend appends events and fails the test on error.
func MustAppend(tb testing.TB, s store.EventLog, events ...model.Event) {
	tb.Helper()
	if err := s.Append(context.Background(), events); err != nil {
		tb.Fatalf("Append(%d events of %s from seq %d): got error %v, want nil", len(events), events[0].AggregateID, events[0].Seq, err)
	}
}

// MustLoad loads the aggregate's events after afterSeq and fails the test
// on error.
func MustLoad(tb testing.TB, s store.EventLog, aggregateID string, afterSeq int64) []model.Event {
	tb.Helper()
	events, err := s.Load(context.Background(), aggregateID, afterSeq)
	if err != nil {
		tb.Fatalf("Load(%s, %d): got error %v, want nil", aggregateID, afterSeq, err)
	}
	return events
}

// WantErr fails the test unless errors.Is(err, target). For the store's
// sentinels it also wants the error to be (or wrap) a *store.Error with an Op.
func WantErr(tb testing.TB, what string, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("%s: got error %v, want one wrapping %q", what, err, target)
	}
	switch target {
	case store.ErrNotFound, store.ErrConflict, store.ErrDuplicate, store.ErrInvalid:
		var se *store.Error
		if !errors.As(err, &se) || se.Op == "" {
			tb.Fatalf("%s: got error %v (%T), want a *store.Error with an Op", what, err, err)
		}
	}
}

// SameEvents fails the test unless got and want hold the same events,
// field by field (times compared with Equal, data byte for byte).
func SameEvents(tb testing.TB, what string, got, want []model.Event) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("%s: got %d events (seqs %v), want %d (seqs %v)", what, len(got), seqs(got), len(want), seqs(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.AggregateID != w.AggregateID || g.Seq != w.Seq || g.EventUUID != w.EventUUID ||
			g.Type != w.Type || g.CommandUUID != w.CommandUUID || !g.OccurredAt.Equal(w.OccurredAt) ||
			!bytes.Equal(g.Data, w.Data) {
			tb.Fatalf("%s: event %d:\ngot  %+v (data %s)\nwant %+v (data %s)", what, i, g, g.Data, w, w.Data)
		}
	}
}

func seqs(events []model.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

// SameJSON fails the test unless got and want encode to the same JSON (the
// form the API shows), which is how views are compared: a backend may give
// back an equivalent JSON value (compacted, null for nil).
func SameJSON(tb testing.TB, what string, got, want any) {
	tb.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		tb.Fatalf("%s: encode got: %v", what, err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		tb.Fatalf("%s: encode want: %v", what, err)
	}
	var gv, wv any
	if err := json.Unmarshal(g, &gv); err != nil {
		tb.Fatalf("%s: decode got: %v", what, err)
	}
	if err := json.Unmarshal(w, &wv); err != nil {
		tb.Fatalf("%s: decode want: %v", what, err)
	}
	g, _ = json.Marshal(gv) // canonical: sorted keys, compact
	w, _ = json.Marshal(wv)
	if !bytes.Equal(g, w) {
		tb.Fatalf("%s:\ngot  %s\nwant %s", what, g, w)
	}
}

// NewWorkflow returns a workflow view created at createdAt with version seq.
func NewWorkflow(createdAt time.Time, seq int64) model.Workflow {
	return model.Workflow{
		WorkflowUUID: uuid.New(),
		Name:         "storetest workflow",
		Description:  "made by storetest",
		Version:      1,
		Steps: []model.StepDefinition{
			{Name: "approve", Type: model.StepManual, Retry: &model.Retry{Rules: []model.RetryRule{{Errors: []string{"manual.*"}}}},
				Catch: []model.CatchRule{{Errors: []string{"*"}, Next: "ship"}}},
			{Name: "ship", Type: model.StepManual, TimeoutSeconds: 60, Output: "{'tracking': result.id}"},
			{Name: "checks", Type: model.StepParallel, Branches: []model.Branch{
				{Steps: []model.StepDefinition{{Name: "stock", Type: model.StepHTTP, URL: "http://stock.example/{{ input.order }}", Body: "{'order': input.order}"}}},
				{Steps: []model.StepDefinition{{Name: "fraud", Type: model.StepManual}}},
			}},
		},
		Output:    "steps.ship",
		CreatedAt: createdAt,
		UpdatedAt: createdAt,
		Seq:       seq,
	}
}

// NewExecution returns an execution view of workflow wf in status, created
// at createdAt, with version version.
func NewExecution(wf uuid.UUID, status string, createdAt time.Time, version int64) model.Execution {
	started := createdAt.Add(time.Second)
	return model.Execution{
		WorkflowExecutionUUID: uuid.New(),
		WorkflowUUID:          wf,
		WorkflowVersion:       1,
		Status:                status,
		CurrentStep:           1,
		Steps: []model.StepState{
			{Name: "approve", Type: model.StepManual, Status: model.StepSucceeded, Attempts: 2,
				Output: json.RawMessage(`{"ok":true}`), StartedAt: &started, FinishedAt: &started,
				Failures: []model.AttemptFailure{{Attempt: 1, Name: "manual.failed", At: started}}},
			{Name: "ship", Type: model.StepManual, Status: model.StepWaiting, Attempts: 1, StartedAt: &started},
			{Name: "checks", Type: model.StepParallel, Status: model.StepPending,
				Branches: []model.BranchState{{Status: model.BranchSucceeded, CurrentStep: 3}, {Status: model.BranchCancelled, CurrentStep: 4}}},
			{Name: "stock", Type: model.StepHTTP, Parallel: "checks", Status: model.StepSucceeded, Attempts: 1, ErrorName: ""},
			{Name: "fraud", Type: model.StepManual, Parallel: "checks", Branch: 1, Status: model.StepFailed, Error: "cancelled", ErrorName: "x.y"},
		},
		Redrives:   1,
		RedrivenAt: &started,
		Input:      json.RawMessage(`{"order":42}`),
		Version:    version,
		CreatedAt:  createdAt,
		UpdatedAt:  started,
	}
}

// MustPutWorkflow puts w with prevSeq and fails the test on error.
func MustPutWorkflow(tb testing.TB, s store.Views, w model.Workflow, prevSeq int64) {
	tb.Helper()
	if err := s.PutWorkflow(context.Background(), w, prevSeq); err != nil {
		tb.Fatalf("PutWorkflow(%s, seq %d, prev %d): got error %v, want nil", w.WorkflowUUID, w.Seq, prevSeq, err)
	}
}

// MustPutExecution puts x with prevVersion and fails the test on error.
func MustPutExecution(tb testing.TB, s store.Views, x model.Execution, prevVersion int64) {
	tb.Helper()
	if err := s.PutExecution(context.Background(), x, prevVersion); err != nil {
		tb.Fatalf("PutExecution(%s, version %d, prev %d): got error %v, want nil", x.WorkflowExecutionUUID, x.Version, prevVersion, err)
	}
}

// MustGetWorkflow gets a workflow view and fails the test on error.
func MustGetWorkflow(tb testing.TB, s store.Views, id uuid.UUID) model.Workflow {
	tb.Helper()
	w, err := s.GetWorkflow(context.Background(), id)
	if err != nil {
		tb.Fatalf("GetWorkflow(%s): got error %v, want nil", id, err)
	}
	return w
}

// MustGetExecution gets an execution view and fails the test on error.
func MustGetExecution(tb testing.TB, s store.Views, id uuid.UUID) model.Execution {
	tb.Helper()
	x, err := s.GetExecution(context.Background(), id)
	if err != nil {
		tb.Fatalf("GetExecution(%s): got error %v, want nil", id, err)
	}
	return x
}

// MustGetCommand gets a command status and fails the test on error.
func MustGetCommand(tb testing.TB, s store.Commands, id uuid.UUID) model.CommandStatus {
	tb.Helper()
	c, err := s.GetCommand(context.Background(), id)
	if err != nil {
		tb.Fatalf("GetCommand(%s): got error %v, want nil", id, err)
	}
	return c
}

// newer reports whether (at, id) comes strictly before (bt, bid) in a
// newest-first listing.
func newer(at time.Time, id uuid.UUID, bt time.Time, bid uuid.UUID) bool {
	if !at.Equal(bt) {
		return at.After(bt)
	}
	return bytes.Compare(id[:], bid[:]) > 0
}

// PageAll lists every page with the given limit, resuming each page after
// the last item of the one before, until a short page. It fails the test if
// a page is longer than limit or the listing does not end.
func PageAll[T any](tb testing.TB, limit int, pos func(T) store.Position, list func(store.ListQuery) ([]T, error)) []T {
	tb.Helper()
	var all []T
	var after *store.Position
	for pages := 0; ; pages++ {
		if pages > 100000 {
			tb.Fatalf("listing with limit %d did not end after %d pages", limit, pages)
		}
		page, err := list(store.ListQuery{Limit: limit, After: after})
		if err != nil {
			tb.Fatalf("list page %d (limit %d): got error %v, want nil", pages, limit, err)
		}
		if len(page) > limit {
			tb.Fatalf("list page %d: got %d items, want at most %d", pages, len(page), limit)
		}
		if len(page) > 0 && after != nil {
			if p := pos(page[0]); !newer(after.CreatedAt, after.ID, p.CreatedAt, p.ID) {
				tb.Fatalf("list page %d (limit %d) after (%s, %s): first item (%s, %s) does not come after it",
					pages, limit, after.CreatedAt.Format(time.RFC3339Nano), after.ID, p.CreatedAt.Format(time.RFC3339Nano), p.ID)
			}
		}
		all = append(all, page...)
		if len(page) < limit {
			return all
		}
		p := pos(page[len(page)-1])
		after = &p
	}
}

// checkListing fails the test unless items are strictly newest first and
// the ones whose ids are in own are exactly want, in order.
func checkListing[T any](tb testing.TB, what string, items []T, pos func(T) store.Position, own map[uuid.UUID]bool, want []uuid.UUID) {
	tb.Helper()
	var got []uuid.UUID
	for i, it := range items {
		p := pos(it)
		if i > 0 {
			q := pos(items[i-1])
			if !newer(q.CreatedAt, q.ID, p.CreatedAt, p.ID) {
				tb.Fatalf("%s: item %d (%s, %s) does not come after item %d (%s, %s) newest first",
					what, i, p.CreatedAt.Format(time.RFC3339Nano), p.ID, i-1, q.CreatedAt.Format(time.RFC3339Nano), q.ID)
			}
		}
		if own[p.ID] {
			got = append(got, p.ID)
		}
	}
	if !slices.Equal(got, want) {
		tb.Fatalf("%s: got own items\n%v\nwant (each once, newest first)\n%v", what, got, want)
	}
}

// sortNewestFirst returns the ids ordered as a listing must return them.
func sortNewestFirst(items []store.Position) []uuid.UUID {
	items = slices.Clone(items)
	slices.SortFunc(items, func(a, b store.Position) int {
		if newer(a.CreatedAt, a.ID, b.CreatedAt, b.ID) {
			return -1
		}
		if newer(b.CreatedAt, b.ID, a.CreatedAt, a.ID) {
			return 1
		}
		return 0
	})
	out := make([]uuid.UUID, len(items))
	for i, p := range items {
		out[i] = p.ID
	}
	return out
}

func workflowPos(w model.Workflow) store.Position {
	return store.Position{CreatedAt: w.CreatedAt, ID: w.WorkflowUUID}
}

func executionPos(x model.Execution) store.Position {
	return store.Position{CreatedAt: x.CreatedAt, ID: x.WorkflowExecutionUUID}
}

// startTogether runs n goroutines that all start f at once and waits for
// them.
func startTogether(n int, f func(i int)) {
	start := make(chan struct{})
	done := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			defer func() { done <- struct{}{} }()
			<-start
			f(i)
		}()
	}
	close(start)
	for i := 0; i < n; i++ {
		<-done
	}
}

// oneWinner checks the outcome of racers that each tried what: exactly one
// succeeded, and every other failed with an error wrapping loser. It
// returns the winner's index.
func oneWinner(tb testing.TB, what string, errs []error, loser error) int {
	tb.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			tb.Fatalf("racers %d and %d both %s, want one winner", winner, i, what)
		case err == nil:
			winner = i
		case !errors.Is(err, loser):
			tb.Fatalf("racer %d: got error %v, want nil or one wrapping %q", i, err, loser)
		}
	}
	if winner < 0 {
		tb.Fatalf("no racer %s, want exactly one", what)
	}
	return winner
}
