package pebble

import (
	"context"
	"fmt"
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
		if !expired(old.ExpiresAt, time.Now()) {
			return old, wrap(op, rec.Key, 0, store.ErrDuplicate)
		}
	}
	if err := s.setJSON(op, rec.Key, key, rec); err != nil {
		return store.IdempotencyRecord{}, err
	}
	return rec, nil
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
