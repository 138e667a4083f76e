// Package backoff is the project's one exponential backoff and its one
// sleep that a context cuts short. Every retry loop (the consumers, the
// feed and stream readers, the DynamoDB store's unprocessed keys and table
// waits) uses them, each with its own base and ceiling.
package backoff

import (
	"context"
	"time"
)

// Exponential returns the wait before retry n (1, 2, …): base, doubled
// n-1 times, at most ceiling. An n below 1 counts as 1.
func Exponential(n int, base, ceiling time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// Sleep waits d, or until ctx is done; it returns ctx's error then, and nil
// after the whole wait.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
