package local

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/bus"
)

// Queue is one queue of a Bus; it implements bus.Queue and adds Nack.
// It is safe for concurrent use.
type Queue struct {
	b          *Bus
	name       string
	vt         time.Duration
	maxReceive int

	mu           sync.Mutex
	heap         index
	receipts     map[string]*entry // current receipt handle → message
	receiptsHigh int               // largest len(receipts) since the map was last rebuilt
	seq          uint64
	dead         int
	waiters      int           // Receive calls waiting on wake
	wake         chan struct{} // closed (and replaced) when a message may have become visible

	redriveMu sync.Mutex
}

var _ bus.Queue = (*Queue)(nil)

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

// MaxDelay is the longest delay the runtime asks of this bus: SQS's 15
// minutes, so that the embedded runtime schedules work as the AWS ones do
// (timers and retries due later are the cleanup's). Send itself takes any
// delay.
const MaxDelay = 15 * time.Minute

// Send durably enqueues msg (with a fresh ID) on q, invisible for delay
// (a negative delay counts as 0), and returns once the write is synced.
// Errors: bus.ErrTooLarge, ErrClosed, the context's error, a storage error.
func (q *Queue) Send(ctx context.Context, msg bus.Message, delay time.Duration) error {
	return q.send(ctx, "send", msg, delay)
}

func (q *Queue) send(ctx context.Context, op string, msg bus.Message, delay time.Duration) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("localbus: %s to %s: %w (%w)", op, q.name, err, bus.ErrNotPublished)
	}
	if len(msg.Body) > bus.MaxMessageSize {
		return fmt.Errorf("localbus: %s to %s: body of %d bytes: %w", op, q.name, len(msg.Body), bus.ErrTooLarge)
	}
	delay = max(delay, 0)
	b := q.b
	if !b.enter() {
		return fmt.Errorf("%w (%w)", ErrClosed, bus.ErrNotPublished)
	}
	defer b.exit()
	id, err := uuid.NewRandom()
	if err != nil {
		return fmt.Errorf("localbus: %s to %s: %w (%w)", op, q.name, err, bus.ErrNotPublished)
	}
	now := b.now().UnixNano()
	r := record{SentAt: now, VisibleAt: now + int64(delay), Attributes: msg.Attributes, Body: msg.Body}
	// The synced write is the only slow step and holds no lock of ours:
	// pebble's commit pipeline groups concurrent synced writes into one fsync.
	if err := b.db.Set(key(kindMessage, q.name, now, id), r.encode(), pebble.Sync); err != nil {
		return fmt.Errorf("localbus: %s to %s: %w", op, q.name, err)
	}
	q.mu.Lock()
	q.insertLocked(&entry{id: id, sentAt: now, visibleAt: r.VisibleAt})
	q.mu.Unlock()
	return nil
}

// insertLocked adds e to the index and wakes the waiting receivers if e is
// now the next message to become visible.
func (q *Queue) insertLocked(e *entry) {
	e.seq = q.seq
	q.seq++
	heap.Push(&q.heap, e)
	if e.index == 0 {
		q.notifyLocked()
	}
}

func (q *Queue) notifyLocked() {
	if q.waiters > 0 {
		close(q.wake)
		q.wake = make(chan struct{})
	}
}

// Receive returns up to max (max <= 0: 1) visible messages, oldest first,
// each invisible for the queue's visibility timeout, with its receive count
// incremented and a fresh receipt handle (earlier handles of that message
// stop being current). With none visible it waits up to wait, returning as
// soon as one becomes visible, and returns an empty result if none does.
// A message already received MaxReceiveCount times is moved to the
// dead-letter queue instead and logged at WARN.
//
// The new receive count is written without a sync, except for messages
// that were in the queue when the bus opened: after a crash a message may
// be received once more than its count says, but a message whose handling
// kills the process (a fatal error no recover catches) is counted by every
// life after the first, so it reaches the dead-letter queue after
// MaxReceiveCount lives instead of crashing each restart for ever. Only
// the messages a restart found pay for the sync.
// Errors: ErrClosed (also when the bus closes during the wait), the
// context's error, a storage error.
func (q *Queue) Receive(ctx context.Context, max int, wait time.Duration) ([]bus.Delivery, error) {
	if max <= 0 {
		max = 1
	}
	deadline := time.Now().Add(wait)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out, wake, next, err := q.take(max)
		if err != nil || len(out) > 0 {
			return out, err
		}
		d := time.Until(deadline)
		if d <= 0 {
			q.unwait()
			return nil, nil
		}
		if next > 0 && next < d {
			d = next
		}
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
		case <-q.b.done:
		}
		q.unwait()
	}
}

