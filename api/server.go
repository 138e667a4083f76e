package api

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/mux"
	"github.com/workflowd/workflowd/auth"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/metrics"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// Publisher is the topic commands go to.
type Publisher interface {
	Publish(ctx context.Context, msg bus.Message) error
}

// Views is what the API reads of the current-state views.
type Views interface {
	GetWorkflow(ctx context.Context, id uuid.UUID) (model.Workflow, error)
	ListWorkflows(ctx context.Context, q store.ListQuery) ([]model.Workflow, error)
	GetExecution(ctx context.Context, id uuid.UUID) (model.Execution, error)
	ListExecutions(ctx context.Context, q store.ExecutionQuery) ([]model.Execution, error)
}

// EventReader reads the event log for the history endpoint.
type EventReader interface {
	Load(ctx context.Context, aggregateID string, afterSeq int64) ([]model.Event, error)
}

// Commands is the command-status view and the idempotency records.
type Commands interface {
	PutCommand(ctx context.Context, c model.CommandStatus) error
	FinishCommand(ctx context.Context, c model.CommandStatus) error
	GetCommand(ctx context.Context, id uuid.UUID) (model.CommandStatus, error)
	ClaimIdempotencyKey(ctx context.Context, rec store.IdempotencyRecord) (store.IdempotencyRecord, error)
}

// Pinger is the optional readiness check of a dependency.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config holds a Server's dependencies.
type Config struct {
	Publisher Publisher
	Views     Views
	Events    EventReader
	Commands  Commands
	// Ready lists the dependencies /readyz checks.
	Ready []Pinger
	// DeadLetters, if set, serves the operator's dead-letter endpoints
	// (list and redrive); without it they answer 501.
	DeadLetters DeadLetters
	// Waiter, if set, wakes command-status long polls the moment a command
	// finishes in this process (the long-running runtimes); without it they
	// poll the store.
	Waiter *Waiter
	// Changes, if set, wakes execution streams the moment the projector
	// writes a view; without it they poll the store.
	Changes *Changes
	Logger  *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// NewCommandUUID names a new client command accepted at a time (nil:
	// model.NewCommandUUID). A deterministic simulation gives one drawn
	// from its seed; it must keep the time in the UUID (model.CommandTime).
	NewCommandUUID func(time.Time) uuid.UUID
	// IdempotencyTTL is how long an Idempotency-Key is remembered (default 24h).
	IdempotencyTTL time.Duration
	// MaxHTTPTimeout is the longest attempt timeout an http step may have
	// on this deployment (0: model.MaxHTTPTimeout seconds). On Lambda an
	// attempt must end within the worker function's timeout; a workflow
	// whose steps ask more is refused with 400.
	MaxHTTPTimeout time.Duration
	// Retention is how long the store keeps a finished execution's view (0:
	// for ever): a command of an execution whose view expired still reads
	// APPLIED.
	Retention time.Duration
	// Metrics, if set, counts requests and accepted commands, and is
	// served at /metrics (scope read).
	Metrics *metrics.Metrics
	// Auth, if set, is who may call the API: every route but /healthz,
	// /readyz and /v1/openapi.json needs a credential with the route's
	// scope (scopeFor). Without it the API is open.
	Auth auth.Authenticator
	// CommandRetention is how long the store keeps a command's status
	// after the command was accepted (0: for ever). A status read of a
	// command older than that answers 410 command-expired, whether the
	// store deleted its status yet or not.
	CommandRetention time.Duration
}

// Server is the REST API as an http.Handler.
type Server struct {
	cfg    Config
	log    *slog.Logger
	router *mux.Router
	live   liveWorkflows // workflows read as live a moment ago (requireLiveWorkflow)
}

//go:embed openapi.json
var openAPIDocument []byte

// NewServer builds the API.
func NewServer(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewCommandUUID == nil {
		cfg.NewCommandUUID = model.NewCommandUUID
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = 24 * time.Hour
	}
	s := &Server{cfg: cfg, log: cfg.Logger, router: mux.NewRouter()}
	s.router.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, notFound("no route for "+r.URL.Path))
	})
	s.router.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, problem(http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
			r.Method+" is not allowed on "+r.URL.Path))
	})
	s.registerWorkflowRoutes()
	s.registerExecutionRoutes()
	s.registerCommandRoutes()
	s.registerDeadLetterRoutes()
	s.registerOpsRoutes()
	return s
}

