package bustest

import (
	"bytes"
	"testing"
	"time"

	"github.com/workflowd/workflowd/bus"
)

// benchBody is about the size of a command.
var benchBody = bytes.Repeat([]byte("x"), 512)

// Bench measures a backend: publishes one goroutine at a time and from many
// (which is where a backend that batches its syncs shows it), and the round
// trip publish, receive, delete. Each reports msgs/s beside ns/op.
// newBackend is called once per sub-benchmark run and must return a fresh,
// empty backend, closing it in b.Cleanup.
func Bench(b *testing.B, newBackend func(b *testing.B, cfg Config) Backend) {
	cfg := Config{Queues: []string{Workflows, Executions}, VisibilityTimeout: 30 * time.Second, MaxReceiveCount: 5}
	msg := bus.Message{Body: benchBody, Attributes: map[string]string{bus.TargetAttribute: Workflows}}

	b.Run("publish_sequential", func(b *testing.B) {
		be := newBackend(b, cfg)
		for b.Loop() {
			if err := be.Publish(b.Context(), msg); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})

	b.Run("publish_parallel", func(b *testing.B) {
		be := newBackend(b, cfg)
		b.SetParallelism(16) // 16 × GOMAXPROCS publishers
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := be.Publish(b.Context(), msg); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b)
	})

	b.Run("round_trip_sequential", func(b *testing.B) {
		be := newBackend(b, cfg)
		q := MustQueue(b, be, Workflows)
		for b.Loop() {
			roundTrip(b, be, q, msg)
		}
		reportRate(b)
	})

	b.Run("round_trip_parallel", func(b *testing.B) {
		be := newBackend(b, cfg)
		q := MustQueue(b, be, Workflows)
		b.SetParallelism(8)
		b.ResetTimer()
		// Each goroutine publishes one message, then receives one (maybe
		// another's) and deletes it: there is always one to receive.
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !roundTrip(b, be, q, msg) {
					return
				}
			}
		})
		reportRate(b)
	})
}

func roundTrip(b *testing.B, p bus.Publisher, q bus.Queue, msg bus.Message) bool {
	ctx := b.Context()
	if err := p.Publish(ctx, msg); err != nil {
		b.Error(err)
		return false
	}
	for {
		ds, err := q.Receive(ctx, 1, 5*time.Second)
		if err != nil {
			b.Error(err)
			return false
		}
		if len(ds) == 0 {
			continue
		}
		if err := q.Delete(ctx, ds[0].ReceiptHandle); err != nil {
			b.Error(err)
			return false
		}
		return true
	}
}

func reportRate(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "msgs/s")
	}
}
