// Package app assembles the workflow service, once, for every runtime:
// New builds the command worker, the projector, the dispatcher, the cleanup
// and the API from the backends a runtime opened (Deps) and the few ways
// the runtimes differ (Options), and Service.Run runs the long-running
// loops over them.
//
// The runtimes are thin users of it: the AWS ones are here (OpenAWS, the
// long-running service on DynamoDB, SNS and SQS; Functions, the Lambda
// functions of the SAM deployment), and the embedded one-process runtime
// is package app/embedded, so that the Lambda binaries link no embedded
// store. cmd/workflowd runs either long-running runtime; cmd/*-function
// run the functions.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/workflowd/workflowd/api"
	"github.com/workflowd/workflowd/auth"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/metrics"
	"github.com/workflowd/workflowd/secrets"
	"github.com/workflowd/workflowd/store"
	"github.com/workflowd/workflowd/workers"
)

// Feed consumers: the names under which the projector and the dispatcher
// keep their place in the change feed (the embedded store's feed, or the
// checkpoints of the DynamoDB stream reader).
const (
	ConsumerProjector  = "projector"
	ConsumerDispatcher = "dispatcher"
)

// Store is what the service needs of a store backend.
type Store interface {
	store.EventLog
	store.Views
	store.Commands
	store.Pinger
}

// Deps are the backends a runtime opened.
type Deps struct {
	Store       Store
	Publisher   bus.Publisher
	DeadLetters bus.DeadLetters
	// Scheduler is the executions queue's delayed delivery, for timers and
	// retries due within Options.MaxDelay.
	Scheduler workers.Scheduler
	// Expire, if set, deletes finished executions past their retention
	// (a store without a TTL of its own: the embedded one).
	Expire func(ctx context.Context, now time.Time, limit int) (int, error)
	Logger *slog.Logger
}

// Options are the ways the runtimes differ.
type Options struct {
	// MaxDelay is the longest delay of the bus's delayed delivery: work
	// due later is left to the cleanup.
	MaxDelay time.Duration
	// TrustCache lets the command worker decide on its cached state of an
	// aggregate without reading it first: right where one process handles
	// most commands of an aggregate, wrong (a failed write each time) where
	// consecutive commands land on different processes (Lambda).
	TrustCache bool
	// InProcess says that the API runs in the process of the workers, so
	// the workers wake its command-status long polls and its live streams
	// at once; without it the API polls the store.
	InProcess bool
	// Steps configures http steps, the cleanup and retention.
	Steps StepsConfig
	// Auth, if set, is who may call the API (api.Config.Auth); nil leaves
	// it open.
	Auth auth.Authenticator
	// Metrics, if set, is what the components record, served at /metrics.
	Metrics *metrics.Metrics
	// Sim, if set, replaces the service's clock, random draws and http
	// transport: the deterministic simulator (internal/sim) runs the same
	// components under its own.
	Sim *SimHooks
}

// SimHooks are what a deterministic simulation replaces.
type SimHooks struct {
	Now            func() time.Time
	NewCommandUUID func(time.Time) uuid.UUID
	Jitter         func() float64
	HTTPTransport  http.RoundTripper
}

// StepsConfig is what every runtime shares about steps that run by
// themselves.
type StepsConfig struct {
	// HTTPAllowHosts are the host:port pairs http steps may call
	// (WORKFLOW_HTTP_ALLOW_HOSTS); none means every http step fails.
	HTTPAllowHosts []string
	// MaxHTTPTimeout caps an http step's attempt timeout (0:
	// model.MaxHTTPTimeout): on Lambda, the worker function's timeout less
	// a margin (WORKER_TIMEOUT).
	MaxHTTPTimeout time.Duration
	// CleanupInterval is how often a long-running runtime runs the
	// cleanup (default a minute; negative: never, for tests that run it
	// themselves). On Lambda a schedule invokes it.
	CleanupInterval time.Duration
	// Retention is how long a finished execution's view stays (0: for
	// ever); its history stays in the event log.
	Retention time.Duration
	// CommandRetention is how long a command's status stays after the
	// command was accepted (0: for ever; the runtimes default to
	// store.DefaultCommandRetention).
	CommandRetention time.Duration
	// Secrets resolves http steps' secret references at call time (nil:
	// such a step fails with secret.unavailable).
	Secrets secrets.Source
	// HTTPResolver, if set, resolves the hosts of http steps for the
	// dial-time egress check (tests); nil: the system's resolver.
	HTTPResolver func(ctx context.Context, host string) ([]netip.Addr, error)
}

func (c StepsConfig) cleanupInterval() time.Duration {
	if c.CleanupInterval == 0 {
		return time.Minute
	}
	return c.CleanupInterval
}

// Service is the workflow service's components, built by New.
type Service struct {
	Worker     *workers.CommandWorker
	Projector  *workers.Projector
	Dispatcher *workers.Dispatcher
	Cleanup    *workers.Cleanup
	API        *api.Server

	log     *slog.Logger
	cleanup time.Duration
}

