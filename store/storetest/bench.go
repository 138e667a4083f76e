package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// Bench runs the store benchmarks. newStore is called once per
// sub-benchmark and arranges the store's Close (b.Cleanup) itself. Each
// sub-benchmark reports ns/op and, where it helps, a rate (appends/s,
// puts/s, ...), so backends can be compared side by side.
func Bench(b *testing.B, newStore func(b *testing.B) store.Store) {
	ctx := context.Background()

	b.Run("append", func(b *testing.B) {
		s := newStore(b)
		prefix := NewAggregateID()
		events := make([]model.Event, b.N)
		for i := range events {
			events[i] = NewEvent(fmt.Sprintf("%s-%d", prefix, i), 1)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := s.Append(ctx, events[i:i+1]); err != nil {
				b.Fatalf("Append: got error %v, want nil", err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	})

	b.Run("append_parallel", func(b *testing.B) {
		s := newStore(b)
		prefix := NewAggregateID()
		var next atomic.Int64
		// Many more goroutines than CPUs: appends wait on the disk, and a
		// backend that groups concurrent commits should gain from it.
		b.SetParallelism(16)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			agg := fmt.Sprintf("%s-%d", prefix, next.Add(1))
			seq := int64(0)
			for pb.Next() {
				seq++
				if err := s.Append(ctx, []model.Event{NewEvent(agg, seq)}); err != nil {
					b.Errorf("Append: got error %v, want nil", err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	})

	b.Run("load", func(b *testing.B) {
		s := newStore(b)
		const aggregates = 100
		ids := make([]string, aggregates)
		for i := range ids {
			ids[i] = NewAggregateID()
			MustAppend(b, s, NewEvents(ids[i], 1, 10)...)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			events, err := s.Load(ctx, ids[i%aggregates], 0)
			if err != nil || len(events) != 10 {
				b.Fatalf("Load: got (%d events, %v), want (10, nil)", len(events), err)
			}
		}
		b.ReportMetric(float64(b.N)*10/b.Elapsed().Seconds(), "events/s")
	})

	b.Run("put_view", func(b *testing.B) {
		s := newStore(b)
		const views = 1000
		xs := make([]model.Execution, views)
		for i := range xs {
			xs[i] = NewExecution(uuid.New(), model.ExecutionPending, occurredAt.Add(time.Duration(i)), 0)
		}
		statuses := []string{model.ExecutionPending, model.ExecutionRunning}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			x := &xs[i%views]
			x.Version++
			x.Status = statuses[x.Version%2]     // every put moves the status indexes
			x.Due, _ = x.DueAt(15 * time.Minute) // and the due index, as the projector sets it
			if err := s.PutExecution(ctx, *x, x.Version-1); err != nil {
				b.Fatalf("PutExecution: got error %v, want nil", err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
	})

	b.Run("get_view", func(b *testing.B) {
		s := newStore(b)
		const views = 1000
		ids := make([]uuid.UUID, views)
		for i := range ids {
			x := NewExecution(uuid.New(), model.ExecutionRunning, occurredAt, 1)
			MustPutExecution(b, s, x, 0)
			ids[i] = x.WorkflowExecutionUUID
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := s.GetExecution(ctx, ids[i%views]); err != nil {
				b.Fatalf("GetExecution: got error %v, want nil", err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
	})
}
