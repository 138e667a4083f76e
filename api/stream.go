package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"github.com/workflowd/workflowd/model"
)

// Changes wakes the streams of an execution (GET
// /v1/workflow-executions/{id}/stream) the moment its view changes. The
// runtimes call Notify after the projector writes an execution's view;
// without Changes the streams poll the store.
//
// Unlike a Waiter's one-shot wake-up calls, a subscription lasts as long as
// its stream: it holds at most one pending wake-up, so a Notify that comes
// while the stream is busy writing is not lost, and several coalesce into
// one read of the view.
type Changes struct {
	mu   sync.RWMutex
	subs map[uuid.UUID]map[chan struct{}]struct{}
}

// NewChanges returns a Changes nobody listens to yet.
func NewChanges() *Changes {
	return &Changes{subs: make(map[uuid.UUID]map[chan struct{}]struct{})}
}

// Notify wakes every stream of the execution executionUUID; they read its
// view again. It never blocks, costs a map look-up when nobody listens, and
// does nothing on a nil *Changes.
func (c *Changes) Notify(executionUUID uuid.UUID) {
	if c == nil {
		return
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for ch := range c.subs[executionUUID] {
		select {
		case ch <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// subscribe returns a channel that receives (at most one pending value)
// after each Notify of id, and a function to call when no longer listening.
func (c *Changes) subscribe(id uuid.UUID) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	set := c.subs[id]
	if set == nil {
		set = make(map[chan struct{}]struct{})
		c.subs[id] = set
	}
	set[ch] = struct{}{}
	c.mu.Unlock()
	return ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if set := c.subs[id]; set != nil {
			delete(set, ch)
			if len(set) == 0 {
				delete(c.subs, id)
			}
		}
	}
}

// streamTimings are the clocks of execution streams.
type streamTimings struct {
	// heartbeat: a comment line goes out after this much silence, so that
	// proxies and clients see the connection alive.
	heartbeat time.Duration
	// poll: how often the view is read without Changes.
	poll time.Duration
	// safetyPoll: how often the view is read with Changes, in case a
	// Notify is missed (another process projected the change).
	safetyPoll time.Duration
	// lifetime bounds a stream; the client reconnects with Last-Event-ID.
	lifetime time.Duration
	// writeTimeout bounds each write to the client: a client that stops
	// reading cannot hold the handler for the stream's whole lifetime.
	writeTimeout time.Duration
}

// streamClock holds the timings of the streams. Tests shorten it (see
// export_test.go) before they start a server, never while one serves.
var streamClock = streamTimings{
	heartbeat:    15 * time.Second,
	poll:         250 * time.Millisecond,
	safetyPoll:   time.Second,
	lifetime:     time.Hour,
	writeTimeout: 30 * time.Second,
}

// streamExecution serves GET /v1/workflow-executions/{id}/stream as
// Server-Sent Events: the execution's view (the JSON of GET
// /v1/workflow-executions/{id}), event "execution" with the view's version
// as its id, first as it is and then after each change, and an "end" event
// once the status is terminal. Comment lines are heartbeats. A request with
// a Last-Event-ID is not sent the versions up to that one again.
//
// Errors before the stream starts are problems (400, 404, 500); after it,
// the stream just ends: a failed view read is logged at WARN.
func (s *Server) streamExecution(w http.ResponseWriter, r *http.Request) error {
	id, err := pathUUID(mux.Vars(r), "id")
	if err != nil {
		return err
	}
	if _, err := queryParams(r); err != nil {
		return err
	}
	if !canFlush(w) {
		// Behind API Gateway (the Lambda deployment) answers are buffered.
		s.log.Info("execution stream refused: the ResponseWriter cannot flush", "path", r.URL.Path, "writer", fmt.Sprintf("%T", w))
		return problem(http.StatusNotImplemented, "not-implemented", "Not implemented",
			"this deployment cannot stream answers (API Gateway buffers them); read GET /v1/workflow-executions/{id}, or use the long-running workflowd")
	}
	clock := streamClock
	ctx, cancel := context.WithTimeout(r.Context(), clock.lifetime)
	defer cancel()

	// Listen before the first read: a change projected between that read
	// and the first wait still wakes the stream.
	var changed <-chan struct{}
	poll := clock.poll
	if s.cfg.Changes != nil {
		c, stop := s.cfg.Changes.subscribe(id)
		defer stop()
		changed, poll = c, clock.safetyPoll
	}

	x, err := s.cfg.Views.GetExecution(ctx, id)
	if isNotFound(err) {
		return notFound("workflow execution " + id.String() + " not found")
	}
	if err != nil {
		return err
	}

	out := &eventWriter{w: w, rc: http.NewResponseController(w), timeout: clock.writeTimeout}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	w.WriteHeader(http.StatusOK)
	if err := out.flush(); err != nil {
		return nil
	}
	s.sendExecution(ctx, r, out, id, x, lastEventID(r), changed, poll, clock.heartbeat)
	return nil
}

// sendExecution writes the events of an execution stream whose headers are
// out, starting with view x, until the execution ends, the client goes
// away, ctx expires or a read fails. sent is the last version the client
// has.
func (s *Server) sendExecution(ctx context.Context, r *http.Request, out *eventWriter, id uuid.UUID, x model.Execution,
	sent int64, changed <-chan struct{}, poll, heartbeat time.Duration) {
	quiet := time.NewTimer(heartbeat)
	defer quiet.Stop()
	next := time.NewTimer(poll)
	defer next.Stop()
	for {
		// Only a newer version goes out: never one twice, never an older
		// one (an eventually consistent read may lag behind the last).
		if x.Version > sent {
			b, err := json.Marshal(x)
			if err != nil {
				s.log.Error("execution stream: encode view", "execution", id, "err", err)
				return
			}
			// json.Marshal writes no raw line break (it escapes those in
			// strings and compacts RawMessages), so the view is one data line.
			if err := out.write("id: ", strconv.FormatInt(x.Version, 10), "\nevent: execution\ndata: ", string(b), "\n\n"); err != nil {
				s.log.Debug("execution stream: client gone", "execution", id, "err", err)
				return
			}
			sent = x.Version
			quiet.Reset(heartbeat)
		}
		if model.IsTerminal(x.Status) {
			b, _ := json.Marshal(struct {
				Status string `json:"status"`
			}{x.Status})
			if err := out.write("event: end\ndata: ", string(b), "\n\n"); err != nil {
				s.log.Debug("execution stream: client gone", "execution", id, "err", err)
			}
			return
		}
		// Wait for a change, the poll, or a heartbeat (which needs no read).
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				return // the client went away, or the stream's lifetime is over
			case <-changed:
				waiting = false
			case <-next.C:
				waiting = false
			case <-quiet.C:
				if err := out.write(": heartbeat\n\n"); err != nil {
					s.log.Debug("execution stream: client gone", "execution", id, "err", err)
					return
				}
				quiet.Reset(heartbeat)
			}
		}
		next.Reset(poll)
		v, err := s.cfg.Views.GetExecution(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("execution stream: read view; ending the stream", "method", r.Method, "path", r.URL.Path, "err", err)
			}
			return
		}
		x = v
	}
}

