package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/bus/local"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store/pebble"
	"github.com/workflowd/workflowd/workers"
)

var quiet = slog.New(slog.DiscardHandler)

func mustStore(t *testing.T) *pebble.Store {
	t.Helper()
	st, err := pebble.Open(pebble.Options{Logger: quiet})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func body(t *testing.T, p model.Payload) []byte {
	t.Helper()
	b, err := json.Marshal(model.NewCommand(uuid.New(), p, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func manual(n int) model.Definition {
	d := model.Definition{Name: "wf"}
	for i := range n {
		d.Steps = append(d.Steps, model.StepDefinition{Name: fmt.Sprint("s", i), Type: model.StepManual})
	}
	return d
}

func TestRedeliveredCommandHasOneEffect(t *testing.T) {
	st := mustStore(t)
	w := &workers.CommandWorker{Log: st, Commands: st, Logger: quiet}
	id := uuid.New()
	msg := body(t, model.CreateWorkflow{WorkflowUUID: id, Definition: manual(1)})
	for i := range 3 {
		if err := w.Handle(context.Background(), msg, i+1); err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
	}
	events, err := st.Load(context.Background(), model.WorkflowAggregateID(id), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Fatalf("events after 3 deliveries: got %d, want 1", len(events))
	}
}

// Twenty workers racing on one aggregate serialize: each update wins a seq
// after reloading, none is lost, none applies twice.
func TestRacingCommandsOnOneAggregateAllApplyOnce(t *testing.T) {
	st := mustStore(t)
	w := &workers.CommandWorker{Log: st, Commands: st, Logger: quiet}
	id := uuid.New()
	ctx := context.Background()
	if err := w.Handle(ctx, body(t, model.CreateWorkflow{WorkflowUUID: id, Definition: manual(1)}), 1); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range 20 {
		msg := body(t, model.UpdateWorkflow{WorkflowUUID: id, Definition: manual(i%5 + 1)})
		wg.Go(func() {
			// Each message is delivered twice, concurrently with the others.
			errs[i] = errors.Join(w.Handle(ctx, msg, 1), w.Handle(ctx, msg, 2))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	events, err := st.Load(ctx, model.WorkflowAggregateID(id), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 21 {
		t.Fatalf("events: got %d, want 21 (create + 20 updates, each once)", len(events))
	}
	wf, err := model.FoldWorkflow(model.Workflow{}, events)
	if err != nil {
		t.Fatal(err)
	}
	if wf.Version != 21 {
		t.Fatalf("version: got %d, want 21", wf.Version)
	}
}

func TestRejectionIsRecordedWithReason(t *testing.T) {
	st := mustStore(t)
	var notified []uuid.UUID
	w := &workers.CommandWorker{Log: st, Commands: st, Logger: quiet, OnFinished: func(id uuid.UUID) { notified = append(notified, id) }}
	cmd := model.NewCommand(uuid.New(), model.DeleteWorkflow{WorkflowUUID: uuid.New()}, time.Now())
	if err := w.HandleCommand(context.Background(), cmd, 1); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetCommand(context.Background(), cmd.CommandUUID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != model.CommandRejected || got.Error != "workflow not found" {
		t.Fatalf("status: got %s %q, want REJECTED \"workflow not found\"", got.Status, got.Error)
	}
	if len(notified) != 1 || notified[0] != cmd.CommandUUID {
		t.Fatalf("OnFinished calls: %v", notified)
	}
}

func TestTransientRejectionIsRetriedThenFinal(t *testing.T) {
	st := mustStore(t)
	w := &workers.CommandWorker{Log: st, Commands: st, Logger: quiet, TransientAttempts: 3}
	cmd := model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: uuid.New(), WorkflowUUID: uuid.New()}, time.Now())
	for n := 1; n < 3; n++ {
		err := w.HandleCommand(context.Background(), cmd, n)
		var retry *workers.RetryError
		if !errors.As(err, &retry) || retry.After <= 0 {
			t.Fatalf("receive %d: got %v, want a *RetryError", n, err)
		}
	}
	if err := w.HandleCommand(context.Background(), cmd, 3); err != nil {
		t.Fatalf("last receive: %v", err)
	}
	got, _ := st.GetCommand(context.Background(), cmd.CommandUUID)
	if got.Status != model.CommandRejected {
		t.Fatalf("after the last attempt: %s, want REJECTED", got.Status)
	}
}

func TestMalformedMessageIsAnErrorForTheDLQ(t *testing.T) {
	st := mustStore(t)
	w := &workers.CommandWorker{Log: st, Commands: st, Logger: quiet}
	for _, b := range []string{``, `{`, `{"commandUUID":"x"}`, `{"commandUUID":"` + uuid.NewString() + `","type":"Nope","data":{}}`} {
		if err := w.Handle(context.Background(), []byte(b), 1); !errors.Is(err, model.ErrBadCommand) {
			t.Errorf("Handle(%q): got %v, want ErrBadCommand", b, err)
		}
	}
}

// The projector's views equal the fold of the log whatever the feed does:
// duplicates, replays, batches with gaps, events of several aggregates.
func TestProjectorConvergesUnderDuplicatesAndGaps(t *testing.T) {
	st := mustStore(t)
	ctx := context.Background()
	w := &workers.CommandWorker{Log: st, Commands: st, Logger: quiet}
	announced := map[uuid.UUID]bool{}
	p := &workers.Projector{Log: st, Views: st, Logger: quiet, OnFinished: func(id uuid.UUID) { announced[id] = true }}
	wfID, exID := uuid.New(), uuid.New()
	steps := []model.Payload{
		model.CreateWorkflow{WorkflowUUID: wfID, Definition: manual(3)},
		model.StartExecution{WorkflowExecutionUUID: exID, WorkflowUUID: wfID},
		model.BeginExecution{WorkflowExecutionUUID: exID},
		model.IncrementExecution{WorkflowExecutionUUID: exID, Step: 0},
		model.IncrementExecution{WorkflowExecutionUUID: exID, Step: 1},
	}
	for _, s := range steps {
		if err := w.Handle(ctx, body(t, s), 1); err != nil {
			t.Fatal(err)
		}
	}
	wfEvents, _ := st.Load(ctx, model.WorkflowAggregateID(wfID), 0)
	exEvents, _ := st.Load(ctx, model.ExecutionAggregateID(exID), 0)
	if len(exEvents) != 7 {
		t.Fatalf("execution events: got %d, want 7", len(exEvents))
	}
	batches := [][]model.Event{
		{exEvents[3], exEvents[4]},              // a gap: the view has nothing yet
		wfEvents,                                // another aggregate
		{exEvents[0], exEvents[1], exEvents[1]}, // old and duplicate events
		exEvents,                                // a full replay
		{exEvents[6], exEvents[5], wfEvents[0]}, // reordered
	}
	for i, b := range batches {
		if err := p.Handle(ctx, b); err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
	}
	want, err := model.FoldExecution(model.Execution{}, exEvents)
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.GetExecution(ctx, exID)
	if err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("view differs from the fold of the log:\n got %s\nwant %s", gb, wb)
	}
	// The view remembers its last commands (a status read derives APPLIED
	// from them), and each command was announced to OnFinished.
	if !slices.Equal(got.RecentCommands, want.RecentCommands) || len(got.RecentCommands) == 0 {
		t.Fatalf("view's recent commands: got %v, want %v", got.RecentCommands, want.RecentCommands)
	}
	for _, e := range append(exEvents, wfEvents...) {
		if !announced[e.CommandUUID] {
			t.Fatalf("command %s of seq %d was not announced as applied", e.CommandUUID, e.Seq)
		}
	}
}

type recordingPublisher struct {
	mu   sync.Mutex
	msgs []bus.Message
}

func (r *recordingPublisher) Publish(_ context.Context, m bus.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, m)
	return nil
}

func TestDispatcherBeginsCreatedExecutionsDeterministically(t *testing.T) {
	pub := &recordingPublisher{}
	d := &workers.Dispatcher{Publisher: pub, Logger: quiet}
	exID := uuid.New()
	created, _ := json.Marshal(model.ExecutionCreated{WorkflowExecutionUUID: exID, WorkflowUUID: uuid.New(), Steps: manual(1).Steps})
	e := model.Event{AggregateID: model.ExecutionAggregateID(exID), Seq: 1, EventUUID: uuid.New(), Type: model.EventExecutionCreated, Data: created, OccurredAt: time.Now()}
	started := model.Event{AggregateID: e.AggregateID, Seq: 2, EventUUID: uuid.New(), Type: model.EventExecutionStarted, Data: []byte(`{}`)}
	// An execution this build created begins in the append that creates
	// it: nothing to publish.
	if err := d.Handle(context.Background(), []model.Event{e, started}); err != nil {
		t.Fatal(err)
	}
	if len(pub.msgs) != 0 {
		t.Fatalf("published %d messages for an execution created and begun in one append, want none", len(pub.msgs))
	}
	// One an earlier build created alone is begun, the same command on
	// each read.
	for range 2 { // a replay of the feed
		if err := d.Handle(context.Background(), []model.Event{e}); err != nil {
			t.Fatal(err)
		}
	}
	if len(pub.msgs) != 2 {
		t.Fatalf("published: got %d, want 2 (one per read of ExecutionCreated)", len(pub.msgs))
	}
	if string(pub.msgs[0].Body) != string(pub.msgs[1].Body) {
		t.Fatalf("a replay published a different command:\n%s\n%s", pub.msgs[0].Body, pub.msgs[1].Body)
	}
	cmd, err := model.DecodeCommand(pub.msgs[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Type != model.CommandBeginExecution || pub.msgs[0].Attributes[bus.TargetAttribute] != bus.QueueExecutions {
		t.Fatalf("published %s to %q", cmd.Type, pub.msgs[0].Attributes[bus.TargetAttribute])
	}
}

// A message no worker can handle ends in the dead-letter queue after
// MaxReceiveCount receives, with its reason, and can be redriven.
// consumeUntilDead publishes bodies to the executions queue of a new
// in-process bus (maximum receive count 2), consumes them with h until a
// message is dead-lettered (or 20 s pass), and returns the dead letters
// and the bus, open until the test ends.
func consumeUntilDead(t *testing.T, h workers.MessageHandler, bodies ...string) ([]bus.Delivery, *local.Bus) {
	t.Helper()
	b, err := local.Open(local.Options{Logger: quiet, Queues: []local.QueueConfig{
		{Name: bus.QueueExecutions, VisibilityTimeout: time.Second, MaxReceiveCount: 2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	q, _ := b.Queue(bus.QueueExecutions)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		workers.Consume(ctx, q, h, workers.ConsumerOptions{Concurrency: 2, Wait: 50 * time.Millisecond, Logger: quiet})
		close(done)
	}()
	for _, body := range bodies {
		if err := b.Publish(ctx, bus.Message{Body: []byte(body), Attributes: map[string]string{bus.TargetAttribute: bus.QueueExecutions}}); err != nil {
			t.Fatal(err)
		}
	}
	var dead []bus.Delivery
	for deadline := time.Now().Add(20 * time.Second); len(dead) == 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if dead, err = b.ListDeadLetters(ctx, bus.QueueExecutions, 10); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	<-done
	return dead, b
}

func TestPoisonMessageEndsInDeadLetterQueue(t *testing.T) {
	st := mustStore(t)
	poison := bus.Message{Body: []byte(`{"not":"a command"}`)}
	dead, b := consumeUntilDead(t, &workers.CommandWorker{Log: st, Commands: st, Logger: quiet}, string(poison.Body))
	if len(dead) != 1 || string(dead[0].Body) != string(poison.Body) {
		t.Fatalf("dead letters: %+v", dead)
	}
	if dead[0].Attributes["lastError"] == "" {
		t.Errorf("the dead letter carries no reason: %+v", dead[0].Attributes)
	}
	n, err := b.Redrive(context.Background(), bus.QueueExecutions, 10)
	if err != nil || n != 1 {
		t.Fatalf("redrive: %d, %v", n, err)
	}
}

// Workers that trust their caches still decide as if they had read the log:
// a cache behind the log either conflicts at the append or rejects, and
// both send the worker back to the log. Two workers take turns on one
// execution, so each one's cache is behind at every turn.
func TestTrustedCacheBehindTheLogDecidesAgain(t *testing.T) {
	st := mustStore(t)
	ctx := context.Background()
	a := &workers.CommandWorker{Log: st, Commands: st, Logger: quiet, TrustCache: true}
	b := &workers.CommandWorker{Log: st, Commands: st, Logger: quiet, TrustCache: true}
	wf, x := uuid.New(), uuid.New()
	handle := func(w *workers.CommandWorker, name string, cmd model.Command) {
		t.Helper()
		if err := w.HandleCommand(ctx, cmd, 1); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	cmd := func(p model.Payload) model.Command { return model.NewCommand(uuid.New(), p, time.Now()) }
	inc := func(step int) model.Command {
		return cmd(model.IncrementExecution{WorkflowExecutionUUID: x, Step: step})
	}
	handle(a, "create", cmd(model.CreateWorkflow{WorkflowUUID: wf, Definition: manual(3)}))
	handle(a, "start", cmd(model.StartExecution{WorkflowExecutionUUID: x, WorkflowUUID: wf}))
	handle(a, "begin", cmd(model.BeginExecution{WorkflowExecutionUUID: x}))
	inc0, inc1, inc2 := inc(0), inc(1), inc(2)
	handle(b, "b: step 0 (no cache: reads)", inc0)
	handle(a, "a: step 1 (its cache says step 0 is current: rejects, reads, applies)", inc1)
	handle(b, "b: step 2 (its cache says step 1: likewise)", inc2)
	handle(a, "a: step 2 again (its cache accepts it: the append finds the twin)", inc2)
	handle(b, "b: step 0 again (a duplicate its cache knows)", inc0)

	events, err := st.Load(ctx, model.ExecutionAggregateID(x), 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := model.FoldExecution(model.Execution{}, events)
	if err != nil {
		t.Fatal(err)
	}
	completed := map[int]int{}
	for _, e := range events {
		if e.Type == model.EventStepCompleted {
			var d model.StepCompleted
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			completed[d.Step]++
		}
	}
	if got.Status != model.ExecutionSucceeded || fmt.Sprint(completed) != "map[0:1 1:1 2:1]" {
		t.Fatalf("execution %s with steps completed %v, want SUCCEEDED with each step completed once", got.Status, completed)
	}
	for _, c := range []model.Command{inc0, inc1, inc2} {
		if st, err := st.GetCommand(ctx, c.CommandUUID); err == nil {
			t.Errorf("command %s has a status %s %q: a stale cache's rejection was recorded", c.CommandUUID, st.Status, st.Error)
		}
	}
}

// slowHandler takes its time with every message and counts the deliveries.
type slowHandler struct {
	took  time.Duration
	calls atomic.Int64
}

func (h *slowHandler) Handle(ctx context.Context, body []byte, receiveCount int) error {
	h.calls.Add(1)
	time.Sleep(h.took)
	return nil
}

// A message whose handler outlasts the visibility timeout is kept
// invisible: it is not delivered again while the first delivery works.
func TestConsumeKeepsASlowMessageInvisible(t *testing.T) {
	b, err := local.Open(local.Options{Logger: quiet, Queues: []local.QueueConfig{
		{Name: bus.QueueExecutions, VisibilityTimeout: time.Second, MaxReceiveCount: 10},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q, _ := b.Queue(bus.QueueExecutions)
	h := &slowHandler{took: 2500 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		workers.Consume(ctx, q, h, workers.ConsumerOptions{Concurrency: 4, Wait: 100 * time.Millisecond, Visibility: time.Second, Logger: quiet})
		close(done)
	}()
	if err := q.Send(ctx, bus.Message{Body: []byte("slow")}, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	cancel()
	<-done
	if n := h.calls.Load(); n != 1 {
		t.Fatalf("the slow message was handled %d times, want once", n)
	}
}
