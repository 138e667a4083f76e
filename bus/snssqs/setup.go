package snssqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/workflowd/workflowd/bus"
)

// SetupOptions configures Setup. Zero fields take the defaults.
type SetupOptions struct {
	// Prefix starts every name: topic "<Prefix>-commands", queues
	// "<Prefix>-<queue>" and "<Prefix>-<queue>-dlq" (default "workflowd").
	Prefix string
	// Queues are the queue names, each also the "target" value routed to it
	// (default bus.Queues: "workflows" and "executions").
	Queues []string
	// VisibilityTimeout is each queue's visibility timeout, rounded up to
	// whole seconds, at most 12 hours (default 30 s).
	VisibilityTimeout time.Duration
	// MaxReceiveCount is each queue's RedrivePolicy maxReceiveCount, 1 to
	// 1000 (default DefaultMaxReceiveCount).
	MaxReceiveCount int
}

// Default queue settings of Setup.
const (
	DefaultPrefix            = "workflowd"
	DefaultVisibilityTimeout = 30 * time.Second
	dlqRetention             = 14 * 24 * time.Hour // SQS's longest: a dead letter keeps its first enqueue time
)

var validName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Setup creates, or brings up to date, the SNS topic and the SQS queues of a
// Bus, and returns its Config (with MaxReceiveCount set). Per queue: a
// dead-letter queue (14 days' retention), the queue (visibility timeout,
// maximum message size bus.MaxMessageSize, no delay, no default long poll,
// RedrivePolicy to its dead-letter queue), a queue policy letting the topic
// send to it, and a subscription with RawMessageDelivery and the
// FilterPolicy {"target":[name]}. Running it again with the same options
// changes nothing; with other ones it updates the queues' attributes. It is
// for `workflowd init` and tests; a SAM deployment declares the same
// resources in its template.
// Errors: an error for invalid options, the context's error, an SDK error.
func Setup(ctx context.Context, snsClient *sns.Client, sqsClient *sqs.Client, opts SetupOptions) (Config, error) {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Queues == nil {
		opts.Queues = bus.Queues
	}
	if opts.VisibilityTimeout == 0 {
		opts.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if opts.MaxReceiveCount == 0 {
		opts.MaxReceiveCount = DefaultMaxReceiveCount
	}
	if err := opts.validate(); err != nil {
		return Config{}, err
	}

	topic, err := snsClient.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(opts.Prefix + "-commands")})
	if err != nil {
		return Config{}, fmt.Errorf("snssqs: setup: create topic: %w", err)
	}
	cfg := Config{
		TopicARN:         aws.ToString(topic.TopicArn),
		Queues:           make(map[string]string, len(opts.Queues)),
		DeadLetterQueues: make(map[string]string, len(opts.Queues)),
		MaxReceiveCount:  opts.MaxReceiveCount,
	}
	for _, name := range opts.Queues {
		if err := setupQueue(ctx, snsClient, sqsClient, opts, name, &cfg); err != nil {
			return Config{}, fmt.Errorf("snssqs: setup queue %s: %w", name, err)
		}
	}
	return cfg, nil
}

func (o SetupOptions) validate() error {
	if !validName.MatchString(o.Prefix) {
		return fmt.Errorf("snssqs: setup: invalid prefix %q: want [A-Za-z0-9_-]", o.Prefix)
	}
	if len(o.Queues) == 0 {
		return errors.New("snssqs: setup: no queues")
	}
	seen := make(map[string]bool, len(o.Queues))
	for _, q := range o.Queues {
		// SQS names are at most 80 characters; the longest is the DLQ's.
		if !validName.MatchString(q) || len(o.Prefix)+len(q)+len("--dlq") > 80 {
			return fmt.Errorf("snssqs: setup: invalid queue name %q: want [A-Za-z0-9_-], and %q-%q-dlq within 80 characters", q, o.Prefix, q)
		}
		if seen[q] {
			return fmt.Errorf("snssqs: setup: queue %q listed twice", q)
		}
		seen[q] = true
	}
	if o.VisibilityTimeout < 0 || o.VisibilityTimeout > maxVisibility {
		return fmt.Errorf("snssqs: setup: visibility timeout %v: want 0 to %v", o.VisibilityTimeout, maxVisibility)
	}
	if o.MaxReceiveCount < 1 || o.MaxReceiveCount > 1000 {
		return fmt.Errorf("snssqs: setup: max receive count %d: want 1 to 1000", o.MaxReceiveCount)
	}
	return nil
}

