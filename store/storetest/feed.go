package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// FeedStore is a backend with a change feed (the embedded one).
type FeedStore interface {
	store.Store
	store.Feed
}

// MustReadFeed reads the feed and fails the test on error.
func MustReadFeed(tb testing.TB, s store.Feed, after uint64, limit int, wait time.Duration) []store.FeedEntry {
	tb.Helper()
	entries, err := s.ReadFeed(context.Background(), after, limit, wait)
	if err != nil {
		tb.Fatalf("ReadFeed(after %d, limit %d, wait %v): got error %v, want nil", after, limit, wait, err)
	}
	return entries
}

// DrainFeed reads every entry after after without waiting and returns them
// (checking that Pos increases) and the last Pos (after if there is none).
func DrainFeed(tb testing.TB, s store.Feed, after uint64) ([]store.FeedEntry, uint64) {
	tb.Helper()
	var all []store.FeedEntry
	for {
		entries := MustReadFeed(tb, s, after, 1000, 0)
		if len(entries) == 0 {
			return all, after
		}
		for _, e := range entries {
			if e.Pos <= after {
				tb.Fatalf("ReadFeed(after %d): got Pos %d, want more than %d", after, e.Pos, after)
			}
			after = e.Pos
		}
		all = append(all, entries...)
	}
}

// RunFeed runs the conformance suite of store.Feed. newFeedStore is called
// once per subtest, as for Run; its store may already hold feed entries.
func RunFeed(t *testing.T, newFeedStore func(t *testing.T) FeedStore) {
	ts := &feedSuite{newFeedStore: newFeedStore}
	runTests(t, nil, []test{
		{"every_append_appears_once_in_commit_order", "", true, ts.everyAppendAppearsOnceInCommitOrder},
		{"read_waits_up_to_wait", "", true, ts.readWaitsUpToWait},
		{"read_returns_early_when_an_append_arrives", "", true, ts.readReturnsEarlyWhenAnAppendArrives},
		{"read_ends_with_the_context", "", true, ts.readEndsWithTheContext},
		{"limit_respected", "", true, ts.limitRespected},
		{"checkpoints_save_and_load", "", true, ts.checkpointsSaveAndLoad},
		{"concurrent_appends_appear_once_and_pos_never_goes_back", "", true, ts.concurrentAppendsAppearOnceAndPosNeverGoesBack},
		{"cancelled_context_is_an_error", "", true, ts.cancelledContextIsAnError},
	})
}

// feedSuite is what the test functions of RunFeed share: the backend's
// constructor.
type feedSuite struct {
	newFeedStore func(t *testing.T) FeedStore
}

// Each successful append is one feed entry, in commit order; refused appends leave none.
func (ts *feedSuite) everyAppendAppearsOnceInCommitOrder(t *testing.T) {
	ctx := context.Background()
	s := ts.newFeedStore(t)
	_, start := DrainFeed(t, s, 0)
	a, b := NewAggregateID(), NewAggregateID()
	appends := [][]model.Event{
		NewEvents(a, 1, 1),
		NewEvents(b, 1, 2),
		NewEvents(a, 2, 3),
		NewEvents(b, 3, 1),
	}
	for _, events := range appends {
		MustAppend(t, s, events...)
	}
	// Refused appends leave no entry.
	WantErr(t, "Append(duplicate)", s.Append(ctx, appends[0]), store.ErrDuplicate)
	WantErr(t, "Append(taken seq)", s.Append(ctx, NewEvents(a, 1, 1)), store.ErrConflict)
	WantErr(t, "Append(invalid)", s.Append(ctx, nil), store.ErrInvalid)

	got, _ := DrainFeed(t, s, start)
	if len(got) != len(appends) {
		t.Fatalf("feed after %d appends: got %d entries, want %d", len(appends), len(got), len(appends))
	}
	for i, e := range got {
		SameEvents(t, fmt.Sprintf("feed entry %d (pos %d)", i, e.Pos), e.Events, appends[i])
	}
}

// ReadFeed with nothing new returns nothing after about its wait, or at once with wait 0.
func (ts *feedSuite) readWaitsUpToWait(t *testing.T) {
	s := ts.newFeedStore(t)
	_, last := DrainFeed(t, s, 0)
	const wait = 150 * time.Millisecond
	begin := time.Now()
	got := MustReadFeed(t, s, last, 10, wait)
	took := time.Since(begin)
	if len(got) != 0 {
		t.Fatalf("ReadFeed with nothing new: got %d entries, want 0", len(got))
	}
	if took < wait/2 || took > wait+5*time.Second {
		t.Fatalf("ReadFeed with nothing new: took %v, want about %v", took, wait)
	}
	begin = time.Now()
	if got := MustReadFeed(t, s, last, 10, 0); len(got) != 0 {
		t.Fatalf("ReadFeed(wait 0): got %d entries, want 0", len(got))
	}
	if took := time.Since(begin); took > time.Second {
		t.Fatalf("ReadFeed(wait 0): took %v, want no waiting", took)
	}
}

