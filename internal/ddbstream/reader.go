package ddbstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/workflowd/workflowd/internal/backoff"
)

// Handler handles one batch, as a Lambda function fed by the stream does,
// reporting the records that failed (the first failure and all after it).
type Handler func(ctx context.Context, ev events.DynamoDBEvent) events.DynamoDBEventResponse

// Checkpoints remembers, per shard, the sequence number of the last record
// handled, and whether the shard is finished (closed and read to its end).
type Checkpoints interface {
	Load(ctx context.Context, shardID string) (seq string, finished bool, err error)
	Save(ctx context.Context, shardID, seq string, finished bool) error
}

// Reader follows a stream until its context ends.
type Reader struct {
	Client      *dynamodbstreams.Client
	StreamARN   string
	Checkpoints Checkpoints
	Handle      Handler
	Logger      *slog.Logger
	// PollInterval is the wait after an empty read of an open shard
	// (default 250ms); DescribeInterval is how often new shards are looked
	// for (default 10s, and at once when a shard closes).
	PollInterval     time.Duration
	DescribeInterval time.Duration
	// BatchSize is the most records one GetRecords returns (default 1000).
	BatchSize int32
	// Leases, if set, shares the shards among the instances that read the
	// stream as Consumer: this instance reads only the shards whose lease
	// it holds, and keeps their checkpoints in the lease items, saved only
	// by the holder and never backwards. Checkpoints is then only read,
	// for a shard whose lease holds no checkpoint yet (one saved by a
	// reader without leases).
	Leases   *Leases
	Consumer string
}

// Run reads every shard, parents before children, until ctx ends. It
// returns nil when ctx ends and an error only if the stream cannot be
// described at all.
func (r *Reader) Run(ctx context.Context) error {
	r.defaults()
	if r.Leases != nil {
		return r.runLeased(ctx)
	}
	var (
		mu       sync.Mutex
		running  = map[string]bool{}
		finished = map[string]bool{}
		wg       sync.WaitGroup
	)
	closed := make(chan string, 16)
	defer wg.Wait()
	for {
		shards, err := r.describe(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.Logger.Error("describe stream failed", "stream", r.StreamARN, "err", err)
		}
		known := map[string]bool{}
		for _, s := range shards {
			known[aws.ToString(s.ShardId)] = true
		}
		for _, s := range shards {
			id, parent := aws.ToString(s.ShardId), aws.ToString(s.ParentShardId)
			mu.Lock()
			busy := running[id] || finished[id]
			mu.Unlock()
			if busy {
				continue
			}
			_, done, err := r.Checkpoints.Load(ctx, id)
			if err != nil {
				r.Logger.Error("load checkpoint failed", "shard", id, "err", err)
				continue
			}
			if done {
				mu.Lock()
				finished[id] = true
				mu.Unlock()
				continue
			}
			if parent != "" && known[parent] {
				mu.Lock()
				parentDone := finished[parent]
				mu.Unlock()
				if !parentDone {
					continue // children wait for their parent's last record
				}
			}
			mu.Lock()
			running[id] = true
			mu.Unlock()
			wg.Go(func() {
				done := r.readShard(ctx, id, r.Checkpoints)
				mu.Lock()
				delete(running, id)
				if done {
					finished[id] = true
				}
				mu.Unlock()
				select {
				case closed <- id:
				default:
				}
			})
		}
		t := time.NewTimer(r.DescribeInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-closed:
		case <-t.C:
		}
		t.Stop()
	}
}

func (r *Reader) defaults() {
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.PollInterval <= 0 {
		r.PollInterval = 250 * time.Millisecond
	}
	if r.DescribeInterval <= 0 {
		r.DescribeInterval = 10 * time.Second
	}
	if r.BatchSize <= 0 {
		r.BatchSize = 1000
	}
}

func (r *Reader) describe(ctx context.Context) ([]types.Shard, error) {
	var shards []types.Shard
	var start *string
	for {
		out, err := r.Client.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(r.StreamARN), ExclusiveStartShardId: start})
		if err != nil {
			return shards, err
		}
		shards = append(shards, out.StreamDescription.Shards...)
		start = out.StreamDescription.LastEvaluatedShardId
		if start == nil {
			return shards, nil
		}
	}
}