// ServeHTTP serves the API, turning panics into 500 problems.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", v)
			writeError(w, r, s.log, problem(http.StatusInternalServerError, "internal", "Internal error", "the server failed to handle the request; it has been logged"))
		}
	}()
	s.router.ServeHTTP(w, r)
}

// handlerFunc is a handler that returns its error for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(path string, h handlerFunc, methods ...string) {
	s.router.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		var rw http.ResponseWriter = rec
		if _, ok := w.(http.Flusher); ok {
			rw = flushRecorder{rec} // a live stream can flush only if w can
		}
		r, err := s.authorize(rw, r, scopeFor(path, r.Method))
		if err == nil {
			err = h(rw, r)
		}
		if err != nil {
			writeError(rw, r, s.log, err)
		}
		s.cfg.Metrics.Request(path, r.Method, rec.status(), time.Since(start))
	}).Methods(methods...)
}

// statusRecorder remembers the status a handler answered, for metrics.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// flushRecorder is a statusRecorder over a writer that can flush.
type flushRecorder struct{ *statusRecorder }

// Flush lets a live stream flush through the recorder.
func (r flushRecorder) Flush() { r.ResponseWriter.(http.Flusher).Flush() }

// Unwrap is for http.ResponseController.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// scopeFor is the scope a request to route path with method needs
// (docs/api.md, "Authentication"): none for health and the OpenAPI
// document, admin for the dead-letter queues, read to read, write to
// change anything else.
func scopeFor(path, method string) auth.Scope {
	switch {
	case path == "/healthz" || path == "/readyz" || path == "/v1/openapi.json":
		return auth.None
	case strings.HasPrefix(path, "/v1/queues/"):
		return auth.Admin
	case method == http.MethodGet || method == http.MethodHead:
		return auth.Read
	}
	return auth.Write
}

// authorize checks r's credentials against need (when the server has an
// Authenticator): a 401 problem without valid credentials, a 403 with too
// narrow a scope.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, need auth.Scope) (*http.Request, error) {
	if s.cfg.Auth == nil || need == auth.None {
		return r, nil
	}
	p, err := s.cfg.Auth.Authenticate(r.Context(), r)
	if err != nil {
		var f *auth.Failure
		if !errors.Is(err, auth.ErrNoCredentials) && !errors.As(err, &f) {
			return r, err // the verifier could not check it (a 5xx, logged)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="workflowd"`)
		return r, problem(http.StatusUnauthorized, "unauthenticated", "Unauthenticated", err.Error())
	}
	if !p.Scope.Includes(need) {
		return r, problem(http.StatusForbidden, "forbidden", "Forbidden",
			fmt.Sprintf("%s %q has scope %s; %s %s needs %s", p.Method, p.Subject, p.Scope, r.Method, r.URL.Path, need))
	}
	return r, nil
}

func (s *Server) registerOpsRoutes() {
	if s.cfg.Metrics != nil {
		s.handle("/metrics", func(w http.ResponseWriter, r *http.Request) error {
			s.cfg.Metrics.Handler().ServeHTTP(w, r)
			return nil
		}, http.MethodGet)
	}
	s.handle("/healthz", func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, "application/json", map[string]string{"status": "ok"})
		return nil
	}, http.MethodGet)
	s.handle("/readyz", func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		for _, p := range s.cfg.Ready {
			if err := p.Ping(ctx); err != nil {
				s.log.Warn("not ready", "err", err)
				return problem(http.StatusServiceUnavailable, "not-ready", "Not ready", "a dependency is unreachable")
			}
		}
		writeJSON(w, http.StatusOK, "application/json", map[string]string{"status": "ready"})
		return nil
	}, http.MethodGet)
	s.handle("/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPIDocument)
		return nil
	}, http.MethodGet)
}
