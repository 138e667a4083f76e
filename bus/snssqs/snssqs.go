package snssqs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync/atomic"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/workflowd/workflowd/bus"
)

// DefaultMaxReceiveCount is the max receive count Setup gives the queues when
// SetupOptions leaves it 0, and the one Nack assumes when Config does.
const DefaultMaxReceiveCount = 5

// Config names the AWS resources of a Bus. Setup returns one; a deployment
// builds it from its template's outputs.
type Config struct {
	// TopicARN is the SNS topic Publish sends to.
	TopicARN string
	// Queues maps each queue's name ("workflows", "executions"), which is
	// also the "target" attribute value the topic's filter policy routes to
	// it, to the queue's SQS URL.
	Queues map[string]string
	// DeadLetterQueues maps a queue's name to the URL of its dead-letter
	// queue (the deadLetterTargetArn of its RedrivePolicy).
	DeadLetterQueues map[string]string
	// MaxReceiveCount is the queues' RedrivePolicy maxReceiveCount. Nack
	// logs the failure reason at WARN from that receive on
	// (0: DefaultMaxReceiveCount).
	MaxReceiveCount int
	// Logger receives Nack's reasons and Redrive's moves (nil: slog.Default()).
	Logger *slog.Logger
}

// Bus is the SNS topic and the SQS queues of one deployment. It implements
// bus.Publisher and bus.DeadLetters; Queue returns the bus.Queue of each
// queue. It is safe for concurrent use and holds no connection of its own
// (the SDK clients do).
type Bus struct {
	sns    *sns.Client
	sqs    *sqs.Client
	cfg    Config
	log    *slog.Logger
	queues map[string]*Queue

	publisher batcher[publishItem]

	publishes atomic.Int64 // SNS publish requests, as billed
	requests  atomic.Int64 // SQS requests, as billed
}

var (
	_ bus.Publisher   = (*Bus)(nil)
	_ bus.DeadLetters = (*Bus)(nil)
)

