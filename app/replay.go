package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/workflowd/workflowd/internal/ddbstream"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/table"
)

// StreamFailure is what Lambda sends to a DynamoDB event source mapping's
// on-failure destination (the template's StreamFailuresQueue) for a batch
// it gave up on: no records, only where they were in the stream and when
// they arrived.
type StreamFailure struct {
	Timestamp time.Time `json:"timestamp"`
	Batch     struct {
		ShardID                         string    `json:"shardId"`
		StartSequenceNumber             string    `json:"startSequenceNumber"`
		EndSequenceNumber               string    `json:"endSequenceNumber"`
		ApproximateArrivalOfFirstRecord time.Time `json:"approximateArrivalOfFirstRecord"`
		ApproximateArrivalOfLastRecord  time.Time `json:"approximateArrivalOfLastRecord"`
		BatchSize                       int       `json:"batchSize"`
		StreamARN                       string    `json:"streamArn"`
	} `json:"DDBStreamBatchInfo"`
}

// ParseStreamFailure decodes an on-failure destination message and says
// what is missing or wrong in it.
func ParseStreamFailure(body []byte) (StreamFailure, error) {
	var f StreamFailure
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&f); err != nil {
		return f, fmt.Errorf("not an on-failure destination message of a DynamoDB stream: %w", err)
	}
	if dec.More() {
		return f, errors.New("not an on-failure destination message: data after its JSON object")
	}
	b := f.Batch
	var errs []error
	switch {
	case b.ShardID == "" && b.StreamARN == "" && b.StartSequenceNumber == "":
		return f, errors.New("not an on-failure destination message of a DynamoDB stream: no DDBStreamBatchInfo")
	case b.ShardID == "":
		errs = append(errs, errors.New("DDBStreamBatchInfo.shardId is missing"))
	}
	if !strings.HasPrefix(b.StreamARN, "arn:") || !strings.Contains(b.StreamARN, "/stream/") {
		errs = append(errs, fmt.Errorf("DDBStreamBatchInfo.streamArn %q is not a DynamoDB stream ARN", b.StreamARN))
	}
	if !sequenceNumber(b.StartSequenceNumber) || !sequenceNumber(b.EndSequenceNumber) {
		errs = append(errs, fmt.Errorf("DDBStreamBatchInfo sequence numbers %q to %q are not numbers", b.StartSequenceNumber, b.EndSequenceNumber))
	} else if seqBefore(b.EndSequenceNumber, b.StartSequenceNumber) {
		errs = append(errs, fmt.Errorf("DDBStreamBatchInfo ends (%s) before it starts (%s)", b.EndSequenceNumber, b.StartSequenceNumber))
	}
	if b.ApproximateArrivalOfFirstRecord.IsZero() || b.ApproximateArrivalOfLastRecord.Before(b.ApproximateArrivalOfFirstRecord) {
		errs = append(errs, fmt.Errorf("DDBStreamBatchInfo arrivals %v to %v are not a window of time",
			b.ApproximateArrivalOfFirstRecord, b.ApproximateArrivalOfLastRecord))
	}
	return f, errors.Join(errs...)
}

