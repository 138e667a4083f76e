package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/workflowd/workflowd/model"
)

// SQSRetry makes a failed record visible again after after (the delay
// its handler asked for with a RetryError: a timer that came early, an
// increment that overtook its execution's begin), instead of after the
// queue's whole visibility timeout.
type SQSRetry func(ctx context.Context, rec events.SQSMessage, after time.Duration) error

// HandleSQSEvent is the body of a Lambda function fed by an SQS event source
// mapping with ReportBatchItemFailures: it hands the records to h, as
// Consume does for the long-running mode, all at once (a batch of slow http
// steps takes as long as its slowest), and reports the records that failed
// so that only they are retried (and, after maxReceiveCount, moved to the
// dead-letter queue). It never fails the whole batch. retry may be nil.
func HandleSQSEvent(ctx context.Context, h MessageHandler, ev events.SQSEvent, log *slog.Logger, retry SQSRetry) events.SQSEventResponse {
	if log == nil {
		log = slog.Default()
	}
	failed := make([]bool, len(ev.Records))
	var wg sync.WaitGroup
	for i, rec := range ev.Records {
		wg.Go(func() { failed[i] = !handleSQSRecord(ctx, h, rec, log, retry) })
	}
	wg.Wait()
	var resp events.SQSEventResponse
	for i, rec := range ev.Records {
		if failed[i] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	return resp
}

// handleSQSRecord handles one record and reports whether it succeeded.
func handleSQSRecord(ctx context.Context, h MessageHandler, rec events.SQSMessage, log *slog.Logger, retry SQSRetry) bool {
	n, err := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
	if err != nil || n < 1 {
		n = 1
	}
	err = h.Handle(ctx, []byte(rec.Body), n)
	if err == nil {
		return true
	}
	var again *RetryError
	if !errors.As(err, &again) {
		log.Warn("message failed; it will be redelivered", "message", rec.MessageId, "receiveCount", n, "err", err)
		return false
	}
	log.Debug("message retried", "message", rec.MessageId, "receiveCount", n, "reason", again.Reason, "after", again.After)
	if retry != nil {
		if err := retry(ctx, rec, again.After); err != nil {
			log.Warn("could not make a message visible sooner; it comes back after the visibility timeout", "message", rec.MessageId, "err", err)
		}
	}
	return false
}

// StreamDecoder turns one stream record into the events it carries (none
// for records that carry no events, such as a TTL removal).
type StreamDecoder func(rec events.DynamoDBEventRecord) ([]model.Event, error)

// HandleDynamoDBEvent is the body of a Lambda function fed by the events
// table's stream (and of the long-running stream reader): it decodes the
// records in order and hands each one's events to h. At the first record
// that cannot be decoded or handled it stops and reports that record and
// every one after it as failed, so that the stream retries from there and
// per-aggregate order is kept; the handlers are idempotent, so the records
// before it may be delivered again harmlessly.
func HandleDynamoDBEvent(ctx context.Context, h EventHandler, decode StreamDecoder, ev events.DynamoDBEvent, log *slog.Logger) events.DynamoDBEventResponse {
	if log == nil {
		log = slog.Default()
	}
	var resp events.DynamoDBEventResponse
	for i, rec := range ev.Records {
		err := handleRecord(ctx, h, decode, rec)
		if err == nil {
			continue
		}
		log.Error("stream record failed; it and the ones after it will be retried",
			"sequenceNumber", rec.Change.SequenceNumber, "eventID", rec.EventID, "err", err)
		for _, r := range ev.Records[i:] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: r.Change.SequenceNumber})
		}
		break
	}
	return resp
}

func handleRecord(ctx context.Context, h EventHandler, decode StreamDecoder, rec events.DynamoDBEventRecord) error {
	evs, err := decode(rec)
	if err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if len(evs) == 0 {
		return nil
	}
	return h.Handle(ctx, evs)
}
