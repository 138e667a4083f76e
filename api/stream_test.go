package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/google/uuid"
	"github.com/workflowd/workflowd/api"
	"github.com/workflowd/workflowd/model"
)

// The OpenAPI validator has no decoder for event streams; the document
// describes the body as a string, so it is read as text.
func init() {
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
}

// streamDeadline bounds each stream a test reads: a missing event fails the
// test then instead of hanging it.
const streamDeadline = 10 * time.Second

// sseEvent is one block of a Server-Sent Events stream.
type sseEvent struct {
	id, event, data string
	comments        []string
}

// sseStream is an open GET .../stream, read block by block.
type sseStream struct {
	e      *env
	req    *http.Request
	res    *http.Response
	sc     *bufio.Scanner
	raw    bytes.Buffer // everything read so far
	cancel context.CancelFunc
}

// openStream opens the stream of execution id (headers as for newRequest)
// and checks that it starts as a 200 event stream.
func (e *env) openStream(tb testing.TB, id uuid.UUID, headers ...string) *sseStream {
	tb.Helper()
	s := e.requestStream(tb, id, headers...)
	if s.res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(s.res.Body)
		tb.Fatalf("got status %d, want 200; body: %s", s.res.StatusCode, truncate(body))
	}
	for name, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-store",
		"X-Accel-Buffering": "no",
	} {
		if got := s.res.Header.Get(name); got != want {
			tb.Errorf("got %s %q, want %q", name, got, want)
		}
	}
	return s
}

// requestStream sends GET .../stream with a deadline of streamDeadline.
func (e *env) requestStream(tb testing.TB, id uuid.UUID, headers ...string) *sseStream {
	tb.Helper()
	req, _ := e.newRequest(tb, http.MethodGet, "/v1/workflow-executions/"+id.String()+"/stream", nil, headers...)
	ctx, cancel := context.WithTimeout(context.Background(), streamDeadline)
	req = req.WithContext(ctx)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		cancel()
		tb.Fatalf("GET %s: %v", req.URL.Path, err)
	}
	s := &sseStream{e: e, req: req, res: res, cancel: cancel}
	s.sc = bufio.NewScanner(io.TeeReader(res.Body, &s.raw))
	s.sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	tb.Cleanup(s.close) // before the server's Close, registered earlier
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.res.Body.Close()
}

// next returns the next block of the stream, or false when the stream has
// ended. A read error (the deadline) fails the test.
func (s *sseStream) next(tb testing.TB) (sseEvent, bool) {
	tb.Helper()
	var ev sseEvent
	started := false
	for s.sc.Scan() {
		line := s.sc.Text()
		if line == "" {
			if started {
				return ev, true
			}
			continue
		}
		started = true
		if c, ok := strings.CutPrefix(line, ":"); ok {
			ev.comments = append(ev.comments, strings.TrimPrefix(c, " "))
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "id":
			ev.id = value
		case "event":
			ev.event = value
		case "data":
			if ev.data != "" {
				ev.data += "\n"
			}
			ev.data += value
		default:
			tb.Errorf("unexpected field %q in the stream", line)
		}
	}
	if err := s.sc.Err(); err != nil {
		tb.Fatalf("read stream: %v (read so far: %s)", err, truncate(s.raw.Bytes()))
	}
	if started {
		tb.Fatalf("stream ended inside a block: %s", truncate(s.raw.Bytes()))
	}
	return sseEvent{}, false
}

// wantView reads the next block and checks that it is view x.
func (s *sseStream) wantView(tb testing.TB, x model.Execution) {
	tb.Helper()
	ev, ok := s.next(tb)
	if !ok {
		tb.Fatalf("stream ended; want the view of version %d", x.Version)
	}
	if ev.event != "execution" || ev.id != strconv.FormatInt(x.Version, 10) || len(ev.comments) > 0 {
		tb.Fatalf("got event %q id %q comments %q, want event execution id %d", ev.event, ev.id, ev.comments, x.Version)
	}
	jsonEqual(tb, []byte(ev.data), x)
}

// wantEnd reads the end event, checks that the stream ends after it, and
// checks the whole answer against the OpenAPI document.
func (s *sseStream) wantEnd(tb testing.TB, status string) {
	tb.Helper()
	ev, ok := s.next(tb)
	if !ok {
		tb.Fatalf("stream ended; want the end event")
	}
	if ev.event != "end" || ev.id != "" {
		tb.Fatalf("got event %q id %q, want event end without id", ev.event, ev.id)
	}
	jsonEqual(tb, []byte(ev.data), map[string]string{"status": status})
	if ev, ok := s.next(tb); ok {
		tb.Fatalf("got %+v after the end event, want the stream to end", ev)
	}
	s.wantDocumented(tb)
}

