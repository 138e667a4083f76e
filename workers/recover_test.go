package workers_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/workers"
)

// panicky panics on the bodies and aggregates it is told to.
type panicky struct{ on string }

func (p panicky) Handle(_ context.Context, body []byte, _ int) error {
	if string(body) == p.on {
		panic("boom: " + p.on)
	}
	return nil
}

func (p panicky) HandleEvents(_ context.Context, es []model.Event) error {
	for _, e := range es {
		if e.AggregateID == p.on {
			panic("boom: " + p.on)
		}
	}
	return nil
}

type eventsFunc func(context.Context, []model.Event) error

func (f eventsFunc) Handle(ctx context.Context, es []model.Event) error { return f(ctx, es) }

// A handler that panics does not take the process down: the message it
// was handling counts as a failed receive, with the panic as its reason,
// and after the maximum receive count it is in the dead-letter queue; the
// other messages are handled.
func TestAPanickingHandlerFailsItsMessageOnly(t *testing.T) {
	t.Run("consume", func(t *testing.T) {
		dead, b := consumeUntilDead(t, panicky{on: "crash"}, "crash", "fine")
		if len(dead) != 1 || string(dead[0].Body) != "crash" || dead[0].ReceiveCount != 2 {
			t.Fatalf("dead letters: %+v, want the panicking message after 2 receives", dead)
		}
		if reason := dead[0].Attributes["lastError"]; !strings.Contains(reason, "panicked: boom: crash") {
			t.Errorf("the dead letter's reason is %q, want the panic", reason)
		}
		if st := b.Stats(bus.QueueExecutions); st.Visible+st.InFlight+st.Delayed != 0 {
			t.Errorf("queue after the run: %+v, want the other message handled", st)
		}
	})
	t.Run("lambda_sqs", func(t *testing.T) {
		ev := events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m1", Body: "fine"}, {MessageId: "m2", Body: "crash"}}}
		resp := workers.HandleSQSEvent(context.Background(), panicky{on: "crash"}, ev, quiet, nil)
		if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m2" {
			t.Fatalf("failures: %+v, want m2 only", resp.BatchItemFailures)
		}
	})
	t.Run("lambda_stream", func(t *testing.T) {
		a, b := "execution:a", "execution:b"
		p := panicky{on: a}
		ev := events.DynamoDBEvent{Records: []events.DynamoDBEventRecord{streamRecord("100", a, 1), streamRecord("101", b, 1)}}
		resp := workers.HandleDynamoDBEvent(context.Background(), eventsFunc(p.HandleEvents), decodeRecord, ev, quiet)
		if got, want := failures(resp), []string{"100"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("failures: %v, want %v (the panicking aggregate's record)", got, want)
		}
	})
}
