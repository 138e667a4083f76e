package snssqs

import (
	"context"
	"sync"
	"time"
)

// batcher sends items in batches of up to maxBatch with one request each
// (PublishBatch, DeleteMessageBatch), which AWS bills as one request: up to
// ten times cheaper than a request per item.
//
// It adds no wait of its own. An item is sent at once when no batch is in
// flight; items that come while one is in flight queue up and leave together
// when it returns, in as many batches as they fill, at most maxSenders at a
// time. So a lone item costs one round trip as before, and under load the
// batches fill by themselves (the group commit of a database log).
type batcher[T any] struct {
	// send sends one batch and returns an error per item (nil for those it
	// sent), or one error for all.
	send func(ctx context.Context, items []T) ([]error, error)
	// size, if set, is an item's size; a batch then holds at most maxBytes
	// of them (SNS refuses a PublishBatch over 256 KiB in all), or one item.
	size     func(T) int
	maxBytes int

	mu      sync.Mutex
	queue   []*batchCall[T]
	senders int
}

type batchCall[T any] struct {
	item T
	err  error
	done chan struct{}
}

const (
	// maxSenders bounds the batches in flight at once.
	maxSenders = 8
	// sendTimeout bounds one batch request; a caller stops waiting when its
	// own context ends, but the batch it joined is sent for the others.
	sendTimeout = 30 * time.Second
)

// do sends item in the next batch and returns its outcome, or ctx's error if
// ctx ends first (the item may still be sent then, as with any request
// cancelled in flight).
func (b *batcher[T]) do(ctx context.Context, item T) error {
	c := &batchCall[T]{item: item, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	// A new sender starts when none runs, or when a full batch waits for
	// the busy ones. It takes its first batch now, so that the next call
	// sees what is left.
	var first []*batchCall[T]
	if b.senders == 0 || (len(b.queue) >= maxBatch && b.senders < maxSenders) {
		b.senders++
		first = b.take()
	}
	b.mu.Unlock()
	if first != nil {
		go b.run(first)
	}
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// take removes the next batch from the queue; b.mu is held.
func (b *batcher[T]) take() []*batchCall[T] {
	n, bytes := 0, 0
	for n < min(maxBatch, len(b.queue)) {
		if b.size != nil {
			sz := b.size(b.queue[n].item)
			if n > 0 && bytes+sz > b.maxBytes {
				break
			}
			bytes += sz
		}
		n++
	}
	calls := b.queue[:n:n]
	b.queue = b.queue[n:]
	return calls
}

// run sends calls, then further batches while items wait, then ends.
func (b *batcher[T]) run(calls []*batchCall[T]) {
	for {
		b.sendBatch(calls)
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.senders--
			b.mu.Unlock()
			return
		}
		calls = b.take()
		b.mu.Unlock()
	}
}

func (b *batcher[T]) sendBatch(calls []*batchCall[T]) {
	items := make([]T, len(calls))
	for i, c := range calls {
		items[i] = c.item
	}
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
	errs, err := b.send(ctx, items)
	cancel()
	for i, c := range calls {
		switch {
		case err != nil:
			c.err = err
		case i < len(errs):
			c.err = errs[i]
		}
		close(c.done)
	}
}
