package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/workflowd/workflowd/api"
	"github.com/workflowd/workflowd/bus/snssqs"
	"github.com/workflowd/workflowd/internal/ddbstream"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/table"
	"github.com/workflowd/workflowd/workers"
)

// AWSConfig configures the long-running service on DynamoDB, SNS and SQS
// (the seed's "Workflow Service"). Endpoints, region and credentials come
// from the SDK's own configuration (AWS_REGION, AWS_ENDPOINT_URL_*, …).
type AWSConfig struct {
	// Prefix names every resource: tables <Prefix>-events, <Prefix>-views
	// and <Prefix>-checkpoints, topic <Prefix>-commands, queues
	// <Prefix>-workflows and <Prefix>-executions with their -dlq.
	Prefix string
	// VisibilityTimeout and MaxReceiveCount of the queues Init creates.
	VisibilityTimeout time.Duration
	MaxReceiveCount   int
	// Workers is the number of consuming goroutines per queue (default 16).
	Workers int
	// Steps configures http steps and the cleanup.
	Steps  StepsConfig
	Logger *slog.Logger
}

func (c *AWSConfig) defaults() {
	if c.Prefix == "" {
		c.Prefix = "workflowd"
	}
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

func (c AWSConfig) tables() table.Config {
	return table.Config{EventsTable: c.Prefix + "-events", ViewsTable: c.Prefix + "-views", Retention: c.Steps.Retention}
}

func (c AWSConfig) checkpointsTable() string { return c.Prefix + "-checkpoints" }

// AWS is the service running on AWS services.
type AWS struct {
	cfg       AWSConfig
	log       *slog.Logger
	Store     *table.Store
	Bus       *snssqs.Bus
	API       *api.Server
	db        *dynamodb.Client
	streams   *dynamodbstreams.Client
	streamARN string
	// Cleanup is the cleanup worker Run starts every StepsConfig.CleanupInterval.
	Cleanup    *workers.Cleanup
	worker     *workers.CommandWorker
	projector  *workers.Projector
	dispatcher *workers.Dispatcher
}

type clients struct {
	db      *dynamodb.Client
	streams *dynamodbstreams.Client
	sns     *sns.Client
	sqs     *sqs.Client
}

func newClients(ctx context.Context) (clients, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return clients{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return clients{
		db:      dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true }),
		streams: dynamodbstreams.NewFromConfig(cfg),
		sns:     sns.NewFromConfig(cfg),
		sqs:     sqs.NewFromConfig(cfg),
	}, nil
}

// InitAWS creates (or finds, unchanged) every resource the service needs:
// the tables with their stream, indexes and TTL, the checkpoint table, the
// topic, the queues with their dead-letter queues and the subscriptions.
// It is what `workflowd init` does for local use; on AWS the SAM template
// creates them.
func InitAWS(ctx context.Context, cfg AWSConfig) (snssqs.Config, error) {
	cfg.defaults()
	c, err := newClients(ctx)
	if err != nil {
		return snssqs.Config{}, err
	}
	if err := table.CreateTables(ctx, c.db, cfg.tables()); err != nil {
		return snssqs.Config{}, err
	}
	if err := ddbstream.CreateCheckpointTable(ctx, c.db, cfg.checkpointsTable()); err != nil {
		return snssqs.Config{}, err
	}
	return snssqs.Setup(ctx, c.sns, c.sqs, snssqs.SetupOptions{
		Prefix: cfg.Prefix, VisibilityTimeout: cfg.VisibilityTimeout, MaxReceiveCount: cfg.MaxReceiveCount,
	})
}

