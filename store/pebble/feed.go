package pebble

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/workflowd/workflowd/store"
)

// trimInterval bounds how often SaveCheckpoint trims the feed.
const trimInterval = time.Second

// feedState allocates feed positions and tracks the watermark: every
// position below it is final (committed, or failed and left as a gap).
type feedState struct {
	mu      sync.Mutex
	next    uint64        // next position to allocate (positions start at 1)
	pending []uint64      // allocated, not finished; ascending
	moved   chan struct{} // closed and replaced when the watermark moves
}

// alloc returns the next position and marks it unfinished.
func (f *feedState) alloc() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	pos := f.next
	f.next++
	f.pending = append(f.pending, pos) // allocation order is ascending
	return pos
}

// finish marks pos final, whether its commit succeeded or not, and wakes
// the readers if the watermark moved.
func (f *feedState) finish(pos uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := slices.BinarySearch(f.pending, pos)
	if !ok {
		return
	}
	f.pending = slices.Delete(f.pending, i, i+1)
	if i == 0 {
		close(f.moved)
		f.moved = make(chan struct{})
	}
}

// watermark returns the lowest unfinished position (entries below it are
// readable) and a channel closed when it moves.
func (f *feedState) watermark() (uint64, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) > 0 {
		return f.pending[0], f.moved
	}
	return f.next, f.moved
}

// trimState remembers the checkpoints of the consumers that bound trimming
// (a fixed set, from Options.FeedConsumers).
type trimState struct {
	mu        sync.Mutex
	consumers map[string]uint64 // 0: no checkpoint yet
	trimmed   uint64            // every entry at or below it is deleted
	last      time.Time         // when the feed was last trimmed
}

// initFeed sets the next feed position past everything ever stored or
// trimmed and loads the checkpoints of the trimming consumers.
func (s *Store) initFeed(consumers []string) error {
	var top uint64
	v, ok, err := get(s.db, keyFeedTrim)
	if err != nil {
		return err
	}
	if ok {
		if len(v) != 8 {
			return fmt.Errorf("feed trim mark: %w", errCorrupt)
		}
		top = binary.BigEndian.Uint64(v)
		s.trim.trimmed = top
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte(pFeed), UpperBound: prefixEnd([]byte(pFeed))})
	if err != nil {
		return err
	}
	if it.Last() {
		k := it.Key()
		if len(k) != len(pFeed)+8 {
			it.Close()
			return fmt.Errorf("feed key %q: %w", k, errCorrupt)
		}
		top = max(top, binary.BigEndian.Uint64(k[len(pFeed):]))
	}
	if err := it.Close(); err != nil {
		return err
	}
	s.feed.next = top + 1
	s.feed.moved = make(chan struct{})

	s.trim.consumers = make(map[string]uint64, len(consumers))
	for _, c := range consumers {
		pos, err := s.loadCheckpoint(c)
		if err != nil {
			return err
		}
		s.trim.consumers[c] = pos
	}
	return nil
}

// ReadFeed returns up to limit entries with Pos > after, in position order.
// When none is readable it waits up to wait for one, ctx's end or Close,
// and then returns what it has (possibly nothing, with a nil error). It
// returns store.ErrInvalid when limit < 1.
func (s *Store) ReadFeed(ctx context.Context, after uint64, limit int, wait time.Duration) ([]store.FeedEntry, error) {
	const op = "read feed"
	if err := ctx.Err(); err != nil {
		return nil, wrap(op, "", 0, err)
	}
	if limit < 1 {
		return nil, invalid(op, "", 0, "limit %d, want at least 1", limit)
	}
	var timer <-chan time.Time
	for {
		wm, moved := s.feed.watermark()
		if after < wm-1 { // wm >= 1; written so after+1 cannot overflow
			entries, err := s.readFeed(ctx, after, wm, limit)
			if err != nil || len(entries) > 0 {
				return entries, err
			}
			// Only gaps below the watermark: nothing to rescan there.
			after = wm - 1
		} else if err := s.checkOpen(ctx, op); err != nil {
			return nil, err
		}
		if wait <= 0 {
			return nil, nil
		}
		if timer == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-moved:
		case <-timer:
			return nil, nil
		case <-ctx.Done():
			return nil, nil
		case <-s.closed:
			return nil, wrap(op, "", 0, ErrClosed)
		}
	}
}

