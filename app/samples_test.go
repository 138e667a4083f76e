package app_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/table"
)

var update = flag.Bool("update", false, "write events/stream.json again from events/worker.json")

func readSample(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("../events/" + name)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("events/%s: %v", name, err)
	}
}

// sampleCommand is the command of events/worker.json.
func sampleCommand(t *testing.T) model.Command {
	t.Helper()
	var ev events.SQSEvent
	readSample(t, "worker.json", &ev)
	if len(ev.Records) != 1 {
		t.Fatalf("events/worker.json: %d records, want 1", len(ev.Records))
	}
	cmd, err := model.DecodeCommand([]byte(ev.Records[0].Body))
	if err != nil {
		t.Fatalf("events/worker.json: its body is not a command: %v", err)
	}
	return cmd
}

// streamSample is the stream batch of what the sample command appends: its
// events as the events table's item, as the stream delivers it.
func streamSample(t *testing.T) events.DynamoDBEvent {
	t.Helper()
	cmd := sampleCommand(t)
	evs, err := model.DecideWorkflow(model.Workflow{}, cmd, cmd.IssuedAt)
	if err != nil {
		t.Fatal(err)
	}
	item, err := table.ItemOf(evs)
	if err != nil {
		t.Fatal(err)
	}
	img := make(map[string]events.DynamoDBAttributeValue, len(item))
	for k, v := range item {
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			img[k] = events.NewStringAttribute(v.Value)
		case *types.AttributeValueMemberN:
			img[k] = events.NewNumberAttribute(v.Value)
		case *types.AttributeValueMemberB:
			img[k] = events.NewBinaryAttribute(v.Value)
		case *types.AttributeValueMemberSS:
			img[k] = events.NewStringSetAttribute(v.Value)
		default:
			t.Fatalf("attribute %s of type %T", k, v)
		}
	}
	return events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{{
		EventID: "1", EventName: "INSERT", EventVersion: "1.1", EventSource: "aws:dynamodb", AWSRegion: "us-east-1",
		EventSourceArn: "arn:aws:dynamodb:us-east-1:000000000000:table/workflowd-events/stream/2026-11-27T00:00:00.000",
		Change: events.DynamoDBStreamRecord{
			ApproximateCreationDateTime: events.SecondsEpochTime{Time: cmd.IssuedAt},
			Keys:                        map[string]events.DynamoDBAttributeValue{"aggregateId": img["aggregateId"], "seq": img["seq"]},
			NewImage:                    img,
			SequenceNumber:              "100000000000000000001",
			SizeBytes:                   int64(len(fmt.Sprint(item))),
			StreamViewType:              "NEW_IMAGE",
		},
	}}}
}

// The sample events are what the functions are invoked with by hand (`sam
// local invoke -e`) and by the emulator tests: each decodes into its AWS
// shape, and the stream sample is exactly what the worker sample appends.
func TestSampleEvents(t *testing.T) {
	if *update {
		b, err := json.MarshalIndent(streamSample(t), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("../events/stream.json", append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := sampleCommand(t)
	if cmd.Type != model.CommandCreateWorkflow {
		t.Fatalf("events/worker.json: a %s, want %s", cmd.Type, model.CommandCreateWorkflow)
	}
	var stream events.DynamoDBEvent
	readSample(t, "stream.json", &stream)
	got, err := table.StreamEvents(stream.Records[0])
	if err != nil {
		t.Fatalf("events/stream.json: %v", err)
	}
	if len(got) != 1 || got[0].Type != model.EventWorkflowCreated || got[0].CommandUUID != cmd.CommandUUID {
		t.Fatalf("events/stream.json holds %+v, want the WorkflowCreated of the worker sample's command (run go test ./app -run TestSampleEvents -update)", got)
	}
	var api events.APIGatewayV2HTTPRequest
	readSample(t, "api.json", &api)
	if api.RequestContext.HTTP.Method != "POST" || api.RawPath != "/v1/workflows" || !json.Valid([]byte(api.Body)) {
		t.Fatalf("events/api.json: %s %s %q", api.RequestContext.HTTP.Method, api.RawPath, api.Body)
	}
	var tick events.CloudWatchEvent
	readSample(t, "cleanup.json", &tick)
	if tick.DetailType != "Scheduled Event" || tick.Time.IsZero() || tick.Time.After(time.Now().Add(24*time.Hour*365*10)) {
		t.Fatalf("events/cleanup.json: %+v", tick)
	}
}
