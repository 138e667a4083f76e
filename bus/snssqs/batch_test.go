package snssqs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// recorder is a batch sender that records its batches; while gate is
// non-nil each send waits for it, so items pile up behind a batch in flight.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	gate    chan struct{}
	held    int // items of batches waiting at the gate
	fail    map[int]error
}

func (r *recorder) send(ctx context.Context, items []int) ([]error, error) {
	if r.gate != nil {
		r.mu.Lock()
		r.held += len(items)
		r.mu.Unlock()
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, append([]int(nil), items...))
	errs := make([]error, len(items))
	for i, it := range items {
		errs[i] = r.fail[it]
	}
	return errs, nil
}

func TestBatcherSendsALoneItemAtOnce(t *testing.T) {
	r := &recorder{}
	b := &batcher[int]{send: r.send}
	for i := range 3 {
		if err := b.do(t.Context(), i); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(r.batches) != "[[0] [1] [2]]" {
		t.Fatalf("batches: got %v, want one per item when they come one at a time", r.batches)
	}
}

func TestBatcherGroupsItemsThatWaitBehindABatch(t *testing.T) {
	r := &recorder{gate: make(chan struct{}), fail: map[int]error{7: errors.New("item 7 refused")}}
	b := &batcher[int]{send: r.send}
	const n = 25
	errs := make([]error, n)
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = b.do(t.Context(), 0) }) // the first batch, held at the gate
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.senders == 1 && len(b.queue) == 0 })
	for i := 1; i < n; i++ {
		wg.Go(func() { errs[i] = b.do(t.Context(), i) })
	}
	// Every item is queued, or in a batch held at the gate (full batches
	// start senders of their own).
	waitFor(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(b.queue)+r.held == n
	})
	close(r.gate)
	wg.Wait()
	seen := map[int]bool{}
	for _, batch := range r.batches {
		if len(batch) > maxBatch {
			t.Fatalf("a batch of %d items, over %d", len(batch), maxBatch)
		}
		for _, it := range batch {
			if seen[it] {
				t.Fatalf("item %d sent twice", it)
			}
			seen[it] = true
		}
	}
	if len(seen) != n || len(r.batches) > 5 {
		t.Fatalf("sent %d items in %d batches (%v), want all %d in at most 5", len(seen), len(r.batches), r.batches, n)
	}
	for i, err := range errs {
		if (i == 7) != (err != nil) {
			t.Errorf("item %d: got error %v", i, err)
		}
	}
}

func TestBatcherCallerStopsWaitingWhenItsContextEnds(t *testing.T) {
	r := &recorder{gate: make(chan struct{})}
	b := &batcher[int]{send: r.send}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if err := b.do(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error", err)
	}
	close(r.gate) // the batch still goes, for whoever else joined it
	waitFor(t, func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.batches) == 1 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Items with a size fill a batch up to maxBytes in all; an item over it
// goes alone.
func TestBatcherKeepsBatchesUnderTheirByteLimit(t *testing.T) {
	r := &recorder{gate: make(chan struct{})}
	b := &batcher[int]{send: r.send, size: func(n int) int { return n }, maxBytes: 100}
	sizes := []int{1, 60, 50, 30, 20, 150, 5}
	var wg sync.WaitGroup
	wg.Go(func() { b.do(t.Context(), 1) }) // held at the gate; the rest queue up behind it
	waitFor(t, func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.held == 1 })
	for _, n := range sizes[1:] {
		wg.Go(func() { b.do(t.Context(), n) })
		waitFor(t, func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return slices.ContainsFunc(b.queue, func(c *batchCall[int]) bool { return c.item == n })
		})
	}
	close(r.gate)
	wg.Wait()
	for _, batch := range r.batches {
		total := 0
		for _, n := range batch {
			total += n
		}
		if total > 100 && len(batch) > 1 {
			t.Errorf("batch %v holds %d bytes, over 100", batch, total)
		}
	}
	if fmt.Sprint(r.batches) != "[[1] [60] [50 30 20] [150] [5]]" {
		t.Errorf("batches %v, want [[1] [60] [50 30 20] [150] [5]]", r.batches)
	}
}
