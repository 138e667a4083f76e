package ddbstream

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableCheckpoints keeps checkpoints in a DynamoDB table keyed by a string
// partition key "pk" = consumer + "#" + shard id.
type TableCheckpoints struct {
	Client   *dynamodb.Client
	Table    string
	Consumer string
}

type checkpointItem struct {
	PK       string `dynamodbav:"pk"`
	Seq      string `dynamodbav:"seq"`
	Finished bool   `dynamodbav:"finished"`
}

func (c *TableCheckpoints) key(shardID string) string { return c.Consumer + "#" + shardID }

// Load returns the shard's checkpoint ("" and false when it has none).
func (c *TableCheckpoints) Load(ctx context.Context, shardID string) (string, bool, error) {
	out, err := c.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(c.Table),
		Key:            map[string]ddbtypes.AttributeValue{"pk": &ddbtypes.AttributeValueMemberS{Value: c.key(shardID)}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return "", false, fmt.Errorf("load checkpoint %s: %w", c.key(shardID), err)
	}
	if out.Item == nil {
		return "", false, nil
	}
	var it checkpointItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return "", false, fmt.Errorf("load checkpoint %s: %w", c.key(shardID), err)
	}
	return it.Seq, it.Finished, nil
}

// Save records the shard's checkpoint.
func (c *TableCheckpoints) Save(ctx context.Context, shardID, seq string, finished bool) error {
	item, err := attributevalue.MarshalMap(checkpointItem{PK: c.key(shardID), Seq: seq, Finished: finished})
	if err != nil {
		return err
	}
	_, err = c.Client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(c.Table), Item: item})
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", c.key(shardID), err)
	}
	return nil
}

// CreateCheckpointTable creates the checkpoint table (on demand billing)
// unless it exists.
func CreateCheckpointTable(ctx context.Context, client *dynamodb.Client, table string) error {
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash}},
	})
	var inUse *ddbtypes.ResourceInUseException
	if errors.As(err, &inUse) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create checkpoint table %s: %w", table, err)
	}
	return nil
}