// readShard reads one shard from its checkpoint to its end (or ctx's end)
// and reports whether it reached the end of a closed shard.
func (r *Reader) readShard(ctx context.Context, shardID string, cps Checkpoints) bool {
	log := r.Logger.With("shard", shardID)
	seq, _, err := cps.Load(ctx, shardID)
	if err != nil {
		log.Error("load checkpoint failed", "err", err)
		return false
	}
	iter, err := r.iterator(ctx, shardID, seq, types.ShardIteratorTypeAfterSequenceNumber)
	failures := 0
	for ctx.Err() == nil {
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			failures++
			log.Error("shard iterator failed", "err", err, "failures", failures)
			backoff.Sleep(ctx, retryDelay(failures))
			iter, err = r.iterator(ctx, shardID, seq, types.ShardIteratorTypeAfterSequenceNumber)
			continue
		}
		out, gerr := r.Client.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(r.BatchSize)})
		var expired *types.ExpiredIteratorException
		var trimmed *types.TrimmedDataAccessException
		switch {
		case errors.As(gerr, &expired):
			iter, err = r.iterator(ctx, shardID, seq, types.ShardIteratorTypeAfterSequenceNumber)
			continue
		case errors.As(gerr, &trimmed) && seq == "":
			// DynamoDB Local answers this for a shard with no record yet:
			// nothing was read, nothing is lost; look again shortly.
			backoff.Sleep(ctx, r.PollInterval)
			iter, err = r.iterator(ctx, shardID, seq, types.ShardIteratorTypeAfterSequenceNumber)
			continue
		case gerr != nil:
			err = fmt.Errorf("get records: %w", gerr)
			continue
		}
		if len(out.Records) > 0 {
			last, ok := r.handle(ctx, log, out.Records)
			if last != "" {
				seq = last
				if err := cps.Save(ctx, shardID, seq, false); errors.Is(err, ErrLeaseLost) {
					log.Info("shard lease lost: its new holder reads on", "err", err)
					return false
				} else if err != nil {
					log.Error("save checkpoint failed", "seq", seq, "err", err)
				}
			}
			if !ok {
				// Read again right after the last record handled.
				failures++
				backoff.Sleep(ctx, retryDelay(failures))
				iter, err = r.iterator(ctx, shardID, seq, types.ShardIteratorTypeAfterSequenceNumber)
				continue
			}
			failures = 0
		}
		if out.NextShardIterator == nil {
			if err := cps.Save(ctx, shardID, seq, true); errors.Is(err, ErrLeaseLost) {
				log.Info("shard lease lost: its new holder reads on", "err", err)
				return false
			} else if err != nil {
				log.Error("save checkpoint failed", "seq", seq, "err", err)
			}
			log.Info("shard finished")
			return true
		}
		iter = out.NextShardIterator
		if len(out.Records) == 0 {
			backoff.Sleep(ctx, r.PollInterval)
		}
	}
	return false
}

// handle hands records to the handler and returns the sequence number of
// the last record before the first failure ("" if none) and whether all
// succeeded.
func (r *Reader) handle(ctx context.Context, log *slog.Logger, records []types.Record) (string, bool) {
	ev := events.DynamoDBEvent{Records: make([]events.DynamoDBEventRecord, 0, len(records))}
	for _, rec := range records {
		er, err := EventRecord(rec)
		if err != nil {
			log.Error("stream record not convertible", "err", err)
			break
		}
		ev.Records = append(ev.Records, er)
	}
	resp := r.Handle(ctx, ev)
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	last := ""
	for _, rec := range ev.Records {
		if failed[rec.Change.SequenceNumber] {
			return last, false
		}
		last = rec.Change.SequenceNumber
	}
	return last, len(ev.Records) == len(records)
}

func (r *Reader) iterator(ctx context.Context, shardID, seq string, after types.ShardIteratorType) (*string, error) {
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(r.StreamARN), ShardId: aws.String(shardID)}
	if seq == "" {
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	} else {
		in.ShardIteratorType = after
		in.SequenceNumber = aws.String(seq)
	}
	out, err := r.Client.GetShardIterator(ctx, in)
	var trimmed *types.TrimmedDataAccessException
	if errors.As(err, &trimmed) {
		r.Logger.Error("checkpoint is older than the stream's retention; records were lost", "shard", shardID, "seq", seq)
		in.ShardIteratorType, in.SequenceNumber = types.ShardIteratorTypeTrimHorizon, nil
		out, err = r.Client.GetShardIterator(ctx, in)
	}
	if err != nil {
		return nil, err
	}
	return out.ShardIterator, nil
}

// retryDelay is the wait after the n-th failure in a row of a shard:
// 200ms doubling up to 10s.
func retryDelay(n int) time.Duration {
	return backoff.Exponential(n, 200*time.Millisecond, 10*time.Second)
}
