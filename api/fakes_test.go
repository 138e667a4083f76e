package api_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// fakePublisher records what the API publishes and fails when told to.
type fakePublisher struct {
	mu   sync.Mutex
	msgs []bus.Message
	err  error
	// discard counts messages without keeping them (the fuzz target).
	discard bool
	count   int
}

func (p *fakePublisher) Publish(ctx context.Context, msg bus.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.count++
	if p.discard {
		return nil
	}
	msg.ID = fmt.Sprintf("msg-%d", p.count)
	msg.Body = append([]byte(nil), msg.Body...)
	p.msgs = append(p.msgs, msg)
	return nil
}

func (p *fakePublisher) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

// published returns a copy of the messages published so far.
func (p *fakePublisher) published() []bus.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.msgs)
}

// fakeViews keeps the current-state views in maps and lists them as the
// store contract says: newest first (createdAt, then ID, descending),
// resuming strictly after the position given.
type fakeViews struct {
	workflowGets atomic.Int32
	mu           sync.Mutex
	workflows    map[uuid.UUID]model.Workflow
	executions   map[uuid.UUID]model.Execution
}

func newFakeViews() *fakeViews {
	return &fakeViews{workflows: map[uuid.UUID]model.Workflow{}, executions: map[uuid.UUID]model.Execution{}}
}

func (v *fakeViews) putWorkflow(w model.Workflow) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.workflows[w.WorkflowUUID] = w.Clone()
}

func (v *fakeViews) putExecution(x model.Execution) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.executions[x.WorkflowExecutionUUID] = x.Clone()
}

// remove forgets an execution's view (as a store does when it expires).
func (v *fakeViews) remove(id uuid.UUID) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.executions, id)
}

func (v *fakeViews) GetWorkflow(ctx context.Context, id uuid.UUID) (model.Workflow, error) {
	v.workflowGets.Add(1)
	v.mu.Lock()
	defer v.mu.Unlock()
	w, ok := v.workflows[id]
	if !ok {
		return model.Workflow{}, &store.Error{Op: "get workflow", AggregateID: id.String(), Err: store.ErrNotFound}
	}
	return w.Clone(), nil
}

func (v *fakeViews) GetExecution(ctx context.Context, id uuid.UUID) (model.Execution, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	x, ok := v.executions[id]
	if !ok {
		return model.Execution{}, &store.Error{Op: "get execution", AggregateID: id.String(), Err: store.ErrNotFound}
	}
	return x.Clone(), nil
}

func (v *fakeViews) ListWorkflows(ctx context.Context, q store.ListQuery) ([]model.Workflow, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var all []model.Workflow
	for _, w := range v.workflows {
		all = append(all, w.Clone())
	}
	return page(all, q, func(w model.Workflow) store.Position {
		return store.Position{CreatedAt: w.CreatedAt, ID: w.WorkflowUUID}
	})
}

func (v *fakeViews) ListExecutions(ctx context.Context, q store.ExecutionQuery) ([]model.Execution, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	var all []model.Execution
	for _, x := range v.executions {
		if q.WorkflowUUID != uuid.Nil && x.WorkflowUUID != q.WorkflowUUID {
			continue
		}
		if q.Status != "" && x.Status != q.Status {
			continue
		}
		all = append(all, x.Clone())
	}
	return page(all, q.ListQuery, func(x model.Execution) store.Position {
		return store.Position{CreatedAt: x.CreatedAt, ID: x.WorkflowExecutionUUID}
	})
}

// newestFirst orders positions as listings do.
func newestFirst(a, b store.Position) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(b.ID.String(), a.ID.String())
}

func page[T any](all []T, q store.ListQuery, pos func(T) store.Position) ([]T, error) {
	if q.Limit < 1 || q.Limit > 1001 { // the API asks for one more than its limit
		return nil, &store.Error{Op: "list", Err: fmt.Errorf("%w: limit %d", store.ErrInvalid, q.Limit)}
	}
	slices.SortFunc(all, func(a, b T) int { return newestFirst(pos(a), pos(b)) })
	var out []T
	for _, it := range all {
		if q.After != nil && newestFirst(pos(it), *q.After) <= 0 {
			continue
		}
		if len(out) == q.Limit {
			break
		}
		out = append(out, it)
	}
	return out, nil
}

