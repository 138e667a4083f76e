package workers_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store/pebble"
	"github.com/workflowd/workflowd/workers"
)

var callLatency = flag.Duration("call-latency", 5*time.Millisecond, "BenchmarkStreamBatch: the latency of every store and bus call")

// BenchmarkStreamBatch measures how many records a second one stream shard
// carries through HandleDynamoDBEvent with the projector and the dispatcher
// (what the stream function runs) when every store and bus call takes
// -call-latency (an AWS round trip) and next to no CPU: the embedded store in
// memory and a publisher behind a wait. On the local stack the emulators'
// CPU bounds the same path first (app.BenchmarkStreamShard); this isolates
// what the handler itself allows. Batches go one at a time, of 100 records
// (the stream function's BatchSize) and of 1,000 (ddbstream's).
func BenchmarkStreamBatch(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch_%d", size), func(b *testing.B) {
			st, err := pebble.Open(pebble.Options{Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			slow := &slowStore{Store: st, d: *callLatency}
			h := workers.EventHandlers{
				&workers.Projector{Log: slow, Views: slow, Logger: quiet, MaxDelay: 15 * time.Minute},
				&workers.Dispatcher{Publisher: slowPublisher{*callLatency}, Logger: quiet, MaxDelay: 15 * time.Minute},
			}
			appends := executionAppends(b, 2000)
			decode := func(rec events.DynamoDBEventRecord) ([]model.Event, error) {
				i, err := strconv.Atoi(rec.Change.SequenceNumber)
				return appends[i], err
			}
			var records []events.DynamoDBEventRecord
			for i := range appends {
				records = append(records, events.DynamoDBEventRecord{Change: events.DynamoDBStreamRecord{SequenceNumber: strconv.Itoa(i)}})
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < len(records); i += size {
				ev := events.DynamoDBEvent{Records: records[i:min(i+size, len(records))]}
				if resp := workers.HandleDynamoDBEvent(context.Background(), h, decode, ev, quiet); len(resp.BatchItemFailures) > 0 {
					b.Fatalf("batch at %d: %d failures", i, len(resp.BatchItemFailures))
				}
			}
			rate := float64(len(records)) / time.Since(start).Seconds()
			b.ReportMetric(rate, "records/s")
			fmt.Printf("stream batch of %d (%d records, %v a call): %.0f records/s through the projector and the dispatcher\n", size, len(records), *callLatency, rate)
		})
	}
}

// executionAppends returns the appends of n executions of a one-step http
// workflow, two each (the append that creates and begins it; its step's
// outcome, which ends it),
// in the order of the stream: each execution's after the one before.
func executionAppends(b testing.TB, n int) [][]model.Event {
	b.Helper()
	now := time.Now().UTC()
	wf := model.Workflow{WorkflowUUID: uuid.New(), Name: "w", Version: 1, Seq: 1,
		Steps: []model.StepDefinition{{Name: "charge", Type: model.StepHTTP, URL: "http://127.0.0.1:9/charge"}}}
	var out [][]model.Event
	for range n {
		id := uuid.New()
		created, err := model.DecideExecution(model.Execution{}, model.NewCommand(uuid.New(),
			model.StartExecution{WorkflowExecutionUUID: id, WorkflowUUID: wf.WorkflowUUID}, now), &wf, now)
		if err != nil {
			b.Fatal(err)
		}
		x, err := model.FoldExecution(model.Execution{}, created)
		if err != nil {
			b.Fatal(err)
		}
		ended, err := model.DecideStepOutcome(x, model.RunStepCommand(id, 0, 0, 1, now), model.StepOutcome{Output: json.RawMessage(`{"ok":true}`), Claim: x.Version}, now)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, created, ended)
	}
	return out
}

// slowStore is the embedded store with a round trip's wait before each call
// the projector makes.
type slowStore struct {
	*pebble.Store
	d time.Duration
}

func (s *slowStore) Load(ctx context.Context, id string, after int64) ([]model.Event, error) {
	time.Sleep(s.d)
	return s.Store.Load(ctx, id, after)
}

func (s *slowStore) GetExecution(ctx context.Context, id uuid.UUID) (model.Execution, error) {
	time.Sleep(s.d)
	return s.Store.GetExecution(ctx, id)
}

func (s *slowStore) PutExecution(ctx context.Context, x model.Execution, prev int64) error {
	time.Sleep(s.d)
	return s.Store.PutExecution(ctx, x, prev)
}

// slowPublisher takes a round trip's wait for each publish, and keeps
// nothing.
type slowPublisher struct{ d time.Duration }

func (p slowPublisher) Publish(context.Context, bus.Message) error {
	time.Sleep(p.d)
	return nil
}
