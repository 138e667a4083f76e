package snssqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/workflowd/workflowd/bus"
)

// ErrNotSetUp is returned by Lookup when a resource of the deployment is
// missing: Setup (workflowd init) creates it.
var ErrNotSetUp = errors.New("not set up")

// Lookup finds the topic and queues Setup made for prefix (queues: nil
// means bus.Queues) and returns their Config, changing nothing: a serving
// instance reads the deployment, it does not reconfigure what other
// instances share. MaxReceiveCount is the queues' own (their
// RedrivePolicy). A missing resource is ErrNotSetUp.
func Lookup(ctx context.Context, snsClient *sns.Client, sqsClient *sqs.Client, prefix string, queues []string) (Config, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if queues == nil {
		queues = bus.Queues
	}
	topicName := prefix + "-commands"
	cfg := Config{Queues: make(map[string]string, len(queues)), DeadLetterQueues: make(map[string]string, len(queues))}
	pages := sns.NewListTopicsPaginator(snsClient, &sns.ListTopicsInput{})
	for pages.HasMorePages() && cfg.TopicARN == "" {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return Config{}, fmt.Errorf("snssqs: lookup: list topics: %w", err)
		}
		for _, t := range page.Topics {
			if arn := aws.ToString(t.TopicArn); strings.HasSuffix(arn, ":"+topicName) {
				cfg.TopicARN = arn
				break
			}
		}
	}
	if cfg.TopicARN == "" {
		return Config{}, fmt.Errorf("snssqs: lookup: topic %s: %w", topicName, ErrNotSetUp)
	}
	for _, name := range queues {
		url, err := queueURL(ctx, sqsClient, prefix+"-"+name)
		if err != nil {
			return Config{}, err
		}
		dlq, err := queueURL(ctx, sqsClient, prefix+"-"+name+"-dlq")
		if err != nil {
			return Config{}, err
		}
		out, err := sqsClient.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
			QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy},
		})
		if err != nil {
			return Config{}, fmt.Errorf("snssqs: lookup: attributes of queue %s: %w", name, err)
		}
		var redrive struct {
			MaxReceiveCount json.Number `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(out.Attributes[string(types.QueueAttributeNameRedrivePolicy)]), &redrive); err != nil {
			return Config{}, fmt.Errorf("snssqs: lookup: queue %s has no redrive policy (%v): %w", name, err, ErrNotSetUp)
		}
		n, err := redrive.MaxReceiveCount.Int64()
		if err != nil || n < 1 {
			return Config{}, fmt.Errorf("snssqs: lookup: queue %s: maxReceiveCount %q: %w", name, redrive.MaxReceiveCount, ErrNotSetUp)
		}
		cfg.Queues[name], cfg.DeadLetterQueues[name] = url, dlq
		if cfg.MaxReceiveCount == 0 || int(n) < cfg.MaxReceiveCount {
			cfg.MaxReceiveCount = int(n)
		}
	}
	return cfg, nil
}

func queueURL(ctx context.Context, c *sqs.Client, name string) (string, error) {
	out, err := c.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(name)})
	var missing *types.QueueDoesNotExist
	if errors.As(err, &missing) {
		return "", fmt.Errorf("snssqs: lookup: queue %s: %w", name, ErrNotSetUp)
	}
	if err != nil {
		return "", fmt.Errorf("snssqs: lookup: URL of queue %s: %w", name, err)
	}
	return aws.ToString(out.QueueUrl), nil
}
