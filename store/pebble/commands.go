package pebble

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// PutCommand records c with status ACCEPTED (whatever c.Status says) unless
// a status for c.CommandUUID exists already; then it does nothing. The
// write is synced: the API answers 202 after it, and nothing would write
// the record again (APPLIED is derived from the views and needs it to find
// them). It returns store.ErrInvalid for a nil CommandUUID.
func (s *Store) PutCommand(ctx context.Context, c model.CommandStatus) error {
	const op = "put command"
	id := c.CommandUUID
	if err := s.enter(ctx, op, id.String()); err != nil {
		return err
	}
	defer s.exit()
	if id == uuid.Nil {
		return invalid(op, "", 0, "nil command uuid")
	}
	c.Status = model.CommandAccepted
	mu := s.lock('c', id[:])
	defer mu.Unlock()
	// Only existence matters here: no need to decode the stored status.
	_, ok, err := get(s.db, uuidKey(pCommand, id))
	if err != nil {
		return wrap(op, id.String(), 0, err)
	}
	if ok {
		return nil
	}
	return s.setJSONWith(op, id.String(), uuidKey(pCommand, id), c, pebble.Sync)
}

// FinishCommand moves a command to c.Status, APPLIED or REJECTED. A command
// already APPLIED or REJECTED keeps its status (nil is returned); one with
// no status yet is created with c. Fields c leaves empty (Type, AggregateID,
// CreatedAt) keep their stored values. It returns store.ErrInvalid for a
// nil CommandUUID or another status.
func (s *Store) FinishCommand(ctx context.Context, c model.CommandStatus) error {
	const op = "finish command"
	id := c.CommandUUID
	if err := s.enter(ctx, op, id.String()); err != nil {
		return err
	}
	defer s.exit()
	if id == uuid.Nil {
		return invalid(op, "", 0, "nil command uuid")
	}
	if c.Status != model.CommandApplied && c.Status != model.CommandRejected {
		return invalid(op, id.String(), 0, "status %q, want %s or %s", c.Status, model.CommandApplied, model.CommandRejected)
	}
	mu := s.lock('c', id[:])
	defer mu.Unlock()
	old, ok, err := s.getCommand(id)
	if err != nil {
		return wrap(op, id.String(), 0, err)
	}
	if ok {
		if old.Status == model.CommandApplied || old.Status == model.CommandRejected {
			return nil
		}
		if c.Type == "" {
			c.Type = old.Type
		}
		if c.AggregateID == "" {
			c.AggregateID = old.AggregateID
		}
		if !old.CreatedAt.IsZero() {
			c.CreatedAt = old.CreatedAt
		}
	}
	// A rejection is synced: the worker deletes the message right after,
	// and the bus's delete lives in another WAL, so an unsynced REJECTED
	// could be lost while the delete survives a crash. (Nothing writes
	// APPLIED any more, the views tell it; were it written, it would need
	// no sync.)
	opts := pebble.NoSync
	if c.Status == model.CommandRejected {
		opts = pebble.Sync
	}
	return s.setJSONWith(op, id.String(), uuidKey(pCommand, id), c, opts)
}

// GetCommand returns the command's status, or an error wrapping
// store.ErrNotFound.
func (s *Store) GetCommand(ctx context.Context, id uuid.UUID) (model.CommandStatus, error) {
	const op = "get command"
	if err := s.enter(ctx, op, id.String()); err != nil {
		return model.CommandStatus{}, err
	}
	defer s.exit()
	c, ok, err := s.getCommand(id)
	if err != nil {
		return model.CommandStatus{}, wrap(op, id.String(), 0, err)
	}
	if !ok {
		return model.CommandStatus{}, wrap(op, id.String(), 0, store.ErrNotFound)
	}
	return c, nil
}

func (s *Store) getCommand(id uuid.UUID) (model.CommandStatus, bool, error) {
	var c model.CommandStatus
	v, ok, err := get(s.db, uuidKey(pCommand, id))
	if err != nil || !ok {
		return c, false, err
	}
	return c, true, decodeJSON(v, &c)
}

