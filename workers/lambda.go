package workers

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/workflowd/workflowd/internal/parallel"
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
	err = handleMessage(ctx, h, []byte(rec.Body), n)
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
// table's stream (and of the long-running stream reader). It decodes the
// records, groups them by aggregate, and hands each aggregate's events to h
// in stream order, the aggregates of a batch at once (at most streamLimit
// at a time): one slow or failing aggregate holds up only itself.
//
// It reports, for each aggregate that failed, its first record that failed
// (the stream checkpoints before the lowest reported record and retries from
// there, so records handled after it are delivered again, harmlessly: the
// handlers are idempotent). A record that cannot be decoded names no
// aggregate: it and every record after it are reported, and only the records
// before it are handled.
func HandleDynamoDBEvent(ctx context.Context, h EventHandler, decode StreamDecoder, ev events.DynamoDBEvent, log *slog.Logger) events.DynamoDBEventResponse {
	if log == nil {
		log = slog.Default()
	}
	failed := make([]bool, len(ev.Records))
	groups, end := groupRecords(ev.Records, decode, log)
	for i := end; i < len(ev.Records); i++ {
		failed[i] = true
	}
	parallel.Each(len(groups), streamLimit, func(g int) error {
		if i, err := handleAggregate(ctx, h, groups[g]); err != nil {
			rec := ev.Records[i]
			log.Error("stream record failed; it and the later ones of its aggregate will be retried",
				"aggregate", groups[g][0].events[0].AggregateID, "sequenceNumber", rec.Change.SequenceNumber, "eventID", rec.EventID, "err", err)
			failed[i] = true
		}
		return nil
	})
	var resp events.DynamoDBEventResponse
	for i, rec := range ev.Records {
		if failed[i] {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: rec.Change.SequenceNumber})
		}
	}
	return resp
}

// streamRecord is a decoded record of a stream batch: its index in the
// batch and the events it carries.
type streamRecord struct {
	index  int
	events []model.Event
}

// groupRecords decodes records into per-aggregate runs, in stream order
// within each and in order of first appearance between them, leaving out
// records that carry no events (a TTL removal). It stops at the first
// record that cannot be decoded and returns its index as end (else
// len(records)).
func groupRecords(records []events.DynamoDBEventRecord, decode StreamDecoder, log *slog.Logger) (groups [][]streamRecord, end int) {
	index := map[string]int{}
	for i, rec := range records {
		evs, err := decode(rec)
		if err != nil {
			log.Error("stream record cannot be decoded; it and the ones after it will be retried",
				"sequenceNumber", rec.Change.SequenceNumber, "eventID", rec.EventID, "err", err)
			return groups, i
		}
		if len(evs) == 0 {
			continue
		}
		g, ok := index[evs[0].AggregateID]
		if !ok {
			g = len(groups)
			index[evs[0].AggregateID] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], streamRecord{index: i, events: evs})
	}
	return groups, len(records)
}

// handleAggregate hands the events of one aggregate's records to h at once
// (the projector then writes its view once). Should that fail, it hands them
// over again record by record, in order (the first ones again, harmlessly),
// to find the first record that fails, and returns its index and error.
func handleAggregate(ctx context.Context, h EventHandler, recs []streamRecord) (int, error) {
	var all []model.Event
	for _, r := range recs {
		all = append(all, r.events...)
	}
	err := handleEvents(ctx, h, all)
	if err == nil || len(recs) == 1 {
		return recs[0].index, err
	}
	for _, r := range recs {
		if err := handleEvents(ctx, h, r.events); err != nil {
			return r.index, err
		}
	}
	// Each record alone succeeded where all together did not (a transient
	// fault): every record is handled now.
	return 0, nil
}
