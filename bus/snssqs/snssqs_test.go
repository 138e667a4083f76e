package snssqs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/bus/bustest"
	"github.com/workflowd/workflowd/bus/snssqs"
	"github.com/workflowd/workflowd/internal/awstest"
)

// What snssqs on fauxqs guarantees; see the package documentation for why.
var features = bustest.Features{
	Redelivery:      true,
	DeadLetterQueue: true,
	FilterRouting:   true,
	DelayedDelivery: true,
	// Publish checks the target itself, so an unrouted message is refused
	// with bus.ErrNoRoute instead of being dropped by SNS.
	UnroutedDropped: false,
	// SQS (and fauxqs) accept DeleteMessage with a stale handle and do
	// nothing; a stale ChangeMessageVisibility fails with MessageNotInflight.
	StaleReceiptRejected: false,
	// fauxqs ignores any handle in DeleteMessage (AWS refuses a malformed one).
	UnissuedReceiptDeleteIgnored: true,
	// fauxqs keeps everything in memory; nothing to reopen.
	Durable: false,
}

// clients returns SDK clients for the local stack (skipping, or failing
// under CI=true, without it).
func clients(tb testing.TB) (*sns.Client, *sqs.Client) {
	tb.Helper()
	cfg := awstest.Config(tb, "sqs")
	return sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
}

// testLogger writes the bus's log lines to tb's output.
func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// MustSetup creates a fresh topic and queues under a unique prefix and
// deletes them when tb ends.
func MustSetup(tb testing.TB, snsClient *sns.Client, sqsClient *sqs.Client, opts snssqs.SetupOptions) snssqs.Config {
	tb.Helper()
	if opts.Prefix == "" {
		opts.Prefix = awstest.Name("wf")
	}
	cfg, err := snssqs.Setup(tb.Context(), snsClient, sqsClient, opts)
	if err != nil {
		tb.Fatalf("Setup: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var gone *types.QueueDoesNotExist
		for _, m := range []map[string]string{cfg.Queues, cfg.DeadLetterQueues} {
			for _, url := range m {
				if _, err := sqsClient.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(url)}); err != nil && !errors.As(err, &gone) {
					tb.Errorf("delete queue %s: %v", url, err)
				}
			}
		}
		if _, err := snsClient.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: aws.String(cfg.TopicARN)}); err != nil {
			tb.Errorf("delete topic %s: %v", cfg.TopicARN, err)
		}
	})
	return cfg
}

// MustNew sets up fresh resources and returns a Bus on them.
func MustNew(tb testing.TB, opts snssqs.SetupOptions) (*snssqs.Bus, snssqs.Config, *sqs.Client) {
	tb.Helper()
	snsClient, sqsClient := clients(tb)
	cfg := MustSetup(tb, snsClient, sqsClient, opts)
	cfg.Logger = testLogger(tb)
	return snssqs.New(snsClient, sqsClient, cfg), cfg, sqsClient
}

func TestBus(t *testing.T) {
	snsClient, sqsClient := clients(t)
	bustest.Run(t, features, func(t *testing.T, c bustest.Config) bustest.Backend {
		cfg := MustSetup(t, snsClient, sqsClient, snssqs.SetupOptions{
			Queues:            c.Queues,
			VisibilityTimeout: c.VisibilityTimeout,
			MaxReceiveCount:   c.MaxReceiveCount,
		})
		cfg.Logger = testLogger(t)
		return snssqs.New(snsClient, sqsClient, cfg)
	})
}

