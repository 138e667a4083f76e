package local

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/bus"
)

// Defaults for a QueueConfig's zero fields (SQS's default visibility timeout;
// a max receive count that lets a message survive a few crashes of its
// consumer).
const (
	DefaultVisibilityTimeout = 30 * time.Second
	DefaultMaxReceiveCount   = 5
)

// LastErrorAttribute is the attribute under which ListDeadLetters reports the
// reason given by the last Nack of a dead letter.
const LastErrorAttribute = "lastError"

// ErrClosed is returned by every call on a closed Bus or on a Queue of one.
var ErrClosed = errors.New("localbus: bus is closed")

// QueueConfig configures one queue and its dead-letter queue.
type QueueConfig struct {
	// Name is the queue's name, 1 to 80 characters of [A-Za-z0-9_-] (as in
	// SQS). The topic routes messages whose "target" attribute equals Name
	// to this queue.
	Name string
	// VisibilityTimeout is how long a received message stays invisible
	// unless deleted (0: DefaultVisibilityTimeout).
	VisibilityTimeout time.Duration
	// MaxReceiveCount is how many times a message is received before the
	// next receive moves it to the dead-letter queue instead
	// (0: DefaultMaxReceiveCount).
	MaxReceiveCount int
}

// Options configures Open.
type Options struct {
	// Dir is the directory of the bus's own pebble database; "" keeps
	// everything in memory (lost on Close).
	Dir string
	// Queues are the topic's subscriptions: one queue per entry.
	Queues []QueueConfig
	// Logger receives dead-letter warnings and pebble's messages (at Debug);
	// nil discards them.
	Logger *slog.Logger
	// Now is the clock that decides visibility (nil: time.Now). Waiting in
	// Receive always uses real time.
	Now func() time.Time

	// fs replaces the file system (tests inject vfs.NewStrictMem to simulate
	// a power loss; see export_test.go).
	fs vfs.FS
}

// QueueStats counts a queue's messages at one instant.
type QueueStats struct {
	Visible  int // receivable now
	InFlight int // received, neither deleted nor visible again yet
	Delayed  int // sent with a delay, or in flight before a restart and deferred by ChangeVisibility or Nack
	Dead     int // in the dead-letter queue
}

