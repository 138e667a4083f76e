package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/workflowd/workflowd/internal/backoff"
)

func TestExponentialDoublesUpToTheCeiling(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name          string
		n             int
		base, ceiling time.Duration
		want          time.Duration
	}{
		{"first_retry_waits_the_base", 1, 200 * ms, 10 * time.Second, 200 * ms},
		{"below_one_counts_as_one", 0, time.Second, 30 * time.Second, time.Second},
		{"negative_counts_as_one", -3, time.Second, 30 * time.Second, time.Second},
		{"doubles", 4, time.Second, 30 * time.Second, 8 * time.Second},
		{"stops_at_the_ceiling", 6, time.Second, 30 * time.Second, 30 * time.Second},
		{"huge_n_does_not_overflow", 1 << 30, 10 * ms, 1280 * ms, 1280 * ms},
		{"base_over_ceiling_is_the_ceiling", 1, time.Minute, time.Second, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backoff.Exponential(tt.n, tt.base, tt.ceiling); got != tt.want {
				t.Errorf("Exponential(%d, %v, %v): got %v, want %v", tt.n, tt.base, tt.ceiling, got, tt.want)
			}
		})
	}
}

func TestSleepEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := backoff.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on a cancelled context: got %v, want context.Canceled", err)
	}
	if err := backoff.Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep of 1ms: got %v, want nil", err)
	}
}
