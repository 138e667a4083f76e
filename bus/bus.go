package bus

import (
	"context"
	"errors"
	"time"
)

// TargetAttribute is the message attribute the topic routes on.
const TargetAttribute = "target"

var (
	// ErrUnknownQueue: no queue of that name.
	ErrUnknownQueue = errors.New("unknown queue")
	// ErrNoRoute: the topic has no subscription matching the message.
	ErrNoRoute = errors.New("no queue matches the message")
	// ErrReceiptInvalid: the receipt handle is unknown or no longer current
	// (the message was deleted, or its visibility timeout ran out and it was
	// received again).
	ErrReceiptInvalid = errors.New("receipt handle is not current")
	// ErrTooLarge: the message body exceeds MaxMessageSize.
	ErrTooLarge = errors.New("message too large")
	// ErrNotPublished marks a Publish error after which the message is
	// certainly not enqueued: it was refused before anything was sent or
	// written (a closed bus, a context already done). Any other Publish
	// error (a timeout, a cancelled request, a storage or service error,
	// even a refusal after the SDK retried an attempt that may have gone
	// through) leaves it unknown: the message may be enqueued. See
	// NotPublished.
	ErrNotPublished = errors.New("not published")
)

// NotPublished reports whether a Publish error means the message was
// certainly not enqueued: ErrNotPublished, ErrNoRoute or ErrTooLarge.
func NotPublished(err error) bool {
	return errors.Is(err, ErrNotPublished) || errors.Is(err, ErrNoRoute) || errors.Is(err, ErrTooLarge)
}

// MaxMessageSize is the largest body a message may carry (SQS's limit).
const MaxMessageSize = 256 * 1024

// Message is what is published and delivered.
type Message struct {
	ID         string // set by the bus on publish
	Body       []byte
	Attributes map[string]string
}

// Delivery is a received message.
type Delivery struct {
	Message
	// ReceiptHandle names this receive; Delete and ChangeVisibility take it.
	ReceiptHandle string
	// ReceiveCount counts receives of the message, this one included.
	ReceiveCount int
	// SentAt is when the message was first enqueued.
	SentAt time.Time
}

// Publisher is the topic side.
type Publisher interface {
	// Publish durably enqueues msg on the queue its TargetAttribute selects
	// before returning; ErrNoRoute if none matches.
	Publish(ctx context.Context, msg Message) error
}

// Queue is the consuming side of one queue.
type Queue interface {
	// Name is the queue's name.
	Name() string
	// Send enqueues msg directly on this queue, invisible for delay.
	Send(ctx context.Context, msg Message, delay time.Duration) error
	// Receive returns up to max visible messages, making them invisible for
	// the queue's visibility timeout. With none visible it waits up to wait.
	// A message received more than the queue's max receive count moves to the
	// dead-letter queue instead of being returned.
	Receive(ctx context.Context, max int, wait time.Duration) ([]Delivery, error)
	// Delete removes a received message for good (ErrReceiptInvalid if the
	// handle is not current).
	Delete(ctx context.Context, receiptHandle string) error
	// ChangeVisibility makes a received message visible again after d.
	ChangeVisibility(ctx context.Context, receiptHandle string, d time.Duration) error
}

// DeadLetters is the operator's view of a queue's dead-letter queue.
type DeadLetters interface {
	// ListDeadLetters returns up to max messages in queue's DLQ, oldest first,
	// without changing them.
	ListDeadLetters(ctx context.Context, queue string, max int) ([]Delivery, error)
	// Redrive moves up to max messages from queue's DLQ back to queue, with
	// their receive counts reset, and returns how many it moved.
	Redrive(ctx context.Context, queue string, max int) (int, error)
}
