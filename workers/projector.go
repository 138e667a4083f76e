package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/metrics"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// ViewStore is what the projector needs of the views.
type ViewStore interface {
	GetWorkflow(ctx context.Context, id uuid.UUID) (model.Workflow, error)
	PutWorkflow(ctx context.Context, w model.Workflow, prevSeq int64) error
	GetExecution(ctx context.Context, id uuid.UUID) (model.Execution, error)
	PutExecution(ctx context.Context, x model.Execution, prevVersion int64) error
}

// Projector keeps the current-state views equal to the fold of each
// aggregate's events, whatever duplicates, gaps, reorderings and retries the
// feed delivers: it skips seqs a view already holds, and fills gaps from the
// event log.
type Projector struct {
	Log    EventLog
	Views  ViewStore
	Logger *slog.Logger
	// Metrics, if set, records the change feed's lag (an event's append
	// to its projection).
	Metrics *metrics.Metrics
	// MaxDelay is the longest delay of the bus's delayed messages: with it
	// the projector sets each execution view's due time (model.Execution.Due),
	// which the cleanup's index reads. 0 means a bus without delayed
	// delivery: every timer and retry is then the cleanup's, at its time.
	MaxDelay time.Duration
	// Statuses, if set, receive APPLIED for the client commands a fold
	// pushed out of a view's recent commands (model.Evicted), after the
	// view is stored, so that a status read never needs the event log. A
	// mark lost to a crash is made by the reconciliation
	// (Reconciler.Statuses).
	Statuses StatusWriter
	// OnFinished, if set, is called for each command whose events the views
	// show now (APPLIED), or showed already (a replay).
	OnFinished func(commandUUID uuid.UUID)
	// OnExecution, if set, is called after each write of an execution's
	// view (the API's live streams wake on it).
	OnExecution func(workflowExecutionUUID uuid.UUID)

	cacheOnce sync.Once
	views     *lru[projected]
}

// StatusWriter records a command's final status
// (store.Commands.FinishCommand).
type StatusWriter interface {
	FinishCommand(ctx context.Context, c model.CommandStatus) error
}

// Handle projects a batch of events (in feed order; several aggregates may
// be mixed). It returns the first error; the caller retries the batch, which
// is safe because projection is idempotent.
func (p *Projector) Handle(ctx context.Context, events []model.Event) error {
	if p.Metrics != nil && len(events) > 0 {
		now := time.Now()
		for _, e := range events {
			p.Metrics.FeedLag(now.Sub(e.OccurredAt))
		}
	}
	for _, group := range groupByAggregate(events) {
		if err := p.project(ctx, group); err != nil {
			return err
		}
	}
	return nil
}

// groupByAggregate splits events into per-aggregate runs, keeping the order
// within each aggregate and the order of first appearance between them.
func groupByAggregate(events []model.Event) [][]model.Event {
	index := make(map[string]int)
	var groups [][]model.Event
	for _, e := range events {
		i, ok := index[e.AggregateID]
		if !ok {
			i = len(groups)
			index[e.AggregateID] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], e)
	}
	return groups
}