func TestPublishArrivesRawInTheTargetQueueOnly(t *testing.T) {
	t.Parallel()
	b, cfg, sqsClient := MustNew(t, snssqs.SetupOptions{})
	ctx := t.Context()
	// A body SNS would wrap in its JSON envelope without raw delivery, with
	// characters an encoder might escape.
	body := "{\"commandUUID\":\"c-1\",\"text\":\"quotes \\\" <tags> & ünïcødé\\n\"}\n\tend"
	for _, target := range []string{"workflows", "executions"} {
		other := map[string]string{"workflows": "executions", "executions": "workflows"}[target]
		t.Run(target, func(t *testing.T) {
			attrs := map[string]string{bus.TargetAttribute: target, "commandType": "CreateWorkflow", "commandUUID": "c-1"}
			if err := b.Publish(ctx, bus.Message{Body: []byte(body), Attributes: attrs}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			// Straight from SQS, to see what SNS delivered.
			out, err := sqsClient.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
				QueueUrl:              aws.String(cfg.Queues[target]),
				MaxNumberOfMessages:   10,
				WaitTimeSeconds:       5,
				MessageAttributeNames: []string{"All"},
			})
			if err != nil {
				t.Fatalf("ReceiveMessage from %s: %v", target, err)
			}
			if len(out.Messages) != 1 {
				t.Fatalf("queue %s: got %d messages, want 1", target, len(out.Messages))
			}
			m := out.Messages[0]
			if got := aws.ToString(m.Body); got != body {
				t.Errorf("queue %s: got body %q, want it raw: %q", target, got, body)
			}
			if len(m.MessageAttributes) != len(attrs) {
				t.Errorf("queue %s: got %d attributes %v, want %d", target, len(m.MessageAttributes), m.MessageAttributes, len(attrs))
			}
			for k, want := range attrs {
				v := m.MessageAttributes[k]
				if got := aws.ToString(v.StringValue); got != want || aws.ToString(v.DataType) != "String" {
					t.Errorf("queue %s: attribute %s: got %s %q, want String %q", target, k, aws.ToString(v.DataType), got, want)
				}
			}
			if _, err := sqsClient.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(cfg.Queues[target]), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatalf("DeleteMessage: %v", err)
			}
			bustest.ExpectEmpty(t, bustest.MustQueue(t, b, other), time.Second)
		})
	}
	publishes, requests := b.Counts()
	if publishes != 2 {
		t.Errorf("Counts: got %d publishes, want 2", publishes)
	}
	if requests != 2 {
		t.Errorf("Counts: got %d SQS requests, want 2 (the receives through the bus)", requests)
	}
}

func TestCountsBillableRequests(t *testing.T) {
	t.Parallel()
	b, _, _ := MustNew(t, snssqs.SetupOptions{})
	q := bustest.MustQueue(t, b, "workflows")
	want := func(wantPublishes, wantRequests int64, after string) {
		t.Helper()
		if p, r := b.Counts(); p != wantPublishes || r != wantRequests {
			t.Errorf("after %s: got Counts %d publishes, %d requests, want %d, %d", after, p, r, wantPublishes, wantRequests)
		}
	}
	want(0, 0, "nothing")
	bustest.MustPublish(t, b, bus.Message{Body: []byte("small"), Attributes: map[string]string{bus.TargetAttribute: "workflows"}})
	want(1, 0, "a small publish")
	d := bustest.ReceiveOne(t, q, 10*time.Second)
	bustest.MustDelete(t, q, d)
	want(1, 2, "receive and delete")
	// 100 KiB: two 64 KiB chunks to send, two to receive.
	big := bus.Message{Body: bytes.Repeat([]byte("b"), 100*1024)}
	bustest.MustSend(t, q, big, 0)
	want(1, 4, "a 100 KiB send")
	d = bustest.ReceiveOne(t, q, 10*time.Second)
	want(1, 6, "a 100 KiB receive")
	bustest.MustDelete(t, q, d)
	big.Attributes = map[string]string{bus.TargetAttribute: "workflows"}
	bustest.MustPublish(t, b, big)
	want(3, 7, "a 100 KiB publish")
	if err := b.Publish(t.Context(), bus.Message{Body: []byte("x"), Attributes: map[string]string{bus.TargetAttribute: "nowhere"}}); !errors.Is(err, bus.ErrNoRoute) {
		t.Fatalf("Publish to nowhere: got %v, want bus.ErrNoRoute", err)
	}
	want(3, 7, "a refused publish (no request made)")
}

