package app_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/google/uuid"
	"github.com/workflowd/workflowd/app"
	"github.com/workflowd/workflowd/internal/awstest"
	"github.com/workflowd/workflowd/internal/ddbstream"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/table"
	"github.com/workflowd/workflowd/workers"
)

var (
	streamLatency    = flag.Duration("stream-latency", 5*time.Millisecond, "BenchmarkStreamShard: latency injected into every AWS call")
	streamExecutions = flag.Int("stream-executions", 1000, "BenchmarkStreamShard: executions whose records (two each) fill the stream")
)

// BenchmarkStreamShard measures how many records a second one shard of the
// events table's stream carries through the projector and the dispatcher
// when every DynamoDB, DynamoDB Streams, SNS and SQS call takes
// -stream-latency more (an AWS region's round trip, which the local stack
// on loopback lacks):
//
//   - through the Lambda handler (Functions.Stream) in batches of 100, one
//     batch at a time: one shard with ParallelizationFactor 1;
//   - through the long-running runtime's stream readers (ddbstream, one for
//     the projector and one for the dispatcher, under leases, as AWS.Run
//     starts them).
//
// The stream holds the records of -stream-executions executions of an http
// step: the append that creates and begins it (ExecutionCreated,
// ExecutionStarted, StepStarted), then its step's outcome (StepCompleted,
// ExecutionSucceeded), so the projector writes two views (the second
// moves its index entries); the dispatcher publishes nothing for them (the
// worker that starts an http step makes its attempt: architecture log,
// entry 31), so what it costs is its reads of the batches.
func BenchmarkStreamShard(b *testing.B) {
	ctx := context.Background()
	base := awstest.Config(b, "dynamodb")
	awstest.Config(b, "sqs")
	slow := awstest.WithLatency(base, *streamLatency)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	prefix := "shard" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	busCfg, err := app.InitAWS(ctx, app.AWSConfig{Prefix: prefix, SDK: &base})
	if err != nil {
		b.Fatal(err)
	}
	tables := table.Config{EventsTable: prefix + "-events", ViewsTable: prefix + "-views"}
	db := dynamodb.NewFromConfig(base)
	n := seedStream(b, table.New(db, tables), *streamExecutions)
	desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tables.EventsTable)})
	if err != nil {
		b.Fatal(err)
	}
	streamARN := aws.ToString(desc.Table.LatestStreamArn)
	records := readStream(b, dynamodbstreams.NewFromConfig(base), streamARN, n)

	// The Lambda handler, on the deployment's own views table and topic.
	f, err := app.NewFunctions(ctx, app.FunctionsConfig{
		Tables: tables, TopicARN: busCfg.TopicARN, Queues: busCfg.Queues, DeadLetterQueues: busCfg.DeadLetterQueues,
		MaxReceiveCount: 5, Logger: log, SDK: &slow,
	})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 100
	start := time.Now()
	for i := 0; i < len(records); i += batch {
		ev := events.DynamoDBEvent{Records: records[i:min(i+batch, len(records))]}
		resp, err := f.Stream(ctx, ev)
		if err != nil || len(resp.BatchItemFailures) > 0 {
			b.Fatalf("batch at %d: %v, failures %v", i, err, resp.BatchItemFailures)
		}
	}
	lambdaRate := float64(n) / time.Since(start).Seconds()

	// The stream readers, writing the views and the topic of a second
	// deployment (its views table starts empty, like the first's did).
	if _, err := app.InitAWS(ctx, app.AWSConfig{Prefix: prefix + "b", SDK: &base}); err != nil {
		b.Fatal(err)
	}
	second, err := app.OpenAWS(ctx, app.AWSConfig{Prefix: prefix + "b", SDK: &slow, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	readCtx, stop := context.WithCancel(ctx)
	var readers sync.WaitGroup
	var handled [2]atomic.Int64
	start = time.Now()
	slowDB := dynamodb.NewFromConfig(slow)
	leases := &ddbstream.Leases{Client: slowDB, Table: prefix + "b-checkpoints", Instance: "bench", Logger: log}
	for i, h := range []workers.EventHandler{second.Projector, second.Dispatcher} {
		consumer := []string{app.ConsumerProjector, app.ConsumerDispatcher}[i]
		r := &ddbstream.Reader{
			Client: dynamodbstreams.NewFromConfig(slow), StreamARN: streamARN, Logger: log,
			Leases: leases, Consumer: consumer,
			Checkpoints: &ddbstream.TableCheckpoints{Client: slowDB, Table: prefix + "b-checkpoints", Consumer: consumer},
			Handle: func(ctx context.Context, ev events.DynamoDBEvent) events.DynamoDBEventResponse {
				resp := workers.HandleDynamoDBEvent(ctx, h, table.StreamEvents, ev, log)
				handled[i].Add(int64(len(ev.Records) - len(resp.BatchItemFailures)))
				return resp
			},
		}
		readers.Go(func() { r.Run(readCtx) })
	}
	for handled[0].Load() < int64(n) || handled[1].Load() < int64(n) {
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("stream readers: %d and %d of %d records after 10 minutes", handled[0].Load(), handled[1].Load(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	readerRate := float64(n) / time.Since(start).Seconds()
	stop()
	readers.Wait()

	fmt.Printf("stream shard (%d records, %v a call): Lambda handler %.0f records/s (batches of %d, one at a time); ddbstream %.0f records/s (projector and dispatcher readers)\n",
		n, *streamLatency, lambdaRate, batch, readerRate)
	b.ReportMetric(lambdaRate, "records/s-lambda")
	b.ReportMetric(readerRate, "records/s-ddbstream")
}

// seedStream appends the records of n executions of a one-step http
// workflow, several at once, and returns how many appends it made.
func seedStream(b *testing.B, st *table.Store, n int) int {
	b.Helper()
	now := time.Now().UTC()
	wf := model.Workflow{WorkflowUUID: uuid.New(), Name: "shard", Version: 1, Seq: 1,
		Steps: []model.StepDefinition{{Name: "charge", Type: model.StepHTTP, URL: "http://127.0.0.1:9/charge"}}}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	limit := make(chan struct{}, 16)
	for range n {
		limit <- struct{}{}
		wg.Go(func() {
			defer func() { <-limit }()
			id := uuid.New()
			start := model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: id, WorkflowUUID: wf.WorkflowUUID}, now)
			created, err := model.DecideExecution(model.Execution{}, start, &wf, now)
			if err != nil {
				errs <- err
				return
			}
			x, err := model.FoldExecution(model.Execution{}, created)
			if err != nil {
				errs <- err
				return
			}
			ended, err := model.DecideStepOutcome(x, model.RunStepCommand(id, 0, 0, 1, now), model.StepOutcome{Output: json.RawMessage(`{"ok":true}`), Claim: x.Version}, now)
			if err == nil {
				err = st.Append(context.Background(), created)
			}
			if err == nil {
				err = st.Append(context.Background(), ended)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return 2 * n
}

// readStream reads the stream from its start until it has n records, and
// returns them as Lambda's event source mapping would hand them over.
func readStream(b *testing.B, c *dynamodbstreams.Client, streamARN string, n int) []events.DynamoDBEventRecord {
	b.Helper()
	ctx := context.Background()
	var out []events.DynamoDBEventRecord
	deadline := time.Now().Add(2 * time.Minute)
	for len(out) < n {
		if time.Now().After(deadline) {
			b.Fatalf("read %d of %d stream records in 2 minutes", len(out), n)
		}
		out = out[:0]
		desc, err := c.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(streamARN)})
		if err != nil {
			b.Fatal(err)
		}
		for _, shard := range desc.StreamDescription.Shards {
			it, err := c.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
				StreamArn: aws.String(streamARN), ShardId: shard.ShardId, ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon,
			})
			if err != nil {
				b.Fatal(err)
			}
			iter := it.ShardIterator
			for iter != nil {
				got, err := c.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range got.Records {
					er, err := ddbstream.EventRecord(r)
					if err != nil {
						b.Fatal(err)
					}
					out = append(out, er)
				}
				if len(got.Records) == 0 {
					break // the open shard's end, for now
				}
				iter = got.NextShardIterator
			}
		}
	}
	if len(out) != n {
		b.Fatalf("the stream holds %d records, want %d", len(out), n)
	}
	return out
}