// lastEventID returns the version in r's Last-Event-ID header, or 0 when
// there is none or it is not a version.
func lastEventID(r *http.Request) int64 {
	v, err := strconv.ParseInt(strings.TrimSpace(r.Header.Get("Last-Event-ID")), 10, 64)
	if err != nil || v < 0 {
		return 0
	}
	return v
}

// canFlush reports whether w, or a writer it wraps (Unwrap, as
// http.ResponseController looks for), can flush.
func canFlush(w http.ResponseWriter) bool {
	for w != nil {
		switch x := w.(type) {
		case http.Flusher, interface{ FlushError() error }:
			return true
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return false
		}
	}
	return false
}

// eventWriter writes the events of a stream, each flushed at once and with
// its own write deadline. The deadline also replaces any WriteTimeout of the
// http.Server, which would otherwise cut every stream short; net/http clears
// it after the handler.
type eventWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (e *eventWriter) write(parts ...string) error {
	_ = e.rc.SetWriteDeadline(time.Now().Add(e.timeout)) // http.ErrNotSupported: no deadline then
	for _, p := range parts {
		if _, err := io.WriteString(e.w, p); err != nil {
			return err
		}
	}
	return e.rc.Flush()
}

func (e *eventWriter) flush() error {
	_ = e.rc.SetWriteDeadline(time.Now().Add(e.timeout))
	return e.rc.Flush()
}
