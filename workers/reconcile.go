package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/internal/parallel"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// AcceptedLister lists the statuses still ACCEPTED of a window of time
// (store.Commands.EachAccepted).
type AcceptedLister interface {
	EachAccepted(ctx context.Context, from, to time.Time, fn func([]model.CommandStatus) error) error
}

// ViewReader reads the views the reconciliation compares with the log.
type ViewReader interface {
	GetWorkflow(ctx context.Context, id uuid.UUID) (model.Workflow, error)
	GetExecution(ctx context.Context, id uuid.UUID) (model.Execution, error)
}

// Reconciler repairs what a change-feed record that never reached the
// projector and the dispatcher leaves undone (a DynamoDB stream batch
// Lambda gave up on, a stream reader's checkpoint trimmed away): an
// aggregate whose view lags its event log, and the follow-up work of the
// events it lacks. It hands those events, read from the log, to Handlers
// (the projector, then the dispatcher), which are idempotent: the view
// moves on with a conditional put, and the follow-ups carry the
// dispatcher's deterministic UUIDs, so a copy of work already done is a
// duplicate the workers ignore.
//
// It finds the aggregates two ways, so that every change is covered by
// one of them (docs/architecture-log.md, entry 36):
//   - Run reads the commands clients sent (their statuses, keyed by the
//     time they were accepted) that are between MinAge and MinAge+Window
//     old and still ACCEPTED, and checks the view of each one's aggregate:
//     a view that does not show the command is compared with the log.
//   - The cleanup calls Repair for each execution it finds due, before it
//     issues the work the view says is owed: the service's own work (a
//     begin, a timer, an http attempt) leaves the view due some time, so
//     a lost record of its outcome is found when that time comes.
type Reconciler struct {
	Log      EventLog
	Views    ViewReader
	Accepted AcceptedLister
	// Handlers get the events a view lacks (EventHandlers{projector,
	// dispatcher}).
	Handlers EventHandler
	// Statuses, if set, receive APPLIED for a command the view shows but
	// no longer remembers, whose mark the projector did not make (it
	// crashed between the view's put and the mark).
	Statuses StatusWriter
	Logger   *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// MinAge is how old a command must be before Run checks it: a command
	// younger than that is normally still on its way (default a minute,
	// far above the feed's lag).
	MinAge time.Duration
	// Retention is the views' retention period (0: views never expire).
	Retention time.Duration
	// Window is how far back past MinAge Run reads (default two minutes:
	// each command is checked by two runs a minute apart, so one failed
	// or late run misses nothing).
	Window time.Duration

	// StartLookback is how far back past MinAge the first run of a
	// process reads (default five Windows: ten minutes): the runs of the
	// process before a restart may have failed to check their windows.
	StartLookback time.Duration

	mu       sync.Mutex
	ran      bool      // a run has started in this process
	failedAt time.Time // where the oldest window not yet checked without error starts
}