// New assembles the service: the one place its components are built.
func New(d Deps, o Options) *Service {
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Service{log: log, cleanup: o.Steps.cleanupInterval()}
	var waiter *api.Waiter
	var changes *api.Changes
	if o.InProcess {
		// The waiter wakes the long polls of commands this process
		// finishes; those another process finishes are seen by polling.
		waiter, changes = api.NewWaiter(), api.NewChanges()
	}
	s.Worker = &workers.CommandWorker{
		Log: d.Store, Commands: d.Store, Logger: log, TrustCache: o.TrustCache, MaxDelay: o.MaxDelay,
		HTTP:    &workers.HTTPCaller{AllowHosts: o.Steps.HTTPAllowHosts, Resolver: o.Steps.HTTPResolver},
		Secrets: o.Steps.Secrets,
		Metrics: o.Metrics,
	}
	s.Projector = &workers.Projector{Log: d.Store, Views: d.Store, Statuses: d.Store, Logger: log, MaxDelay: o.MaxDelay, Metrics: o.Metrics}
	s.Dispatcher = &workers.Dispatcher{Publisher: d.Publisher, Scheduler: d.Scheduler, MaxDelay: o.MaxDelay, Logger: log}
	s.Cleanup = &workers.Cleanup{Due: d.Store, Publisher: d.Publisher, Expire: d.Expire, MaxDelay: o.MaxDelay, Logger: log, Metrics: o.Metrics,
		Reconciler: &workers.Reconciler{
			Log: d.Store, Views: d.Store, Accepted: d.Store, Statuses: d.Store, Handlers: workers.EventHandlers{s.Projector, s.Dispatcher},
			Retention: o.Steps.Retention, Logger: log,
			// A command is checked by the first run a cleanup interval
			// after it was accepted and by the next (architecture log,
			// entry 36).
			MinAge: s.cleanup, Window: 2 * s.cleanup,
		},
	}
	var apiNow func() time.Time
	var apiUUID func(time.Time) uuid.UUID
	if h := o.Sim; h != nil {
		s.Worker.Now, s.Worker.Jitter, s.Worker.HTTP.Transport = h.Now, h.Jitter, h.HTTPTransport
		s.Dispatcher.Now, s.Cleanup.Now, s.Cleanup.Reconciler.Now = h.Now, h.Now, h.Now
		apiNow, apiUUID = h.Now, h.NewCommandUUID
	}
	if waiter != nil {
		s.Worker.OnFinished = waiter.Notify
		s.Projector.OnFinished, s.Projector.OnExecution = waiter.Applied, changes.Notify
	}
	s.API = api.NewServer(api.Config{
		Publisher: d.Publisher, Views: d.Store, Events: d.Store, Commands: d.Store,
		Ready: []api.Pinger{d.Store}, DeadLetters: d.DeadLetters,
		Waiter: waiter, Changes: changes, Logger: log, Retention: o.Steps.Retention, CommandRetention: o.Steps.CommandRetention,
		MaxHTTPTimeout: o.Steps.MaxHTTPTimeout, Now: apiNow, NewCommandUUID: apiUUID, Auth: o.Auth, Metrics: o.Metrics,
	})
	return s
}

// AllQueues returns every queue of a deployment (bus.Queues), each from a
// bus's Queue method.
func AllQueues[Q bus.Queue](queue func(name string) (Q, error)) ([]bus.Queue, error) {
	var out []bus.Queue
	for _, name := range bus.Queues {
		q, err := queue(name)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

// Loops are where a long-running runtime's loops read: its queues, and
// its change feed.
type Loops struct {
	// Queues are consumed by the command worker, each until Run's ctx is
	// done (in-flight messages then finish).
	Queues   []bus.Queue
	Consumer workers.ConsumerOptions
	// Feed runs h over the change feed as consumer until ctx is done and
	// returns why it stopped (nil after a clean stop). Run cancels its ctx
	// only once the consumers have stopped, so that what they appended last
	// still reaches the views and the dispatcher.
	Feed func(ctx context.Context, consumer string, h workers.EventHandler) error
	// Singleton, if set, runs run (the cleanup) while this process holds
	// the lease name, so that of several processes one at a time runs it,
	// until ctx is done (nil: run it here).
	Singleton func(ctx context.Context, name string, run func(context.Context))
}

// Run runs the consumers, the projector and the dispatcher on the feed,
// and the cleanup every StepsConfig.CleanupInterval, until ctx is done;
// then it lets in-flight messages finish, stops the feed loops, and returns.
// A feed loop that stops by itself is logged at once, and every such error
// is returned at the end: the same in every runtime.
func (s *Service) Run(ctx context.Context, l Loops) error {
	var consumers, feeds sync.WaitGroup
	for _, q := range l.Queues {
		consumers.Go(func() { workers.Consume(ctx, q, s.Worker, l.Consumer) })
	}
	if s.cleanup > 0 {
		cleanup := func(ctx context.Context) { s.Cleanup.Every(ctx, s.cleanup) }
		if l.Singleton != nil {
			consumers.Go(func() { l.Singleton(ctx, "cleanup", cleanup) })
		} else {
			consumers.Go(func() { cleanup(ctx) })
		}
	}
	feedCtx, stopFeeds := context.WithCancel(context.WithoutCancel(ctx))
	defer stopFeeds()
	var mu sync.Mutex
	var errs []error
	for _, f := range []struct {
		name string
		h    workers.EventHandler
	}{{ConsumerProjector, s.Projector}, {ConsumerDispatcher, s.Dispatcher}} {
		feeds.Go(func() {
			err := l.Feed(feedCtx, f.name, f.h)
			if err == nil {
				return
			}
			if feedCtx.Err() == nil {
				s.log.Error("feed consumer stopped", "consumer", f.name, "err", err)
			}
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s: %w", f.name, err))
			mu.Unlock()
		})
	}
	<-ctx.Done()
	consumers.Wait()
	stopFeeds()
	feeds.Wait()
	return errors.Join(errs...)
}