// fakeEvents is an event log in a map.
type fakeEvents struct {
	mu    sync.Mutex
	log   map[string][]model.Event
	loads int // calls of Load
}

// loaded returns how many times Load was called.
func (e *fakeEvents) loaded() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.loads
}

func newFakeEvents() *fakeEvents { return &fakeEvents{log: map[string][]model.Event{}} }

func (e *fakeEvents) append(events ...model.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range events {
		e.log[ev.AggregateID] = append(e.log[ev.AggregateID], ev.Clone())
	}
}

func (e *fakeEvents) Load(ctx context.Context, aggregateID string, afterSeq int64) ([]model.Event, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.loads++
	var out []model.Event
	for _, ev := range e.log[aggregateID] {
		if ev.Seq > afterSeq {
			out = append(out, ev.Clone())
		}
	}
	return out, nil
}

// fakeCommands is the command-status view and the idempotency records, with
// the store contract's semantics.
type fakeCommands struct {
	mu       sync.Mutex
	commands map[uuid.UUID]model.CommandStatus
	keys     map[string]store.IdempotencyRecord
}

func newFakeCommands() *fakeCommands {
	return &fakeCommands{commands: map[uuid.UUID]model.CommandStatus{}, keys: map[string]store.IdempotencyRecord{}}
}

func (c *fakeCommands) PutCommand(ctx context.Context, st model.CommandStatus) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.commands[st.CommandUUID]; !ok {
		c.commands[st.CommandUUID] = st
	}
	return nil
}

func (c *fakeCommands) FinishCommand(ctx context.Context, st model.CommandStatus) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.commands[st.CommandUUID]; ok && old.Status != model.CommandAccepted {
		return nil
	}
	c.commands[st.CommandUUID] = st
	return nil
}

func (c *fakeCommands) GetCommand(ctx context.Context, id uuid.UUID) (model.CommandStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.commands[id]
	if !ok {
		return model.CommandStatus{}, &store.Error{Op: "get command", AggregateID: id.String(), Err: store.ErrNotFound}
	}
	return st, nil
}

func (c *fakeCommands) ClaimIdempotencyKey(ctx context.Context, rec store.IdempotencyRecord) (store.IdempotencyRecord, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.keys[rec.Key]; ok && rec.CreatedAt.Before(old.ExpiresAt) {
		return old, &store.Error{Op: "claim idempotency key", Err: store.ErrDuplicate}
	}
	c.keys[rec.Key] = rec
	return rec, nil
}

// finish moves a command to status (APPLIED or REJECTED), as a worker would.
func (c *fakeCommands) finish(id uuid.UUID, status, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.commands[id]
	st.CommandUUID, st.Status, st.Error = id, status, reason
	c.commands[id] = st
}

func (c *fakeCommands) keyRecord(key string) store.IdempotencyRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys[key]
}

func (c *fakeCommands) counts() (commands, keys int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.commands), len(c.keys)
}

// panickyViews panics in GetWorkflow, as a buggy backend might.
type panickyViews struct{ *fakeViews }

func (panickyViews) GetWorkflow(ctx context.Context, id uuid.UUID) (model.Workflow, error) {
	panic("GetWorkflow exploded")
}

// failingViews fails every read with an internal error.
type failingViews struct {
	*fakeViews
	err error // errBackend if nil
}

var errBackend = errors.New("backend is down: secret connection string user:pass@host")

func (f failingViews) GetExecution(ctx context.Context, id uuid.UUID) (model.Execution, error) {
	if f.err != nil {
		return model.Execution{}, f.err
	}
	return model.Execution{}, errBackend
}

// pinger is a readiness check with a fixed answer.
type pinger struct{ err error }

func (p pinger) Ping(ctx context.Context) error { return p.err }
