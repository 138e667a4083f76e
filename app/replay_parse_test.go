package app_test

import (
	"strings"
	"testing"

	"github.com/workflowd/workflowd/app"
)

const goodFailure = `{"timestamp":"2026-12-03T10:00:05Z","DDBStreamBatchInfo":{"shardId":"shardId-00000001796297495203-c47c9703",` +
	`"startSequenceNumber":"000000000000000014057","endSequenceNumber":"000000000000000014060",` +
	`"approximateArrivalOfFirstRecord":"2026-12-03T10:00:00Z","approximateArrivalOfLastRecord":"2026-12-03T10:00:01Z",` +
	`"batchSize":4,"streamArn":"arn:aws:dynamodb:us-east-1:1:table/wf-events/stream/2026-12-01T00:00:00.000"}}`

// A message that is not an on-failure destination message of a DynamoDB
// stream, or one with a field missing or wrong, is refused with an error
// naming what is wrong.
func TestParseStreamFailure(t *testing.T) {
	if f, err := app.ParseStreamFailure([]byte(goodFailure)); err != nil || f.Batch.BatchSize != 4 || f.Batch.ShardID == "" {
		t.Fatalf("a good message: %+v, %v", f, err)
	}
	for _, tt := range []struct{ name, body, want string }{
		{"not_json", `shard`, "not an on-failure destination message"},
		{"trailing_data", goodFailure + `{}`, "data after"},
		{"an_sqs_event_instead", `{"Records":[]}`, "no DDBStreamBatchInfo"},
		{"no_shard", strings.Replace(goodFailure, `"shardId":"shardId-00000001796297495203-c47c9703",`, ``, 1), "shardId is missing"},
		{"not_a_stream_arn", strings.Replace(goodFailure, `/stream/`, `/index/`, 1), "not a DynamoDB stream ARN"},
		{"sequence_not_a_number", strings.Replace(goodFailure, `"000000000000000014060"`, `"1e9"`, 1), "not numbers"},
		{"ends_before_it_starts", strings.Replace(goodFailure, `"000000000000000014060"`, `"000000000000000014000"`, 1), "ends"},
		{"no_arrivals", strings.Replace(goodFailure, `"approximateArrivalOfFirstRecord":"2026-12-03T10:00:00Z",`, ``, 1), "not a window of time"},
		{"arrival_not_a_time", strings.Replace(goodFailure, `"2026-12-03T10:00:00Z"`, `"yesterday"`, 1), "not an on-failure destination message"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := app.ParseStreamFailure([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// ParseStreamFailure never panics, and what it accepts is a usable range.
func FuzzParseStreamFailure(f *testing.F) {
	f.Add([]byte(goodFailure))
	f.Add([]byte(`{"DDBStreamBatchInfo":{}}`))
	f.Add([]byte(`{"DDBStreamBatchInfo":{"startSequenceNumber":"9","endSequenceNumber":"10"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fail, err := app.ParseStreamFailure(body)
		if err != nil {
			return
		}
		b := fail.Batch
		if b.ShardID == "" || b.StartSequenceNumber == "" || b.EndSequenceNumber == "" || b.ApproximateArrivalOfFirstRecord.IsZero() {
			t.Fatalf("accepted a message without its range: %+v", b)
		}
	})
}
