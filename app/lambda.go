package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/bus/snssqs"
	"github.com/workflowd/workflowd/secrets"
	"github.com/workflowd/workflowd/store"
	"github.com/workflowd/workflowd/table"
	"github.com/workflowd/workflowd/workers"
)

// FunctionsConfig is what the SAM template gives every function in its
// environment (see template.yaml and docs/deploy.md).
type FunctionsConfig struct {
	Tables           table.Config      // EVENTS_TABLE, VIEWS_TABLE, RETENTION
	TopicARN         string            // TOPIC_ARN
	Queues           map[string]string // WORKFLOWS_QUEUE_URL, EXECUTIONS_QUEUE_URL
	DeadLetterQueues map[string]string // WORKFLOWS_DLQ_URL, EXECUTIONS_DLQ_URL
	MaxReceiveCount  int               // MAX_RECEIVE_COUNT (default 5)
	HTTPAllowHosts   []string          // WORKFLOW_HTTP_ALLOW_HOSTS
	// MaxHTTPTimeout is the worker function's timeout (WORKER_TIMEOUT, in
	// seconds) less LambdaTimeoutMargin: the longest an http attempt may
	// take (0: model.MaxHTTPTimeout).
	MaxHTTPTimeout time.Duration
	// CleanupInterval is the rate of the schedule that invokes the cleanup
	// function (CLEANUP_INTERVAL, default a minute): the reconciliation
	// checks a command one interval after it was accepted.
	CleanupInterval time.Duration
	Logger          *slog.Logger
	// SDK is the AWS SDK configuration (nil: loaded from the environment:
	// the Lambda role's credentials, AWS_REGION).
	SDK *aws.Config
}

// LambdaTimeoutMargin is what an http attempt leaves of the worker
// function's timeout: time to append its outcome.
const LambdaTimeoutMargin = 10 * time.Second

// FunctionsConfigFromEnv reads a FunctionsConfig from the environment (getenv
// is os.Getenv), and says which variables are missing or wrong.
func FunctionsConfigFromEnv(getenv func(string) string) (FunctionsConfig, error) {
	var errs []error
	need := func(name string) string {
		v := getenv(name)
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is not set", name))
		}
		return v
	}
	cfg := FunctionsConfig{
		Tables:   table.Config{EventsTable: need("EVENTS_TABLE"), ViewsTable: need("VIEWS_TABLE")},
		TopicARN: need("TOPIC_ARN"),
		Queues: map[string]string{
			bus.QueueWorkflows: need("WORKFLOWS_QUEUE_URL"), bus.QueueExecutions: need("EXECUTIONS_QUEUE_URL"),
		},
		DeadLetterQueues: map[string]string{
			bus.QueueWorkflows: getenv("WORKFLOWS_DLQ_URL"), bus.QueueExecutions: getenv("EXECUTIONS_DLQ_URL"),
		},
		MaxReceiveCount: snssqs.DefaultMaxReceiveCount,
	}
	if v := getenv("MAX_RECEIVE_COUNT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("MAX_RECEIVE_COUNT %q is not a positive whole number", v))
		}
		cfg.MaxReceiveCount = n
	}
	if v := getenv("INDEX_SHARDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > table.MaxIndexShards {
			errs = append(errs, fmt.Errorf("INDEX_SHARDS %q is not a whole number from 1 to %d", v, table.MaxIndexShards))
		}
		cfg.Tables.IndexShards = n
	}
	if v := getenv("RETENTION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("RETENTION %q is not a duration of 0 or more", v))
		}
		cfg.Tables.Retention = d
	}
	if v := getenv("CLEANUP_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("CLEANUP_INTERVAL %q is not a positive duration", v))
		}
		cfg.CleanupInterval = d
	}
	cfg.Tables.CommandRetention = store.DefaultCommandRetention
	if v := getenv("COMMAND_RETENTION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("COMMAND_RETENTION %q is not a duration of 0 or more", v))
		}
		cfg.Tables.CommandRetention = d
	}
	if v := getenv("WORKER_TIMEOUT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || time.Duration(n)*time.Second <= LambdaTimeoutMargin {
			errs = append(errs, fmt.Errorf("WORKER_TIMEOUT %q is not a whole number of seconds over %s", v, LambdaTimeoutMargin))
		}
		cfg.MaxHTTPTimeout = time.Duration(n)*time.Second - LambdaTimeoutMargin
	}
	hosts, err := workers.ParseAllowHosts(getenv("WORKFLOW_HTTP_ALLOW_HOSTS"))
	if err != nil {
		errs = append(errs, fmt.Errorf("WORKFLOW_HTTP_ALLOW_HOSTS: %w", err))
	}
	cfg.HTTPAllowHosts = hosts
	return cfg, errors.Join(errs...)
}

