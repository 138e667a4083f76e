package workers

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/internal/backoff"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// MessageHandler handles one message body; see CommandWorker.Handle for the
// meaning of its result.
type MessageHandler interface {
	Handle(ctx context.Context, body []byte, receiveCount int) error
}

// EventHandler handles a batch of events from the feed or a stream.
type EventHandler interface {
	Handle(ctx context.Context, events []model.Event) error
}

// EventHandlers hands events to each handler in turn, stopping at the
// first error: the stream function's projector then dispatcher.
type EventHandlers []EventHandler

// Handle hands events to each handler in turn.
func (hs EventHandlers) Handle(ctx context.Context, events []model.Event) error {
	for _, h := range hs {
		if err := h.Handle(ctx, events); err != nil {
			return err
		}
	}
	return nil
}

// nacker is the optional capability of a queue to remember why a message is
// being retried (the in-process bus logs it when the message dead-letters).
type nacker interface {
	Nack(ctx context.Context, receiptHandle string, d time.Duration, reason string) error
}

// ConsumerOptions tune Consume.
type ConsumerOptions struct {
	Concurrency int           // messages handled at once; default 16
	Pollers     int           // goroutines receiving from the queue; default 2
	BatchSize   int           // most messages per receive; default 10
	Wait        time.Duration // long-poll wait; default 1s
	// Visibility is the queue's visibility timeout. If set, a message whose
	// handler runs longer than half of it has its visibility extended by
	// that much, again and again, so that it is not delivered a second time
	// while its first delivery still works (a slow http step).
	Visibility time.Duration
	Logger     *slog.Logger
}

