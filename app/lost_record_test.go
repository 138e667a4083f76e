package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/app"
	"github.com/workflowd/workflowd/internal/apitest"
	"github.com/workflowd/workflowd/internal/awstest"
	"github.com/workflowd/workflowd/internal/ddbstream"
	"github.com/workflowd/workflowd/table"
)

// recordDropper loses, for every reader of the stream, the first record
// of an execution's first append (the one that creates it): what a
// stream batch Lambda gave up on, or a reader's trimmed checkpoint, does.
type recordDropper struct {
	mu      sync.Mutex
	victim  string // the stream sequence number of the lost record
	dropped atomic.Int64
}

// keep reports whether rec gets through.
func (d *recordDropper) keep(seq, aggregateID, itemSeq string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.victim == "" && strings.HasPrefix(aggregateID, "execution:") && itemSeq == "1" {
		d.victim = seq
	}
	if seq == d.victim {
		d.dropped.Add(1)
		return false
	}
	return true
}

// filter keeps the records of a GetRecords answer that get through.
func (d *recordDropper) filter(records []streamtypes.Record) []streamtypes.Record {
	var out []streamtypes.Record
	for _, r := range records {
		var agg, seq string
		if r.Dynamodb != nil {
			if v, ok := r.Dynamodb.NewImage["aggregateId"].(*streamtypes.AttributeValueMemberS); ok {
				agg = v.Value
			}
			if v, ok := r.Dynamodb.NewImage["seq"].(*streamtypes.AttributeValueMemberN); ok {
				seq = v.Value
			}
		}
		if d.keep(aws.ToString(r.Dynamodb.SequenceNumber), agg, seq) {
			out = append(out, r)
		}
	}
	return out
}

// sdk returns cfg whose DynamoDB Streams GetRecords answers lose the record.
func (d *recordDropper) sdk(cfg aws.Config) aws.Config {
	cfg.APIOptions = append(append([]func(*middleware.Stack) error(nil), cfg.APIOptions...), func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("dropStreamRecord",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if page, ok := out.Result.(*dynamodbstreams.GetRecordsOutput); ok && err == nil {
					page.Records = d.filter(page.Records)
				}
				return out, md, err
			}), middleware.After)
	})
	return cfg
}

// lostRecordFlow starts an execution of a one-wait-step workflow whose
// creating stream record is lost, checks that nothing shows it, then runs
// the cleanup (run) once a reconciliation's MinAge (minAge) after the
// start and checks that the execution completes without another run and
// that its start command reads APPLIED.
func lostRecordFlow(t *testing.T, c *apitest.Client, d *recordDropper, minAge time.Duration, run func()) {
	t.Helper()
	wf := c.MustApply(t, "POST", "/v1/workflows", `{"name":"wf","steps":[{"name":"pause","type":"wait","seconds":1}]}`).String("workflowUUID")
	start := c.Expect(t, http.StatusAccepted, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf))
	started := time.Now()
	id, cmd := start.String("workflowExecutionUUID"), start.String("commandUUID")
	deadline := time.Now().Add(30 * time.Second)
	for d.dropped.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the execution's first record never came through the stream")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Until(started.Add(minAge)))
	if st := c.Do(t, "GET", "/v1/commands/"+cmd, "").String("status"); st != "ACCEPTED" {
		t.Fatalf("start command with its record lost: %s, want ACCEPTED (nothing showed it yet)", st)
	}
	if r := c.Do(t, "GET", "/v1/workflow-executions/"+id, ""); r.Status != http.StatusNotFound {
		t.Fatalf("execution with its record lost: %d, want 404 before the reconciliation", r.Status)
	}
	run() // one cleanup run, a cleanup interval (MinAge) after the start
	x := c.WaitStatus(t, id, 30*time.Second, "SUCCEEDED")
	if len(x.Steps) != 1 || x.Steps[0].Status != "SUCCEEDED" {
		t.Fatalf("repaired execution: %+v", x)
	}
	if st := c.Do(t, "GET", "/v1/commands/"+cmd, "").String("status"); st != "APPLIED" {
		t.Fatalf("start command after the repair: %s, want APPLIED", st)
	}
	t.Logf("the execution whose creating record was lost SUCCEEDED %v after its start, after one cleanup run %v after it", time.Since(started).Round(time.Millisecond), minAge)
}