// A waiting ReadFeed returns soon after an append, with that append's entry.
func (ts *feedSuite) readReturnsEarlyWhenAnAppendArrives(t *testing.T) {
	ctx := context.Background()
	s := ts.newFeedStore(t)
	_, last := DrainFeed(t, s, 0)
	want := NewEvents(NewAggregateID(), 1, 2)
	type result struct {
		entries []store.FeedEntry
		err     error
		took    time.Duration
	}
	done := make(chan result, 1)
	begin := time.Now()
	go func() {
		entries, err := s.ReadFeed(ctx, last, 10, 30*time.Second)
		done <- result{entries, err, time.Since(begin)}
	}()
	time.Sleep(50 * time.Millisecond) // let the reader wait
	MustAppend(t, s, want...)
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("ReadFeed did not return 10s after an append, want it to return at once")
	}
	if r.err != nil {
		t.Fatalf("ReadFeed: got error %v, want nil", r.err)
	}
	if len(r.entries) != 1 {
		t.Fatalf("ReadFeed: got %d entries, want 1", len(r.entries))
	}
	SameEvents(t, "woken reader's entry", r.entries[0].Events, want)
	if r.took > 10*time.Second {
		t.Fatalf("ReadFeed took %v, want it to return soon after the append", r.took)
	}
}

// A waiting ReadFeed returns, with no entries, when its context ends.
func (ts *feedSuite) readEndsWithTheContext(t *testing.T) {
	ctx := context.Background()
	s := ts.newFeedStore(t)
	_, last := DrainFeed(t, s, 0)
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	entries, _ := s.ReadFeed(cctx, last, 10, 30*time.Second)
	if took := time.Since(begin); took > 10*time.Second {
		t.Fatalf("ReadFeed with a 100ms context: took %v, want it to end with the context", took)
	}
	if len(entries) != 0 {
		t.Fatalf("ReadFeed: got %d entries, want 0", len(entries))
	}
}

// ReadFeed returns at most limit entries, oldest first, and resumes after a page's last Pos.
func (ts *feedSuite) limitRespected(t *testing.T) {
	s := ts.newFeedStore(t)
	_, last := DrainFeed(t, s, 0)
	agg := NewAggregateID()
	for seq := int64(1); seq <= 5; seq++ {
		MustAppend(t, s, NewEvent(agg, seq))
	}
	tests := []struct {
		name  string
		limit int
		want  int
	}{
		{"limit_1", 1, 1},
		{"limit_3", 3, 3},
		{"limit_above_count", 50, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MustReadFeed(t, s, last, tt.limit, 0)
			if len(got) != tt.want {
				t.Fatalf("ReadFeed(limit %d): got %d entries, want %d", tt.limit, len(got), tt.want)
			}
			for i, e := range got {
				if e.Events[0].Seq != int64(i+1) {
					t.Fatalf("entry %d: got seq %d, want %d", i, e.Events[0].Seq, i+1)
				}
			}
		})
	}
	t.Run("resume_after_a_page", func(t *testing.T) {
		page := MustReadFeed(t, s, last, 2, 0)
		rest := MustReadFeed(t, s, page[len(page)-1].Pos, 50, 0)
		if len(rest) != 3 || rest[0].Events[0].Seq != 3 {
			t.Fatalf("ReadFeed after the page: got %d entries starting at seq %d, want 3 from seq 3", len(rest), rest[0].Events[0].Seq)
		}
	})
}

// LoadCheckpoint returns 0 for a new consumer, then the last position each consumer saved.
func (ts *feedSuite) checkpointsSaveAndLoad(t *testing.T) {
	ctx := context.Background()
	s := ts.newFeedStore(t)
	a, b := "storetest-a-"+uuid.NewString(), "storetest-b-"+uuid.NewString()
	if got, err := s.LoadCheckpoint(ctx, a); err != nil || got != 0 {
		t.Fatalf("LoadCheckpoint(new consumer): got (%d, %v), want (0, nil)", got, err)
	}
	steps := []struct {
		consumer string
		pos      uint64
	}{{a, 5}, {b, 2}, {a, 9}, {b, 3}}
	want := map[string]uint64{}
	for _, st := range steps {
		if err := s.SaveCheckpoint(ctx, st.consumer, st.pos); err != nil {
			t.Fatalf("SaveCheckpoint(%s, %d): got error %v, want nil", st.consumer, st.pos, err)
		}
		want[st.consumer] = st.pos
		for c, pos := range want {
			if got, err := s.LoadCheckpoint(ctx, c); err != nil || got != pos {
				t.Fatalf("LoadCheckpoint(%s): got (%d, %v), want (%d, nil)", c, got, err, pos)
			}
		}
	}
}