// Functions are the Lambda functions of the SAM deployment: thin handlers
// that decode the AWS event and call the service New assembles, as the
// long-running runtimes do. Build one per container (its SDK clients and
// caches live as long as the container), outside the handler. The mains in
// cmd/*-function call FunctionsOrExit.
type Functions struct {
	svc     *Service
	cfg     FunctionsConfig
	bus     *snssqs.Bus
	streams *dynamodbstreams.Client // for Replay
	sqs     *sqs.Client             // for ReplayQueue
}

// NewFunctions creates the SDK clients (from the SDK's configuration: the
// Lambda role's credentials, AWS_REGION) and the service.
func NewFunctions(ctx context.Context, cfg FunctionsConfig) (*Functions, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c, err := newClients(ctx, cfg.SDK)
	if err != nil {
		return nil, err
	}
	st := table.New(c.db, cfg.Tables)
	b := snssqs.New(c.sns, c.sqs, snssqs.Config{
		TopicARN: cfg.TopicARN, Queues: cfg.Queues, DeadLetterQueues: cfg.DeadLetterQueues,
		MaxReceiveCount: cfg.MaxReceiveCount, Logger: cfg.Logger,
	})
	deps, err := awsDeps(st, b, cfg.Logger)
	if err != nil {
		return nil, err
	}
	// No TrustCache: consecutive commands of an aggregate land on
	// different containers (docs/architecture-log.md, entry 18). Not in
	// process: the API is a function of its own.
	svc := New(deps, Options{MaxDelay: snssqs.MaxDelay, Steps: StepsConfig{HTTPAllowHosts: cfg.HTTPAllowHosts, Retention: cfg.Tables.Retention,
		CommandRetention: cfg.Tables.CommandRetention, MaxHTTPTimeout: cfg.MaxHTTPTimeout, CleanupInterval: cfg.CleanupInterval,
		Secrets: secrets.Env{}}})
	return &Functions{svc: svc, cfg: cfg, bus: b, streams: c.streams, sqs: c.sqs}, nil
}

// API is the REST API (the handler behind API Gateway).
func (f *Functions) API() http.Handler { return f.svc.API }

// Worker handles a batch of command messages from either queue and reports
// the ones that failed (ReportBatchItemFailures): they are retried, and
// after maxReceiveCount go to the queue's dead-letter queue.
func (f *Functions) Worker(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	return workers.HandleSQSEvent(ctx, f.svc.Worker, ev, f.svc.log, f.retry), nil
}

// retry makes a record the worker asked to see again soon visible after
// that delay (ChangeMessageVisibility on its queue, named by the record's
// eventSourceARN).
func (f *Functions) retry(ctx context.Context, rec events.SQSMessage, after time.Duration) error {
	name := rec.EventSourceARN[strings.LastIndexByte(rec.EventSourceARN, ':')+1:]
	for queue, url := range f.cfg.Queues {
		if url[strings.LastIndexByte(url, '/')+1:] == name {
			q, err := f.bus.Queue(queue)
			if err != nil {
				return err
			}
			return q.ChangeVisibility(ctx, rec.ReceiptHandle, after)
		}
	}
	return fmt.Errorf("no queue of this deployment is %s", rec.EventSourceARN)
}

// Stream handles a batch of the events table's stream: the projector, then
// the dispatcher, for each record; at the first record either fails on, it
// reports that record and the ones after it.
func (f *Functions) Stream(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	return workers.HandleDynamoDBEvent(ctx, workers.EventHandlers{f.svc.Projector, f.svc.Dispatcher}, table.StreamEvents, ev, f.svc.log), nil
}

// Cleanup is one run of the cleanup worker (the EventBridge schedule's
// target). An error fails the invocation, and the next run starts over.
func (f *Functions) Cleanup(ctx context.Context, ev events.CloudWatchEvent) error {
	n, err := f.svc.Cleanup.Run(ctx)
	f.svc.log.Info("cleanup run", "published", n, "scheduled", ev.Time, "err", err)
	return err
}

// FunctionsOrExit is what each function's main calls first: the Functions
// from the environment, built once per container. A configuration error
// ends the process (Lambda reports it as an init error). The main then
// hands one handler to lambda.Start, so that the package linking the
// Lambda runtime is the mains', not workflowd's.
func FunctionsOrExit(name string) *Functions {
	f, err := FunctionsFromEnv(context.Background(), os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
	return f
}

// FunctionsFromEnv is what each function's main calls once per container:
// the configuration from the environment, a JSON logger on stderr (which
// Lambda sends to CloudWatch Logs) at LOG_LEVEL (default info), and the
// Functions.
func FunctionsFromEnv(ctx context.Context, getenv func(string) string) (*Functions, error) {
	cfg, err := FunctionsConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	var level slog.Level
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := level.UnmarshalText([]byte(v)); err != nil {
			return nil, fmt.Errorf("LOG_LEVEL: %w", err)
		}
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return NewFunctions(ctx, cfg)
}
