package snssqs

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/workflowd/workflowd/bus"
)

// MaxDelay is the longest delay Send takes (SQS's DelaySeconds, 15
// minutes). The runtime passes it to the workers: work due later is the
// cleanup's.
const MaxDelay = 15 * time.Minute

// SQS limits the adapter works within.
const (
	maxBatch      = 10               // messages per ReceiveMessage
	maxWait       = 20 * time.Second // WaitTimeSeconds of one ReceiveMessage
	maxVisibility = 12 * time.Hour   // VisibilityTimeout
)

// Queue is one SQS queue of a Bus; it implements bus.Queue and adds Nack.
// It is safe for concurrent use.
type Queue struct {
	b    *Bus
	name string
	url  string

	// What Receive handed out, for Nack's log line: two generations, the
	// older dropped when the newer fills up, so handles never deleted or
	// nacked (a consumer that died) cost bounded memory.
	mu             sync.Mutex
	recent, former map[string]receipt

	deleter batcher[string]
}

type receipt struct {
	id    string
	count int
}

// receiptGeneration is how many handles one generation holds.
const receiptGeneration = 4096

var _ bus.Queue = (*Queue)(nil)

// Name returns the queue's name (the key of Config.Queues, not the SQS name).
func (q *Queue) Name() string { return q.name }

// Send sends msg straight to the queue (SendMessage), its attributes as
// String message attributes, invisible for delay rounded up to whole seconds
// (a negative delay counts as 0). A zero delay is not sent at all (the SDK
// omits zero integers), so the queue's own DelaySeconds applies; Setup makes
// it 0.
// Errors: bus.ErrTooLarge, an error for an empty or non-UTF-8 body or a
// delay over SQS's 15 minutes, bus.ErrUnknownQueue (the queue is gone), the
// context's error, an SDK error.
func (q *Queue) Send(ctx context.Context, msg bus.Message, delay time.Duration) error {
	size, err := checkMessage("send to "+q.name, msg)
	if err != nil {
		return err
	}
	if delay > MaxDelay {
		return fmt.Errorf("snssqs: send to %s: delay %v is over SQS's %v", q.name, delay, MaxDelay)
	}
	q.b.requests.Add(billed(size))
	_, err = q.b.sqs.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl:          aws.String(q.url),
		MessageBody:       aws.String(string(msg.Body)),
		MessageAttributes: sqsAttributes(msg.Attributes),
		DelaySeconds:      seconds(delay),
	})
	if err != nil {
		return sqsError("send to "+q.name, err)
	}
	return nil
}

// Receive long-polls the queue (ReceiveMessage) for up to max messages
// (clamped to 1..10, SQS's limit), waiting up to wait, rounded up to whole
// seconds, when none is visible: one request per 20 seconds of wait. The
// messages are invisible for the queue's visibility timeout; each Delivery
// has its message attributes, ApproximateReceiveCount as ReceiveCount and
// SentTimestamp as SentAt. SQS moves a message received more than its
// RedrivePolicy's maxReceiveCount to the dead-letter queue instead of
// returning it. Only String and Number attributes are returned.
//
// A wait of 0 is not sent (the SDK omits zero integers): the queue's
// ReceiveMessageWaitTimeSeconds applies, which Setup makes 0.
// A Receive cancelled while SQS is answering can strand the messages of that
// answer until their visibility timeout ends (as in SQS itself).
// Errors: the context's error, bus.ErrUnknownQueue (the queue is gone), an
// SDK error.
func (q *Queue) Receive(ctx context.Context, max int, wait time.Duration) ([]bus.Delivery, error) {
	n := int32(min(maxBatch, max))
	if n < 1 {
		n = 1
	}
	deadline := time.Now().Add(wait)
	secs := seconds(min(wait, maxWait))
	for {
		out, err := q.b.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:              aws.String(q.url),
			MaxNumberOfMessages:   n,
			WaitTimeSeconds:       secs,
			MessageAttributeNames: []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{
				types.MessageSystemAttributeNameApproximateReceiveCount,
				types.MessageSystemAttributeNameSentTimestamp,
			},
		})
		if err != nil {
			q.b.requests.Add(1)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("snssqs: receive from %s: %w", q.name, ctx.Err())
			}
			return nil, sqsError("receive from "+q.name, err)
		}
		ds, payload := deliveries(out.Messages)
		q.b.requests.Add(billed(payload))
		if len(ds) > 0 {
			q.remember(ds)
			return ds, nil
		}
		// Wait longer than 20 s: poll again while a whole second is left.
		left := time.Until(deadline)
		if left < time.Second {
			return nil, nil
		}
		secs = int32(min(left, maxWait) / time.Second)
	}
}

// Delete deletes a received message. Concurrent calls share
// DeleteMessageBatch requests (see batcher). SQS accepts the handle of an
// earlier receive of a message that has been received again, or deleted,
// and does nothing (so does fauxqs, for any handle): ErrReceiptInvalid
// comes only from a handle SQS recognises as malformed.
// Errors: bus.ErrReceiptInvalid, bus.ErrUnknownQueue, the context's error,
// an SDK error.
func (q *Queue) Delete(ctx context.Context, receiptHandle string) error {
	q.forget(receiptHandle)
	return q.deleter.do(ctx, receiptHandle)
}

