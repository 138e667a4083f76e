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

// recordingEvents records the batches of events it handles, and fails any
// batch that holds the event failOn (aggregate and seq).
type recordingEvents struct {
	mu      sync.Mutex
	batches [][]model.Event
	failOn  model.Event
}

func (r *recordingEvents) Handle(_ context.Context, evs []model.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range evs {
		if e.AggregateID == r.failOn.AggregateID && e.Seq == r.failOn.Seq {
			return fmt.Errorf("cannot project %s seq %d", e.AggregateID, e.Seq)
		}
	}
	r.batches = append(r.batches, evs)
	return nil
}

// seqsOf returns the seqs of aggregate's events handled, in order.
func (r *recordingEvents) seqsOf(aggregate string) []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int64
	for _, b := range r.batches {
		for _, e := range b {
			if e.AggregateID == aggregate {
				out = append(out, e.Seq)
			}
		}
	}
	return out
}

// decodeRecord is a stand-in decoder: a record's NewImage holds one event,
// its aggregate ("agg") and seq ("seq"); a record without them carries
// nothing (a TTL removal), and one with "bad" cannot be decoded.
func decodeRecord(rec events.DynamoDBEventRecord) ([]model.Event, error) {
	if _, bad := rec.Change.NewImage["bad"]; bad {
		return nil, errors.New("not an events item")
	}
	v, ok := rec.Change.NewImage["seq"]
	if !ok {
		return nil, nil
	}
	n, err := v.Integer()
	if err != nil {
		return nil, err
	}
	return []model.Event{{AggregateID: rec.Change.NewImage["agg"].String(), Seq: n}}, nil
}

// streamRecord is the record sequenceNumber of event seq of aggregate agg
// ("" for a record without events).
func streamRecord(sequenceNumber, agg string, seq int) events.DynamoDBEventRecord {
	rec := events.DynamoDBEventRecord{EventName: "INSERT", Change: events.DynamoDBStreamRecord{SequenceNumber: sequenceNumber}}
	if agg != "" {
		rec.Change.NewImage = map[string]events.DynamoDBAttributeValue{
			"agg": events.NewStringAttribute(agg), "seq": events.NewNumberAttribute(fmt.Sprint(seq)),
		}
	}
	return rec
}

func failures(resp events.DynamoDBEventResponse) []string {
	var got []string
	for _, f := range resp.BatchItemFailures {
		got = append(got, f.ItemIdentifier)
	}
	return got
}

// A failing record holds up the later records of its aggregate only: it is
// reported (the first failure of its aggregate), the other aggregates are
// handled, and the retry from it converges.
func TestDynamoDBEventReportsTheFirstFailedRecordOfEachAggregate(t *testing.T) {
	a, b, c := "execution:a", "execution:b", "execution:c"
	h := &recordingEvents{failOn: model.Event{AggregateID: a, Seq: 2}}
	ev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		streamRecord("100", a, 1), streamRecord("101", b, 1), streamRecord("102", "", 0),
		streamRecord("103", a, 2), streamRecord("104", b, 2), streamRecord("105", a, 3),
		streamRecord("106", c, 1), streamRecord("107", b, 3),
	}}
	resp := workers.HandleDynamoDBEvent(context.Background(), h, decodeRecord, ev, quiet)
	if got, want := failures(resp), []string{"103"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("failures: got %v, want %v (a's first failed record only)", got, want)
	}
	if got, want := h.seqsOf(a), []int64{1}; !reflect.DeepEqual(got, want) {
		t.Errorf("a: handled seqs %v, want %v (none after the failure)", got, want)
	}
	if got, want := h.seqsOf(b), []int64{1, 2, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("b: handled seqs %v, want %v", got, want)
	}
	if got, want := h.seqsOf(c), []int64{1}; !reflect.DeepEqual(got, want) {
		t.Errorf("c: handled seqs %v, want %v", got, want)
	}
	// What the stream sends next: the records from the failed one on.
	h.failOn = model.Event{}
	resp = workers.HandleDynamoDBEvent(context.Background(), h, decodeRecord, events.DynamoDBEvent{Records: ev.Records[3:]}, quiet)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("retry: failures %v, want none", failures(resp))
	}
	if got, want := h.seqsOf(a), []int64{1, 2, 3}; !reflect.DeepEqual(got, want) {
		t.Errorf("a after the retry: handled seqs %v, want %v", got, want)
	}
}

// A record that cannot be decoded names no aggregate: it and every record
// after it are reported, and only the records before it are handled.
func TestDynamoDBEventStopsAtARecordThatCannotBeDecoded(t *testing.T) {
	h := &recordingEvents{}
	bad := streamRecord("102", "", 0)
	bad.Change.NewImage = map[string]events.DynamoDBAttributeValue{"bad": events.NewBooleanAttribute(true)}
	ev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{
		streamRecord("100", "execution:a", 1), streamRecord("101", "execution:b", 1), bad,
		streamRecord("103", "execution:a", 2), streamRecord("104", "execution:c", 1),
	}}
	resp := workers.HandleDynamoDBEvent(context.Background(), h, decodeRecord, ev, quiet)
	if got, want := failures(resp), []string{"102", "103", "104"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("failures: got %v, want %v", got, want)
	}
	if len(h.seqsOf("execution:a")) != 1 || len(h.seqsOf("execution:b")) != 1 || len(h.seqsOf("execution:c")) != 0 {
		t.Fatalf("handled: a %v, b %v, c %v; want the two records before the bad one", h.seqsOf("execution:a"), h.seqsOf("execution:b"), h.seqsOf("execution:c"))
	}
}

// The aggregates of a batch are handled at once, each in stream order: an
// aggregate that waits for another's events does not hold it up.
func TestDynamoDBEventHandlesAggregatesAtOnceEachInOrder(t *testing.T) {
	bDone := make(chan struct{})
	var mu sync.Mutex
	seqs := map[string][]int64{}
	h := eventFunc(func(_ context.Context, evs []model.Event) error {
		if evs[0].AggregateID == "execution:a" {
			select {
			case <-bDone:
			case <-time.After(5 * time.Second):
				return errors.New("b was not handled while a waited: the aggregates run one after another")
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for _, e := range evs {
			seqs[e.AggregateID] = append(seqs[e.AggregateID], e.Seq)
		}
		if evs[0].AggregateID == "execution:b" {
			close(bDone)
		}
		return nil
	})
	var recs []events.DynamoDBEventRecord
	for i := 1; i <= 20; i++ {
		recs = append(recs, streamRecord(fmt.Sprint(100+2*i), "execution:a", i), streamRecord(fmt.Sprint(101+2*i), "execution:b", i))
	}
	resp := workers.HandleDynamoDBEvent(context.Background(), h, decodeRecord, events.DynamoDBEvent{Records: recs}, quiet)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("failures: %v", failures(resp))
	}
	for _, agg := range []string{"execution:a", "execution:b"} {
		got := seqs[agg]
		if len(got) != 20 || !slices.IsSorted(got) {
			t.Errorf("%s: handled seqs %v, want 1 to 20 in order", agg, got)
		}
	}
}

type eventFunc func(ctx context.Context, evs []model.Event) error

func (f eventFunc) Handle(ctx context.Context, evs []model.Event) error { return f(ctx, evs) }