// sequenceNumber reports whether s is a stream sequence number (digits).
func sequenceNumber(s string) bool {
	if s == "" || len(s) > 40 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// seqBefore reports whether sequence number a comes before b (numbers of
// up to 40 digits, compared as numbers).
func seqBefore(a, b string) bool {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// ReplayReport says what a replay did.
type ReplayReport struct {
	// Records is how many records of the range the stream still had and
	// the projector and dispatcher handled again; Trimmed is set when the
	// stream had them no more (older than its 24 hours).
	Records int
	Trimmed bool
	// Repaired is how many aggregates the reconciliation of the records'
	// window found behind their logs and repaired.
	Repaired int
}

// ReplayWindowMargin widens the window of a failed batch's arrivals that a
// replay reconciles: a command is accepted a little before its events
// reach the stream.
const ReplayWindowMargin = time.Minute

// Replay re-handles the records of a stream batch Lambda gave up on (an
// on-failure destination message, ParseStreamFailure): the records the
// stream still has, read from their shard and handed to the projector and
// the dispatcher as the stream function would have; then, whether or not
// the stream still had them, the reconciliation of the window they
// arrived in (widened by ReplayWindowMargin), which repairs from the event
// log every aggregate with a client command of that window that its view
// does not show. Both are idempotent: replaying a batch twice, or one the
// cleanup already repaired, changes nothing.
func (f *Functions) Replay(ctx context.Context, failure StreamFailure) (ReplayReport, error) {
	var rep ReplayReport
	b := failure.Batch
	records, err := readRange(ctx, f.streams, b.StreamARN, b.ShardID, b.StartSequenceNumber, b.EndSequenceNumber)
	var trimmed *streamtypes.TrimmedDataAccessException
	var gone *streamtypes.ResourceNotFoundException
	switch {
	case errors.As(err, &trimmed), errors.As(err, &gone):
		rep.Trimmed = true
		f.svc.log.Warn("replay: the stream no longer has the batch's records; reconciling their window from the event log",
			"shard", b.ShardID, "start", b.StartSequenceNumber, "end", b.EndSequenceNumber, "err", err)
	case err != nil:
		return rep, fmt.Errorf("replay: read the batch's records: %w", err)
	}
	var evs []model.Event
	for _, r := range records {
		if r.Dynamodb == nil {
			continue
		}
		rec, err := ddbstream.EventRecord(r)
		if err != nil {
			return rep, fmt.Errorf("replay: record %s: %w", aws.ToString(r.Dynamodb.SequenceNumber), err)
		}
		e, err := table.StreamEvents(rec)
		if err != nil {
			return rep, fmt.Errorf("replay: record %s: %w", aws.ToString(r.Dynamodb.SequenceNumber), err)
		}
		evs = append(evs, e...)
	}
	rep.Records = len(records)
	if len(evs) > 0 {
		if err := f.svc.Cleanup.Reconciler.Handlers.Handle(ctx, evs); err != nil {
			return rep, fmt.Errorf("replay: handle the batch's %d events: %w", len(evs), err)
		}
	}
	from := b.ApproximateArrivalOfFirstRecord.Add(-ReplayWindowMargin)
	to := b.ApproximateArrivalOfLastRecord.Add(ReplayWindowMargin)
	rep.Repaired, err = f.svc.Cleanup.Reconciler.RunWindow(ctx, from, to)
	return rep, err
}

// readRange returns the records of a shard from start to end (sequence
// numbers, both included), reading it from start until a record past end,
// the shard's end, or a page with nothing new (an open shard's tip).
func readRange(ctx context.Context, c *dynamodbstreams.Client, streamARN, shard, start, end string) ([]streamtypes.Record, error) {
	it, err := c.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(streamARN), ShardId: aws.String(shard),
		ShardIteratorType: streamtypes.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(start),
	})
	if err != nil {
		return nil, err
	}
	var out []streamtypes.Record
	for iter := it.ShardIterator; iter != nil; {
		page, err := c.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			return out, err
		}
		for _, r := range page.Records {
			if r.Dynamodb == nil {
				continue
			}
			seq := aws.ToString(r.Dynamodb.SequenceNumber)
			if seqBefore(end, seq) {
				return out, nil
			}
			out = append(out, r)
		}
		if len(page.Records) == 0 {
			return out, nil
		}
		iter = page.NextShardIterator
	}
	return out, nil
}

// ReplayQueue replays every message of an on-failure destination queue
// (the template's StreamFailuresQueue), deleting each one once it is
// replayed; a message that fails stays (it comes back after its
// visibility timeout). It returns the reports of the messages replayed.
func (f *Functions) ReplayQueue(ctx context.Context, queueURL string) ([]ReplayReport, error) {
	var reports []ReplayReport
	var errs []error
	for {
		out, err := f.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 300,
		})
		if err != nil {
			return reports, errors.Join(append(errs, fmt.Errorf("replay: receive from %s: %w", queueURL, err))...)
		}
		if len(out.Messages) == 0 {
			return reports, errors.Join(errs...)
		}
		for _, m := range out.Messages {
			failure, err := ParseStreamFailure([]byte(aws.ToString(m.Body)))
			if err == nil {
				var rep ReplayReport
				rep, err = f.Replay(ctx, failure)
				if err == nil {
					reports = append(reports, rep)
					_, err = f.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle})
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("message %s: %w", aws.ToString(m.MessageId), err))
			}
		}
		if len(errs) > 0 {
			// The failed ones are invisible for a while: stop rather
			// than receive the rest of the queue past them for ever.
			return reports, errors.Join(errs...)
		}
	}
}