// New returns the Bus for cfg, using the given clients (create them once per
// process or Lambda container). It makes no request: a wrong ARN or URL
// shows in the first call that uses it.
func New(snsClient *sns.Client, sqsClient *sqs.Client, cfg Config) *Bus {
	cfg.Queues = maps.Clone(cfg.Queues)
	cfg.DeadLetterQueues = maps.Clone(cfg.DeadLetterQueues)
	if cfg.MaxReceiveCount <= 0 {
		cfg.MaxReceiveCount = DefaultMaxReceiveCount
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &Bus{sns: snsClient, sqs: sqsClient, cfg: cfg, log: log, queues: make(map[string]*Queue, len(cfg.Queues))}
	b.publisher.send = b.publishBatch
	b.publisher.size = func(it publishItem) int { return it.size }
	b.publisher.maxBytes = bus.MaxMessageSize
	for name, url := range cfg.Queues {
		q := &Queue{b: b, name: name, url: url}
		q.deleter.send = q.deleteBatch
		b.queues[name] = q
	}
	return b
}

// Publish sends msg to the topic with its attributes as String message
// attributes; the subscription whose filter policy matches its "target"
// attribute delivers it, raw, to that queue. SNS accepts and drops a message
// no subscription matches, so Publish first checks the target against
// Config.Queues and refuses an unknown one. It returns once SNS has accepted
// the message (SNS stores it durably across availability zones before
// answering). Concurrent calls share PublishBatch requests (see batcher).
// Errors: bus.ErrNoRoute (no or unknown target, or no such topic: then the
// error also wraps *snstypes.NotFoundException), bus.ErrTooLarge (body and
// attributes over bus.MaxMessageSize, counted as SQS counts them), an error
// for an empty or non-UTF-8 body, the context's error, an SDK error.
func (b *Bus) Publish(ctx context.Context, msg bus.Message) error {
	target, ok := msg.Attributes[bus.TargetAttribute]
	if _, known := b.cfg.Queues[target]; !ok || !known {
		return fmt.Errorf("snssqs: publish with %s %q: %w", bus.TargetAttribute, target, bus.ErrNoRoute)
	}
	size, err := checkMessage("publish to "+target, msg)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("snssqs: publish to %s: %w (%w)", target, err, bus.ErrNotPublished)
	}
	var attrs map[string]snstypes.MessageAttributeValue
	if len(msg.Attributes) > 0 {
		attrs = make(map[string]snstypes.MessageAttributeValue, len(msg.Attributes))
		for k, v := range msg.Attributes {
			attrs[k] = snstypes.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
	}
	return b.publisher.do(ctx, publishItem{
		entry: snstypes.PublishBatchRequestEntry{Message: aws.String(string(msg.Body)), MessageAttributes: attrs},
		size:  size,
	})
}

// publishItem is one message of a PublishBatch, and its billed size.
type publishItem struct {
	entry snstypes.PublishBatchRequestEntry
	size  int
}

// publishBatch sends up to ten messages with one PublishBatch, billed as one
// request per started 64 KiB of their payload.
func (b *Bus) publishBatch(ctx context.Context, items []publishItem) ([]error, error) {
	entries := make([]snstypes.PublishBatchRequestEntry, len(items))
	size := 0
	for i, it := range items {
		entries[i] = it.entry
		entries[i].Id = aws.String(strconv.Itoa(i))
		size += it.size
	}
	b.publishes.Add(billed(size))
	out, err := b.sns.PublishBatch(ctx, &sns.PublishBatchInput{
		TopicArn:                   aws.String(b.cfg.TopicARN),
		PublishBatchRequestEntries: entries,
	})
	if err != nil {
		var nf *snstypes.NotFoundException
		if errors.As(err, &nf) {
			return nil, fmt.Errorf("snssqs: publish to topic %s: %w (%w)", b.cfg.TopicARN, bus.ErrNoRoute, err)
		}
		// Whatever the error, an attempt the SDK made before its last
		// (which it retried) may have published the batch: unknown.
		return nil, fmt.Errorf("snssqs: publish to topic %s: %w", b.cfg.TopicARN, err)
	}
	errs := make([]error, len(items))
	for _, f := range out.Failed {
		if i, err := strconv.Atoi(aws.ToString(f.Id)); err == nil && i >= 0 && i < len(errs) {
			errs[i] = fmt.Errorf("snssqs: publish to topic %s: %s: %s", b.cfg.TopicARN, aws.ToString(f.Code), aws.ToString(f.Message))
		}
	}
	return errs, nil
}

// Queue returns the named queue, a *Queue (which adds Nack).
// Errors: bus.ErrUnknownQueue if Config.Queues has no such name.
func (b *Bus) Queue(name string) (bus.Queue, error) {
	q, ok := b.queues[name]
	if !ok {
		return nil, fmt.Errorf("snssqs: queue %q: %w", name, bus.ErrUnknownQueue)
	}
	return q, nil
}

// MaxReceiveCount is the queues' maxReceiveCount as this Bus knows it.
func (b *Bus) MaxReceiveCount() int { return b.cfg.MaxReceiveCount }

// Counts returns the running totals of SNS publishes and SQS requests this
// Bus has made (its queues included), as AWS bills them: one per call, or one
// per started 64 KiB of payload for a larger one. Calls that failed count
// too; retries made inside the SDK do not. Setup's requests are not counted.
func (b *Bus) Counts() (publishes, requests int64) {
	return b.publishes.Load(), b.requests.Load()
}

// billChunk is the payload SNS and SQS bill as one request.
const billChunk = 64 * 1024

func billed(payload int) int64 {
	return int64(max(1, (payload+billChunk-1)/billChunk))
}

// checkMessage returns msg's size as SQS counts it (body, and each
// attribute's name, data type and value), and an error if SQS or SNS would
// refuse it or deliver it altered.
func checkMessage(op string, msg bus.Message) (int, error) {
	size := len(msg.Body)
	for k, v := range msg.Attributes {
		size += len(k) + len("String") + len(v)
	}
	switch {
	case size > bus.MaxMessageSize:
		return 0, fmt.Errorf("snssqs: %s: body of %d bytes and attributes, %d bytes in all: %w", op, len(msg.Body), size, bus.ErrTooLarge)
	case len(msg.Body) == 0:
		return 0, fmt.Errorf("snssqs: %s: empty body (SQS and SNS need at least one character)", op)
	case !utf8.Valid(msg.Body):
		return 0, fmt.Errorf("snssqs: %s: body is not UTF-8 text", op)
	}
	return size, nil
}

// sqsError wraps an SQS error with op and the bus error it means.
func sqsError(op string, err error) error {
	var (
		noQueue    *types.QueueDoesNotExist
		badReceipt *types.ReceiptHandleIsInvalid
		notFlight  *types.MessageNotInflight
	)
	switch {
	case errors.As(err, &noQueue):
		return fmt.Errorf("snssqs: %s: %w (%w)", op, bus.ErrUnknownQueue, err)
	case errors.As(err, &badReceipt), errors.As(err, &notFlight):
		return fmt.Errorf("snssqs: %s: %w (%w)", op, bus.ErrReceiptInvalid, err)
	}
	return fmt.Errorf("snssqs: %s: %w", op, err)
}
