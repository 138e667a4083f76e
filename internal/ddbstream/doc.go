// Package ddbstream reads a DynamoDB stream for the long-running mode of
// workflowd (on Lambda, the event source mapping does this) and hands each
// batch, as an events.DynamoDBEvent, to the same handler the Lambda function
// calls. It follows every shard, children after their parents, and keeps a
// checkpoint per shard in a DynamoDB table so that a restart resumes where
// it stopped. Delivery is at least once: the handlers are idempotent.
//
// It imports no package of this project but for the handler's shape.
package ddbstream