// deleteBatch deletes up to ten messages with one DeleteMessageBatch.
func (q *Queue) deleteBatch(ctx context.Context, handles []string) ([]error, error) {
	entries := make([]types.DeleteMessageBatchRequestEntry, len(handles))
	for i, h := range handles {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h)}
	}
	q.b.requests.Add(1)
	out, err := q.b.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
	if err != nil {
		return nil, sqsError("delete from "+q.name, err)
	}
	errs := make([]error, len(handles))
	for _, f := range out.Failed {
		i, err := strconv.Atoi(aws.ToString(f.Id))
		if err != nil || i < 0 || i >= len(errs) {
			continue
		}
		errs[i] = fmt.Errorf("snssqs: delete from %s: %s: %s", q.name, aws.ToString(f.Code), aws.ToString(f.Message))
		if code := aws.ToString(f.Code); code == "ReceiptHandleIsInvalid" || code == "InvalidParameterValue" {
			errs[i] = fmt.Errorf("snssqs: delete from %s: %w (%s: %s)", q.name, bus.ErrReceiptInvalid, code, aws.ToString(f.Message))
		}
	}
	return errs, nil
}

// ChangeVisibility makes a received message visible again after d, rounded
// up to whole seconds (ChangeMessageVisibility). A d over 12 hours is cut to
// 12 hours, SQS's limit (which also bounds the time since the receive: SQS
// refuses an extension past it).
// Errors: bus.ErrReceiptInvalid (the message is not in flight:
// MessageNotInflight, or the handle is malformed), bus.ErrUnknownQueue, an
// error for a negative d, the context's error, an SDK error.
func (q *Queue) ChangeVisibility(ctx context.Context, receiptHandle string, d time.Duration) error {
	return q.changeVisibility(ctx, "change visibility", receiptHandle, d)
}

func (q *Queue) changeVisibility(ctx context.Context, op, receiptHandle string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("snssqs: %s on %s: negative duration %v", op, q.name, d)
	}
	q.b.requests.Add(1)
	_, err := q.b.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl:          aws.String(q.url),
		ReceiptHandle:     aws.String(receiptHandle),
		VisibilityTimeout: seconds(min(d, maxVisibility)),
	})
	if err != nil {
		return sqsError(op+" on "+q.name, err)
	}
	return nil
}

// Nack is ChangeVisibility for a message its consumer failed to handle, with
// the reason. SQS cannot carry the reason to the dead-letter queue, so when
// the message was received by this Queue and its receive count has reached
// Config.MaxReceiveCount (its next receive moves it to the dead-letter
// queue), Nack logs the reason at WARN with the message ID; otherwise at
// DEBUG. Consumers find it with an interface assertion:
//
//	type nacker interface {
//		Nack(ctx context.Context, receiptHandle string, d time.Duration, reason string) error
//	}
//
// Errors: as ChangeVisibility (nothing is logged then).
func (q *Queue) Nack(ctx context.Context, receiptHandle string, d time.Duration, reason string) error {
	r, known := q.forget(receiptHandle)
	if err := q.changeVisibility(ctx, "nack", receiptHandle, d); err != nil {
		return err
	}
	switch {
	case known && r.count >= q.b.cfg.MaxReceiveCount:
		q.b.log.WarnContext(ctx, "snssqs: message failed its last receive; the next moves it to the dead-letter queue, without this reason",
			"queue", q.name, "messageID", r.id, "receiveCount", r.count, "reason", reason)
	case known:
		q.b.log.DebugContext(ctx, "snssqs: message nacked",
			"queue", q.name, "messageID", r.id, "receiveCount", r.count, "reason", reason)
	default:
		q.b.log.DebugContext(ctx, "snssqs: message nacked (received elsewhere)", "queue", q.name, "reason", reason)
	}
	return nil
}

func (q *Queue) remember(ds []bus.Delivery) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range ds {
		if len(q.recent) >= receiptGeneration || q.recent == nil {
			q.former, q.recent = q.recent, make(map[string]receipt, receiptGeneration/4)
		}
		q.recent[d.ReceiptHandle] = receipt{id: d.ID, count: d.ReceiveCount}
	}
}

func (q *Queue) forget(h string) (receipt, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if r, ok := q.recent[h]; ok {
		delete(q.recent, h)
		return r, true
	}
	if r, ok := q.former[h]; ok {
		delete(q.former, h)
		return r, true
	}
	return receipt{}, false
}

// deliveries converts received messages and returns their payload size.
func deliveries(ms []types.Message) ([]bus.Delivery, int) {
	if len(ms) == 0 {
		return nil, 0
	}
	out := make([]bus.Delivery, 0, len(ms))
	payload := 0
	for _, m := range ms {
		d := bus.Delivery{
			Message: bus.Message{
				ID:   aws.ToString(m.MessageId),
				Body: []byte(aws.ToString(m.Body)),
			},
			ReceiptHandle: aws.ToString(m.ReceiptHandle),
		}
		payload += len(d.Body)
		for k, v := range m.MessageAttributes {
			payload += len(k) + len(aws.ToString(v.DataType)) + len(aws.ToString(v.StringValue)) + len(v.BinaryValue)
			if v.StringValue == nil {
				continue // Binary: the bus carries strings only
			}
			if d.Attributes == nil {
				d.Attributes = make(map[string]string, len(m.MessageAttributes))
			}
			d.Attributes[k] = *v.StringValue
		}
		if n, err := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]); err == nil {
			d.ReceiveCount = n
		}
		if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
			d.SentAt = time.UnixMilli(ms)
		}
		out = append(out, d)
	}
	return out, payload
}

func sqsAttributes(attrs map[string]string) map[string]types.MessageAttributeValue {
	if len(attrs) == 0 {
		return nil
	}
	out := make(map[string]types.MessageAttributeValue, len(attrs))
	for k, v := range attrs {
		out[k] = types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	return out
}

// seconds rounds d up to whole seconds (0 for d <= 0), so that nothing
// happens earlier than asked.
func seconds(d time.Duration) int32 {
	if d <= 0 {
		return 0
	}
	return int32((d + time.Second - 1) / time.Second)
}