func TestErrorsAreTranslated(t *testing.T) {
	t.Parallel()
	snsClient, sqsClient := clients(t)
	cfg := MustSetup(t, snsClient, sqsClient, snssqs.SetupOptions{Queues: []string{"workflows", "gone"}})
	cfg.Logger = testLogger(t)
	b := snssqs.New(snsClient, sqsClient, cfg)
	ctx := t.Context()

	t.Run("missing_topic_is_ErrNoRoute", func(t *testing.T) {
		c := cfg
		c.TopicARN = strings.TrimSuffix(cfg.TopicARN, "-commands") + "-no-such-topic"
		err := snssqs.New(snsClient, sqsClient, c).Publish(ctx, bus.Message{Body: []byte("x"), Attributes: map[string]string{bus.TargetAttribute: "workflows"}})
		var nf *snstypes.NotFoundException
		if !errors.Is(err, bus.ErrNoRoute) || !errors.As(err, &nf) {
			t.Errorf("Publish to a missing topic: got %v, want bus.ErrNoRoute wrapping *NotFoundException", err)
		}
	})

	t.Run("deleted_queue_is_ErrUnknownQueue", func(t *testing.T) {
		if _, err := sqsClient.DeleteQueue(ctx, &sqs.DeleteQueueInput{QueueUrl: aws.String(cfg.Queues["gone"])}); err != nil {
			t.Fatalf("DeleteQueue: %v", err)
		}
		q := bustest.MustQueue(t, b, "gone")
		var dne *types.QueueDoesNotExist
		if err := q.Send(ctx, bus.Message{Body: []byte("x")}, 0); !errors.Is(err, bus.ErrUnknownQueue) || !errors.As(err, &dne) {
			t.Errorf("Send: got %v, want bus.ErrUnknownQueue wrapping *QueueDoesNotExist", err)
		}
		if _, err := q.Receive(ctx, 1, 0); !errors.Is(err, bus.ErrUnknownQueue) {
			t.Errorf("Receive: got %v, want bus.ErrUnknownQueue", err)
		}
	})

	t.Run("handle_not_in_flight_is_ErrReceiptInvalid", func(t *testing.T) {
		q := bustest.MustQueue(t, b, "workflows")
		bustest.MustSend(t, q, bus.Message{Body: []byte("once")}, 0)
		d := bustest.ReceiveOne(t, q, 10*time.Second)
		bustest.MustDelete(t, q, d)
		var nif *types.MessageNotInflight
		if err := q.ChangeVisibility(ctx, d.ReceiptHandle, 0); !errors.Is(err, bus.ErrReceiptInvalid) || !errors.As(err, &nif) {
			t.Errorf("ChangeVisibility after Delete: got %v, want bus.ErrReceiptInvalid wrapping *MessageNotInflight", err)
		}
	})

	t.Run("attributes_count_toward_the_size_limit", func(t *testing.T) {
		body := bytes.Repeat([]byte("x"), bus.MaxMessageSize-20)
		m := bus.Message{Body: body, Attributes: map[string]string{bus.TargetAttribute: "workflows", "commandUUID": "0123456789"}}
		if err := b.Publish(ctx, m); !errors.Is(err, bus.ErrTooLarge) {
			t.Errorf("Publish of a %d-byte body with attributes over the limit: got %v, want bus.ErrTooLarge", len(body), err)
		}
	})

	t.Run("bodies_SQS_would_refuse_or_alter_fail", func(t *testing.T) {
		q := bustest.MustQueue(t, b, "workflows")
		for _, body := range [][]byte{nil, {0xff, 0xfe}} {
			if err := q.Send(ctx, bus.Message{Body: body}, 0); err == nil {
				t.Errorf("Send(%q): got nil, want an error", body)
			}
		}
		if err := q.Send(ctx, bus.Message{Body: []byte("x")}, 16*time.Minute); err == nil {
			t.Errorf("Send with a 16 minute delay: got nil, want an error (SQS's limit is 15)")
		}
	})
}

