package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/auth"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/bus/snssqs"
	"github.com/workflowd/workflowd/internal/ddbstream"
	"github.com/workflowd/workflowd/metrics"
	"github.com/workflowd/workflowd/table"
	"github.com/workflowd/workflowd/workers"
)

// AWSConfig configures the long-running service on DynamoDB, SNS and SQS
// (workflowd -backend aws). Endpoints, region and credentials come from
// the SDK's own configuration (AWS_REGION, AWS_ENDPOINT_URL_*, …).
type AWSConfig struct {
	// Prefix names every resource: tables <Prefix>-events, <Prefix>-views
	// and <Prefix>-checkpoints, topic <Prefix>-commands, queues
	// <Prefix>-workflows and <Prefix>-executions with their -dlq.
	Prefix string
	// VisibilityTimeout and MaxReceiveCount of the queues Init creates.
	VisibilityTimeout time.Duration
	MaxReceiveCount   int
	// Workers is the number of consuming goroutines per queue (default 64:
	// an execution's consecutive http steps hold one for all of them).
	Workers int
	// IndexShards is the views table's shards per listing key
	// (table.Config.IndexShards; 0: table.DefaultIndexShards).
	IndexShards int
	// Steps configures http steps and the cleanup.
	Steps StepsConfig
	// Auth, if set, is who may call the API; nil leaves it open.
	Auth auth.Authenticator
	// Metrics, if set, is recorded and served at /metrics.
	Metrics *metrics.Metrics
	// Instance names this process among the instances that run against
	// one deployment (default: the host name and a random suffix); each
	// must have its own.
	Instance string
	// LeasePeriod is how long an instance's leases (of stream shards, of
	// the cleanup) last without a renewal: an instance that dies leaves
	// its work to the others within two periods (default 10s).
	LeasePeriod time.Duration
	Logger      *slog.Logger
	// SDK is the AWS SDK configuration the clients are made from (nil:
	// loaded from the environment, config.LoadDefaultConfig). Tests and
	// benchmarks pass one with middleware of their own.
	SDK *aws.Config
}

func (c *AWSConfig) defaults() {
	if c.Prefix == "" {
		c.Prefix = "workflowd"
	}
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Instance == "" {
		host, _ := os.Hostname()
		c.Instance = host + "-" + uuid.NewString()[:8]
	}
}

func (c AWSConfig) tables() table.Config {
	return table.Config{EventsTable: c.Prefix + "-events", ViewsTable: c.Prefix + "-views", Retention: c.Steps.Retention,
		CommandRetention: c.Steps.CommandRetention, IndexShards: c.IndexShards}
}

func (c AWSConfig) checkpointsTable() string { return c.Prefix + "-checkpoints" }

// AWS is the long-running service on AWS services.
type AWS struct {
	*Service
	cfg       AWSConfig
	Store     *table.Store
	Bus       *snssqs.Bus
	clients   clients
	streamARN string
	leases    *ddbstream.Leases
}

// clients are the SDK clients of a process, made from one load of the
// SDK's configuration.
type clients struct {
	db      *dynamodb.Client
	streams *dynamodbstreams.Client
	sns     *sns.Client
	sqs     *sqs.Client
}

// newClients makes the clients from sdk, or from the SDK configuration
// loaded from the environment if sdk is nil.
func newClients(ctx context.Context, sdk *aws.Config) (clients, error) {
	if sdk == nil {
		loaded, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return clients{}, fmt.Errorf("load AWS configuration: %w", err)
		}
		sdk = &loaded
	}
	cfg := *sdk
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
	c, err := newClients(ctx, cfg.SDK)
	if err != nil {
		return snssqs.Config{}, err
	}
	return initAWS(ctx, c, cfg)
}