// wantDocumented checks the request and what was read of the answer
// against the OpenAPI document.
func (s *sseStream) wantDocumented(tb testing.TB) {
	tb.Helper()
	if err := s.e.spec.checkRequest(s.req, nil); err != nil {
		tb.Errorf("the server streamed to a request the document refuses: %v", err)
	}
	if err := s.e.spec.checkResponse(s.req, s.res.StatusCode, s.res.Header, s.raw.Bytes()); err != nil {
		tb.Errorf("stream: %v", err)
	}
}

// withChanges makes the test server wake streams on c.
func withChanges(c *api.Changes) envOption { return func(cfg *api.Config) { cfg.Changes = c } }

// increment completes step of x as a worker and the projector would.
func (e *env) increment(tb testing.TB, x model.Execution, step int) model.Execution {
	tb.Helper()
	return e.runExecution(tb, x, nil, model.IncrementExecution{
		WorkflowExecutionUUID: x.WorkflowExecutionUUID, Step: step, Output: json.RawMessage(`{"ok":true}`),
	}, t0.Add(time.Hour))
}

func TestStreamFollowsAnExecutionToItsEnd(t *testing.T) {
	t.Run("woken_by_changes", func(t *testing.T) {
		// The safety poll is longer than the test: only Notify can wake.
		api.SetStreamTimings(t, api.StreamTimings{SafetyPoll: time.Hour})
		changes := api.NewChanges()
		e := newEnv(t, withChanges(changes))
		x := e.seedExecution(t, e.seedWorkflow(t, definition("orders", 2), t0), t0, 0)
		id := x.WorkflowExecutionUUID
		streams := []*sseStream{e.openStream(t, id), e.openStream(t, id)}
		for _, s := range streams {
			s.wantView(t, x)
		}
		// A wake-up without a change sends nothing: the next event is the
		// next version, not the same one again.
		changes.Notify(id)
		changes.Notify(uuid.New()) // another execution's change
		x = e.increment(t, x, 0)
		changes.Notify(id)
		for _, s := range streams {
			s.wantView(t, x)
		}
		x = e.increment(t, x, 1)
		if x.Status != model.ExecutionSucceeded {
			t.Fatalf("got status %s after the last step, want %s", x.Status, model.ExecutionSucceeded)
		}
		changes.Notify(id)
		for _, s := range streams {
			s.wantView(t, x)
			s.wantEnd(t, model.ExecutionSucceeded)
		}
	})
	t.Run("polling_the_store", func(t *testing.T) {
		api.SetStreamTimings(t, api.StreamTimings{Poll: 20 * time.Millisecond})
		e := newEnv(t)
		x := e.seedExecution(t, e.seedWorkflow(t, definition("orders", 2), t0), t0, 0)
		s := e.openStream(t, x.WorkflowExecutionUUID)
		s.wantView(t, x)
		x = e.increment(t, x, 0)
		s.wantView(t, x)
		x = e.increment(t, x, 1)
		s.wantView(t, x)
		s.wantEnd(t, model.ExecutionSucceeded)
	})
	t.Run("cancelled", func(t *testing.T) {
		changes := api.NewChanges()
		e := newEnv(t, withChanges(changes))
		x := e.seedExecution(t, e.seedWorkflow(t, definition("orders", 2), t0), t0, 0)
		s := e.openStream(t, x.WorkflowExecutionUUID)
		s.wantView(t, x)
		x = e.runExecution(t, x, nil, model.CancelExecution{WorkflowExecutionUUID: x.WorkflowExecutionUUID, Reason: "stop"}, t0.Add(time.Hour))
		changes.Notify(x.WorkflowExecutionUUID)
		s.wantView(t, x)
		s.wantEnd(t, model.ExecutionCancelled)
	})
	t.Run("already_ended", func(t *testing.T) {
		e := newEnv(t, withChanges(api.NewChanges()))
		x := e.seedExecution(t, e.seedWorkflow(t, definition("orders", 1), t0), t0, 1)
		s := e.openStream(t, x.WorkflowExecutionUUID)
		s.wantView(t, x)
		s.wantEnd(t, model.ExecutionSucceeded)
	})
}

