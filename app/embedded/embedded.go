// Package embedded is the one-process runtime of workflowd, its default:
// the pebble store (store/pebble), the in-process bus (bus/local) and the
// service app.New assembles, in one process, with data in one directory.
// cmd/workflowd runs it; end-to-end tests and benchmarks run the very same
// thing. It lives apart from package app so that the Lambda functions link
// no embedded store.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/workflowd/workflowd/app"
	"github.com/workflowd/workflowd/auth"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/bus/local"
	"github.com/workflowd/workflowd/metrics"
	"github.com/workflowd/workflowd/store/pebble"
	"github.com/workflowd/workflowd/workers"
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
	// Workers is the number of consuming goroutines per queue (default 64:
	// an execution's consecutive http steps hold one for all of them).
	Workers int
	// Steps configures http steps and the cleanup.
	Steps app.StepsConfig
	// Auth, if set, is who may call the API; nil leaves it open.
	Auth auth.Authenticator
	// Metrics, if set, is recorded and served at /metrics.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// Runtime is the whole service in one process.
type Runtime struct {
	*app.Service
	cfg   Config
	Store *pebble.Store
	Bus   *local.Bus
}

// Open opens the store and the bus and assembles the service on them.
func Open(cfg Config) (*Runtime, error) {
	if cfg.VisibilityTimeout <= 0 {
		cfg.VisibilityTimeout = 30 * time.Second
	}
	if cfg.MaxReceiveCount <= 0 {
		cfg.MaxReceiveCount = 5
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	storeDir, busDir := "", ""
	if cfg.DataDir != "" {
		storeDir, busDir = filepath.Join(cfg.DataDir, "store"), filepath.Join(cfg.DataDir, "bus")
	}
	st, err := pebble.Open(pebble.Options{
		Dir: storeDir, Logger: cfg.Logger, Retention: cfg.Steps.Retention, CommandRetention: cfg.Steps.CommandRetention,
		FeedConsumers: []string{app.ConsumerProjector, app.ConsumerDispatcher},
	})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	var queues []local.QueueConfig
	for _, name := range bus.Queues {
		queues = append(queues, local.QueueConfig{Name: name, VisibilityTimeout: cfg.VisibilityTimeout, MaxReceiveCount: cfg.MaxReceiveCount})
	}
	b, err := local.Open(local.Options{Dir: busDir, Queues: queues, Logger: cfg.Logger})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("open bus: %w", err)
	}
	executions, err := b.Queue(bus.QueueExecutions)
	if err != nil {
		return nil, errors.Join(err, b.Close(), st.Close())
	}
	svc := app.New(app.Deps{
		Store: st, Publisher: b, DeadLetters: b, Scheduler: executions, Expire: st.PurgeExpired, Logger: cfg.Logger,
	}, app.Options{MaxDelay: local.MaxDelay, TrustCache: true, InProcess: true, Steps: cfg.Steps, Auth: cfg.Auth, Metrics: cfg.Metrics})
	return &Runtime{Service: svc, cfg: cfg, Store: st, Bus: b}, nil
}

// Handler is the API.
func (r *Runtime) Handler() http.Handler { return r.API }

// Run runs the consumers, the feed loops and the cleanup until ctx is
// done, then lets in-flight messages finish and the feed consumers drain
// what was appended, and returns (Service.Run). It does not close the
// store or the bus (Close does).
func (r *Runtime) Run(ctx context.Context) error {
	queues, err := app.AllQueues(r.Bus.Queue)
	if err != nil {
		return err
	}
	return r.Service.Run(ctx, app.Loops{
		Queues:   queues,
		Consumer: workers.ConsumerOptions{Concurrency: r.cfg.Workers, Visibility: r.cfg.VisibilityTimeout, Logger: r.cfg.Logger},
		Feed: func(ctx context.Context, consumer string, h workers.EventHandler) error {
			return workers.RunFeed(ctx, r.Store, consumer, h, workers.FeedOptions{Logger: r.cfg.Logger})
		},
	})
}

// Close closes the bus and the store.
func (r *Runtime) Close() error {
	return errors.Join(r.Bus.Close(), r.Store.Close())
}
