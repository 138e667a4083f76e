package app_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/workflowd/workflowd/app"
)

// The stream function never gets an execution's creating record (Lambda
// gave up on its batch), and the on-failure destination gets a message
// naming the batch: workflowd replay of that message hands the record to
// the projector and the dispatcher, and the execution completes without
// a cleanup run (the cleanup interval here is an hour). A second replay
// changes nothing.
func TestReplayOfAStreamFailureMessage(t *testing.T) {
	r := startLossyLambdas(t, time.Hour)
	c := r.client
	id, cmd, before := r.startLost(t)
	time.Sleep(time.Second)
	if got := c.Do(t, "GET", "/v1/workflow-executions/"+id, ""); got.Status != http.StatusNotFound {
		t.Fatalf("execution with its record lost: %d, want 404 before the replay", got.Status)
	}
	r.dropper.mu.Lock()
	seq := r.dropper.victim
	r.dropper.mu.Unlock()
	shard := shardOf(t, r.streams, r.streamARN, seq)
	after := time.Now().UTC().Add(time.Second).Truncate(time.Second)
	// The message as Lambda writes it (its arrivals in whole seconds).
	msg := fmt.Sprintf(`{"requestContext":{"requestId":"r","functionArn":"arn:aws:lambda:us-east-1:1:function:stream","condition":"RetryAttemptsExhausted","approximateInvokeCount":11},
"responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},"version":"1.0","timestamp":%q,
"DDBStreamBatchInfo":{"shardId":%q,"startSequenceNumber":%q,"endSequenceNumber":%q,"approximateArrivalOfFirstRecord":%q,"approximateArrivalOfLastRecord":%q,"batchSize":1,"streamArn":%q}}`,
		after.Format(time.RFC3339), shard, seq, seq, before.Format(time.RFC3339), after.Format(time.RFC3339), r.streamARN)
	failure, err := app.ParseStreamFailure([]byte(msg))
	if err != nil {
		t.Fatalf("ParseStreamFailure: %v", err)
	}
	rep, err := r.f.Replay(context.Background(), failure)
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if rep.Records != 1 || rep.Trimmed {
		t.Fatalf("replay: %+v, want the one record, from the stream", rep)
	}
	x := c.WaitStatus(t, id, 30*time.Second, "SUCCEEDED")
	if len(x.Steps) != 1 || x.Steps[0].Status != "SUCCEEDED" {
		t.Fatalf("replayed execution: %+v", x)
	}
	if st := c.Do(t, "GET", "/v1/commands/"+cmd, "").String("status"); st != "APPLIED" {
		t.Fatalf("start command after the replay: %s, want APPLIED", st)
	}
	version := c.Do(t, "GET", "/v1/workflow-executions/"+id, "").Number("version")
	if rep, err := r.f.Replay(context.Background(), failure); err != nil || rep.Repaired != 0 {
		t.Fatalf("second replay: %+v, %v; want nothing repaired", rep, err)
	}
	if v := c.Do(t, "GET", "/v1/workflow-executions/"+id, "").Number("version"); v != version {
		t.Fatalf("a second replay moved the execution from version %d to %d", version, v)
	}
}

// shardOf returns the stream shard holding sequence number seq.
func shardOf(t *testing.T, c *dynamodbstreams.Client, streamARN, seq string) string {
	t.Helper()
	out, err := c.DescribeStream(context.Background(), &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(streamARN)})
	if err != nil {
		t.Fatal(err)
	}
	cmp := func(a, b string) int { // as numbers
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	}
	for _, s := range out.StreamDescription.Shards {
		rng := s.SequenceNumberRange
		if rng == nil || cmp(aws.ToString(rng.StartingSequenceNumber), seq) > 0 {
			continue
		}
		if end := aws.ToString(rng.EndingSequenceNumber); end == "" || cmp(seq, end) <= 0 {
			return aws.ToString(s.ShardId)
		}
	}
	t.Fatalf("no shard of %s holds %s", streamARN, seq)
	return ""
}

// When the stream no longer has the batch (older than its 24 hours; here a
// shard the stream never had), the replay reconciles the window the
// records arrived in from the event log: the execution still completes.
func TestReplayOfABatchTheStreamNoLongerHas(t *testing.T) {
	r := startLossyLambdas(t, time.Hour)
	c := r.client
	id, _, before := r.startLost(t)
	after := time.Now().UTC().Add(time.Second).Truncate(time.Second)
	msg := fmt.Sprintf(`{"timestamp":%q,"DDBStreamBatchInfo":{"shardId":"shardId-00000000000000000001-deadbeef","startSequenceNumber":"000000000000000000100","endSequenceNumber":"000000000000000000100",
"approximateArrivalOfFirstRecord":%q,"approximateArrivalOfLastRecord":%q,"batchSize":1,"streamArn":%q}}`,
		after.Format(time.RFC3339), before.Format(time.RFC3339), after.Format(time.RFC3339), r.streamARN)
	failure, err := app.ParseStreamFailure([]byte(msg))
	if err != nil {
		t.Fatalf("ParseStreamFailure: %v", err)
	}
	rep, err := r.f.Replay(context.Background(), failure)
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	if !rep.Trimmed || rep.Records != 0 || rep.Repaired != 1 {
		t.Fatalf("replay: %+v, want the stream's records gone and the execution repaired from the log", rep)
	}
	c.WaitStatus(t, id, 30*time.Second, "SUCCEEDED")
}

// startLost starts an execution of a one-wait-step workflow, waits until
// the stream function was denied its creating record, and returns its id,
// its start command's and the second before it started.
func (r *lossyLambdas) startLost(t *testing.T) (id, cmd string, before time.Time) {
	t.Helper()
	c := r.client
	wf := c.MustApply(t, "POST", "/v1/workflows", `{"name":"wf","steps":[{"name":"pause","type":"wait","seconds":1}]}`).String("workflowUUID")
	before = time.Now().UTC().Truncate(time.Second)
	start := c.Expect(t, http.StatusAccepted, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf))
	deadline := time.Now().Add(30 * time.Second)
	for r.dropper.dropped.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the execution's first record never came through the stream")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return start.String("workflowExecutionUUID"), start.String("commandUUID"), before
}