// OpenAWS builds the service on AWS services. It runs InitAWS first, which
// changes nothing when the resources exist.
func OpenAWS(ctx context.Context, cfg AWSConfig) (*AWS, error) {
	cfg.defaults()
	busCfg, err := InitAWS(ctx, cfg)
	if err != nil {
		return nil, err
	}
	c, err := newClients(ctx)
	if err != nil {
		return nil, err
	}
	desc, err := c.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(cfg.tables().EventsTable)})
	if err != nil {
		return nil, fmt.Errorf("describe events table: %w", err)
	}
	busCfg.Logger = cfg.Logger
	st := table.New(c.db, cfg.tables())
	b := snssqs.New(c.sns, c.sqs, busCfg)
	a := &AWS{
		cfg: cfg, log: cfg.Logger, Store: st, Bus: b, db: c.db, streams: c.streams,
		streamARN: aws.ToString(desc.Table.LatestStreamArn),
	}
	// The waiter wakes the long polls of commands this process finishes;
	// those another process finishes are seen by a poll a second.
	waiter, changes := api.NewWaiter(), api.NewChanges()
	executions, err := b.Queue(model.QueueExecutions)
	if err != nil {
		return nil, err
	}
	a.worker = &workers.CommandWorker{
		Log: st, Commands: st, Logger: cfg.Logger, OnFinished: waiter.Notify, TrustCache: true,
		HTTP: &workers.HTTPCaller{AllowHosts: cfg.Steps.HTTPAllowHosts},
	}
	a.projector = &workers.Projector{Log: st, Views: st, Logger: cfg.Logger, OnFinished: waiter.Applied, OnExecution: changes.Notify}
	a.dispatcher = &workers.Dispatcher{Publisher: b, Scheduler: executions, Logger: cfg.Logger}
	a.Cleanup = &workers.Cleanup{Due: st, Publisher: b, Logger: cfg.Logger}
	a.API = api.NewServer(api.Config{
		Publisher: b, Views: st, Events: st, Commands: st,
		Ready: []api.Pinger{st}, DeadLetters: b, Waiter: waiter, Changes: changes, Logger: cfg.Logger,
		Retention: cfg.Steps.Retention,
	})
	return a, nil
}

// Handler is the API.
func (a *AWS) Handler() http.Handler { return a.API }

// Run consumes both queues and reads the events table's stream (one reader
// for the projector, one for the dispatcher, each with its checkpoints)
// until ctx is done, then lets in-flight work finish.
func (a *AWS) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, name := range []string{model.QueueWorkflows, model.QueueExecutions} {
		q, err := a.Bus.Queue(name)
		if err != nil {
			return err
		}
		// One poller per queue, long-polling 20 s (SQS's most): receives
		// are billed, empty ones too, and one poller fetching batches of
		// up to ten keeps the handlers busy.
		visibility := a.cfg.VisibilityTimeout
		if visibility <= 0 {
			visibility = snssqs.DefaultVisibilityTimeout
		}
		wg.Go(func() {
			workers.Consume(ctx, q, a.worker, workers.ConsumerOptions{
				Concurrency: a.cfg.Workers, Pollers: 1, Wait: 20 * time.Second, Visibility: visibility, Logger: a.log,
			})
		})
	}
	if every := a.cfg.Steps.cleanupInterval(); every > 0 {
		wg.Go(func() { a.Cleanup.Every(ctx, every) })
	}
	for name, h := range map[string]workers.EventHandler{ConsumerProjector: a.projector, ConsumerDispatcher: a.dispatcher} {
		r := &ddbstream.Reader{
			Client: a.streams, StreamARN: a.streamARN, Logger: a.log.With("consumer", name),
			Checkpoints: &ddbstream.TableCheckpoints{Client: a.db, Table: a.cfg.checkpointsTable(), Consumer: name},
			Handle: func(ctx context.Context, ev events.DynamoDBEvent) events.DynamoDBEventResponse {
				return workers.HandleDynamoDBEvent(ctx, h, StreamEvents, ev, a.log)
			},
		}
		wg.Go(func() {
			if err := r.Run(ctx); err != nil {
				a.log.Error("stream reader stopped", "consumer", name, "err", err)
			}
		})
	}
	wg.Wait()
	return nil
}

// StreamEvents decodes a record of the events table's stream (see
// table.StreamEvents).
var StreamEvents = table.StreamEvents

// Close releases nothing: the SDK clients hold no resources that need it.
func (a *AWS) Close() error { return nil }