func (q *Queue) unwait() {
	q.mu.Lock()
	q.waiters--
	q.mu.Unlock()
}

// take receives up to n visible messages. With none, it registers the
// caller as a waiter (undone by unwait) and returns the channel that
// announces a change and the time until the next message becomes visible
// (0: none is pending).
func (q *Queue) take(n int) (out []bus.Delivery, wake <-chan struct{}, next time.Duration, err error) {
	b := q.b
	if !b.enter() {
		return nil, nil, 0, ErrClosed
	}
	defer b.exit()
	q.mu.Lock()
	defer q.mu.Unlock()

	now := b.now().UnixNano()
	var batch *pebble.Batch
	var taken []*entry
	sync := pebble.NoSync
	for len(taken) < n && len(q.heap) > 0 && q.heap[0].visibleAt <= now {
		e := heap.Pop(&q.heap).(*entry)
		mk := key(kindMessage, q.name, e.sentAt, e.id)
		r, err := q.read(mk)
		if err != nil {
			// Not in pebble or unreadable: nothing can deliver it, drop it
			// from the index (the key, if any, stays for an operator).
			q.forgetReceiptLocked(e)
			b.log.Error("localbus: dropping unreadable message from index",
				"queue", q.name, "messageID", e.id, "err", err)
			continue
		}
		if batch == nil {
			batch = b.db.NewBatch()
			defer batch.Close()
		}
		if e.receiveCount >= q.maxReceive {
			q.deadLetterLocked(batch, mk, e, r, now)
			sync = pebble.Sync // rare, and a crash must not bring it back
			continue
		}
		e.receiveCount++
		if e.recovered {
			sync = pebble.Sync
		}
		q.forgetReceiptLocked(e)
		e.receipt = b.newReceipt(e.id)
		q.receipts[e.receipt] = e
		q.receiptsHigh = max(q.receiptsHigh, len(q.receipts))
		e.visibleAt, e.leased = now+int64(q.vt), true
		_ = batch.Set(key(kindState, q.name, e.sentAt, e.id), q.state(e), nil)
		taken = append(taken, e)
		out = append(out, bus.Delivery{
			Message:       bus.Message{ID: e.id.String(), Body: r.Body, Attributes: r.Attributes},
			ReceiptHandle: e.receipt,
			ReceiveCount:  e.receiveCount,
			SentAt:        time.Unix(0, e.sentAt),
		})
	}
	// Pushed back only now, so that with a zero visibility timeout one call
	// does not receive the same message twice.
	for _, e := range taken {
		heap.Push(&q.heap, e)
	}
	q.heap.shrink()
	if batch != nil && !batch.Empty() {
		// Best effort (see Receive): no sync unless a message is recovered
		// or dead-lettered.
		if err := b.db.Apply(batch, sync); err != nil {
			// The index already changed: the messages come back after the
			// visibility timeout, or after a restart.
			return nil, nil, 0, fmt.Errorf("localbus: receive from %s: %w", q.name, err)
		}
	}
	if len(out) == 0 {
		q.waiters++
		wake = q.wake
		if len(q.heap) > 0 {
			next = time.Duration(q.heap[0].visibleAt - now)
		}
	}
	return out, wake, next, nil
}

func (q *Queue) read(k []byte) (record, error) {
	v, closer, err := q.b.db.Get(k)
	if err != nil {
		return record{}, err
	}
	defer closer.Close()
	return decodeRecord(v, true)
}

// state encodes e's mutable state (the value of its s/ key).
func (q *Queue) state(e *entry) []byte {
	r := record{VisibleAt: e.visibleAt, ReceiveCount: e.receiveCount, Leased: e.leased, LastError: e.lastError}
	return r.encode()
}