func TestStreamRefusesBeforeStreaming(t *testing.T) {
	e := newEnv(t)
	x := e.seedExecution(t, e.seedWorkflow(t, definition("orders", 1), t0), t0, 0)
	for _, tc := range []struct {
		name   string
		method string
		path   string
		want   int
	}{
		{name: "unknown_execution", method: http.MethodGet, path: "/v1/workflow-executions/" + uuid.NewString() + "/stream", want: http.StatusNotFound},
		{name: "bad_uuid", method: http.MethodGet, path: "/v1/workflow-executions/not-a-uuid/stream", want: http.StatusBadRequest},
		{name: "uuid_without_hyphens", method: http.MethodGet, path: "/v1/workflow-executions/" + strings.ReplaceAll(x.WorkflowExecutionUUID.String(), "-", "") + "/stream", want: http.StatusBadRequest},
		{name: "unknown_query_parameter", method: http.MethodGet, path: "/v1/workflow-executions/" + x.WorkflowExecutionUUID.String() + "/stream?wait=1s", want: http.StatusBadRequest},
		{name: "post", method: http.MethodPost, path: "/v1/workflow-executions/" + x.WorkflowExecutionUUID.String() + "/stream", want: http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.method, tc.path, nil)
			r.wantStatus(t, tc.want)
		})
	}
}

func TestStreamResumesAfterLastEventID(t *testing.T) {
	changes := api.NewChanges()
	e := newEnv(t, withChanges(changes))
	wf := e.seedWorkflow(t, definition("orders", 2), t0)

	t.Run("current_version_is_not_sent_again", func(t *testing.T) {
		x := e.seedExecution(t, wf, t0, 0)
		s := e.openStream(t, x.WorkflowExecutionUUID, "Last-Event-ID", strconv.FormatInt(x.Version, 10))
		// The server reads the view before it answers 200: it has seen
		// version x.Version, and the next event must be the next version.
		x = e.increment(t, x, 0)
		changes.Notify(x.WorkflowExecutionUUID)
		s.wantView(t, x)
	})
	t.Run("older_version_gets_the_current_view", func(t *testing.T) {
		x := e.seedExecution(t, wf, t0, 1)
		s := e.openStream(t, x.WorkflowExecutionUUID, "Last-Event-ID", strconv.FormatInt(x.Version-1, 10))
		s.wantView(t, x)
	})
	t.Run("not_a_version_is_ignored", func(t *testing.T) {
		x := e.seedExecution(t, wf, t0, 1)
		s := e.openStream(t, x.WorkflowExecutionUUID, "Last-Event-ID", "abc")
		s.wantView(t, x)
	})
	t.Run("ended_execution_gets_only_the_end", func(t *testing.T) {
		x := e.seedExecution(t, wf, t0, 2)
		s := e.openStream(t, x.WorkflowExecutionUUID, "Last-Event-ID", strconv.FormatInt(x.Version, 10))
		s.wantEnd(t, model.ExecutionSucceeded)
	})
}

func TestStreamSendsHeartbeats(t *testing.T) {
	api.SetStreamTimings(t, api.StreamTimings{Heartbeat: 20 * time.Millisecond})
	e := newEnv(t, withChanges(api.NewChanges()))
	x := e.seedExecution(t, e.seedWorkflow(t, definition("orders", 1), t0), t0, 0)
	s := e.openStream(t, x.WorkflowExecutionUUID)
	s.wantView(t, x)
	for range 2 {
		ev, ok := s.next(t)
		if !ok {
			t.Fatal("stream ended; want a heartbeat")
		}
		if ev.event != "" || ev.id != "" || ev.data != "" || len(ev.comments) != 1 || ev.comments[0] != "heartbeat" {
			t.Fatalf("got %+v, want the comment line \": heartbeat\"", ev)
		}
	}
	s.wantDocumented(t)
}

func TestStreamEndsWhenTheClientGoesAway(t *testing.T) {
	changes := api.NewChanges()
	e := newEnv(t, withChanges(changes))
	x := e.seedExecution(t, e.seedWorkflow(t, definition("orders", 1), t0), t0, 0)
	id := x.WorkflowExecutionUUID
	s := e.openStream(t, id)
	s.wantView(t, x)
	if got := changes.Listeners(id); got != 1 {
		t.Fatalf("got %d listeners, want 1", got)
	}
	s.close()
	// The handler returns, which ends its subscription...
	waitFor(t, "the stream's handler to return", func() bool { return changes.Listeners(id) == 0 })
	// ...and the server has no request left to wait for.
	closed := make(chan struct{})
	go func() { e.srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(streamDeadline):
		t.Fatal("the server did not shut down: a stream handler is still running")
	}
}

