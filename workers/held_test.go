package workers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
	"github.com/workflowd/workflowd/workers"
)

// keyedEndpoint is an http step endpoint as a RoundTripper: it counts the
// calls of each Idempotency-Key and the most in flight at once, and can
// hold the next call until its context ends.
type keyedEndpoint struct {
	mu       sync.Mutex
	calls    map[string]int
	inFlight map[string]int
	maxIn    int
	hold     chan struct{} // non-nil: the next call waits for its context, then closes it
}

func (e *keyedEndpoint) RoundTrip(r *http.Request) (*http.Response, error) {
	key := r.Header.Get("Idempotency-Key")
	e.mu.Lock()
	e.calls[key]++
	e.inFlight[key]++
	e.maxIn = max(e.maxIn, e.inFlight[key])
	hold := e.hold
	e.hold = nil
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.inFlight[key]--
		e.mu.Unlock()
	}()
	if hold != nil {
		close(hold) // the call is in flight
		<-r.Context().Done()
		return nil, r.Context().Err()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"ok":true}`)), Request: r}, nil
}

func (e *keyedEndpoint) count(key string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[key]
}

// An http attempt has one caller at a time: of two workers handling
// twin deliveries of a start, only the one whose append wins calls (the
// other comes back later), and it makes the next step's attempt too (no
// RunStep message). When its call is
// cut short (its context ends: a crash), a redelivery waits until the
// attempt's time is up, then takes it over (a StepAttemptStarted) and
// calls again with the same Idempotency-Key.
func TestAnHTTPAttemptHasOneCallerAtATime(t *testing.T) {
	st := mustStore(t)
	ctx := context.Background()
	ep := &keyedEndpoint{calls: map[string]int{}, inFlight: map[string]int{}}
	var clock struct {
		sync.Mutex
		now time.Time
	}
	clock.now = time.Now()
	now := func() time.Time { clock.Lock(); defer clock.Unlock(); return clock.now }
	newWorker := func() *workers.CommandWorker {
		return &workers.CommandWorker{Log: st, Commands: st, Logger: quiet, Now: now, TrustCache: true,
			HTTP: &workers.HTTPCaller{AllowHosts: []string{"hook.test:80"}, Transport: ep}}
	}
	a, b := newWorker(), newWorker()
	wfID := uuid.New()
	def := model.Definition{Name: "wf", Steps: []model.StepDefinition{
		{Name: "one", Type: model.StepHTTP, URL: "http://hook.test/one", TimeoutSeconds: 1},
		{Name: "two", Type: model.StepHTTP, URL: "http://hook.test/two", TimeoutSeconds: 1},
	}}
	if err := a.Handle(ctx, body(t, model.CreateWorkflow{WorkflowUUID: wfID, Definition: def}), 1); err != nil {
		t.Fatal(err)
	}
	start := func(id uuid.UUID) []byte {
		m, err := json.Marshal(model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: id, WorkflowUUID: wfID}, now().Add(-time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	history := func(id uuid.UUID) model.Execution {
		t.Helper()
		events, err := st.Load(ctx, model.ExecutionAggregateID(id), 0)
		if err != nil {
			t.Fatal(err)
		}
		x, err := model.FoldExecution(model.Execution{}, events)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}

	t.Run("twin_deliveries", func(t *testing.T) {
		id := uuid.New()
		msg := start(id)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, w := range []*workers.CommandWorker{a, b} {
			wg.Go(func() { errs[i] = w.Handle(ctx, msg, 1) })
		}
		wg.Wait()
		// The twin that lost may have found the attempt held, and been
		// told to come back; once the winner is done, it is acknowledged.
		for i, err := range errs {
			var retry *workers.RetryError
			if errors.As(err, &retry) {
				err = []*workers.CommandWorker{a, b}[i].Handle(ctx, msg, 2)
			}
			if err != nil {
				t.Fatalf("delivery %d: %v", i, err)
			}
		}
		if x := history(id); x.Status != model.ExecutionSucceeded {
			t.Fatalf("execution %s, want SUCCEEDED by the worker that started it", x.Status)
		}
		for step := range 2 {
			if n := ep.count(id.String() + ":" + string(rune('0'+step)) + ":1"); n != 1 {
				t.Fatalf("step %d called %d times, want once", step, n)
			}
		}
	})

	t.Run("cut_call_taken_over_after_its_time", func(t *testing.T) {
		id := uuid.New()
		msg := start(id)
		held := make(chan struct{})
		ep.mu.Lock()
		ep.hold = held
		ep.mu.Unlock()
		cut, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Handle(cut, msg, 1) }()
		<-held
		// While the call is in flight, a redelivery must wait.
		var retry *workers.RetryError
		if err := b.Handle(ctx, msg, 2); !errors.As(err, &retry) || retry.After <= 0 {
			t.Fatalf("redelivery while the holder calls: %v, want a RetryError until its time is up", err)
		}
		cancel()
		if err := <-done; err == nil {
			t.Fatal("a handler whose call was cut short reported success")
		}
		key := id.String() + ":0:1"
		if n := ep.count(key); n != 1 {
			t.Fatalf("calls of %s before the takeover: %d, want 1", key, n)
		}
		// Still too early, a moment before the holder's time is up.
		if err := b.Handle(ctx, msg, 3); !errors.As(err, &retry) {
			t.Fatalf("redelivery before the takeover time: %v, want a RetryError", err)
		}
		clock.Lock()
		clock.now = clock.now.Add(time.Second + model.AttemptGrace)
		clock.Unlock()
		if err := b.Handle(ctx, msg, 4); err != nil {
			t.Fatalf("redelivery after the takeover time: %v", err)
		}
		x := history(id)
		if x.Status != model.ExecutionSucceeded {
			t.Fatalf("execution %s after the takeover, want SUCCEEDED", x.Status)
		}
		if n := ep.count(key); n != 2 {
			t.Fatalf("calls of %s: %d, want 2 (the cut one, then the takeover's)", key, n)
		}
		events, _ := st.Load(ctx, model.ExecutionAggregateID(id), 0)
		var resumed int
		for _, e := range events {
			if e.Type == model.EventStepAttemptStarted && strings.Contains(string(e.Data), `"resumed":true`) {
				resumed++
			}
		}
		if resumed != 1 {
			t.Fatalf("StepAttemptStarted resumed events: %d, want 1", resumed)
		}
	})
	// The append that starts the execution (and holds its first attempt)
	// is taken by the store, but its answer is lost and the SDK sends it
	// again: the worker sees ErrDuplicate, as for a twin. It must not
	// acknowledge the message as if a live twin held the attempt: nobody
	// may, so the message comes back, and takes the attempt over once
	// its time is up.
	t.Run("answer_of_the_holding_append_lost", func(t *testing.T) {
		id := uuid.New()
		msg := start(id)
		lossy := &lostAnswerLog{EventLog: st, aggregate: model.ExecutionAggregateID(id)}
		w := &workers.CommandWorker{Log: lossy, Commands: st, Logger: quiet, Now: now, TrustCache: true,
			HTTP: &workers.HTTPCaller{AllowHosts: []string{"hook.test:80"}, Transport: ep}}
		var retry *workers.RetryError
		if err := w.Handle(ctx, msg, 1); !errors.As(err, &retry) {
			t.Fatalf("a start whose append's answer was lost: %v, want a RetryError (the attempt it holds may have no caller)", err)
		}
		if x := history(id); x.Status != model.ExecutionRunning || ep.count(id.String()+":0:1") != 0 {
			t.Fatalf("after the lost answer: %s, %d calls; want RUNNING and no call yet", x.Status, ep.count(id.String()+":0:1"))
		}
		clock.Lock()
		clock.now = clock.now.Add(time.Second + model.AttemptGrace)
		clock.Unlock()
		if err := w.Handle(ctx, msg, 2); err != nil {
			t.Fatalf("redelivery after the takeover time: %v", err)
		}
		if x := history(id); x.Status != model.ExecutionSucceeded {
			t.Fatalf("execution %s, want SUCCEEDED after the takeover", x.Status)
		}
	})
	if ep.maxIn != 1 {
		t.Fatalf("most calls of one attempt in flight at once: %d, want 1", ep.maxIn)
	}
}

// lostAnswerLog is an event log whose first append to aggregate is taken
// but answered ErrDuplicate: what the worker sees when the SDK sent a
// conditional put again after its first answer was lost.
type lostAnswerLog struct {
	workers.EventLog
	aggregate string
	once      sync.Once
}

func (l *lostAnswerLog) Append(ctx context.Context, events []model.Event) error {
	err := l.EventLog.Append(ctx, events)
	if err == nil && events[0].AggregateID == l.aggregate {
		l.once.Do(func() { err = fmt.Errorf("append %s: %w", l.aggregate, store.ErrDuplicate) })
	}
	return err
}

// A handler whose context ends too soon for an attempt (a Lambda
// invocation near its deadline) makes no call: the message comes back
// once the attempt may be taken over, and that delivery calls.
func TestAnAttemptIsNotStartedWithoutTimeForIt(t *testing.T) {
	st := mustStore(t)
	ctx := context.Background()
	ep := &keyedEndpoint{calls: map[string]int{}, inFlight: map[string]int{}}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	w := &workers.CommandWorker{Log: st, Commands: st, Logger: quiet, Now: clock,
		HTTP: &workers.HTTPCaller{AllowHosts: []string{"hook.test:80"}, Transport: ep}}
	wfID, id := uuid.New(), uuid.New()
	def := model.Definition{Name: "wf", Steps: []model.StepDefinition{{Name: "slow", Type: model.StepHTTP, URL: "http://hook.test/slow", TimeoutSeconds: 30}}}
	if err := w.Handle(ctx, body(t, model.CreateWorkflow{WorkflowUUID: wfID, Definition: def}), 1); err != nil {
		t.Fatal(err)
	}
	msg, err := json.Marshal(model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: id, WorkflowUUID: wfID}, clock().Add(-time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second) // less than the attempt's 30 s
	defer cancel()
	var retry *workers.RetryError
	if err := w.Handle(short, msg, 1); !errors.As(err, &retry) || retry.After < 30*time.Second {
		t.Fatalf("start with 5 s left: %v, want a RetryError until the attempt may be taken over", err)
	}
	key := id.String() + ":0:1"
	if n := ep.count(key); n != 0 {
		t.Fatalf("%d calls made without the time for them, want none", n)
	}
	mu.Lock()
	now = now.Add(retry.After)
	mu.Unlock()
	if err := w.Handle(ctx, msg, 2); err != nil {
		t.Fatalf("the delivery with time for it: %v", err)
	}
	if n := ep.count(key); n != 1 {
		t.Fatalf("calls after the takeover: %d, want 1", n)
	}
}

// failingEndpoint answers every call 503.
type failingEndpoint struct{}

func (failingEndpoint) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 503, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

// A retry's delay takes its jitter from CommandWorker.Jitter: the same
// draw, the same due time (a simulation replays a seed exactly).
func TestRetryJitterComesFromTheWorker(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	dueAfter := func(jitter float64) time.Duration {
		st := mustStore(t)
		w := &workers.CommandWorker{Log: st, Commands: st, Logger: quiet, Now: func() time.Time { return t0 },
			Jitter: func() float64 { return jitter },
			HTTP:   &workers.HTTPCaller{AllowHosts: []string{"hook.test:80"}, Transport: failingEndpoint{}}}
		wfID, id := uuid.New(), uuid.New()
		def := model.Definition{Name: "wf", Steps: []model.StepDefinition{{Name: "one", Type: model.StepHTTP, URL: "http://hook.test/one",
			TimeoutSeconds: 1, Retry: &model.Retry{Policy: &model.RetryPolicy{MaxAttempts: 3, BackoffSeconds: 10}}}}}
		if err := w.Handle(ctx, body(t, model.CreateWorkflow{WorkflowUUID: wfID, Definition: def}), 1); err != nil {
			t.Fatal(err)
		}
		if err := w.Handle(ctx, body(t, model.StartExecution{WorkflowExecutionUUID: id, WorkflowUUID: wfID}), 1); err != nil {
			t.Fatal(err)
		}
		events, err := st.Load(ctx, model.ExecutionAggregateID(id), 0)
		if err != nil {
			t.Fatal(err)
		}
		x, err := model.FoldExecution(model.Execution{}, events)
		if err != nil {
			t.Fatal(err)
		}
		if x.Steps[0].DueAt == nil {
			t.Fatalf("after a failed attempt: step %+v, want a retry due", x.Steps[0])
		}
		return x.Steps[0].DueAt.Sub(t0)
	}
	a, b, c := dueAfter(0), dueAfter(0), dueAfter(0.99)
	if a != b || a == c {
		t.Fatalf("retry due after %v and %v with the same jitter, %v with another; want the first two equal, the third not", a, b, c)
	}
}
