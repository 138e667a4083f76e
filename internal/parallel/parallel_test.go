package parallel_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/workflowd/workflowd/internal/parallel"
)

// Each calls f once per index, never more than limit at once, and returns
// the errors in index order.
func TestEachBoundsAndOrders(t *testing.T) {
	var running, most atomic.Int32
	calls := make([]atomic.Int32, 50)
	errs := parallel.Each(50, 4, func(i int) error {
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		defer running.Add(-1)
		calls[i].Add(1)
		if i%7 == 0 {
			return errors.New("seven")
		}
		return nil
	})
	if m := most.Load(); m > 4 || m < 1 {
		t.Fatalf("at most %d at once, want 1 to 4", m)
	}
	for i, err := range errs {
		if calls[i].Load() != 1 || (err != nil) != (i%7 == 0) {
			t.Fatalf("index %d: %d calls, error %v", i, calls[i].Load(), err)
		}
	}
}
