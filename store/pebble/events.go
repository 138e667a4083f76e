package pebble

import (
	"context"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// Append stores the events of one command atomically, with a synced commit,
// and adds them to the change feed as one entry. It returns an error
// wrapping store.ErrDuplicate when an eventUUID is already in the
// aggregate's log (checked first, so a redelivered command is reported as a
// duplicate), store.ErrConflict when events[0].Seq is taken, and
// store.ErrInvalid for a malformed batch: empty, mixed or bad aggregate ids,
// a seq below 1, non-consecutive seqs, a repeated or nil eventUUID, or a
// first seq past the aggregate's next one (a gap). Nothing is written when
// it returns an error.
func (s *Store) Append(ctx context.Context, events []model.Event) error {
	const op = "append"
	var id string
	if len(events) > 0 {
		id = events[0].AggregateID
	}
	if err := s.enter(ctx, op, id); err != nil {
		return err
	}
	defer s.exit()
	if err := validateBatch(events); err != nil {
		return err
	}
	first := events[0].Seq

	// Encode before taking the lock: the values are the caller's no more.
	type kv struct{ k, v []byte }
	writes := make([]kv, 0, 2*len(events)+1)
	for _, e := range events {
		v, err := encodeEvent(e)
		if err != nil {
			return invalid(op, id, e.Seq, "%v", err)
		}
		writes = append(writes, kv{eventKey(id, e.Seq), v})
		writes = append(writes, kv{eventUUIDKey(id, e.EventUUID), be64(uint64(e.Seq))})
	}
	entry, err := encodeFeedEntry(events)
	if err != nil {
		return invalid(op, id, first, "%v", err)
	}

	mu := s.lock('e', []byte(id))
	defer mu.Unlock()

	for _, e := range events {
		if _, ok, err := get(s.db, eventUUIDKey(id, e.EventUUID)); err != nil {
			return wrap(op, id, e.Seq, err)
		} else if ok {
			return wrap(op, id, e.Seq, fmt.Errorf("%w: eventUUID %s", store.ErrDuplicate, e.EventUUID))
		}
	}
	// Two point lookups (cheap with the bloom filters) instead of an
	// iterator: events[0].Seq must be free and the seq before it taken.
	if _, taken, err := get(s.db, eventKey(id, first)); err != nil {
		return wrap(op, id, first, err)
	} else if taken {
		return wrap(op, id, first, store.ErrConflict)
	}
	if first > 1 {
		if _, ok, err := get(s.db, eventKey(id, first-1)); err != nil {
			return wrap(op, id, first, err)
		} else if !ok {
			return invalid(op, id, first, "seq %d leaves a gap after the aggregate's last seq", first)
		}
	}

	b := s.db.NewBatch()
	defer b.Close()
	for _, w := range writes {
		if err := b.Set(w.k, w.v, nil); err != nil {
			return wrap(op, id, first, err)
		}
	}
	pos := s.feed.alloc()
	defer s.feed.finish(pos)
	if err := b.Set(feedKey(pos), entry, nil); err != nil {
		return wrap(op, id, first, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return wrap(op, id, first, err)
	}
	return nil
}

// validateBatch checks an Append batch: the contract's shape, and no NUL
// byte in the aggregate id (it separates key parts).
func validateBatch(events []model.Event) error {
	if err := store.ValidateBatch(events); err != nil {
		return err
	}
	return validateAggregateID("append", events[0].AggregateID)
}

func validateAggregateID(op, id string) error {
	if id == "" {
		return invalid(op, id, 0, "empty aggregate id")
	}
	if strings.IndexByte(id, 0) >= 0 {
		return invalid(op, id, 0, "aggregate id contains a NUL byte")
	}
	return nil
}

// Load returns the aggregate's events with seq > afterSeq in seq order
// (nil for an unknown aggregate). Everything returned is the caller's own.
// It returns store.ErrInvalid for an empty aggregate id or one holding a NUL
// byte.
func (s *Store) Load(ctx context.Context, aggregateID string, afterSeq int64) ([]model.Event, error) {
	const op = "load"
	if err := s.enter(ctx, op, aggregateID); err != nil {
		return nil, err
	}
	defer s.exit()
	if err := validateAggregateID(op, aggregateID); err != nil {
		return nil, err
	}
	if afterSeq < 0 {
		afterSeq = 0
	}
	prefix := eventPrefix(aggregateID)
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: eventKey(aggregateID, afterSeq+1),
		UpperBound: prefixEnd(prefix),
	})
	if err != nil {
		return nil, wrap(op, aggregateID, afterSeq, err)
	}
	defer it.Close()
	var out []model.Event
	for it.First(); it.Valid(); it.Next() {
		e, err := decodeEvent(it.Value())
		if err != nil {
			return nil, wrap(op, aggregateID, afterSeq, fmt.Errorf("event key %q: %w", it.Key(), err))
		}
		out = append(out, e)
	}
	if err := it.Error(); err != nil {
		return nil, wrap(op, aggregateID, afterSeq, err)
	}
	return out, nil
}