func TestSetupIsIdempotent(t *testing.T) {
	t.Parallel()
	snsClient, sqsClient := clients(t)
	opts := snssqs.SetupOptions{Prefix: awstest.Name("wf"), VisibilityTimeout: 2 * time.Second, MaxReceiveCount: 3}
	first := MustSetup(t, snsClient, sqsClient, opts)
	again, err := snssqs.Setup(t.Context(), snsClient, sqsClient, opts)
	if err != nil {
		t.Fatalf("Setup again: %v", err)
	}
	if fmt.Sprint(again) != fmt.Sprint(first) {
		t.Errorf("Setup again: got %+v, want %+v", again, first)
	}

	opts.VisibilityTimeout = 7 * time.Second
	changed, err := snssqs.Setup(t.Context(), snsClient, sqsClient, opts)
	if err != nil {
		t.Fatalf("Setup with another visibility timeout: %v", err)
	}
	if fmt.Sprint(changed) != fmt.Sprint(first) {
		t.Errorf("Setup with another visibility timeout: got %+v, want the same resources %+v", changed, first)
	}
	out, err := sqsClient.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(first.Queues["workflows"]),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatalf("GetQueueAttributes: %v", err)
	}
	if got := out.Attributes["VisibilityTimeout"]; got != "7" {
		t.Errorf("VisibilityTimeout after the second Setup: got %q, want \"7\"", got)
	}
	if got := out.Attributes["RedrivePolicy"]; !strings.Contains(got, `"maxReceiveCount":3`) {
		t.Errorf("RedrivePolicy: got %s, want maxReceiveCount 3", got)
	}

	for _, bad := range []snssqs.SetupOptions{
		{Prefix: "has space"},
		{Queues: []string{"a", "a"}},
		{Queues: []string{strings.Repeat("q", 80)}},
		{MaxReceiveCount: -1},
		{VisibilityTimeout: 13 * time.Hour},
	} {
		if _, err := snssqs.Setup(t.Context(), snsClient, sqsClient, bad); err == nil {
			t.Errorf("Setup(%+v): got nil, want an error", bad)
		}
	}
}

func TestNackLogsTheReasonOnTheLastReceive(t *testing.T) {
	t.Parallel()
	snsClient, sqsClient := clients(t)
	cfg := MustSetup(t, snsClient, sqsClient, snssqs.SetupOptions{VisibilityTimeout: 30 * time.Second, MaxReceiveCount: 2})
	logs := &recorder{}
	cfg.Logger = slog.New(logs)
	b := snssqs.New(snsClient, sqsClient, cfg)
	q := bustest.MustQueue(t, b, "workflows")
	n, ok := q.(interface {
		Nack(ctx context.Context, receiptHandle string, d time.Duration, reason string) error
	})
	if !ok {
		t.Fatalf("%T has no Nack method", q)
	}
	bustest.MustSend(t, q, bus.Message{Body: []byte("poison")}, 0)

	var id string
	for i := 1; i <= cfg.MaxReceiveCount; i++ {
		d := bustest.ReceiveOne(t, q, 10*time.Second)
		id = d.ID
		if err := n.Nack(t.Context(), d.ReceiptHandle, 0, fmt.Sprintf("boom %d", i)); err != nil {
			t.Fatalf("Nack %d: %v", i, err)
		}
		warns := logs.at(slog.LevelWarn)
		switch {
		case i < cfg.MaxReceiveCount && len(warns) > 0:
			t.Errorf("after Nack %d of %d: got warnings %v, want none yet", i, cfg.MaxReceiveCount, warns)
		case i == cfg.MaxReceiveCount && (len(warns) != 1 || warns[0]["messageID"] != id || warns[0]["reason"] != fmt.Sprintf("boom %d", i)):
			t.Errorf("after the last Nack: got warnings %v, want one with messageID %s and reason %q", warns, id, fmt.Sprintf("boom %d", i))
		}
	}
	bustest.ExpectEmpty(t, q, time.Second) // moves it
	dead := bustest.EventuallyDeadLetters(t, b, "workflows", 1)
	if dead[0].ID != id {
		t.Errorf("dead letter: got %s, want %s", dead[0].ID, id)
	}
	if err := n.Nack(t.Context(), "not-a-receipt-handle", 0, "x"); !errors.Is(err, bus.ErrReceiptInvalid) {
		t.Errorf("Nack with a bogus handle: got %v, want bus.ErrReceiptInvalid", err)
	}
}

