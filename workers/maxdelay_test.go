package workers_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
	"github.com/workflowd/workflowd/workers"
)

// recordingScheduler records the delayed sends it is asked for.
type recordingScheduler struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (r *recordingScheduler) Send(_ context.Context, _ bus.Message, delay time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delays = append(r.delays, delay)
	return nil
}

// timerStarted is the StepStarted of a wait step due in after.
func timerStarted(t *testing.T, exID uuid.UUID, now time.Time, after time.Duration) model.Event {
	t.Helper()
	due := now.Add(after)
	data, err := json.Marshal(model.StepStarted{Step: 0, Type: model.StepWait, DueAt: &due})
	if err != nil {
		t.Fatal(err)
	}
	return model.Event{AggregateID: model.ExecutionAggregateID(exID), Seq: 2, EventUUID: uuid.New(), Type: model.EventStepStarted, Data: data, OccurredAt: now}
}

// The dispatcher sends a timer through the scheduler only when the bus can
// delay it that long (MaxDelay); a later one, and every one when the bus
// delays nothing (MaxDelay 0), is left to the cleanup.
func TestDispatcherDelaysATimerOnlyWithinMaxDelay(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		maxDelay time.Duration
		after    time.Duration
		sent     bool
	}{
		{"within_the_bus_delay", 15 * time.Minute, 10 * time.Minute, true},
		{"at_the_bus_delay", 15 * time.Minute, 15 * time.Minute, true},
		{"past_the_bus_delay", 15 * time.Minute, 16 * time.Minute, false},
		{"bus_without_delays", 0, time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, sched := &recordingPublisher{}, &recordingScheduler{}
			d := &workers.Dispatcher{Publisher: pub, Scheduler: sched, MaxDelay: tt.maxDelay, Logger: quiet, Now: func() time.Time { return now }}
			if err := d.Handle(context.Background(), []model.Event{timerStarted(t, uuid.New(), now, tt.after)}); err != nil {
				t.Fatal(err)
			}
			if got := len(sched.delays) == 1; got != tt.sent {
				t.Fatalf("delayed sends: got %v, want sent=%v", sched.delays, tt.sent)
			}
			if tt.sent && sched.delays[0] != tt.after {
				t.Errorf("delay: got %v, want %v", sched.delays[0], tt.after)
			}
			if len(pub.msgs) != 0 {
				t.Errorf("published %d messages at once, want none (a timer waits)", len(pub.msgs))
			}
		})
	}
}

// The projector stores each execution view's due time as DueAt computes it
// with its MaxDelay, and the cleanup then finds the execution by it: a wait
// step too long for the bus is due when it ends, a shorter one a grace
// later (the queue delivers it).
func TestProjectorStoresTheDueTimeOfItsMaxDelay(t *testing.T) {
	ctx := context.Background()
	created := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		maxDelay time.Duration
		wait     int // seconds
		wantDue  time.Duration
	}{
		{"timer_the_queue_delivers", 15 * time.Minute, 600, 600*time.Second + model.CleanupGrace},
		{"timer_too_long_for_the_queue", 15 * time.Minute, 3600, 3600 * time.Second},
		{"bus_without_delays", 0, 600, 600 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := mustStore(t)
			wf := model.Workflow{WorkflowUUID: uuid.New(), Name: "wf", Version: 1, Seq: 1,
				Steps: []model.StepDefinition{{Name: "pause", Type: model.StepWait, Seconds: tt.wait}}}
			x := model.Execution{}
			id := uuid.New()
			start := model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: id, WorkflowUUID: wf.WorkflowUUID}, created)
			events, err := model.DecideExecution(x, start, &wf, created)
			if err != nil {
				t.Fatal(err)
			}
			p := &workers.Projector{Log: st, Views: st, MaxDelay: tt.maxDelay, Logger: quiet}
			if err := p.Handle(ctx, events); err != nil {
				t.Fatal(err)
			}
			view, err := st.GetExecution(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if want := created.Add(tt.wantDue); !view.Due.Equal(want) {
				t.Fatalf("view's due time: got %v, want %v", view.Due, want)
			}
			due, err := st.ListDue(ctx, store.DueQuery{Before: created.Add(tt.wantDue), Limit: 10})
			if err != nil || len(due) != 1 || due[0].WorkflowExecutionUUID != id {
				t.Fatalf("ListDue at the due time: got %d executions, %v; want this one", len(due), err)
			}
		})
	}
}