// Bus is the in-process topic and its queues. It is safe for concurrent use.
type Bus struct {
	db     *pebble.DB
	log    *slog.Logger
	now    func() time.Time
	queues map[string]*Queue

	// closeMu is held shared by every call that touches db and exclusively
	// by Close, so pebble is never used after it is closed. It is never held
	// while a Receive waits.
	closeMu   sync.RWMutex
	closed    atomic.Bool
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	receiptNonce string
	receiptSeq   atomic.Uint64
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,80}$`)

// Open opens (or creates) the bus in opts.Dir and rebuilds every queue's
// index from it: each undeleted message is delivered again, a message that
// was in flight at once, a delayed or deferred one when due.
// It fails if the options are invalid or the database cannot be opened (a
// directory is held by one open Bus at a time).
func Open(opts Options) (*Bus, error) {
	if len(opts.Queues) == 0 {
		return nil, errors.New("localbus: no queues configured")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	b := &Bus{
		log:          log,
		now:          now,
		queues:       make(map[string]*Queue, len(opts.Queues)),
		done:         make(chan struct{}),
		receiptNonce: uuid.NewString()[:8],
	}
	for _, c := range opts.Queues {
		if !validName.MatchString(c.Name) {
			return nil, fmt.Errorf("localbus: invalid queue name %q: want 1 to 80 of [A-Za-z0-9_-]", c.Name)
		}
		if _, dup := b.queues[c.Name]; dup {
			return nil, fmt.Errorf("localbus: queue %q configured twice", c.Name)
		}
		if c.VisibilityTimeout < 0 || c.MaxReceiveCount < 0 {
			return nil, fmt.Errorf("localbus: queue %q: negative visibility timeout or max receive count", c.Name)
		}
		if c.VisibilityTimeout == 0 {
			c.VisibilityTimeout = DefaultVisibilityTimeout
		}
		if c.MaxReceiveCount == 0 {
			c.MaxReceiveCount = DefaultMaxReceiveCount
		}
		b.queues[c.Name] = &Queue{
			b:          b,
			name:       c.Name,
			vt:         c.VisibilityTimeout,
			maxReceive: c.MaxReceiveCount,
			receipts:   make(map[string]*entry),
			wake:       make(chan struct{}),
		}
	}

	fs, dir := opts.fs, opts.Dir
	switch {
	case fs == nil && dir == "":
		fs = vfs.NewMem()
	case fs == nil:
		fs = vfs.Default
	}
	if dir == "" {
		dir = "localbus"
	}
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, Logger: pebbleLogger{log}})
	if err != nil {
		return nil, fmt.Errorf("localbus: open %s: %w", opts.Dir, err)
	}
	b.db = db
	for _, q := range b.queues {
		if err := q.load(); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("localbus: load queue %s: %w", q.name, err)
		}
	}
	return b, nil
}

// enter reports whether the bus is open and, if so, holds it open until exit.
func (b *Bus) enter() bool {
	b.closeMu.RLock()
	if b.closed.Load() {
		b.closeMu.RUnlock()
		return false
	}
	return true
}

func (b *Bus) exit() { b.closeMu.RUnlock() }

func (b *Bus) newReceipt(id uuid.UUID) string {
	return id.String() + "." + b.receiptNonce + "." + strconv.FormatUint(b.receiptSeq.Add(1), 36)
}

func (b *Bus) queue(op, name string) (*Queue, error) {
	q := b.queues[name]
	if q == nil {
		return nil, fmt.Errorf("localbus: %s %q: %w", op, name, bus.ErrUnknownQueue)
	}
	return q, nil
}

// Publish durably enqueues msg (with a fresh ID) on the queue named by its
// "target" attribute, and returns once the write is synced to disk.
// Errors: bus.ErrNoRoute (no queue of that name), bus.ErrTooLarge, ErrClosed
// or a context that ended before the write (these mark bus.ErrNotPublished:
// nothing was written), or a storage error (the message may be written).
func (b *Bus) Publish(ctx context.Context, msg bus.Message) error {
	target, ok := msg.Attributes[bus.TargetAttribute]
	q := b.queues[target]
	if !ok || q == nil {
		if b.closed.Load() {
			return fmt.Errorf("%w (%w)", ErrClosed, bus.ErrNotPublished)
		}
		return fmt.Errorf("localbus: publish with %s %q: %w", bus.TargetAttribute, target, bus.ErrNoRoute)
	}
	return q.send(ctx, "publish", msg, 0)
}

// Queue returns the named queue (a *Queue).
// Errors: bus.ErrUnknownQueue, ErrClosed.
func (b *Bus) Queue(name string) (bus.Queue, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	q, err := b.queue("queue", name)
	if err != nil {
		return nil, err
	}
	return q, nil
}

// ListDeadLetters returns up to max (max <= 0: all) messages of queue's
// dead-letter queue in the order they died, without changing them. Each
// carries the receive count it died with and, if its last failure was
// reported with Nack, the reason in Attributes[LastErrorAttribute]. The
// deliveries have no receipt handle.
// Errors: bus.ErrUnknownQueue, ErrClosed, the context's error, a storage error.
func (b *Bus) ListDeadLetters(ctx context.Context, queue string, max int) ([]bus.Delivery, error) {
	q, err := b.queue("list dead letters of", queue)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !b.enter() {
		return nil, ErrClosed
	}
	defer b.exit()
	var out []bus.Delivery
	err = q.scanDead(max, func(_ []byte, id uuid.UUID, r record) {
		attrs := r.Attributes
		if r.LastError != "" {
			if attrs == nil {
				attrs = make(map[string]string, 1)
			}
			attrs[LastErrorAttribute] = r.LastError
		}
		out = append(out, bus.Delivery{
			Message:      bus.Message{ID: id.String(), Body: r.Body, Attributes: attrs},
			ReceiveCount: r.ReceiveCount,
			SentAt:       time.Unix(0, r.SentAt),
		})
	})
	if err != nil {
		return nil, fmt.Errorf("localbus: list dead letters of %s: %w", queue, err)
	}
	return out, nil
}

// Redrive moves up to max (max <= 0: all) messages, oldest death first, from
// queue's dead-letter queue back to queue, visible at once with their receive
// counts reset to zero and their IDs and SentAt kept. The move is one synced
// write. It returns how many it moved.
// Errors: bus.ErrUnknownQueue, ErrClosed, the context's error, a storage error.
func (b *Bus) Redrive(ctx context.Context, queue string, max int) (int, error) {
	q, err := b.queue("redrive", queue)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !b.enter() {
		return 0, ErrClosed
	}
	defer b.exit()
	q.redriveMu.Lock()
	defer q.redriveMu.Unlock()

	batch := b.db.NewBatch()
	defer batch.Close()
	now := b.now().UnixNano()
	var moved []*entry
	err = q.scanDead(max, func(k []byte, id uuid.UUID, r record) {
		r.ReceiveCount, r.LastError, r.VisibleAt, r.Leased = 0, "", now, false
		_ = batch.Delete(k, nil)
		_ = batch.Delete(key(kindState, q.name, r.SentAt, id), nil)
		_ = batch.Set(key(kindMessage, q.name, r.SentAt, id), r.encode(), nil)
		moved = append(moved, &entry{id: id, sentAt: r.SentAt, visibleAt: now})
	})
	if err == nil && len(moved) > 0 {
		err = b.db.Apply(batch, pebble.Sync)
	}
	if err != nil {
		return 0, fmt.Errorf("localbus: redrive %s: %w", queue, err)
	}
	q.mu.Lock()
	for _, e := range moved {
		q.insertLocked(e)
	}
	q.dead -= len(moved)
	q.mu.Unlock()
	return len(moved), nil
}

// Stats counts queue's messages now (the zero QueueStats for an unknown
// queue). It walks the queue's index: O(messages), meant for logs, readiness
// details and benchmarks, not for every request.
func (b *Bus) Stats(queue string) QueueStats {
	q := b.queues[queue]
	if q == nil {
		return QueueStats{}
	}
	now := b.now().UnixNano()
	q.mu.Lock()
	defer q.mu.Unlock()
	s := QueueStats{Dead: q.dead}
	for _, e := range q.heap {
		switch {
		case e.visibleAt <= now:
			s.Visible++
		case e.receipt != "":
			s.InFlight++
		default:
			s.Delayed++
		}
	}
	return s
}

// Close stops every waiting Receive (they return ErrClosed), waits for calls
// in progress, and closes the database. It is idempotent: later calls return
// the first call's result.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		b.closed.Store(true)
		close(b.done)
		b.closeMu.Lock()
		defer b.closeMu.Unlock()
		if err := b.db.Close(); err != nil {
			b.closeErr = fmt.Errorf("localbus: close: %w", err)
		}
	})
	return b.closeErr
}

// load rebuilds q's index from pebble (during Open, before any other call).
func (q *Queue) load() error {
	b := q.b
	now := b.now().UnixNano()

	states := make(map[string]record)
	sp := keyPrefix(kindState, q.name)
	if err := scan(b.db, sp, func(k, v []byte) error {
		r, err := decodeRecord(v, false)
		if err != nil {
			return fmt.Errorf("state %x: %w", k, err)
		}
		states[string(k[len(sp):])] = r
		return nil
	}); err != nil {
		return err
	}

	mp := keyPrefix(kindMessage, q.name)
	if err := scan(b.db, mp, func(k, v []byte) error {
		ts, id, err := parseSuffix(k)
		if err != nil {
			return err
		}
		r, err := decodeRecord(v, false)
		if err != nil {
			return fmt.Errorf("message %s: %w", id, err)
		}
		e := &entry{id: id, sentAt: ts, visibleAt: r.VisibleAt, seq: q.seq, index: len(q.heap), recovered: true}
		q.seq++
		suffix := string(k[len(mp):])
		if s, ok := states[suffix]; ok {
			delete(states, suffix)
			e.receiveCount, e.lastError, e.leased, e.visibleAt = s.ReceiveCount, s.LastError, s.Leased, s.VisibleAt
			if e.leased && e.visibleAt > now {
				e.visibleAt = now // its consumer is gone
			}
		}
		q.heap = append(q.heap, e)
		return nil
	}); err != nil {
		return err
	}
	heap.Init(&q.heap)

	if len(states) > 0 {
		// State written by a receive that raced a delete or a move to the
		// dead-letter queue: the message is gone, drop the state.
		batch := b.db.NewBatch()
		defer batch.Close()
		for suffix := range states {
			_ = batch.Delete(append(append([]byte(nil), sp...), suffix...), nil)
		}
		if err := b.db.Apply(batch, pebble.NoSync); err != nil {
			return err
		}
	}

	return scan(b.db, keyPrefix(kindDead, q.name), func(_, _ []byte) error {
		q.dead++
		return nil
	})
}

// scanDead calls f for up to max (max <= 0: all) dead letters, oldest first.
func (q *Queue) scanDead(max int, f func(k []byte, id uuid.UUID, r record)) error {
	n := 0
	errStop := errors.New("stop")
	err := scan(q.b.db, keyPrefix(kindDead, q.name), func(k, v []byte) error {
		if max > 0 && n >= max {
			return errStop
		}
		_, id, err := parseSuffix(k)
		if err != nil {
			return err
		}
		r, err := decodeRecord(v, true)
		if err != nil {
			return fmt.Errorf("dead letter %s: %w", id, err)
		}
		n++
		f(append([]byte(nil), k...), id, r)
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// scan calls f for every key with the prefix p, in order. k and v are valid
// only during the call.
func scan(db *pebble.DB, p []byte, f func(k, v []byte) error) (err error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := it.Close(); err == nil {
			err = cerr
		}
	}()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if err := f(it.Key(), v); err != nil {
			return err
		}
	}
	return it.Error()
}

// pebbleLogger sends pebble's messages to slog: routine ones at Debug.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by pebble on an unrecoverable storage error, after which
// it must not go on: log, then panic (pebble's default exits the process).
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "component", "pebble")
	panic("localbus: " + msg)
}