// ClaimIdempotencyKey stores rec if rec.Key is not claimed, or its claim
// has expired (rec.ExpiresAt in the past; a zero ExpiresAt never expires),
// and returns (rec, nil). Otherwise it returns the stored record and an
// error wrapping store.ErrDuplicate. It returns store.ErrInvalid for an
// empty key.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, rec store.IdempotencyRecord) (store.IdempotencyRecord, error) {
	const op = "claim idempotency key"
	if err := s.enter(ctx, op, rec.Key); err != nil {
		return store.IdempotencyRecord{}, err
	}
	defer s.exit()
	if rec.Key == "" {
		return store.IdempotencyRecord{}, invalid(op, "", 0, "empty key")
	}
	key := idemKey(rec.Key)
	mu := s.lock('i', []byte(rec.Key))
	defer mu.Unlock()
	v, ok, err := get(s.db, key)
	if err != nil {
		return store.IdempotencyRecord{}, wrap(op, rec.Key, 0, err)
	}
	if ok {
		var old store.IdempotencyRecord
		if err := decodeJSON(v, &old); err != nil {
			return store.IdempotencyRecord{}, wrap(op, rec.Key, 0, err)
		}
		if !expired(old.ExpiresAt, s.clock()) {
			return old, wrap(op, rec.Key, 0, store.ErrDuplicate)
		}
	}
	b, err := encodeJSON(rec)
	if err != nil {
		return store.IdempotencyRecord{}, wrap(op, rec.Key, 0, fmt.Errorf("encode: %w", err))
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	if err := batch.Set(key, b, nil); err != nil {
		return store.IdempotencyRecord{}, wrap(op, rec.Key, 0, err)
	}
	if !rec.ExpiresAt.IsZero() {
		// Its entry in the expiry index, for PurgeExpired.
		if err := batch.Set(idemExpiryKey(rec.ExpiresAt, rec.Key), nil, nil); err != nil {
			return store.IdempotencyRecord{}, wrap(op, rec.Key, 0, err)
		}
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		return store.IdempotencyRecord{}, wrap(op, rec.Key, 0, err)
	}
	return rec, nil
}

// EachAccepted calls fn with pages of the statuses still ACCEPTED of the
// commands whose UUIDs carry a time in [from, to): the statuses are keyed
// by UUID, and version 7 UUIDs sort by their time, so it is one range of
// keys (in which it skips the UUIDs of other versions).
func (s *Store) EachAccepted(ctx context.Context, from, to time.Time, fn func([]model.CommandStatus) error) error {
	const op = "list accepted"
	if err := s.enter(ctx, op, ""); err != nil {
		return err
	}
	defer s.exit()
	if !from.Before(to) {
		return nil
	}
	if to.Sub(from) > store.MaxAcceptedWindow {
		return invalid(op, "", 0, "window %v to %v is longer than %v", from, to, store.MaxAcceptedWindow)
	}
	lo, _ := model.CommandUUIDBounds(from)
	_, hi := model.CommandUUIDBounds(to.Add(-time.Millisecond))
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: uuidKey(pCommand, lo), UpperBound: append(uuidKey(pCommand, hi), 0)})
	if err != nil {
		return wrap(op, "", 0, err)
	}
	defer it.Close()
	const pageSize = 500
	var page []model.CommandStatus // grown as needed: most windows are small
	flush := func() error {
		if len(page) == 0 {
			return nil
		}
		err := fn(page)
		page = page[:0]
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		id, err := uuid.FromBytes(it.Key()[len(pCommand):])
		if err != nil {
			continue // not a status key
		}
		if _, ok := model.CommandTime(id); !ok {
			continue
		}
		var c model.CommandStatus
		if err := decodeJSON(it.Value(), &c); err != nil {
			return wrap(op, id.String(), 0, err)
		}
		if c.Status != model.CommandAccepted {
			continue
		}
		c.CommandUUID = id
		if page = append(page, c); len(page) == pageSize {
			if err := flush(); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return wrap(op, "", 0, err)
	}
	return flush()
}