func initAWS(ctx context.Context, c clients, cfg AWSConfig) (snssqs.Config, error) {
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

// ErrNotInitialized is returned by OpenAWS when a resource of the
// deployment is missing: InitAWS (workflowd init) creates it.
var ErrNotInitialized = errors.New("the deployment is not set up: run workflowd init with the same -aws-prefix first")

// OpenAWS builds the service on the AWS resources InitAWS made, which it
// finds and reads but never creates or reconfigures: those are shared by
// every instance of the deployment, and changing them is InitAWS's job.
// A missing one is ErrNotInitialized. The queues' maxReceiveCount is
// theirs, not cfg's.
func OpenAWS(ctx context.Context, cfg AWSConfig) (*AWS, error) {
	cfg.defaults()
	c, err := newClients(ctx, cfg.SDK)
	if err != nil {
		return nil, err
	}
	var desc *dynamodb.DescribeTableOutput
	for _, name := range []string{cfg.checkpointsTable(), cfg.tables().ViewsTable, cfg.tables().EventsTable} {
		desc, err = c.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		var missing *ddbtypes.ResourceNotFoundException
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("table %s: %w", name, ErrNotInitialized)
		}
		if err != nil {
			return nil, fmt.Errorf("describe table %s: %w", name, err)
		}
	}
	busCfg, err := snssqs.Lookup(ctx, c.sns, c.sqs, cfg.Prefix, nil)
	if errors.Is(err, snssqs.ErrNotSetUp) {
		return nil, fmt.Errorf("%w (%w)", ErrNotInitialized, err)
	}
	if err != nil {
		return nil, err
	}
	busCfg.Logger = cfg.Logger
	a := &AWS{
		cfg: cfg, Store: table.New(c.db, cfg.tables()), Bus: snssqs.New(c.sns, c.sqs, busCfg),
		clients: c, streamARN: aws.ToString(desc.Table.LatestStreamArn),
		leases: &ddbstream.Leases{Client: c.db, Table: cfg.checkpointsTable(), Instance: cfg.Instance, Period: cfg.LeasePeriod,
			Logger: cfg.Logger.With("instance", cfg.Instance)},
	}
	deps, err := awsDeps(a.Store, a.Bus, cfg.Logger)
	if err != nil {
		return nil, err
	}
	// One process handles most commands of an aggregate: trust its cache.
	a.Service = New(deps, Options{MaxDelay: snssqs.MaxDelay, TrustCache: true, InProcess: true, Steps: cfg.Steps, Auth: cfg.Auth, Metrics: cfg.Metrics})
	return a, nil
}

// awsDeps are the dependencies of both AWS runtimes.
func awsDeps(st *table.Store, b *snssqs.Bus, log *slog.Logger) (Deps, error) {
	executions, err := b.Queue(bus.QueueExecutions)
	if err != nil {
		return Deps{}, err
	}
	return Deps{Store: st, Publisher: b, DeadLetters: b, Scheduler: executions, Logger: log}, nil
}

// Handler is the API.
func (a *AWS) Handler() http.Handler { return a.API }

// Run consumes both queues and reads the events table's stream (one reader
// for the projector, one for the dispatcher, each with its checkpoints)
// until ctx is done, then lets in-flight work finish (Service.Run). Of
// several instances, each reads its share of the stream's shards and one
// at a time runs the cleanup, under leases (ddbstream.Leases).
func (a *AWS) Run(ctx context.Context) error {
	queues, err := AllQueues(a.Bus.Queue)
	if err != nil {
		return err
	}
	visibility := a.cfg.VisibilityTimeout
	if visibility <= 0 {
		visibility = snssqs.DefaultVisibilityTimeout
	}
	return a.Service.Run(ctx, Loops{
		Queues: queues,
		// One poller per queue, long-polling 20 s (SQS's most): receives
		// are billed, empty ones too, and one poller fetching batches of
		// up to ten keeps the handlers busy.
		Consumer: workers.ConsumerOptions{Concurrency: a.cfg.Workers, Pollers: 1, Wait: 20 * time.Second, Visibility: visibility, Logger: a.log},
		Feed:     a.readStream,
		Singleton: func(ctx context.Context, name string, run func(context.Context)) {
			a.leases.Hold(ctx, name, run)
		},
	})
}

// readStream feeds the events table's stream to h, with the checkpoints of
// consumer, until ctx is done.
func (a *AWS) readStream(ctx context.Context, consumer string, h workers.EventHandler) error {
	r := &ddbstream.Reader{
		Client: a.clients.streams, StreamARN: a.streamARN, Logger: a.log.With("consumer", consumer),
		Leases: a.leases, Consumer: consumer,
		// The checkpoints of a build without leases, read once per shard.
		Checkpoints: &ddbstream.TableCheckpoints{Client: a.clients.db, Table: a.cfg.checkpointsTable(), Consumer: consumer},
		Handle: func(ctx context.Context, ev events.DynamoDBEvent) events.DynamoDBEventResponse {
			return workers.HandleDynamoDBEvent(ctx, h, table.StreamEvents, ev, a.log)
		},
	}
	return r.Run(ctx)
}

// Close releases nothing: the SDK clients hold no resources that need it.
func (a *AWS) Close() error { return nil }
