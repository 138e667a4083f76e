package ddbstream_test

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/workflowd/workflowd/internal/awstest"
	"github.com/workflowd/workflowd/internal/ddbstream"
)

type fixture struct {
	db      *dynamodb.Client
	streams *dynamodbstreams.Client
	table   string
	stream  string
	cps     string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg := awstest.Config(t, "dynamodb")
	f := &fixture{
		db:      dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true }),
		streams: dynamodbstreams.NewFromConfig(cfg),
		table:   awstest.Name("src"),
		cps:     awstest.Name("checkpoints"),
	}
	ctx := context.Background()
	out, err := f.db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(f.table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		StreamSpecification:  &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.stream = aws.ToString(out.TableDescription.LatestStreamArn)
	if err := ddbstream.CreateCheckpointTable(ctx, f.db, f.cps); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) put(t *testing.T, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		_, err := f.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(f.table), Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: fmt.Sprint("item-", i)},
			"n":  &types.AttributeValueMemberN{Value: strconv.Itoa(i)},
			"m":  &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberBOOL{Value: true}}}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// collector records the n of every record it is handed, failing the first
// time it meets failAt.
type collector struct {
	mu     sync.Mutex
	seen   []int
	failAt int
	failed bool
}

func (c *collector) handle(_ context.Context, ev events.DynamoDBEvent) events.DynamoDBEventResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	var resp events.DynamoDBEventResponse
	for i, r := range ev.Records {
		n, _ := r.Change.NewImage["n"].Integer()
		if int(n) == c.failAt && !c.failed {
			c.failed = true
			for _, rest := range ev.Records[i:] {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: rest.Change.SequenceNumber})
			}
			return resp
		}
		if !r.Change.NewImage["m"].Map()["l"].List()[0].Boolean() {
			panic("nested attributes lost in conversion")
		}
		c.seen = append(c.seen, int(n))
	}
	return resp
}

func (c *collector) waitFor(t *testing.T, n int) []int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.mu.Lock()
		got := append([]int(nil), c.seen...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("saw %d records after 30s, want %d: %v", len(got), n, got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *fixture) reader(c *collector, consumer string) *ddbstream.Reader {
	return &ddbstream.Reader{
		Client: f.streams, StreamARN: f.stream, Handle: c.handle,
		Checkpoints:  &ddbstream.TableCheckpoints{Client: f.db, Table: f.cps, Consumer: consumer},
		Logger:       slog.New(slog.DiscardHandler),
		PollInterval: 20 * time.Millisecond,
	}
}

func run(r *ddbstream.Reader) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

func TestReaderDeliversInOrderRetriesFailuresAndResumes(t *testing.T) {
	f := newFixture(t)
	f.put(t, 0, 30)

	// A failing record is retried, and nothing before or after it is lost.
	c := &collector{failAt: 12}
	stop := run(f.reader(c, "projector"))
	got := c.waitFor(t, 30)
	stop()
	for i, n := range got[:30] {
		if n != i {
			t.Fatalf("order: got %v", got)
		}
	}

	// A restart resumes after the checkpoint: only the new records come.
	f.put(t, 30, 40)
	c2 := &collector{failAt: -1}
	stop = run(f.reader(c2, "projector"))
	got = c2.waitFor(t, 10)
	time.Sleep(200 * time.Millisecond)
	stop()
	c2.mu.Lock()
	defer c2.mu.Unlock()
	if len(c2.seen) != 10 || c2.seen[0] != 30 || c2.seen[9] != 39 {
		t.Fatalf("after restart: got %v, want 30..39", c2.seen)
	}

	// Another consumer has its own checkpoints and reads everything.
	c3 := &collector{failAt: -1}
	stop = run(f.reader(c3, "dispatcher"))
	c3.waitFor(t, 40)
	stop()
}
