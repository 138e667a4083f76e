package snssqs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/workflowd/workflowd/bus"
)

const (
	// holdFor is how long ListDeadLetters and Redrive keep the dead letters
	// they received invisible: if the process dies before it releases or
	// deletes them, they are back in the dead-letter queue after that.
	holdFor = 30 * time.Second
	// dlqWait is the long poll of each receive from a dead-letter queue: any
	// wait makes SQS ask all its servers (a short poll samples some and may
	// answer empty for a queue that is not), and an empty queue answers
	// after it.
	dlqWait = time.Second
	// releaseTimeout bounds the release of held dead letters, which runs
	// even when the caller's context is done.
	releaseTimeout = 10 * time.Second
)

// ListDeadLetters returns up to max (max <= 0: all) messages of queue's
// dead-letter queue, oldest SentAt first, each with the receive count SQS
// reports. SQS has no peek: ListDeadLetters receives the messages (holding
// them invisible while it collects more, so that each is listed once), then
// makes them visible again with one ChangeMessageVisibilityBatch per ten.
// (A ReceiveMessage with VisibilityTimeout 0 cannot be sent: the SDK omits a
// zero, and the dead-letter queue's own timeout would apply.) A listing is
// therefore a receive: it adds one to each message's receive
// count, and while it runs (about a second) a Redrive or another listing
// does not see the messages it holds. The deliveries have no receipt handle.
// Errors: bus.ErrUnknownQueue, the context's error, an SDK error.
func (b *Bus) ListDeadLetters(ctx context.Context, queue string, max int) ([]bus.Delivery, error) {
	url, err := b.deadLetterURL("list dead letters of", queue)
	if err != nil {
		return nil, err
	}
	var (
		out     []bus.Delivery
		handles []string
	)
	defer func() { b.release(ctx, queue, url, handles) }()
	for max <= 0 || len(out) < max {
		ds, err := b.receiveDead(ctx, "list dead letters of "+queue, url, max-len(out))
		if err != nil {
			return nil, err
		}
		if len(ds) == 0 {
			break
		}
		for _, d := range ds {
			handles = append(handles, d.ReceiptHandle)
			d.ReceiptHandle = ""
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(x, y bus.Delivery) int { return x.SentAt.Compare(y.SentAt) })
	return out, nil
}

// Redrive moves up to max (max <= 0: all) messages from queue's dead-letter
// queue back to queue, and returns how many it moved. Each is received from
// the dead-letter queue, sent to queue with the same body and attributes
// (a new message: new ID, SentAt now, receive count 0), then deleted from the
// dead-letter queue. A crash between the send and the delete leaves the
// message in both (at-least-once: consumers are idempotent); a failed send
// puts the message back in the dead-letter queue at once. SQS's own
// StartMessageMoveTask would do the same server-side, but fauxqs lacks it.
// Errors: bus.ErrUnknownQueue, the context's error, an SDK error (with the
// count moved before it).
func (b *Bus) Redrive(ctx context.Context, queue string, max int) (int, error) {
	url, err := b.deadLetterURL("redrive", queue)
	if err != nil {
		return 0, err
	}
	q := b.queues[queue]
	moved := 0
	for max <= 0 || moved < max {
		ds, err := b.receiveDead(ctx, "redrive "+queue, url, max-moved)
		if err != nil {
			return moved, err
		}
		if len(ds) == 0 {
			break
		}
		for i, d := range ds {
			if err := b.redriveOne(ctx, q, url, d); err != nil {
				rest := make([]string, 0, len(ds)-i)
				for _, d := range ds[i:] {
					rest = append(rest, d.ReceiptHandle)
				}
				b.release(ctx, queue, url, rest)
				return moved, err
			}
			moved++
		}
	}
	return moved, nil
}

func (b *Bus) redriveOne(ctx context.Context, q *Queue, dlqURL string, d bus.Delivery) error {
	if err := q.Send(ctx, d.Message, 0); err != nil {
		return fmt.Errorf("snssqs: redrive %s: %w", q.name, err)
	}
	b.requests.Add(1)
	if _, err := b.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{
		QueueUrl:      aws.String(dlqURL),
		ReceiptHandle: aws.String(d.ReceiptHandle),
	}); err != nil {
		// Sent but not deleted: it will be listed, and redriven, again.
		return sqsError("redrive "+q.name+": delete from dead-letter queue", err)
	}
	b.log.Info("snssqs: dead letter redriven", "queue", q.name, "deadLetterID", d.ID, "receiveCount", d.ReceiveCount)
	return nil
}

func (b *Bus) deadLetterURL(op, queue string) (string, error) {
	url, ok := b.cfg.DeadLetterQueues[queue]
	if _, known := b.queues[queue]; !ok || !known {
		return "", fmt.Errorf("snssqs: %s %q: %w", op, queue, bus.ErrUnknownQueue)
	}
	return url, nil
}

// receiveDead receives up to n (n <= 0: 10) dead letters, holding them for
// holdFor.
func (b *Bus) receiveDead(ctx context.Context, op, url string, n int) ([]bus.Delivery, error) {
	if n <= 0 || n > maxBatch {
		n = maxBatch
	}
	out, err := b.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:              aws.String(url),
		MaxNumberOfMessages:   int32(n),
		WaitTimeSeconds:       seconds(dlqWait),
		VisibilityTimeout:     seconds(holdFor),
		MessageAttributeNames: []string{"All"},
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{
			types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameSentTimestamp,
		},
	})
	if err != nil {
		b.requests.Add(1)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("snssqs: %s: %w", op, ctx.Err())
		}
		return nil, sqsError(op, err)
	}
	ds, payload := deliveries(out.Messages)
	b.requests.Add(billed(payload))
	return ds, nil
}

// release makes held dead letters visible again at once, ten per request,
// even if ctx is done; a failure is logged (they come back after holdFor).
func (b *Bus) release(ctx context.Context, queue, url string, handles []string) {
	if len(handles) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	for chunk := range slices.Chunk(handles, maxBatch) {
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk))
		for i, h := range chunk {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
				Id:                aws.String(strconv.Itoa(i)),
				ReceiptHandle:     aws.String(h),
				VisibilityTimeout: 0,
			}
		}
		b.requests.Add(1)
		out, err := b.sqs.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{
			QueueUrl: aws.String(url),
			Entries:  entries,
		})
		if err == nil && len(out.Failed) > 0 {
			f := out.Failed[0]
			err = errors.New(cmp.Or(aws.ToString(f.Code), "failed") + ": " + aws.ToString(f.Message))
		}
		if err != nil {
			b.log.Warn("snssqs: could not make dead letters visible again; they will be after the hold",
				"queue", queue, "messages", len(chunk), "hold", holdFor, "err", err)
		}
	}
}