// checkOpen fails if the store is closed.
func (s *Store) checkOpen(ctx context.Context, op string) error {
	if err := s.enter(ctx, op, ""); err != nil {
		return err
	}
	s.exit()
	return nil
}

// readFeed reads up to limit entries in (after, wm).
func (s *Store) readFeed(ctx context.Context, after, wm uint64, limit int) ([]store.FeedEntry, error) {
	const op = "read feed"
	if err := s.enter(ctx, op, ""); err != nil {
		return nil, err
	}
	defer s.exit()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: feedKey(after + 1), UpperBound: feedKey(wm)})
	if err != nil {
		return nil, wrap(op, "", 0, err)
	}
	defer it.Close()
	var out []store.FeedEntry
	for it.First(); it.Valid() && len(out) < limit; it.Next() {
		k := it.Key()
		if len(k) != len(pFeed)+8 {
			return nil, wrap(op, "", 0, fmt.Errorf("feed key %q: %w", k, errCorrupt))
		}
		pos := binary.BigEndian.Uint64(k[len(pFeed):])
		events, err := decodeFeedEntry(it.Value())
		if err != nil {
			return nil, wrap(op, "", 0, fmt.Errorf("feed entry %d: %w", pos, err))
		}
		out = append(out, store.FeedEntry{Pos: pos, Events: events})
	}
	if err := it.Error(); err != nil {
		return nil, wrap(op, "", 0, err)
	}
	return out, nil
}

// SaveCheckpoint records how far consumer has processed the feed (NoSync:
// see the package doc). When consumer is one of Options.FeedConsumers it may
// trim the feed, at most once a second, up to the lowest checkpoint of all
// of them. It returns store.ErrInvalid for an empty consumer name.
func (s *Store) SaveCheckpoint(ctx context.Context, consumer string, pos uint64) error {
	const op = "save checkpoint"
	if err := s.enter(ctx, op, consumer); err != nil {
		return err
	}
	defer s.exit()
	if consumer == "" {
		return invalid(op, consumer, 0, "empty consumer name")
	}
	if err := s.db.Set(checkpointKey(consumer), be64(pos), pebble.NoSync); err != nil {
		return wrap(op, consumer, 0, err)
	}
	if err := s.maybeTrim(consumer, pos); err != nil {
		// The checkpoint is saved; a failed trim is retried next time.
		s.log.Warn("feed trim failed", "err", err)
	}
	return nil
}

// maybeTrim records consumer's new checkpoint and deletes the feed entries
// every trimming consumer has processed, if it has not done so within
// trimInterval.
func (s *Store) maybeTrim(consumer string, pos uint64) error {
	t := &s.trim
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.consumers[consumer]; !ok {
		return nil
	}
	t.consumers[consumer] = pos
	upto := uint64(0)
	first := true
	for _, p := range t.consumers {
		if p == 0 {
			return nil // a consumer with no checkpoint yet: keep everything
		}
		if first || p < upto {
			upto, first = p, false
		}
	}
	// Never trim at or past the watermark: a late commit there would survive
	// the range deletion.
	if wm, _ := s.feed.watermark(); upto >= wm {
		upto = wm - 1
	}
	if upto <= t.trimmed || time.Since(t.last) < trimInterval {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(feedKey(0), feedKey(upto+1), nil); err != nil {
		return err
	}
	if err := b.Set(keyFeedTrim, be64(upto), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return err
	}
	t.trimmed, t.last = upto, time.Now()
	return nil
}

// LoadCheckpoint returns consumer's checkpoint (0 if it has none).
func (s *Store) LoadCheckpoint(ctx context.Context, consumer string) (uint64, error) {
	const op = "load checkpoint"
	if err := s.enter(ctx, op, consumer); err != nil {
		return 0, err
	}
	defer s.exit()
	pos, err := s.loadCheckpoint(consumer)
	if err != nil {
		return 0, wrap(op, consumer, 0, err)
	}
	return pos, nil
}

func (s *Store) loadCheckpoint(consumer string) (uint64, error) {
	v, ok, err := get(s.db, checkpointKey(consumer))
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("checkpoint %q: %w", consumer, errCorrupt)
	}
	return binary.BigEndian.Uint64(v), nil
}