func TestStreamEndsAfterItsLifetime(t *testing.T) {
	api.SetStreamTimings(t, api.StreamTimings{Lifetime: 100 * time.Millisecond})
	e := newEnv(t)
	x := e.seedExecution(t, e.seedWorkflow(t, definition("orders", 1), t0), t0, 0)
	s := e.openStream(t, x.WorkflowExecutionUUID)
	s.wantView(t, x)
	// It closes without an end event: the client reconnects.
	if ev, ok := s.next(t); ok {
		t.Fatalf("got %+v, want the stream to end", ev)
	}
	s.wantDocumented(t)
}

// flakyViews fails execution reads once told to.
type flakyViews struct {
	*fakeViews
	fail atomic.Bool
}

func (v *flakyViews) GetExecution(ctx context.Context, id uuid.UUID) (model.Execution, error) {
	if v.fail.Load() {
		return model.Execution{}, errBackend
	}
	return v.fakeViews.GetExecution(ctx, id)
}

func TestStreamEndsWhenTheStoreFails(t *testing.T) {
	changes := api.NewChanges()
	var views *flakyViews
	e := newEnv(t, withChanges(changes), func(cfg *api.Config) {
		views = &flakyViews{fakeViews: cfg.Views.(*fakeViews)}
		cfg.Views = views
	})
	x := e.seedExecution(t, e.seedWorkflow(t, definition("orders", 1), t0), t0, 0)
	s := e.openStream(t, x.WorkflowExecutionUUID)
	s.wantView(t, x)
	views.fail.Store(true)
	changes.Notify(x.WorkflowExecutionUUID)
	if ev, ok := s.next(t); ok {
		t.Fatalf("got %+v, want the stream to end", ev)
	}
	if strings.Contains(s.raw.String(), "secret") {
		t.Errorf("the stream shows the store's error: %s", s.raw.String())
	}
	s.wantDocumented(t)

	t.Run("before_streaming_it_is_a_500", func(t *testing.T) {
		r := e.do(t, http.MethodGet, "/v1/workflow-executions/"+x.WorkflowExecutionUUID.String()+"/stream", nil)
		r.wantStatus(t, http.StatusInternalServerError)
	})
}

// plainWriter is a ResponseWriter that cannot flush.
type plainWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *plainWriter) Header() http.Header         { return w.header }
func (w *plainWriter) WriteHeader(status int)      { w.status = status }
func (w *plainWriter) Write(b []byte) (int, error) { return w.body.Write(b) }

func TestStreamNeedsAFlusher(t *testing.T) {
	e := newEnv(t)
	x := e.seedExecution(t, e.seedWorkflow(t, definition("orders", 1), t0), t0, 0)
	req := httptest.NewRequest(http.MethodGet, "/v1/workflow-executions/"+x.WorkflowExecutionUUID.String()+"/stream", nil)
	w := &plainWriter{header: http.Header{}}
	e.api.ServeHTTP(w, req)
	if w.status != http.StatusNotImplemented {
		t.Fatalf("got status %d, want 501 (this deployment cannot stream); body: %s", w.status, truncate(w.body.Bytes()))
	}
	if err := e.spec.checkResponse(req, w.status, w.header, w.body.Bytes()); err != nil {
		t.Error(err)
	}
}

func TestChangesNotify(t *testing.T) {
	t.Run("nobody_listens", func(t *testing.T) {
		api.NewChanges().Notify(uuid.New())
		var none *api.Changes
		none.Notify(uuid.New())
	})
	t.Run("wakes_every_listener_of_the_execution_and_never_blocks", func(t *testing.T) {
		c := api.NewChanges()
		id, other := uuid.New(), uuid.New()
		a, stopA := c.Subscribe(id)
		b, stopB := c.Subscribe(id)
		o, stopO := c.Subscribe(other)
		defer stopO()
		for range 100 { // nobody reads: the wake-ups coalesce
			c.Notify(id)
		}
		for name, ch := range map[string]<-chan struct{}{"a": a, "b": b} {
			select {
			case <-ch:
			default:
				t.Errorf("listener %s was not woken", name)
			}
			select {
			case <-ch:
				t.Errorf("listener %s was woken twice; want the wake-ups coalesced", name)
			default:
			}
		}
		select {
		case <-o:
			t.Error("the listener of another execution was woken")
		default:
		}
		stopA()
		stopA() // a second call is harmless
		if got := c.Listeners(id); got != 1 {
			t.Errorf("got %d listeners after one stopped, want 1", got)
		}
		stopB()
		if got := c.Listeners(id); got != 0 {
			t.Errorf("got %d listeners after both stopped, want 0", got)
		}
		c.Notify(id)
	})
}

// waitFor polls cond until it holds, failing the test after streamDeadline.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(streamDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