func (p *Projector) project(ctx context.Context, events []model.Event) error {
	aggregateID := events[0].AggregateID
	kind, id, err := model.ParseAggregateID(aggregateID)
	if err != nil {
		return fmt.Errorf("project: %w", err)
	}
	for attempt := 0; attempt < maxConflictRetries; attempt++ {
		switch kind {
		case model.KindWorkflow:
			err = p.projectWorkflow(ctx, id, events)
		case model.KindExecution:
			err = p.projectExecution(ctx, id, events)
		default:
			return fmt.Errorf("project %s: unknown aggregate kind %q", aggregateID, kind)
		}
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	if err != nil {
		return err
	}
	p.announce(events)
	return nil
}

func (p *Projector) projectWorkflow(ctx context.Context, id uuid.UUID, events []model.Event) error {
	key := events[0].AggregateID
	view, ok := p.cache().get(key)
	if !ok {
		wf, err := p.Views.GetWorkflow(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		view.workflow = wf
	}
	pending, err := p.pending(ctx, events, view.workflow.Seq)
	if len(pending) == 0 || err != nil {
		return err
	}
	next, err := model.FoldWorkflow(view.workflow, pending)
	if err != nil {
		return err
	}
	if err := p.Views.PutWorkflow(ctx, next, view.workflow.Seq); err != nil {
		p.cache().remove(key)
		return err
	}
	p.cache().put(key, projected{workflow: next})
	return p.markEvicted(ctx, key, model.Evicted(view.workflow.RecentCommands, pending, next.RecentCommands), next.UpdatedAt)
}

func (p *Projector) projectExecution(ctx context.Context, id uuid.UUID, events []model.Event) error {
	// A batch that begins with an execution's first event needs no read:
	// there is no view yet, unless the batch is a replay, which the put's
	// condition reports, and then the view is read.
	err := p.putExecution(ctx, id, events, events[0].Seq == 1)
	if errors.Is(err, errNotNew) {
		return p.putExecution(ctx, id, events, false)
	}
	return err
}

// errNotNew: a view put as new was there already.
var errNotNew = errors.New("the view exists")

// putExecution folds events into the execution's view (the cached one,
// none if assumeNew, else the stored one) and puts it.
func (p *Projector) putExecution(ctx context.Context, id uuid.UUID, events []model.Event, assumeNew bool) error {
	key := events[0].AggregateID
	view, ok := p.cache().get(key)
	if !ok && !assumeNew {
		x, err := p.Views.GetExecution(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		view.execution = x
	}
	pending, err := p.pending(ctx, events, view.execution.Version)
	if len(pending) == 0 || err != nil {
		return err
	}
	next, err := model.FoldExecution(view.execution, pending)
	if err != nil {
		return err
	}
	next.Due, _ = next.DueAt(p.MaxDelay)
	if err := p.Views.PutExecution(ctx, next, view.execution.Version); err != nil {
		// Someone else moved the view on (or it never was as cached):
		// forget it; the retry reads the stored one.
		p.cache().remove(key)
		if !ok && assumeNew && errors.Is(err, store.ErrConflict) {
			return errNotNew
		}
		return err
	}
	p.cache().put(key, projected{execution: next})
	if p.OnExecution != nil {
		p.OnExecution(id)
	}
	return p.markEvicted(ctx, key, model.Evicted(view.execution.RecentCommands, pending, next.RecentCommands), next.UpdatedAt)
}

// markEvicted marks APPLIED the commands of aggregateID that a stored view
// no longer remembers. It is rare: an aggregate with more than
// model.RecentCommandsCap client commands, each marked once. A failure is
// returned (the feed retries the batch, which finds the view stored and
// marks nothing); the reconciliation marks what was missed.
func (p *Projector) markEvicted(ctx context.Context, aggregateID string, ids []uuid.UUID, at time.Time) error {
	if p.Statuses == nil {
		return nil
	}
	for _, id := range ids {
		err := p.Statuses.FinishCommand(ctx, model.CommandStatus{
			CommandUUID: id, Status: model.CommandApplied, AggregateID: aggregateID, UpdatedAt: at})
		if err != nil {
			return fmt.Errorf("project %s: mark command %s applied: %w", aggregateID, id, err)
		}
	}
	return nil
}

// projected is a view the projector wrote last, kept to skip a read and a
// decode when the aggregate's next events come (the conditional put catches
// a stale one).
type projected struct {
	workflow  model.Workflow
	execution model.Execution
}

// viewCacheSize bounds the views the projector keeps in memory.
const viewCacheSize = 1024

func (p *Projector) cache() *lru[projected] {
	p.cacheOnce.Do(func() { p.views = newLRU[projected](viewCacheSize) })
	return p.views
}

// pending returns the events to fold into a view at seq have: the batch's
// events after have, or, when the batch does not continue the view without a
// gap, the event log's events after have.
func (p *Projector) pending(ctx context.Context, events []model.Event, have int64) ([]model.Event, error) {
	var out []model.Event
	expect := have + 1
	for _, e := range events {
		if e.Seq < expect {
			continue // already in the view (a duplicate or a replay)
		}
		if e.Seq != expect {
			return p.Log.Load(ctx, e.AggregateID, have) // a gap: read the truth
		}
		out = append(out, e)
		expect++
	}
	return out, nil
}

// announce tells OnFinished about the commands of the projected events:
// they are APPLIED now, since the view shows them. No status is written: a
// view remembers its recent commands (model.RecentCommandsCap), and a status
// read derives APPLIED from the view, or from the status markEvicted wrote.
func (p *Projector) announce(events []model.Event) {
	if p.OnFinished == nil {
		return
	}
	var last uuid.UUID
	for _, e := range events {
		if e.CommandUUID != last {
			last = e.CommandUUID
			p.OnFinished(e.CommandUUID)
		}
	}
}