// Consume receives messages from q and hands each to h until ctx is done,
// then lets in-flight messages finish and returns. A nil result deletes the
// message; an error leaves it for redelivery (after RetryError.After, or
// after a backoff growing with the receive count), so a message that keeps
// failing ends in the dead-letter queue.
//
// A few pollers receive in batches for a pool of handlers, and only as many
// messages as there are idle handlers, so no message waits invisible in
// memory and a queue costs few receive requests (each is billed on SQS).
func Consume(ctx context.Context, q bus.Queue, h MessageHandler, opts ConsumerOptions) {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.Pollers <= 0 {
		opts.Pollers = 2
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 10
	}
	if opts.Wait <= 0 {
		opts.Wait = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("queue", q.Name())
	// In-flight messages finish with a context that outlives ctx.
	work := context.WithoutCancel(ctx)
	idle := make(chan struct{}, opts.Concurrency) // a token per busy handler
	jobs := make(chan bus.Delivery)
	var handlers, pollers sync.WaitGroup
	for range opts.Concurrency {
		handlers.Go(func() {
			for d := range jobs {
				stop := keepInvisible(work, q, d, opts.Visibility, log)
				handleDelivery(work, q, h, d, log)
				stop()
				<-idle
			}
		})
	}
	for range opts.Pollers {
		pollers.Go(func() {
			for {
				// Wait for one idle handler, then take up to a batch.
				select {
				case idle <- struct{}{}:
				case <-ctx.Done():
					return
				}
				n := 1
				for n < opts.BatchSize {
					select {
					case idle <- struct{}{}:
						n++
						continue
					default:
					}
					break
				}
				ds, err := q.Receive(ctx, n, opts.Wait)
				for range n - len(ds) {
					<-idle
				}
				if err != nil && ctx.Err() == nil {
					log.Error("receive failed", "err", err)
					backoff.Sleep(ctx, time.Second)
				}
				for _, d := range ds {
					jobs <- d
				}
				if ctx.Err() != nil {
					return
				}
			}
		})
	}
	pollers.Wait()
	close(jobs)
	handlers.Wait()
}

// keepInvisible extends d's visibility every half visibility timeout until
// the returned function is called.
func keepInvisible(ctx context.Context, q bus.Queue, d bus.Delivery, visibility time.Duration, log *slog.Logger) func() {
	if visibility <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(visibility / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := q.ChangeVisibility(ctx, d.ReceiptHandle, visibility); err != nil {
					log.Warn("could not extend a message's visibility; it may be delivered again while it is handled", "message", d.ID, "err", err)
					return
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func handleDelivery(ctx context.Context, q bus.Queue, h MessageHandler, d bus.Delivery, log *slog.Logger) {
	err := handleMessage(ctx, h, d.Body, d.ReceiveCount)
	if err == nil {
		if err := q.Delete(ctx, d.ReceiptHandle); err != nil && !errors.Is(err, bus.ErrReceiptInvalid) {
			log.Warn("delete failed; the message will be redelivered", "message", d.ID, "err", err)
		}
		return
	}
	delay := redeliveryDelay(d.ReceiveCount)
	var retry *RetryError
	var panicked *PanicError
	if errors.As(err, &retry) {
		delay = retry.After
		log.Debug("message retried", "message", d.ID, "receiveCount", d.ReceiveCount, "reason", retry.Reason)
	} else if errors.As(err, &panicked) {
		log.Error("message handler panicked; the message will be redelivered", "message", d.ID, "receiveCount", d.ReceiveCount, "err", err, "stack", string(panicked.Stack))
	} else {
		log.Warn("message failed; it will be redelivered", "message", d.ID, "receiveCount", d.ReceiveCount, "err", err)
	}
	if n, ok := q.(nacker); ok {
		err = n.Nack(ctx, d.ReceiptHandle, delay, err.Error())
	} else {
		err = q.ChangeVisibility(ctx, d.ReceiptHandle, delay)
	}
	if err != nil && !errors.Is(err, bus.ErrReceiptInvalid) {
		log.Warn("change visibility failed", "message", d.ID, "err", err)
	}
}

// redeliveryDelay is the wait before redelivering a message after its n-th
// failed receive, and before retrying a feed batch after its n-th failure:
// 1s, 2s, 4s… up to 30s.
func redeliveryDelay(n int) time.Duration { return backoff.Exponential(n, time.Second, 30*time.Second) }

// FeedOptions tune RunFeed.
type FeedOptions struct {
	BatchSize int           // entries per read; default 256
	Wait      time.Duration // how long a read waits for news; default 1s
	Logger    *slog.Logger
}

// RunFeed feeds the store's change feed to h as consumer, from its last
// checkpoint, until ctx is done. A batch is checkpointed only after h
// succeeds; a failing batch is retried with backoff (the handlers are
// idempotent), so nothing is skipped and a restart resumes where it stopped.
func RunFeed(ctx context.Context, feed store.Feed, consumer string, h EventHandler, opts FeedOptions) error {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.Wait <= 0 {
		opts.Wait = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("consumer", consumer)
	pos, err := feed.LoadCheckpoint(ctx, consumer)
	if err != nil {
		return err
	}
	work := context.WithoutCancel(ctx)
	failures := 0
	for {
		// Once ctx is done, drain what is already in the feed (without
		// waiting for more) and stop: a graceful shutdown leaves no view
		// behind its events.
		draining := ctx.Err() != nil
		wait := opts.Wait
		if draining {
			wait = 0
		}
		entries, err := feed.ReadFeed(work, pos, opts.BatchSize, wait)
		if err != nil {
			if draining {
				return err
			}
			log.Error("feed read failed", "err", err)
			backoff.Sleep(ctx, time.Second)
			continue
		}
		if len(entries) == 0 {
			if draining {
				return nil
			}
			continue
		}
		var events []model.Event
		for _, e := range entries {
			events = append(events, e.Events...)
		}
		if err := handleEvents(work, h, events); err != nil {
			if draining {
				return err
			}
			failures++
			log.Error("feed batch failed; retrying", "from", entries[0].Pos, "to", entries[len(entries)-1].Pos, "failures", failures, "err", err)
			backoff.Sleep(ctx, redeliveryDelay(failures))
			continue
		}
		failures = 0
		pos = entries[len(entries)-1].Pos
		if err := feed.SaveCheckpoint(work, consumer, pos); err != nil {
			log.Error("checkpoint failed", "pos", pos, "err", err)
		}
	}
}