func setupQueue(ctx context.Context, snsClient *sns.Client, sqsClient *sqs.Client, opts SetupOptions, name string, cfg *Config) error {
	maxSize := strconv.Itoa(bus.MaxMessageSize)
	dlqURL, err := ensureQueue(ctx, sqsClient, opts.Prefix+"-"+name+"-dlq", map[string]string{
		"MaximumMessageSize":     maxSize,
		"MessageRetentionPeriod": strconv.Itoa(int(dlqRetention / time.Second)),
	})
	if err != nil {
		return err
	}
	dlqARN, err := queueARN(ctx, sqsClient, dlqURL)
	if err != nil {
		return err
	}
	redrive, err := json.Marshal(struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     int    `json:"maxReceiveCount"`
	}{dlqARN, opts.MaxReceiveCount})
	if err != nil {
		return err
	}
	url, err := ensureQueue(ctx, sqsClient, opts.Prefix+"-"+name, map[string]string{
		"VisibilityTimeout":  strconv.Itoa(int(seconds(opts.VisibilityTimeout))),
		"MaximumMessageSize": maxSize,
		// The SDK omits a zero DelaySeconds or WaitTimeSeconds, so the
		// queue's defaults are what Send(…, 0) and Receive(…, 0) get.
		"DelaySeconds":                  "0",
		"ReceiveMessageWaitTimeSeconds": "0",
		"RedrivePolicy":                 string(redrive),
	})
	if err != nil {
		return err
	}
	arn, err := queueARN(ctx, sqsClient, url)
	if err != nil {
		return err
	}
	policy, err := topicPolicy(arn, cfg.TopicARN)
	if err != nil {
		return err
	}
	if _, err := sqsClient.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{
		QueueUrl:   aws.String(url),
		Attributes: map[string]string{"Policy": policy},
	}); err != nil {
		return fmt.Errorf("set queue policy: %w", err)
	}
	filter, err := json.Marshal(map[string][]string{bus.TargetAttribute: {name}})
	if err != nil {
		return err
	}
	if _, err := snsClient.Subscribe(ctx, &sns.SubscribeInput{
		TopicArn: aws.String(cfg.TopicARN),
		Protocol: aws.String("sqs"),
		Endpoint: aws.String(arn),
		Attributes: map[string]string{
			"RawMessageDelivery": "true",
			"FilterPolicy":       string(filter),
		},
		ReturnSubscriptionArn: true,
	}); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	cfg.Queues[name] = url
	cfg.DeadLetterQueues[name] = dlqURL
	return nil
}

// ensureQueue creates the queue with attrs or, if it exists with other
// attribute values, sets them.
func ensureQueue(ctx context.Context, c *sqs.Client, name string, attrs map[string]string) (string, error) {
	out, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err == nil {
		return aws.ToString(out.QueueUrl), nil
	}
	var exists *types.QueueNameExists
	if !errors.As(err, &exists) {
		return "", fmt.Errorf("create queue %s: %w", name, err)
	}
	got, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("get URL of queue %s: %w", name, err)
	}
	if _, err := c.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: got.QueueUrl, Attributes: attrs}); err != nil {
		return "", fmt.Errorf("update queue %s: %w", name, err)
	}
	return aws.ToString(got.QueueUrl), nil
}

func queueARN(ctx context.Context, c *sqs.Client, url string) (string, error) {
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		return "", fmt.Errorf("get ARN of %s: %w", url, err)
	}
	arn := out.Attributes[string(types.QueueAttributeNameQueueArn)]
	if arn == "" {
		return "", fmt.Errorf("get ARN of %s: no QueueArn in the answer", url)
	}
	return arn, nil
}

// topicPolicy is the queue policy that lets the topic, and only it, send to
// the queue.
func topicPolicy(queueARN, topicARN string) (string, error) {
	type statement struct {
		Sid       string
		Effect    string
		Principal map[string]string
		Action    string
		Resource  string
		Condition map[string]map[string]string
	}
	p, err := json.Marshal(struct {
		Version   string
		Statement []statement
	}{"2012-10-17", []statement{{
		Sid:       "AllowCommandsTopic",
		Effect:    "Allow",
		Principal: map[string]string{"Service": "sns.amazonaws.com"},
		Action:    "sqs:SendMessage",
		Resource:  queueARN,
		Condition: map[string]map[string]string{"ArnEquals": {"aws:SourceArn": topicARN}},
	}}})
	return string(p), err
}
