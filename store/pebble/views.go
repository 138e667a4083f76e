package pebble

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// maxListLimit is the largest page a listing returns.
const maxListLimit = store.MaxListLimit

// GetWorkflow returns the workflow view with its Seq, or an error wrapping
// store.ErrNotFound.
func (s *Store) GetWorkflow(ctx context.Context, id uuid.UUID) (model.Workflow, error) {
	const op = "get workflow"
	if err := s.enter(ctx, op, id.String()); err != nil {
		return model.Workflow{}, err
	}
	defer s.exit()
	v, ok, err := get(s.db, uuidKey(pWorkflow, id))
	if err != nil {
		return model.Workflow{}, wrap(op, id.String(), 0, err)
	}
	if !ok {
		return model.Workflow{}, wrap(op, id.String(), 0, store.ErrNotFound)
	}
	w, err := decodeWorkflow(v)
	if err != nil {
		return model.Workflow{}, wrap(op, id.String(), 0, err)
	}
	return w, nil
}

// PutWorkflow stores w, keyed by w.WorkflowUUID with version w.Seq, if the
// stored view's Seq is prevSeq (0: there must be none), with a NoSync write.
// It returns an error wrapping store.ErrConflict when the condition fails,
// and store.ErrInvalid for a nil WorkflowUUID or a w.Seq not above prevSeq.
func (s *Store) PutWorkflow(ctx context.Context, w model.Workflow, prevSeq int64) error {
	const op = "put workflow"
	id := w.WorkflowUUID
	if err := s.enter(ctx, op, id.String()); err != nil {
		return err
	}
	defer s.exit()
	if err := validateView(op, id, w.Seq, prevSeq); err != nil {
		return err
	}
	v, err := encodeWorkflow(w)
	if err != nil {
		return wrap(op, id.String(), w.Seq, err)
	}
	newIdx := cat([]byte(pIdxWf), sortKey(w.CreatedAt, id))

	mu := s.lock('w', id[:])
	defer mu.Unlock()
	key := uuidKey(pWorkflow, id)
	old, ok, err := get(s.db, key)
	if err != nil {
		return wrap(op, id.String(), w.Seq, err)
	}
	var cur int64
	var oldIdx []byte
	if ok {
		h, _, err := decodeWorkflowHeader(old)
		if err != nil {
			return wrap(op, id.String(), w.Seq, err)
		}
		cur = h.seq
		oldIdx = cat([]byte(pIdxWf), sortKeyOf(h.created, id))
	}
	if !ok && prevSeq != 0 || ok && cur != prevSeq {
		return wrap(op, id.String(), w.Seq, fmt.Errorf("%w: stored seq %d, expected %d", store.ErrConflict, cur, prevSeq))
	}
	b := s.db.NewBatch()
	defer b.Close()
	if oldIdx != nil && !bytes.Equal(oldIdx, newIdx) {
		if err := b.Delete(oldIdx, nil); err != nil {
			return wrap(op, id.String(), w.Seq, err)
		}
	}
	if err := b.Set(key, v, nil); err != nil {
		return wrap(op, id.String(), w.Seq, err)
	}
	if err := b.Set(newIdx, nil, nil); err != nil {
		return wrap(op, id.String(), w.Seq, err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return wrap(op, id.String(), w.Seq, err)
	}
	return nil
}

func validateView(op string, id uuid.UUID, version, prev int64) error {
	return store.ValidateViewPut(op, id, version, prev)
}

// GetExecution returns the execution view, or an error wrapping
// store.ErrNotFound.
func (s *Store) GetExecution(ctx context.Context, id uuid.UUID) (model.Execution, error) {
	const op = "get execution"
	if err := s.enter(ctx, op, id.String()); err != nil {
		return model.Execution{}, err
	}
	defer s.exit()
	v, ok, err := get(s.db, uuidKey(pExecution, id))
	if err != nil {
		return model.Execution{}, wrap(op, id.String(), 0, err)
	}
	if !ok {
		return model.Execution{}, wrap(op, id.String(), 0, store.ErrNotFound)
	}
	x, err := decodeExecution(v)
	if err != nil {
		return model.Execution{}, wrap(op, id.String(), 0, err)
	}
	return x, nil
}

// PutExecution stores x, keyed by x.WorkflowExecutionUUID with version
// x.Version, if the stored view's Version is prevVersion (0: there must be
// none), with a NoSync write; the listing indexes of the old version are
// replaced in the same batch. It returns an error wrapping
// store.ErrConflict when the condition fails, and store.ErrInvalid for a nil
// uuid, a Version not above prevVersion or a status holding a NUL byte.
func (s *Store) PutExecution(ctx context.Context, x model.Execution, prevVersion int64) error {
	const op = "put execution"
	id := x.WorkflowExecutionUUID
	if err := s.enter(ctx, op, id.String()); err != nil {
		return err
	}
	defer s.exit()
	if err := validateView(op, id, x.Version, prevVersion); err != nil {
		return err
	}
	if strings.IndexByte(x.Status, 0) >= 0 {
		return invalid(op, id.String(), x.Version, "status contains a NUL byte")
	}
	v, h, err := encodeExecution(x)
	if err != nil {
		return wrap(op, id.String(), x.Version, err)
	}
	newIdx := executionIndexKeys(h, id)
	if k := s.expiryKey(x); k != nil {
		newIdx = append(newIdx, k)
	}

	mu := s.lock('x', id[:])
	defer mu.Unlock()
	key := uuidKey(pExecution, id)
	old, ok, err := get(s.db, key)
	if err != nil {
		return wrap(op, id.String(), x.Version, err)
	}
	var oldIdx [][]byte
	var cur int64
	if ok {
		oh, _, err := decodeExecutionHeader(old)
		if err != nil {
			return wrap(op, id.String(), x.Version, err)
		}
		cur = oh.version
		oldIdx = executionIndexKeys(oh, id)
		if s.retention > 0 && model.IsTerminal(oh.status) { // rare: nothing follows an end
			if old, err := decodeExecution(old); err == nil {
				if k := s.expiryKey(old); k != nil {
					oldIdx = append(oldIdx, k)
				}
			}
		}
	}
	if !ok && prevVersion != 0 || ok && cur != prevVersion {
		return wrap(op, id.String(), x.Version, fmt.Errorf("%w: stored version %d, expected %d", store.ErrConflict, cur, prevVersion))
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, k := range oldIdx {
		if !containsKey(newIdx, k) {
			if err := b.Delete(k, nil); err != nil {
				return wrap(op, id.String(), x.Version, err)
			}
		}
	}
	if err := b.Set(key, v, nil); err != nil {
		return wrap(op, id.String(), x.Version, err)
	}
	for _, k := range newIdx {
		if containsKey(oldIdx, k) {
			continue // unchanged index key: no write
		}
		if err := b.Set(k, nil, nil); err != nil {
			return wrap(op, id.String(), x.Version, err)
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return wrap(op, id.String(), x.Version, err)
	}
	return nil
}

// ListWorkflows returns a page of workflow views, newest first (CreatedAt
// descending, then WorkflowUUID descending), after q.After. It returns
// store.ErrInvalid when q.Limit is outside 1..store.MaxListLimit.
func (s *Store) ListWorkflows(ctx context.Context, q store.ListQuery) ([]model.Workflow, error) {
	const op = "list workflows"
	if err := s.enter(ctx, op, ""); err != nil {
		return nil, err
	}
	defer s.exit()
	var out []model.Workflow
	err := s.list(op, []byte(pIdxWf), pWorkflow, q, func(v []byte) error {
		w, err := decodeWorkflow(v)
		if err == nil {
			out = append(out, w)
		}
		return err
	})
	return out, err
}

// ListExecutions returns a page of execution views, newest first
// (CreatedAt descending, then WorkflowExecutionUUID descending), after
// q.After, filtered by q.WorkflowUUID and q.Status when set. It returns
// store.ErrInvalid when q.Limit is outside 1..store.MaxListLimit or q.Status holds a NUL
// byte.
func (s *Store) ListExecutions(ctx context.Context, q store.ExecutionQuery) ([]model.Execution, error) {
	const op = "list executions"
	if err := s.enter(ctx, op, ""); err != nil {
		return nil, err
	}
	defer s.exit()
	if strings.IndexByte(q.Status, 0) >= 0 {
		return nil, invalid(op, "", 0, "status contains a NUL byte")
	}
	var out []model.Execution
	err := s.list(op, executionIndexPrefix(q.WorkflowUUID, q.Status), pExecution, q.ListQuery, func(v []byte) error {
		x, err := decodeExecution(v)
		if err == nil {
			out = append(out, x)
		}
		return err
	})
	return out, err
}

// list walks the index under prefix from q.After, and hands each item's
// view (read from viewPrefix in the same snapshot) to add.
func (s *Store) list(op string, prefix []byte, viewPrefix string, q store.ListQuery, add func([]byte) error) error {
	if q.Limit < 1 || q.Limit > maxListLimit {
		return invalid(op, "", 0, "limit %d, want 1..%d", q.Limit, maxListLimit)
	}
	lower := prefix
	if q.After != nil {
		// The smallest key after the position's own: every key under the
		// prefix has the same length, so appending a zero byte does it.
		lower = cat(prefix, sortKey(q.After.CreatedAt, q.After.ID), []byte{0})
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return wrap(op, "", 0, err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid() && n < q.Limit; it.Next() {
		id, ok := idFromSortKey(it.Key())
		if !ok || len(it.Key()) != len(prefix)+sortKeyLen {
			return wrap(op, "", 0, fmt.Errorf("index key %q: %w", it.Key(), errCorrupt))
		}
		v, found, err := get(snap, uuidKey(viewPrefix, id))
		if err != nil {
			return wrap(op, id.String(), 0, err)
		}
		if !found {
			continue // cannot happen: index and view are written together
		}
		if err := add(v); err != nil {
			return wrap(op, id.String(), 0, err)
		}
		n++
	}
	if err := it.Error(); err != nil {
		return wrap(op, "", 0, err)
	}
	return nil
}

func containsKey(keys [][]byte, k []byte) bool {
	return slices.ContainsFunc(keys, func(x []byte) bool { return bytes.Equal(x, k) })
}

// ListDue returns the execution views whose due time (model.Execution.Due)
// is at or before q.Before, earliest first (then by UUID), after q.After, at
// most q.Limit of them. It returns store.ErrInvalid when q.Limit is outside
// 1..store.MaxListLimit.
func (s *Store) ListDue(ctx context.Context, q store.DueQuery) ([]model.Execution, error) {
	const op = "list due"
	if err := s.enter(ctx, op, ""); err != nil {
		return nil, err
	}
	defer s.exit()
	if q.Limit < 1 || q.Limit > maxListLimit {
		return nil, invalid(op, "", 0, "limit %d, want 1..%d", q.Limit, maxListLimit)
	}
	prefix := []byte(pIdxDue)
	lower := prefix
	if q.After != nil {
		lower = append(dueIndexKey(dueKey(q.After.DueAt), q.After.ID), 0)
	}
	upper := cat(prefix, func() []byte { k := dueKey(q.Before.Add(time.Nanosecond)); return k[:] }())
	snap := s.db.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, wrap(op, "", 0, err)
	}
	defer it.Close()
	var out []model.Execution
	for it.First(); it.Valid() && len(out) < q.Limit; it.Next() {
		k := it.Key()
		if len(k) != len(prefix)+12+16 {
			return nil, wrap(op, "", 0, fmt.Errorf("due index key %q: %w", k, errCorrupt))
		}
		id, _ := uuid.FromBytes(k[len(k)-16:])
		v, found, err := get(snap, uuidKey(pExecution, id))
		if err != nil {
			return nil, wrap(op, id.String(), 0, err)
		}
		if !found {
			continue // cannot happen: index and view are written together
		}
		x, err := decodeExecution(v)
		if err != nil {
			return nil, wrap(op, id.String(), 0, err)
		}
		out = append(out, x)
	}
	if err := it.Error(); err != nil {
		return nil, wrap(op, "", 0, err)
	}
	return out, nil
}

// expiryKey returns the key of a finished execution in the expiry index
// (its finish time plus the retention), or nil when it is not finished or
// nothing expires.
func (s *Store) expiryKey(x model.Execution) []byte {
	if s.retention <= 0 || !model.IsTerminal(x.Status) {
		return nil
	}
	k := dueKey(x.UpdatedAt.Add(s.retention))
	return cat([]byte(pIdxExpire), k[:], x.WorkflowExecutionUUID[:])
}

// PurgeExpired deletes, at most limit of each kind in one call, the views
// of executions that finished more than Options.Retention before now
// (their listing and index entries with them; the event log keeps their
// history), the command statuses older than Options.CommandRetention and
// the idempotency records whose ExpiresAt has passed, and returns how
// many it deleted. The cleanup worker calls it every run.
func (s *Store) PurgeExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	const op = "purge expired"
	if err := s.enter(ctx, op, ""); err != nil {
		return 0, err
	}
	defer s.exit()
	n, err := s.purgeExecutions(now, limit)
	if err != nil {
		return n, wrap(op, "", 0, err)
	}
	c, err := s.purgeCommands(now, limit)
	if n += c; err != nil {
		return n, wrap(op, "", 0, err)
	}
	i, err := s.purgeIdempotency(now, limit)
	if n += i; err != nil {
		return n, wrap(op, "", 0, err)
	}
	return n, nil
}

// purgeExecutions deletes up to limit finished executions past their
// retention and returns how many.
func (s *Store) purgeExecutions(now time.Time, limit int) (int, error) {
	upper := cat([]byte(pIdxExpire), func() []byte { k := dueKey(now); return k[:] }())
	keys, err := s.keysIn([]byte(pIdxExpire), upper, limit, nil)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		deleted, err := s.purge(k)
		if err != nil {
			return n, err
		}
		if deleted {
			n++
		}
	}
	return n, nil
}

// purge deletes the finished execution an expiry key names: its view, its
// index keys and the key. A key set under another retention (the setting
// changed) is moved to the current one's time instead, and a key whose
// view is gone is just deleted.
func (s *Store) purge(expiry []byte) (bool, error) {
	if len(expiry) != len(pIdxExpire)+12+16 {
		return false, s.db.Delete(expiry, pebble.NoSync) // not ours: drop it
	}
	id, _ := uuid.FromBytes(expiry[len(expiry)-16:])
	mu := s.lock('x', id[:])
	defer mu.Unlock()
	key := uuidKey(pExecution, id)
	v, ok, err := get(s.db, key)
	if err != nil {
		return false, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(expiry, nil); err != nil {
		return false, err
	}
	if !ok {
		return false, b.Commit(pebble.NoSync) // the view is gone already
	}
	x, err := decodeExecution(v)
	if err != nil {
		return false, err
	}
	if k := s.expiryKey(x); !bytes.Equal(k, expiry) {
		// Set under another retention: keep the view, under the key of the
		// current one (none if views are now kept for ever).
		if k != nil {
			if err := b.Set(k, nil, nil); err != nil {
				return false, err
			}
		}
		return false, b.Commit(pebble.NoSync)
	}
	h, _, err := decodeExecutionHeader(v)
	if err != nil {
		return false, err
	}
	for _, k := range append(executionIndexKeys(h, id), key) {
		if err := b.Delete(k, nil); err != nil {
			return false, err
		}
	}
	return true, b.Commit(pebble.NoSync)
}
