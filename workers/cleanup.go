package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/internal/parallel"
	"github.com/workflowd/workflowd/metrics"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// DueLister is what the cleanup reads: the executions due for a look.
type DueLister interface {
	ListDue(ctx context.Context, q store.DueQuery) ([]model.Execution, error)
}

// Cleanup is the execution cleanup worker. Each Run reads the
// executions whose due time has come (model.Execution.Due) and publishes
// what each is owed (model.Execution.DueCommand): a timeout past a
// deadline, a timer or an http retry too far off for a delayed message,
// and again any begin, timer or attempt the queue should have delivered by
// now but did not (the execution is stuck with no pending message). Those
// commands carry the UUIDs the dispatcher gives the same work, so a copy
// of work already done is a duplicate the workers ignore, and two runs
// that overlap change nothing twice.
//
// Finished executions leave the due index; their views expire after the
// retention period: the store marks them when they finish (DynamoDB's TTL
// then deletes them), and each run calls Expire, if set, to delete those
// past it (the embedded store).
type Cleanup struct {
	Due       DueLister
	Publisher Publisher
	// Metrics, if set, counts the runs and the commands they issue.
	Metrics *metrics.Metrics
	// MaxDelay is the longest delay of the bus's delayed messages, the
	// projector's and the dispatcher's: work due later is the cleanup's to
	// issue when due (0: all timers and retries are).
	MaxDelay time.Duration
	// Expire, if set, deletes up to limit records past their retention at
	// now (finished executions, command statuses, idempotency records) and
	// returns how many.
	Expire func(ctx context.Context, now time.Time, limit int) (int, error)
	// Reconciler, if set, repairs the aggregates a lost change-feed record
	// left behind: each run first checks the commands accepted a while
	// ago (Reconciler.Run), and an execution found due is compared with
	// its log before its due work is issued (Reconciler.Repair).
	Reconciler *Reconciler
	Logger     *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// PageSize is how many executions a read takes (default 500).
	PageSize int
}

// Run does one pass and returns how many commands it published. It reads
// the due index page by page up to now and stops at the first error (the
// next run starts over: what it published again is duplicates).
func (c *Cleanup) Run(ctx context.Context) (int, error) {
	n, err := c.run(ctx)
	c.Metrics.CleanupRun(n, err)
	return n, err
}

func (c *Cleanup) run(ctx context.Context) (int, error) {
	now := c.now()
	size := c.PageSize
	if size <= 0 {
		size = 500
	}
	published := 0
	var reconcileErr error
	if c.Reconciler != nil {
		n, err := c.Reconciler.Run(ctx)
		if n > 0 {
			c.logger().Warn("cleanup reconciled aggregates whose views lagged their logs", "count", n)
		}
		reconcileErr = err // the due pass runs all the same
	}
	var after *store.DuePosition
	for {
		page, err := c.Due.ListDue(ctx, store.DueQuery{Before: now, After: after, Limit: size})
		if err != nil {
			return published, errors.Join(reconcileErr, fmt.Errorf("cleanup: list due executions: %w", err))
		}
		n, err := c.publish(ctx, page, now)
		published += n
		if err != nil {
			return published, errors.Join(reconcileErr, err)
		}
		if len(page) < size {
			return published, errors.Join(reconcileErr, c.expire(ctx, now, size))
		}
		last := page[len(page)-1]
		after = &store.DuePosition{DueAt: last.Due, ID: last.WorkflowExecutionUUID}
	}
}

// publish issues the due commands of a page of executions, several at once
// (the bus batches them), and returns how many it published.
func (c *Cleanup) publish(ctx context.Context, page []model.Execution, now time.Time) (int, error) {
	var due []model.Command
	var views []model.Execution
	for _, x := range page {
		if cmd, ok := x.DueCommand(now, c.MaxDelay); ok {
			due = append(due, cmd)
			views = append(views, x)
		}
	}
	errs := parallel.Each(len(due), sendLimit, func(i int) error {
		cmd := due[i]
		if c.Reconciler != nil {
			// The view may lag its log (the record of the work's outcome
			// was lost): then the log's events, not the view's due work,
			// say what comes next.
			repaired, err := c.Reconciler.Repair(ctx, cmd.AggregateID(), views[i].Version)
			if err != nil || repaired {
				return err
			}
		}
		msg, err := bus.CommandMessage(cmd)
		if err == nil {
			err = c.Publisher.Publish(ctx, msg)
		}
		if err != nil {
			return fmt.Errorf("cleanup: publish %s for %s: %w", cmd.Type, cmd.AggregateID(), err)
		}
		c.logger().Info("cleanup issued a command", "aggregate", cmd.AggregateID(), "type", cmd.Type, "command", cmd.CommandUUID)
		return nil
	})
	published := 0
	for _, err := range errs {
		if err == nil {
			published++
		}
	}
	return published, errors.Join(errs...)
}

// expire deletes finished executions past their retention, a page at a
// time, until none is left.
func (c *Cleanup) expire(ctx context.Context, now time.Time, size int) error {
	if c.Expire == nil {
		return nil
	}
	total := 0
	for {
		n, err := c.Expire(ctx, now, size)
		total += n
		if err != nil {
			return fmt.Errorf("cleanup: expire finished executions: %w", err)
		}
		if n < size {
			if total > 0 {
				c.logger().Info("cleanup expired finished executions", "count", total)
			}
			return nil
		}
	}
}

// Every runs Run at once and then every interval until ctx is done,
// logging what each run did (the one-minute ticker of workflowd; on AWS the
// EventBridge schedule invokes Run).
func (c *Cleanup) Every(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		start := time.Now()
		n, err := c.Run(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			c.logger().Error("cleanup run failed", "err", err, "published", n)
		case n > 0:
			c.logger().Info("cleanup run", "published", n, "took", time.Since(start))
		default:
			c.logger().Debug("cleanup run", "published", 0, "took", time.Since(start))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Cleanup) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Cleanup) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}
