package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
	"github.com/workflowd/workflowd/model"
)

// HandleSQSEvent is the body of a Lambda function fed by an SQS event source
// mapping with ReportBatchItemFailures: it hands each record to h, as
// Consume does for the long-running mode, and reports the records that
// failed so that only they are retried (and, after maxReceiveCount, moved
// to the dead-letter queue). It never fails the whole batch.
func HandleSQSEvent(ctx context.Context, h MessageHandler, ev events.SQSEvent, log *slog.Logger) events.SQSEventResponse {
	if log == nil {
		log = slog.Default()
	}
	var resp events.SQSEventResponse
	for _, rec := range ev.Records {
		n, err := strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
		if err != nil || n < 1 {
			n = 1
		}
		if err := h.Handle(ctx, []byte(rec.Body), n); err != nil {
			var retry *RetryError
			if errors.As(err, &retry) {
				log.Debug("message retried", "message", rec.MessageId, "receiveCount", n, "reason", retry.Reason)
			} else {
				log.Warn("message failed; it will be redelivered", "message", rec.MessageId, "receiveCount", n, "err", err)
			}
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
		}
	}
	return resp
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