// deadLetterLocked moves e (already popped from the heap) to the dead-letter
// queue in batch.
func (q *Queue) deadLetterLocked(batch *pebble.Batch, mk []byte, e *entry, r record, now int64) {
	q.forgetReceiptLocked(e)
	r.ReceiveCount, r.LastError, r.VisibleAt, r.Leased = e.receiveCount, e.lastError, now, false
	_ = batch.Delete(mk, nil)
	_ = batch.Delete(key(kindState, q.name, e.sentAt, e.id), nil)
	_ = batch.Set(key(kindDead, q.name, now, e.id), r.encode(), nil)
	q.dead++
	q.b.log.Warn("localbus: message moved to dead-letter queue",
		"queue", q.name, "messageID", e.id.String(), "receiveCount", e.receiveCount, "lastError", e.lastError)
}

func (q *Queue) forgetReceiptLocked(e *entry) {
	if e.receipt == "" {
		return
	}
	delete(q.receipts, e.receipt)
	e.receipt = ""
	// Go maps never shrink: rebuild one that has emptied well below its peak.
	if q.receiptsHigh > 4096 && len(q.receipts) < q.receiptsHigh/8 {
		m := make(map[string]*entry, len(q.receipts))
		for h, e := range q.receipts {
			m[h] = e
		}
		q.receipts, q.receiptsHigh = m, len(m)
	}
}

// Delete removes the received message for good. The deletion is written
// without a sync: after a crash the message may be delivered once more.
// Errors: bus.ErrReceiptInvalid (unknown handle, message deleted or received
// again since), ErrClosed, the context's error, a storage error.
func (q *Queue) Delete(ctx context.Context, receiptHandle string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b := q.b
	if !b.enter() {
		return ErrClosed
	}
	defer b.exit()
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.receipts[receiptHandle]
	if e == nil {
		return fmt.Errorf("localbus: delete from %s: %w", q.name, bus.ErrReceiptInvalid)
	}
	q.forgetReceiptLocked(e)
	q.heap.remove(e)
	batch := b.db.NewBatch()
	defer batch.Close()
	_ = batch.Delete(key(kindMessage, q.name, e.sentAt, e.id), nil)
	_ = batch.Delete(key(kindState, q.name, e.sentAt, e.id), nil)
	if err := b.db.Apply(batch, pebble.NoSync); err != nil {
		return fmt.Errorf("localbus: delete from %s: %w", q.name, err)
	}
	return nil
}

// ChangeVisibility makes the received message visible again after d
// (0: now). The handle stays current. A message whose visibility was changed
// keeps that time across a restart (a plain receive's lease does not).
// Errors: bus.ErrReceiptInvalid, ErrClosed, the context's error, a storage
// error, or an error for a negative d.
func (q *Queue) ChangeVisibility(ctx context.Context, receiptHandle string, d time.Duration) error {
	return q.changeVisibility(ctx, "change visibility", receiptHandle, d, "", false)
}

// Nack is ChangeVisibility that also records why the consumer failed: the
// reason is logged if the message later moves to the dead-letter queue and
// is listed by ListDeadLetters in Attributes[LastErrorAttribute]. Consumers
// find it with an interface assertion:
//
//	type nacker interface {
//		Nack(ctx context.Context, receiptHandle string, d time.Duration, reason string) error
//	}
//
// Errors: as ChangeVisibility.
func (q *Queue) Nack(ctx context.Context, receiptHandle string, d time.Duration, reason string) error {
	return q.changeVisibility(ctx, "nack", receiptHandle, d, reason, true)
}

func (q *Queue) changeVisibility(ctx context.Context, op, h string, d time.Duration, reason string, nack bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("localbus: %s on %s: negative duration %v", op, q.name, d)
	}
	b := q.b
	if !b.enter() {
		return ErrClosed
	}
	defer b.exit()
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.receipts[h]
	if e == nil {
		return fmt.Errorf("localbus: %s on %s: %w", op, q.name, bus.ErrReceiptInvalid)
	}
	e.visibleAt, e.leased = b.now().UnixNano()+int64(d), false
	if nack {
		e.lastError = reason
	}
	heap.Fix(&q.heap, e.index)
	if e.index == 0 {
		q.notifyLocked()
	}
	if err := b.db.Set(key(kindState, q.name, e.sentAt, e.id), q.state(e), pebble.NoSync); err != nil {
		return fmt.Errorf("localbus: %s on %s: %w", op, q.name, err)
	}
	return nil
}
