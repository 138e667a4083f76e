package workers_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/workers"
)

type funcHandler func(ctx context.Context, body []byte, n int) error

func (f funcHandler) Handle(ctx context.Context, body []byte, n int) error { return f(ctx, body, n) }

func TestSQSEventReportsOnlyFailedRecords(t *testing.T) {
	var mu sync.Mutex
	var seen []int
	h := funcHandler(func(_ context.Context, body []byte, n int) error {
		mu.Lock()
		seen = append(seen, n)
		mu.Unlock()
		switch string(body) {
		case "bad":
			return errors.New("cannot decode")
		case "later":
			return &workers.RetryError{After: 3 * time.Second, Reason: "not yet"}
		}
		return nil
	})
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m1", Body: "ok", Attributes: map[string]string{"ApproximateReceiveCount": "1"}},
		{MessageId: "m2", Body: "bad", Attributes: map[string]string{"ApproximateReceiveCount": "3"}},
		{MessageId: "m3", Body: "ok"},
		{MessageId: "m4", Body: "later", Attributes: map[string]string{"ApproximateReceiveCount": "2"}},
	}}
	retried := map[string]time.Duration{}
	retry := func(_ context.Context, rec events.SQSMessage, after time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		retried[rec.MessageId] = after
		return nil
	}
	resp := workers.HandleSQSEvent(context.Background(), h, ev, quiet, retry)
	var got []string
	for _, f := range resp.BatchItemFailures {
		got = append(got, f.ItemIdentifier)
	}
	if want := []string{"m2", "m4"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("failures: got %v, want %v", got, want)
	}
	slices.Sort(seen) // the records are handled at once
	if want := []int{1, 1, 2, 3}; !reflect.DeepEqual(seen, want) {
		t.Fatalf("receive counts seen: got %v, want %v", seen, want)
	}
	if want := map[string]time.Duration{"m4": 3 * time.Second}; !reflect.DeepEqual(retried, want) {
		t.Fatalf("made visible sooner: got %v, want %v (only the record that asked)", retried, want)
	}
}

type recordingEvents struct {
	batches [][]model.Event
	failOn  int64 // seq that fails
}

func (r *recordingEvents) Handle(_ context.Context, evs []model.Event) error {
	for _, e := range evs {
		if e.Seq == r.failOn {
			return fmt.Errorf("cannot project seq %d", e.Seq)
		}
	}
	r.batches = append(r.batches, evs)
	return nil
}

// decodeSeq is a stand-in decoder: the record's NewImage "seq" number is the
// event, and a record without one carries nothing (a TTL removal).
func decodeSeq(rec events.DynamoDBEventRecord) ([]model.Event, error) {
	v, ok := rec.Change.NewImage["seq"]
	if !ok {
		return nil, nil
	}
	n, err := v.Integer()
	if err != nil {
		return nil, err
	}
	return []model.Event{{AggregateID: "execution:" + uuid.NewString(), Seq: n}}, nil
}

func streamRecord(seq string, n string) events.DynamoDBEventRecord {
	rec := events.DynamoDBEventRecord{EventName: "INSERT", Change: events.DynamoDBStreamRecord{SequenceNumber: seq}}
	if n != "" {
		rec.Change.NewImage = map[string]events.DynamoDBAttributeValue{"seq": events.NewNumberAttribute(n)}
	}
	return rec
}

func TestDynamoDBEventReportsTheFailingRecordAndTheRest(t *testing.T) {
	h := &recordingEvents{failOn: 3}
	ev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		streamRecord("100", "1"), streamRecord("101", ""), streamRecord("102", "2"),
		streamRecord("103", "3"), streamRecord("104", "4"),
	}}
	resp := workers.HandleDynamoDBEvent(context.Background(), h, decodeSeq, ev, quiet)
	var got []string
	for _, f := range resp.BatchItemFailures {
		got = append(got, f.ItemIdentifier)
	}
	if want := []string{"103", "104"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("failures: got %v, want %v", got, want)
	}
	if len(h.batches) != 2 {
		t.Fatalf("handled batches before the failure: got %d, want 2", len(h.batches))
	}
	// The retry (what Lambda sends next) converges.
	h.failOn = 0
	resp = workers.HandleDynamoDBEvent(context.Background(), h, decodeSeq, events.DynamoDBEvent{Records: ev.Records[3:]}, quiet)
	if len(resp.BatchItemFailures) != 0 || len(h.batches) != 4 {
		t.Fatalf("retry: failures %v, batches %d", resp.BatchItemFailures, len(h.batches))
	}
}