// A reader racing writers sees each append once, seqs in order, Pos always increasing.
func (ts *feedSuite) concurrentAppendsAppearOnceAndPosNeverGoesBack(t *testing.T) {
	ctx := context.Background()
	s := ts.newFeedStore(t)
	_, start := DrainFeed(t, s, 0)
	const writers, perWriter = 8, 100
	aggs := make([]string, writers)
	owner := make(map[string]int)
	for i := range aggs {
		aggs[i] = NewAggregateID()
		owner[aggs[i]] = i
	}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := int64(1)
			for i := 0; i < perWriter; i++ {
				n := 1 + i%3 // batches of 1, 2 and 3 events
				if err := s.Append(ctx, NewEvents(aggs[w], seq, n)); err != nil {
					t.Errorf("writer %d append %d: got error %v, want nil", w, i, err)
					return
				}
				seq += int64(n)
			}
		}()
	}

	// The reader reads while they write, with small pages and short waits.
	counts, after, problem := readWhileWriting(s, start, owner, writers*perWriter)
	wg.Wait() // before failing: the writers must not outlive the test
	if problem != "" {
		t.Fatal(problem)
	}
	if rest, _ := DrainFeed(t, s, after); len(rest) != 0 {
		t.Fatalf("feed after every append was seen: got %d more entries, want 0", len(rest))
	}
	wantEvents := 0
	for i := 0; i < perWriter; i++ {
		wantEvents += 1 + i%3
	}
	for w, c := range counts {
		if c.entries != perWriter || c.events != wantEvents {
			t.Fatalf("writer %d: got %d entries with %d events, want %d with %d", w, c.entries, c.events, perWriter, wantEvents)
		}
	}
}

// feedSeen counts what the reader of
// concurrentAppendsAppearOnceAndPosNeverGoesBack saw of one writer.
type feedSeen struct{ entries, events int }

// readWhileWriting reads the feed after start, in small pages with short
// waits, until it has seen appends entries or 60 seconds have passed. owner
// maps each writer's aggregate to the writer's index. It returns what it
// saw of each writer, the last Pos read, and the first problem found ("" if
// none): an entry of an aggregate nobody wrote, a seq skipped or repeated,
// a Pos that does not increase, an error, or too few entries in time.
func readWhileWriting(s FeedStore, start uint64, owner map[string]int, appends int) (counts []feedSeen, after uint64, problem string) {
	ctx := context.Background()
	writers := len(owner)
	counts = make([]feedSeen, writers)
	nextSeq := make([]int64, writers)
	for i := range nextSeq {
		nextSeq[i] = 1
	}
	after = start
	total := 0
	deadline := time.Now().Add(60 * time.Second)
	for total < appends {
		if time.Now().After(deadline) {
			return counts, after, fmt.Sprintf("reader saw %d of %d appends within 60s", total, appends)
		}
		entries, err := s.ReadFeed(ctx, after, 7, 20*time.Millisecond)
		if err != nil {
			return counts, after, fmt.Sprintf("ReadFeed(after %d): got error %v, want nil", after, err)
		}
		for _, e := range entries {
			if e.Pos <= after {
				return counts, after, fmt.Sprintf("ReadFeed(after %d): got Pos %d, want Pos to increase", after, e.Pos)
			}
			after = e.Pos
			w, ok := owner[e.Events[0].AggregateID]
			if !ok {
				return counts, after, fmt.Sprintf("feed entry %d is for aggregate %s, which nobody wrote", e.Pos, e.Events[0].AggregateID)
			}
			for _, ev := range e.Events {
				if ev.Seq != nextSeq[w] {
					return counts, after, fmt.Sprintf("feed entry %d: aggregate %s seq %d, want %d (skipped or repeated)", e.Pos, ev.AggregateID, ev.Seq, nextSeq[w])
				}
				nextSeq[w]++
			}
			counts[w].entries++
			counts[w].events += len(e.Events)
			total++
		}
	}
	return counts, after, ""
}

// ReadFeed and the checkpoint calls with a cancelled context are context.Canceled; nothing is saved.
func (ts *feedSuite) cancelledContextIsAnError(t *testing.T) {
	ctx := context.Background()
	s := ts.newFeedStore(t)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"read_feed", func(ctx context.Context) error { _, err := s.ReadFeed(ctx, 0, 10, time.Second); return err }},
		{"save_checkpoint", func(ctx context.Context) error { return s.SaveCheckpoint(ctx, "storetest-cancelled", 1) }},
		{"load_checkpoint", func(ctx context.Context) error { _, err := s.LoadCheckpoint(ctx, "storetest-cancelled"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			WantErr(t, tt.name+" with a cancelled context", tt.call(cctx), context.Canceled)
		})
	}
	if got, err := s.LoadCheckpoint(ctx, "storetest-cancelled"); err != nil || got != 0 {
		t.Fatalf("LoadCheckpoint after the cancelled save: got (%d, %v), want (0, nil)", got, err)
	}
}