// A stream record lost by both of workflowd's stream readers (ddbstream):
// the cleanup's reconciliation, one cleanup interval after the start,
// projects and dispatches the execution, which completes.
func TestAWSLostStreamRecordIsReconciled(t *testing.T) {
	awstestConfig(t)
	d := &recordDropper{}
	sdk := d.sdk(awstest.Config(t, "dynamodb"))
	const interval = 3 * time.Second // the cleanup interval this test plays
	c, a := startAWS(t, app.AWSConfig{
		Prefix: "t" + strings.ReplaceAll(uuid.NewString()[:8], "-", ""), VisibilityTimeout: 2 * time.Second,
		MaxReceiveCount: 5, Workers: 4, Steps: app.StepsConfig{CleanupInterval: -1}, Logger: apitest.Logger(t), SDK: &sdk,
	}, func(a *app.AWS) { a.Cleanup.Reconciler.MinAge, a.Cleanup.Reconciler.Window = interval, 2*interval })
	lostRecordFlow(t, c, d, interval, func() {
		if _, err := a.Cleanup.Run(context.Background()); err != nil {
			t.Fatalf("cleanup: %v", err)
		}
	})
	if n := d.dropped.Load(); n < 2 {
		t.Fatalf("the record was dropped %d times, want at least 2 (the projector's and the dispatcher's readers)", n)
	}
}

// The same on the Lambda functions: the stream function never gets the
// record (the event source mapping gave up on it), and the cleanup
// function's next run repairs the execution.
func TestLambdaLostStreamRecordIsReconciled(t *testing.T) {
	const interval = 3 * time.Second
	r := startLossyLambdas(t, interval)
	lostRecordFlow(t, r.client, r.dropper, interval, func() {
		if err := r.f.Cleanup(context.Background(), events.CloudWatchEvent{Time: time.Now()}); err != nil {
			t.Fatalf("cleanup function: %v", err)
		}
	})
}

// lossyLambdas are the Lambda functions in process on the local stack, with
// event source mappings played by the test: each queue into the worker
// function, the stream, less the record dropper drops, into the stream
// function.
type lossyLambdas struct {
	f         *app.Functions
	client    *apitest.Client
	dropper   *recordDropper
	streamARN string
	streams   *dynamodbstreams.Client
}

func startLossyLambdas(t *testing.T, cleanupInterval time.Duration) *lossyLambdas {
	t.Helper()
	awstestConfig(t)
	base := awstest.Config(t, "dynamodb")
	prefix := "t" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	busCfg, err := app.InitAWS(context.Background(), app.AWSConfig{Prefix: prefix, SDK: &base})
	if err != nil {
		t.Fatalf("init AWS resources: %v", err)
	}
	tables := table.Config{EventsTable: prefix + "-events", ViewsTable: prefix + "-views"}
	f, err := app.NewFunctions(context.Background(), app.FunctionsConfig{
		Tables: tables, TopicARN: busCfg.TopicARN, Queues: busCfg.Queues, DeadLetterQueues: busCfg.DeadLetterQueues,
		MaxReceiveCount: 5, Logger: apitest.Logger(t), SDK: &base, CleanupInterval: cleanupInterval,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	sqsClient := sqs.NewFromConfig(awstest.Config(t, "sqs"))
	for _, q := range busCfg.Queues {
		wg.Go(func() {
			pollSQS(ctx, sqsClient, q, func(ev events.SQSEvent) events.SQSEventResponse {
				resp, _ := f.Worker(ctx, ev)
				return resp
			})
		})
	}
	db := dynamodb.NewFromConfig(base)
	desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tables.EventsTable)})
	if err != nil {
		t.Fatal(err)
	}
	r := &lossyLambdas{f: f, dropper: &recordDropper{}, streamARN: aws.ToString(desc.Table.LatestStreamArn), streams: dynamodbstreams.NewFromConfig(base)}
	reader := &ddbstream.Reader{
		Client: r.streams, StreamARN: r.streamARN,
		Checkpoints:  &ddbstream.TableCheckpoints{Client: db, Table: prefix + "-checkpoints", Consumer: "stream-function"},
		PollInterval: 50 * time.Millisecond, BatchSize: 100,
		Handle: func(ctx context.Context, ev events.DynamoDBEvent) events.DynamoDBEventResponse {
			var kept []events.DynamoDBEventRecord
			for _, rec := range ev.Records {
				if r.dropper.keep(rec.Change.SequenceNumber, rec.Change.NewImage["aggregateId"].String(), rec.Change.NewImage["seq"].Number()) {
					kept = append(kept, rec)
				}
			}
			resp, _ := f.Stream(ctx, events.DynamoDBEvent{Records: kept})
			return resp
		},
	}
	wg.Go(func() { reader.Run(ctx) })
	srv := httptest.NewServer(f.API())
	t.Cleanup(srv.Close)
	r.client = apitest.New(srv.URL)
	return r
}