// Run checks the aggregates of the commands accepted between
// MinAge+Window and MinAge ago that are still ACCEPTED, repairs those whose
// views lag their logs, and returns how many it repaired. A run that
// failed (a read the store did not answer, a repair that failed) leaves
// its window to the next: each run reaches back to the start of the
// oldest window that has not yet been checked without an error (at most
// store.MaxAcceptedWindow), so a command is not missed because the runs
// that should have checked it failed. (This process's memory of it: a
// restart reads StartLookback back in its first run.)
func (r *Reconciler) Run(ctx context.Context) (int, error) {
	to := r.now().Add(-r.minAge())
	from := to.Add(-r.window())
	r.mu.Lock()
	if !r.ran {
		r.ran = true
		lookback := r.StartLookback
		if lookback <= 0 {
			lookback = 5 * r.window()
		}
		r.failedAt = to.Add(-lookback)
	}
	if !r.failedAt.IsZero() && r.failedAt.Before(from) {
		from = maxTime(r.failedAt, to.Add(-store.MaxAcceptedWindow))
	}
	r.mu.Unlock()
	n, err := r.RunWindow(ctx, from, to)
	r.mu.Lock()
	if err != nil {
		if r.failedAt.IsZero() || from.Before(r.failedAt) {
			r.failedAt = from
		}
	} else {
		r.failedAt = time.Time{}
	}
	r.mu.Unlock()
	return n, err
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// RunWindow is Run for the commands accepted in [from, to) (at most
// store.MaxAcceptedWindow): a replay of a stream batch Lambda gave up on
// reconciles the window its records arrived in.
func (r *Reconciler) RunWindow(ctx context.Context, from, to time.Time) (int, error) {
	repaired := 0
	var failed []error // a check that failed does not stop the others
	err := r.Accepted.EachAccepted(ctx, from, to, func(page []model.CommandStatus) error {
		n, err := r.checkPage(ctx, page)
		repaired += n
		if err != nil {
			failed = append(failed, err)
		}
		return ctx.Err()
	})
	if err = errors.Join(append(failed, err)...); err != nil {
		return repaired, fmt.Errorf("reconcile: %w", err)
	}
	return repaired, nil
}

// checkLimit bounds the aggregates a run checks at once: each check is a
// view read, and a run at 1,000 client commands a second reads 120,000
// views (docs/architecture-log.md, entry 36).
const checkLimit = 64

// checkPage checks the aggregates of a page of accepted commands, several
// at once, each once.
func (r *Reconciler) checkPage(ctx context.Context, page []model.CommandStatus) (int, error) {
	commands := make(map[string][]uuid.UUID)
	var aggregates []string
	for _, c := range page {
		if c.AggregateID == "" {
			continue
		}
		if _, _, err := model.ParseAggregateID(c.AggregateID); err != nil {
			continue // a status of an earlier build, naming an API path
		}
		if _, ok := commands[c.AggregateID]; !ok {
			aggregates = append(aggregates, c.AggregateID)
		}
		commands[c.AggregateID] = append(commands[c.AggregateID], c.CommandUUID)
	}
	var mu sync.Mutex
	repaired := 0
	errs := parallel.Each(len(aggregates), checkLimit, func(i int) error {
		ok, err := r.check(ctx, aggregates[i], commands[aggregates[i]])
		if ok {
			mu.Lock()
			repaired++
			mu.Unlock()
		}
		return err
	})
	return repaired, errors.Join(errs...)
}

// check repairs aggregateID if its view does not remember one of ids and
// lags the log. A view that remembers every one of ids is current enough:
// a later lost record belongs to a later command, checked in its turn. A
// current view with a full list of recent commands may have folded a
// command and pushed it out, its APPLIED mark lost: the log tells.
func (r *Reconciler) check(ctx context.Context, aggregateID string, ids []uuid.UUID) (bool, error) {
	version, recent, err := r.view(ctx, aggregateID)
	if err != nil {
		return false, err
	}
	var unknown []uuid.UUID
	shown := true
	for _, id := range ids {
		if applied, known := model.Recent(recent, id); !applied {
			shown = false
			if !known {
				unknown = append(unknown, id)
			}
		}
	}
	if shown {
		return false, nil
	}
	repaired, err := r.Repair(ctx, aggregateID, version)
	if repaired || err != nil || len(unknown) == 0 || r.Statuses == nil {
		return repaired, err
	}
	return false, r.markFromLog(ctx, aggregateID, version, unknown)
}

// markFromLog marks APPLIED those of ids whose events the log holds at or
// before version, the view's version. It reads the aggregate's whole log:
// it runs only for a command whose mark was lost, or one that reads
// ACCEPTED because its message waits in a dead-letter queue.
func (r *Reconciler) markFromLog(ctx context.Context, aggregateID string, version int64, ids []uuid.UUID) error {
	events, err := r.Log.Load(ctx, aggregateID, 0)
	if err != nil {
		return fmt.Errorf("reconcile %s: load: %w", aggregateID, err)
	}
	for _, id := range ids {
		i := slices.IndexFunc(events, func(e model.Event) bool { return e.CommandUUID == id })
		if i < 0 || events[i].Seq > version {
			continue
		}
		err := r.Statuses.FinishCommand(ctx, model.CommandStatus{
			CommandUUID: id, Status: model.CommandApplied, AggregateID: aggregateID, UpdatedAt: events[i].OccurredAt})
		if err != nil {
			return fmt.Errorf("reconcile %s: mark command %s applied: %w", aggregateID, id, err)
		}
		r.logger().Warn("marked a command APPLIED that its view had folded and forgotten without its mark",
			"aggregate", aggregateID, "command", id)
	}
	return nil
}

// view returns the version and recent commands of an aggregate's view
// (0 and none when there is no view).
func (r *Reconciler) view(ctx context.Context, aggregateID string) (int64, []uuid.UUID, error) {
	kind, id, err := model.ParseAggregateID(aggregateID)
	if err != nil {
		return 0, nil, err
	}
	switch kind {
	case model.KindWorkflow:
		w, err := r.Views.GetWorkflow(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return 0, nil, nil
		}
		return w.Seq, w.RecentCommands, err
	default:
		x, err := r.Views.GetExecution(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return 0, nil, nil
		}
		return x.Version, x.RecentCommands, err
	}
}

// Repair hands the events of aggregateID after version (the version its
// view shows) to the Handlers, if the log has any, and reports whether it
// had. (An execution whose view expired after the retention period has
// no view, and its whole log, ending in a terminal event, would bring the
// view back: Repair leaves such an aggregate alone.)
func (r *Reconciler) Repair(ctx context.Context, aggregateID string, version int64) (bool, error) {
	events, err := r.Log.Load(ctx, aggregateID, version)
	if err != nil {
		return false, fmt.Errorf("reconcile %s: load: %w", aggregateID, err)
	}
	if len(events) == 0 {
		return false, nil
	}
	last := events[len(events)-1]
	if version == 0 && r.Retention > 0 && model.IsTerminalEvent(last.Type) && !r.now().Before(last.OccurredAt.Add(r.Retention)) {
		return false, nil // expired
	}
	if err := r.Handlers.Handle(ctx, events); err != nil {
		return false, fmt.Errorf("reconcile %s: %w", aggregateID, err)
	}
	r.logger().Warn("reconciled an aggregate whose view lagged its event log past the reconciliation's minimum age (a change-feed record lost, or late)",
		"aggregate", aggregateID, "view_version", version, "log_seq", last.Seq, "events", len(events))
	return true, nil
}

func (r *Reconciler) minAge() time.Duration {
	if r.MinAge > 0 {
		return r.MinAge
	}
	return time.Minute
}

func (r *Reconciler) window() time.Duration {
	if r.Window > 0 {
		return r.Window
	}
	return 2 * time.Minute
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Reconciler) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}
