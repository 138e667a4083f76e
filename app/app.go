// Package app assembles the embedded runtime: the pebble store, the
// in-process bus, the command workers, the projector, the dispatcher, the
// cleanup and the API, in one process. cmd/workflowd runs it; end-to-end tests and
// benchmarks run the very same thing.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/workflowd/workflowd/api"
	"github.com/workflowd/workflowd/bus/local"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store/pebble"
	"github.com/workflowd/workflowd/workers"
)

// Feed consumers.
const (
	ConsumerProjector  = "projector"
	ConsumerDispatcher = "dispatcher"
)

// Config configures the embedded runtime.
type Config struct {
	// DataDir holds the store (DataDir/store) and the bus (DataDir/bus).
	// "" keeps everything in memory (tests and benchmarks only).
	DataDir string
	// VisibilityTimeout of both queues (default 30s).
	VisibilityTimeout time.Duration
	// MaxReceiveCount before a message goes to its dead-letter queue (default 5).
	MaxReceiveCount int
	// Workers is the number of consuming goroutines per queue (default 16).
	Workers int
	// Steps configures http steps and the cleanup.
	Steps  StepsConfig
	Logger *slog.Logger
}

// StepsConfig is what both runtimes share about steps that run by
// themselves.
type StepsConfig struct {
	// HTTPAllowHosts are the host:port pairs http steps may call
	// (WORKFLOW_HTTP_ALLOW_HOSTS); none means every http step fails.
	HTTPAllowHosts []string
	// CleanupInterval is how often the cleanup runs (default a minute;
	// negative: never, for tests that run it themselves).
	CleanupInterval time.Duration
	// Retention is how long a finished execution's view stays (0: for
	// ever); its history stays in the event log.
	Retention time.Duration
}

func (c StepsConfig) cleanupInterval() time.Duration {
	if c.CleanupInterval == 0 {
		return time.Minute
	}
	return c.CleanupInterval
}

// Embedded is the whole service in one process.
type Embedded struct {
	cfg    Config
	log    *slog.Logger
	Store  *pebble.Store
	Bus    *local.Bus
	API    *api.Server
	waiter *api.Waiter
	// Cleanup is the cleanup worker Run starts every StepsConfig.CleanupInterval.
	Cleanup *workers.Cleanup

	execWorker *workers.CommandWorker
	projector  *workers.Projector
	dispatcher *workers.Dispatcher
}

// Open opens the store and the bus and builds the workers and the API.
func Open(cfg Config) (*Embedded, error) {
	if cfg.VisibilityTimeout <= 0 {
		cfg.VisibilityTimeout = 30 * time.Second
	}
	if cfg.MaxReceiveCount <= 0 {
		cfg.MaxReceiveCount = 5
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	storeDir, busDir := "", ""
	if cfg.DataDir != "" {
		storeDir, busDir = filepath.Join(cfg.DataDir, "store"), filepath.Join(cfg.DataDir, "bus")
	}
	st, err := pebble.Open(pebble.Options{
		Dir: storeDir, Logger: cfg.Logger, Retention: cfg.Steps.Retention,
		FeedConsumers: []string{ConsumerProjector, ConsumerDispatcher},
	})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	queues := []local.QueueConfig{
		{Name: model.QueueWorkflows, VisibilityTimeout: cfg.VisibilityTimeout, MaxReceiveCount: cfg.MaxReceiveCount},
		{Name: model.QueueExecutions, VisibilityTimeout: cfg.VisibilityTimeout, MaxReceiveCount: cfg.MaxReceiveCount},
	}
	b, err := local.Open(local.Options{Dir: busDir, Queues: queues, Logger: cfg.Logger})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("open bus: %w", err)
	}
	executions, err := b.Queue(model.QueueExecutions)
	if err != nil {
		return nil, errors.Join(err, b.Close(), st.Close())
	}
	e := &Embedded{cfg: cfg, log: cfg.Logger, Store: st, Bus: b, waiter: api.NewWaiter()}
	changes := api.NewChanges()
	e.execWorker = &workers.CommandWorker{
		Log: st, Commands: st, Logger: cfg.Logger, OnFinished: e.waiter.Notify, TrustCache: true,
		HTTP: &workers.HTTPCaller{AllowHosts: cfg.Steps.HTTPAllowHosts},
	}
	e.projector = &workers.Projector{Log: st, Views: st, Logger: cfg.Logger, OnFinished: e.waiter.Applied, OnExecution: changes.Notify}
	e.dispatcher = &workers.Dispatcher{Publisher: b, Scheduler: executions, Logger: cfg.Logger}
	e.Cleanup = &workers.Cleanup{Due: st, Publisher: b, Expire: st.PurgeExpired, Logger: cfg.Logger}
	e.API = api.NewServer(api.Config{
		Publisher: b, Views: st, Events: st, Commands: st,
		Ready:       []api.Pinger{st},
		DeadLetters: b,
		Waiter:      e.waiter, Changes: changes, Logger: cfg.Logger,
		Retention: cfg.Steps.Retention,
	})
	return e, nil
}

// Handler is the API.
func (e *Embedded) Handler() http.Handler { return e.API }

// Run runs the consumers and the feed loops until ctx is done, then lets
// in-flight messages finish and the feed consumers drain what was appended,
// and returns. It does not close the store or the bus (Close does).
func (e *Embedded) Run(ctx context.Context) error {
	var consumers, feeds sync.WaitGroup
	for _, name := range []string{model.QueueWorkflows, model.QueueExecutions} {
		q, err := e.Bus.Queue(name)
		if err != nil {
			return err
		}
		consumers.Go(func() {
			workers.Consume(ctx, q, e.execWorker, workers.ConsumerOptions{Concurrency: e.cfg.Workers, Visibility: e.cfg.VisibilityTimeout, Logger: e.log})
		})
	}
	// The feed loops stop only after the consumers: the last appends must
	// still reach the views and the dispatcher.
	feedCtx, stopFeeds := context.WithCancel(context.WithoutCancel(ctx))
	defer stopFeeds()
	errs := make(chan error, 2)
	for name, h := range map[string]workers.EventHandler{ConsumerProjector: e.projector, ConsumerDispatcher: e.dispatcher} {
		feeds.Go(func() {
			if err := workers.RunFeed(feedCtx, e.Store, name, h, workers.FeedOptions{Logger: e.log}); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}
	if every := e.cfg.Steps.cleanupInterval(); every > 0 {
		consumers.Go(func() { e.Cleanup.Every(ctx, every) })
	}
	<-ctx.Done()
	consumers.Wait()
	stopFeeds()
	feeds.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// Close closes the bus and the store.
func (e *Embedded) Close() error {
	return errors.Join(e.Bus.Close(), e.Store.Close())
}