func TestDeadLettersBeyondOneBatch(t *testing.T) {
	t.Parallel()
	const total = 25
	b, cfg, sqsClient := MustNew(t, snssqs.SetupOptions{})
	ctx := t.Context()
	// Straight into the dead-letter queue, ten per request.
	for i := 0; i < total; i += 10 {
		var entries []types.SendMessageBatchRequestEntry
		for j := i; j < min(i+10, total); j++ {
			entries = append(entries, types.SendMessageBatchRequestEntry{
				Id:          aws.String(fmt.Sprint(j)),
				MessageBody: aws.String(fmt.Sprintf("dead-%02d", j)),
				MessageAttributes: map[string]types.MessageAttributeValue{
					"k": {DataType: aws.String("String"), StringValue: aws.String(fmt.Sprint(j))},
				},
			})
		}
		out, err := sqsClient.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(cfg.DeadLetterQueues["workflows"]), Entries: entries})
		if err != nil || len(out.Failed) > 0 {
			t.Fatalf("SendMessageBatch: %v %v", err, out)
		}
	}

	listed := func(max int) []bus.Delivery {
		t.Helper()
		ds, err := b.ListDeadLetters(ctx, "workflows", max)
		if err != nil {
			t.Fatalf("ListDeadLetters(%d): %v", max, err)
		}
		seen := map[string]bool{}
		for i, d := range ds {
			if seen[d.ID] {
				t.Errorf("ListDeadLetters(%d): %s listed twice", max, d.ID)
			}
			seen[d.ID] = true
			if i > 0 && d.SentAt.Before(ds[i-1].SentAt) {
				t.Errorf("ListDeadLetters(%d): not oldest first at %d", max, i)
			}
			if d.ReceiptHandle != "" {
				t.Errorf("ListDeadLetters(%d): got a receipt handle", max)
			}
		}
		return ds
	}
	if ds := listed(0); len(ds) != total {
		t.Fatalf("ListDeadLetters(all): got %d, want %d", len(ds), total)
	} else if ds[0].Attributes["k"] == "" {
		t.Errorf("ListDeadLetters: got attributes %v, want k", ds[0].Attributes)
	}
	if ds := listed(7); len(ds) != 7 {
		t.Errorf("ListDeadLetters(7): got %d", len(ds))
	}
	if ds := listed(0); len(ds) != total {
		t.Errorf("ListDeadLetters(all) again: got %d, want %d (listing must give them back)", len(ds), total)
	}

	if n, err := b.Redrive(ctx, "workflows", 12); err != nil || n != 12 {
		t.Fatalf("Redrive(12): got %d, %v, want 12", n, err)
	}
	if ds := listed(0); len(ds) != total-12 {
		t.Errorf("after Redrive(12): %d dead letters, want %d", len(ds), total-12)
	}
	if n, err := b.Redrive(ctx, "workflows", 0); err != nil || n != total-12 {
		t.Fatalf("Redrive(all): got %d, %v, want %d", n, err, total-12)
	}
	q := bustest.MustQueue(t, b, "workflows")
	got := map[string]bool{}
	for len(got) < total {
		ds, err := q.Receive(ctx, 10, time.Second)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if len(ds) == 0 {
			t.Fatalf("got %d of the %d redriven messages", len(got), total)
		}
		for _, d := range ds {
			if d.ReceiveCount != 1 || d.Attributes["k"] == "" || !strings.HasPrefix(string(d.Body), "dead-") {
				t.Errorf("redriven message: got %q count %d attributes %v", d.Body, d.ReceiveCount, d.Attributes)
			}
			got[string(d.Body)] = true
			bustest.MustDelete(t, q, d)
		}
	}
}

// recorder is a slog.Handler keeping each record's level and attributes.
type recorder struct {
	mu      sync.Mutex
	records []map[string]any
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	m := map[string]any{"level": rec.Level, "msg": rec.Message}
	rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.Any(); return true })
	r.mu.Lock()
	r.records = append(r.records, m)
	r.mu.Unlock()
	return nil
}

// at returns the records at level.
func (r *recorder) at(level slog.Level) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, m := range r.records {
		if m["level"] == level {
			out = append(out, m)
		}
	}
	return out
}
