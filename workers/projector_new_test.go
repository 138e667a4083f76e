package workers_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store/pebble"
	"github.com/workflowd/workflowd/workers"
)

// countingViews counts the projector's view reads.
type countingViews struct {
	*pebble.Store
	gets atomic.Int32
}

func (c *countingViews) GetExecution(ctx context.Context, id uuid.UUID) (model.Execution, error) {
	c.gets.Add(1)
	return c.Store.GetExecution(ctx, id)
}

// A batch that begins with an execution's first event is projected
// without reading the view (there is none); a replay of it, when the view
// has moved on, reads the view and changes nothing.
func TestProjectorPutsANewExecutionWithoutReadingIt(t *testing.T) {
	ctx := context.Background()
	st := &countingViews{Store: mustStore(t)}
	appends := executionAppends(t, 1)
	created, ended := appends[0], appends[1]
	_, id, err := model.ParseAggregateID(created[0].AggregateID)
	if err != nil {
		t.Fatal(err)
	}
	for _, events := range [][]model.Event{created, ended} {
		if err := st.Append(ctx, events); err != nil {
			t.Fatal(err)
		}
	}
	first := &workers.Projector{Log: st, Views: st, Logger: quiet}
	if err := first.Handle(ctx, created); err != nil {
		t.Fatal(err)
	}
	if n := st.gets.Load(); n != 0 {
		t.Fatalf("projecting a new execution read its view %d times, want 0", n)
	}
	if err := first.Handle(ctx, ended); err != nil {
		t.Fatal(err)
	}
	want, err := st.GetExecution(ctx, id)
	if err != nil || want.Status != model.ExecutionSucceeded {
		t.Fatalf("view after both appends: %+v, %v; want SUCCEEDED", want, err)
	}
	// A replay from the first record, by a projector with nothing cached.
	again := &workers.Projector{Log: st, Views: st, Logger: quiet}
	st.gets.Store(0)
	if err := again.Handle(ctx, created); err != nil {
		t.Fatalf("replay of the first append: got %v, want nil", err)
	}
	got, err := st.GetExecution(ctx, id)
	if err != nil || got.Version != want.Version || got.Status != want.Status {
		t.Fatalf("view after the replay: version %d %s (%v), want version %d %s", got.Version, got.Status, err, want.Version, want.Status)
	}
	if n := st.gets.Load(); n != 2 { // the projector's, after the refused put, and the test's
		t.Fatalf("the replay read the view %d times (with the test's), want 2", n)
	}
}