// purgeCommands deletes up to limit command statuses accepted more than
// the command retention before now, and returns how many.
func (s *Store) purgeCommands(now time.Time, limit int) (int, error) {
	if s.commandRetention <= 0 {
		return 0, nil
	}
	lo, _ := model.CommandUUIDBounds(time.UnixMilli(0))
	hi, _ := model.CommandUUIDBounds(now.Add(-s.commandRetention))
	return s.deleteRange(uuidKey(pCommand, lo), uuidKey(pCommand, hi), limit, func(k []byte) bool {
		id, err := uuid.FromBytes(k[len(pCommand):])
		_, ok := model.CommandTime(id)
		return err == nil && ok // keep the statuses of UUIDs without a time
	})
}

// purgeIdempotency deletes up to limit idempotency records whose
// ExpiresAt is at or before now, with their expiry-index entries, and
// returns how many. An entry whose record was claimed again since (a later
// ExpiresAt) goes alone.
func (s *Store) purgeIdempotency(now time.Time, limit int) (int, error) {
	upper := cat([]byte(pIdxIdem), func() []byte { k := dueKey(now); return k[:] }())
	keys, err := s.keysIn([]byte(pIdxIdem), upper, limit, nil)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys {
		if len(k) < len(pIdxIdem)+12 {
			if err := s.db.Delete(k, pebble.NoSync); err != nil {
				return n, err
			}
			continue
		}
		deleted, err := s.purgeIdem(k, string(k[len(pIdxIdem)+12:]), now)
		if err != nil {
			return n, err
		}
		if deleted {
			n++
		}
	}
	return n, nil
}

func (s *Store) purgeIdem(entry []byte, key string, now time.Time) (bool, error) {
	mu := s.lock('i', []byte(key))
	defer mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(entry, nil); err != nil {
		return false, err
	}
	v, ok, err := get(s.db, idemKey(key))
	if err != nil {
		return false, err
	}
	deleted := false
	if ok {
		var rec store.IdempotencyRecord
		if err := decodeJSON(v, &rec); err != nil || expired(rec.ExpiresAt, now) {
			if err := b.Delete(idemKey(key), nil); err != nil {
				return false, err
			}
			deleted = true
		}
	}
	return deleted, b.Commit(pebble.NoSync)
}

// deleteRange deletes up to limit keys in [lower, upper) that keep (nil:
// all) selects, and returns how many.
func (s *Store) deleteRange(lower, upper []byte, limit int, keep func([]byte) bool) (int, error) {
	keys, err := s.keysIn(lower, upper, limit, keep)
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, k := range keys {
		if err := b.Delete(k, nil); err != nil {
			return 0, err
		}
	}
	return len(keys), b.Commit(pebble.NoSync)
}

// keysIn returns up to limit keys in [lower, upper) that keep (nil: all)
// selects.
func (s *Store) keysIn(lower, upper []byte, limit int, keep func([]byte) bool) ([][]byte, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	for it.First(); it.Valid() && len(keys) < limit; it.Next() {
		if keep == nil || keep(it.Key()) {
			keys = append(keys, slices.Clone(it.Key()))
		}
	}
	return keys, errors.Join(it.Error(), it.Close())
}

// setJSON writes v as JSON at key with a NoSync write.
func (s *Store) setJSON(op, id string, key []byte, v any) error {
	return s.setJSONWith(op, id, key, v, pebble.NoSync)
}

// setJSONWith writes v as JSON at key with the given write options.
func (s *Store) setJSONWith(op, id string, key []byte, v any, opts *pebble.WriteOptions) error {
	b, err := encodeJSON(v)
	if err != nil {
		return wrap(op, id, 0, fmt.Errorf("encode: %w", err))
	}
	if err := s.db.Set(key, b, opts); err != nil {
		return wrap(op, id, 0, err)
	}
	return nil
}

// clock is the time by Options.Now.
func (s *Store) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}
