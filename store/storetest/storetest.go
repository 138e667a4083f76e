package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// Features declares what a backend guarantees beyond the contract every
// backend meets. Run skips the subtests of a guarantee the backend does not
// declare, saying why, so a backend's test output shows what it does not
// promise rather than hiding it.
type Features struct {
	// DuplicateAtAnySeq: Append refuses with ErrDuplicate an eventUUID that
	// is anywhere in the aggregate's log, even in a batch whose seqs are all
	// new. Without it, a backend only recognises a repeated append at the
	// same first seq (a redelivered command racing itself), and callers
	// find a command already in the log by reading the log before they
	// append, as the workers do.
	DuplicateAtAnySeq bool
	// NextSeqChecked: Append refuses a batch whose first seq is not the
	// aggregate's next seq: one past it (a gap) with ErrInvalid, one inside
	// an earlier append's batch with ErrConflict. Without it, a backend
	// only refuses a first seq that is the first seq of an earlier append,
	// which is what two writers that loaded the same history race for;
	// callers append at the next seq of a strongly consistent Load.
	NextSeqChecked bool
}

// Option adjusts Run.
type Option func(*options)

type options struct {
	features Features
	only     []string
}

// WithFeatures declares the backend's optional guarantees (none by
// default).
func WithFeatures(f Features) Option { return func(o *options) { o.features = f } }

// Only runs the subtests whose names start with one of prefixes (for a
// second run of part of the suite on another configuration of a backend).
func Only(prefixes ...string) Option { return func(o *options) { o.only = prefixes } }

// Run runs the conformance suite of store.Store. newStore is called once per
// subtest and returns a store for it alone; it arranges the store's Close
// (t.Cleanup) itself. The store may already hold data (see the package doc).
// The options declare the backend's Features; the subtests of the others
// are skipped, saying why.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, opts ...Option) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ts := &suite{newStore: newStore, f: o.features}
	f := o.features
	workflowViews, executionViews := viewTests{ts, workflowKind}, viewTests{ts, executionKind}
	runTests(t, o.only, []test{
		{"event_log/append_then_load_in_seq_order", "", true, ts.appendThenLoadInSeqOrder},
		{"event_log/load_after_seq", "", true, ts.loadAfterSeq},
		{"event_log/load_unknown_aggregate_is_empty", "", true, ts.loadUnknownAggregateIsEmpty},
		{"event_log/repeated_event_uuid_is_duplicate", "", true, ts.repeatedEventUUIDIsDuplicate},
		{"event_log/duplicate_uuid_at_new_seq_is_duplicate", "DuplicateAtAnySeq", f.DuplicateAtAnySeq, ts.duplicateUUIDAtNewSeqIsDuplicate},
		{"event_log/taken_seq_is_conflict", "", true, ts.takenSeqIsConflict},
		{"event_log/multi_event_append_is_atomic", "", true, ts.multiEventAppendIsAtomic},
		{"event_log/invalid_batches", "", true, ts.invalidBatches},
		{"event_log/seq_past_the_next_is_invalid", "NextSeqChecked", f.NextSeqChecked, ts.seqPastTheNextIsInvalid},
		{"event_log/race_one_winner_per_seq", "", true, ts.raceOneWinnerPerSeq},
		{"event_log/race_retry_on_conflict_appends_every_event_once", "", true, ts.raceRetryOnConflictAppendsEveryEventOnce},

		{"views/workflow/get_missing_is_not_found", "", true, workflowViews.getMissingIsNotFound},
		{"views/workflow/put_with_prev_zero_creates", "", true, workflowViews.putWithPrevZeroCreates},
		{"views/workflow/version_moves_forward", "", true, workflowViews.versionMovesForward},
		{"views/workflow/put_with_stale_prev_is_conflict", "", true, workflowViews.putWithStalePrevIsConflict},
		{"views/workflow/put_version_not_after_prev_is_invalid", "", true, workflowViews.putVersionNotAfterPrevIsInvalid},
		{"views/workflow/race_one_winner_per_version", "", true, workflowViews.raceOneWinnerPerVersion},
		{"views/execution/get_missing_is_not_found", "", true, executionViews.getMissingIsNotFound},
		{"views/execution/put_with_prev_zero_creates", "", true, executionViews.putWithPrevZeroCreates},
		{"views/execution/version_moves_forward", "", true, executionViews.versionMovesForward},
		{"views/execution/put_with_stale_prev_is_conflict", "", true, executionViews.putWithStalePrevIsConflict},
		{"views/execution/put_version_not_after_prev_is_invalid", "", true, executionViews.putVersionNotAfterPrevIsInvalid},
		{"views/execution/race_one_winner_per_version", "", true, executionViews.raceOneWinnerPerVersion},
		{"views/workflow_round_trips", "", true, ts.workflowRoundTrips},
		{"views/execution_round_trips", "", true, ts.executionRoundTrips},

		{"due/earliest_first_and_only_when_due", "", true, ts.dueEarliestFirstAndOnlyWhenDue},
		{"due/put_moves_or_removes", "", true, ts.duePutMovesOrRemoves},
		{"due/limit_out_of_range_is_invalid", "", true, ts.dueLimitOutOfRangeIsInvalid},

		{"listing/workflows_newest_first_every_item_once", "", true, ts.workflowsNewestFirstEveryItemOnce},
		{"listing/executions_filtered_newest_first_every_item_once", "", true, ts.executionsFilteredNewestFirstEveryItemOnce},
		{"listing/listed_items_equal_the_views", "", true, ts.listedItemsEqualTheViews},
		{"listing/status_change_moves_execution_between_filters", "", true, ts.statusChangeMovesExecutionBetweenFilters},
		{"listing/limit_outside_1_to_max_is_invalid", "", true, ts.listLimitOutside1ToMaxIsInvalid},
		{"listing/cursors_stay_valid_while_the_listing_fills", "", true, ts.cursorsStayValidWhileTheListingFills},

		{"commands/put_creates_accepted", "", true, ts.putCreatesAccepted},
		{"commands/put_is_noop_when_a_status_exists", "", true, ts.putIsNoopWhenAStatusExists},
		{"commands/finish_moves_accepted_to_final", "", true, ts.finishMovesAcceptedToFinal},
		{"commands/finish_never_changes_a_final_status", "", true, ts.finishNeverChangesAFinalStatus},
		{"commands/finish_creates_when_missing", "", true, ts.finishCreatesWhenMissing},
		{"commands/get_missing_is_not_found", "", true, ts.getMissingCommandIsNotFound},
		{"commands/race_put_and_finish_ends_final", "", true, ts.racePutAndFinishEndsFinal},
		{"commands/uuid_without_a_time_round_trips", "", true, ts.uuidWithoutATimeRoundTrips},
		{"commands/each_accepted_lists_the_window", "", true, ts.eachAcceptedListsTheWindow},

		{"idempotency/first_claim_is_stored", "", true, ts.firstClaimIsStored},
		{"idempotency/second_claim_returns_the_first_as_duplicate", "", true, ts.secondClaimReturnsTheFirstAsDuplicate},
		{"idempotency/expired_claim_may_be_claimed_again", "", true, ts.expiredClaimMayBeClaimedAgain},
		{"idempotency/race_one_claim_wins", "", true, ts.raceOneClaimWins},

		{"returned_values_are_not_aliased/events", "", true, ts.eventsAreNotAliased},
		{"returned_values_are_not_aliased/workflow_view", "", true, ts.workflowViewIsNotAliased},
		{"returned_values_are_not_aliased/execution_view", "", true, ts.executionViewIsNotAliased},

		{"cancelled_context_is_an_error", "", true, ts.cancelledContextIsAnError},
	})
}

// suite is what the test functions of Run share: the backend's constructor
// and its declared Features.
type suite struct {
	newStore func(t *testing.T) store.Store
	f        Features
}

// test is one named behaviour of the suite.
type test struct {
	// name is the subtest's name; a slash groups it (event_log/...).
	name string
	// feature is the Features field the behaviour needs, "" for the
	// common contract.
	feature string
	// declared says whether the backend declares feature (true for "").
	declared bool
	fn       func(t *testing.T)
}

// runTests runs each test as a subtest of t, in order, skipping (with the
// reason) those whose feature the backend does not declare.
func runTests(t *testing.T, only []string, tests []test) {
	for _, tt := range tests {
		if len(only) > 0 && !slices.ContainsFunc(only, func(p string) bool { return strings.HasPrefix(tt.name, p) }) {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			skipUnless(t, tt.declared, tt.feature)
			tt.fn(t)
		})
	}
}

// skipUnless skips t unless the backend declares the feature, saying what
// a backend without it does instead.
func skipUnless(t *testing.T, declared bool, feature string) {
	t.Helper()
	if !declared {
		t.Skipf("the backend does not declare Features.%s: %s", feature, whyNot[feature])
	}
}

// whyNot says, for each of the Features, what a backend that does not
// declare it does instead; the skip message quotes it.
var whyNot = map[string]string{
	"DuplicateAtAnySeq": "it only recognises a repeated eventUUID at the first seq of the append that holds it " +
		"(one conditional write, no read); callers find their command in the log they loaded",
	"NextSeqChecked": "it only refuses a first seq that begins an earlier append " +
		"(one conditional write, no read); callers append at the next seq of the log they loaded",
}

// Appends of one and of several events load back as one log, in seq order.
func (ts *suite) appendThenLoadInSeqOrder(t *testing.T) {
	s := ts.newStore(t)
	agg := NewAggregateID()
	want := NewEvents(agg, 1, 6)
	MustAppend(t, s, want[0])
	MustAppend(t, s, want[1:4]...)
	MustAppend(t, s, want[4:]...)
	SameEvents(t, "Load after 0", MustLoad(t, s, agg, 0), want)
}

// Load after a seq returns exactly the events after it.
func (ts *suite) loadAfterSeq(t *testing.T) {
	s := ts.newStore(t)
	agg := NewAggregateID()
	all := NewEvents(agg, 1, 5)
	MustAppend(t, s, all...)
	tests := []struct {
		name  string
		after int64
		want  []model.Event
	}{
		{"after_0_is_all", 0, all},
		{"after_2", 2, all[2:]},
		{"after_4", 4, all[4:]},
		{"after_last_is_empty", 5, nil},
		{"after_beyond_last_is_empty", 99, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			SameEvents(t, fmt.Sprintf("Load after %d", tt.after), MustLoad(t, s, agg, tt.after), tt.want)
		})
	}
}

// Load of an aggregate never appended to returns no events and no error.
func (ts *suite) loadUnknownAggregateIsEmpty(t *testing.T) {
	s := ts.newStore(t)
	if got := MustLoad(t, s, NewAggregateID(), 0); len(got) != 0 {
		t.Fatalf("Load(unknown): got %d events, want 0", len(got))
	}
}

// Appending the same events again at the same seq is ErrDuplicate and writes nothing.
func (ts *suite) repeatedEventUUIDIsDuplicate(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	agg := NewAggregateID()
	first := NewEvents(agg, 1, 2)
	MustAppend(t, s, first...)
	WantErr(t, "Append(same two events again)", s.Append(ctx, first), store.ErrDuplicate)
	WantErr(t, "Append(same first event again)", s.Append(ctx, first[:1]), store.ErrDuplicate)
	SameEvents(t, "Load after duplicates", MustLoad(t, s, agg, 0), first)
}

// An eventUUID already in the log is ErrDuplicate at a new seq too, alone or after a new event.
func (ts *suite) duplicateUUIDAtNewSeqIsDuplicate(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	agg := NewAggregateID()
	first := NewEvents(agg, 1, 2)
	MustAppend(t, s, first...)
	again := first[0]
	again.Seq = 3
	WantErr(t, "Append(old eventUUID at seq 3)", s.Append(ctx, []model.Event{again}), store.ErrDuplicate)
	batch := []model.Event{NewEvent(agg, 3), first[1]}
	batch[1].Seq = 4
	WantErr(t, "Append(new event, then old eventUUID)", s.Append(ctx, batch), store.ErrDuplicate)
	SameEvents(t, "Load after duplicates", MustLoad(t, s, agg, 0), first)
}

// A batch starting at a taken seq is ErrConflict and writes nothing.
func (ts *suite) takenSeqIsConflict(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	agg := NewAggregateID()
	first := NewEvents(agg, 1, 2)
	MustAppend(t, s, first...)
	tests := []struct {
		name  string
		batch []model.Event
		// inside: the batch starts inside the earlier append's batch,
		// not where it starts.
		inside bool
	}{
		{"first_seq", NewEvents(agg, 1, 1), false},
		{"first_seq_longer_batch", NewEvents(agg, 1, 3), false},
		{"last_seq", NewEvents(agg, 2, 1), true},
		{"batch_overlapping_the_end", NewEvents(agg, 2, 3), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.inside {
				skipUnless(t, ts.f.NextSeqChecked, "NextSeqChecked")
			}
			WantErr(t, "Append(taken seq)", s.Append(ctx, tt.batch), store.ErrConflict)
			SameEvents(t, "Load after conflict", MustLoad(t, s, agg, 0), first)
		})
	}
}

// A batch is written whole or not at all, and concurrent readers never see half of one.
func (ts *suite) multiEventAppendIsAtomic(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	agg := NewAggregateID()
	first := NewEvents(agg, 1, 3)
	MustAppend(t, s, first...)
	SameEvents(t, "Load after a 3-event append", MustLoad(t, s, agg, 0), first)

	t.Run("batch_with_an_old_event_uuid_writes_nothing", func(t *testing.T) {
		skipUnless(t, ts.f.DuplicateAtAnySeq, "DuplicateAtAnySeq")
		dup := NewEvents(agg, 4, 3)
		dup[2].EventUUID = first[0].EventUUID
		WantErr(t, "Append(batch whose last event is a duplicate)", s.Append(ctx, dup), store.ErrDuplicate)
		SameEvents(t, "Load after the refused batch", MustLoad(t, s, agg, 0), first)
	})
	t.Run("batch_at_a_taken_seq_writes_nothing", func(t *testing.T) {
		WantErr(t, "Append(3 events from taken seq 1)", s.Append(ctx, NewEvents(agg, 1, 3)), store.ErrConflict)
		SameEvents(t, "Load after the refused batch", MustLoad(t, s, agg, 0), first)
	})

	readersNeverSeeHalfABatch(t, s)
}

// readersNeverSeeHalfABatch appends batches of three events to a new
// aggregate while readers load it, and fails t if a reader ever sees a
// number of events that is not a multiple of three.
func readersNeverSeeHalfABatch(t *testing.T, s store.Store) {
	ctx := context.Background()
	agg2 := NewAggregateID()
	const batches, size = 30, 3
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var torn atomic.Int64
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				events, err := s.Load(ctx, agg2, 0)
				if err != nil {
					t.Errorf("Load during appends: got error %v, want nil", err)
					return
				}
				if len(events)%size != 0 {
					torn.Store(int64(len(events)))
				}
			}
		}()
	}
	for i := 0; i < batches; i++ {
		if err := s.Append(ctx, NewEvents(agg2, int64(i*size+1), size)); err != nil {
			t.Errorf("Append batch %d: got error %v, want nil", i, err)
			break
		}
	}
	close(stop)
	wg.Wait()
	if n := torn.Load(); n != 0 {
		t.Fatalf("a reader saw %d events, want a multiple of %d", n, size)
	}
	if got := MustLoad(t, s, agg2, 0); len(got) != batches*size {
		t.Fatalf("Load after the batches: got %d events, want %d", len(got), batches*size)
	}
}

// Malformed batches are ErrInvalid and write nothing.
func (ts *suite) invalidBatches(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	tests := []struct {
		name  string
		batch func(agg string) []model.Event
	}{
		{"empty", func(string) []model.Event { return nil }},
		{"mixed_aggregate_ids", func(agg string) []model.Event {
			return []model.Event{NewEvent(agg, 1), NewEvent(NewAggregateID(), 2)}
		}},
		{"non_consecutive_seqs", func(agg string) []model.Event {
			return []model.Event{NewEvent(agg, 1), NewEvent(agg, 3)}
		}},
		{"descending_seqs", func(agg string) []model.Event {
			return []model.Event{NewEvent(agg, 2), NewEvent(agg, 1)}
		}},
		{"seq_zero", func(agg string) []model.Event { return []model.Event{NewEvent(agg, 0)} }},
		{"seq_negative", func(agg string) []model.Event {
			return []model.Event{NewEvent(agg, -1), NewEvent(agg, 0)}
		}},
		{"empty_aggregate_id", func(string) []model.Event { return []model.Event{NewEvent("", 1)} }},
		{"event_uuid_repeated_in_batch", func(agg string) []model.Event {
			b := NewEvents(agg, 1, 2)
			b[1].EventUUID = b[0].EventUUID
			return b
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agg := NewAggregateID()
			WantErr(t, "Append("+tt.name+")", s.Append(ctx, tt.batch(agg)), store.ErrInvalid)
			if got := MustLoad(t, s, agg, 0); len(got) != 0 {
				t.Fatalf("Load after the invalid batch: got %d events, want 0", len(got))
			}
		})
	}
}

// A batch leaving a gap after the last seq (or before seq 1) is ErrInvalid and writes nothing.
func (ts *suite) seqPastTheNextIsInvalid(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	agg := NewAggregateID()
	first := NewEvent(agg, 1)
	MustAppend(t, s, first)
	WantErr(t, "Append(seq 3 after 1)", s.Append(ctx, NewEvents(agg, 3, 1)), store.ErrInvalid)
	SameEvents(t, "Load after the refused gap", MustLoad(t, s, agg, 0), []model.Event{first})
	other := NewAggregateID()
	WantErr(t, "Append(seq 2 on a new aggregate)", s.Append(ctx, NewEvents(other, 2, 1)), store.ErrInvalid)
	SameEvents(t, "Load of the new aggregate after the refused gap", MustLoad(t, s, other, 0), nil)
}

// Of concurrent appends at the same seq exactly one succeeds; the others are ErrConflict.
func (ts *suite) raceOneWinnerPerSeq(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	agg := NewAggregateID()
	first := NewEvents(agg, 1, 2)
	MustAppend(t, s, first...)
	const n = 20
	candidates := make([]model.Event, n)
	for i := range candidates {
		candidates[i] = NewEvent(agg, 3)
	}
	errs := make([]error, n)
	startTogether(n, func(i int) { errs[i] = s.Append(ctx, candidates[i:i+1]) })
	winner := oneWinner(t, "appended seq 3", errs, store.ErrConflict)
	SameEvents(t, "Load after the race", MustLoad(t, s, agg, 0), append(first, candidates[winner]))
}

// Writers that load, append and retry on ErrConflict each get their event in exactly once.
func (ts *suite) raceRetryOnConflictAppendsEveryEventOnce(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	agg := NewAggregateID()
	const n = 20
	ids := make([]uuid.UUID, n)
	var conflicts atomic.Int64
	startTogether(n, func(i int) {
		ids[i] = uuid.New()
		for attempt := 0; attempt < 10*n; attempt++ {
			// Load, decide, append with the expected seq.
			events, err := s.Load(ctx, agg, 0)
			if err != nil {
				t.Errorf("goroutine %d: Load: got error %v, want nil", i, err)
				return
			}
			e := NewEvent(agg, int64(len(events))+1)
			e.EventUUID = ids[i]
			err = s.Append(ctx, []model.Event{e})
			if err == nil {
				return
			}
			if !errors.Is(err, store.ErrConflict) {
				t.Errorf("goroutine %d: Append: got error %v, want nil or one wrapping %q", i, err, store.ErrConflict)
				return
			}
			conflicts.Add(1)
		}
		t.Errorf("goroutine %d: still conflicting after %d attempts", i, 10*n)
	})
	events := MustLoad(t, s, agg, 0)
	if len(events) != n {
		t.Fatalf("Load after the race: got %d events, want %d", len(events), n)
	}
	seen := make(map[uuid.UUID]int)
	for i, e := range events {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d: got seq %d, want %d", i, e.Seq, i+1)
		}
		seen[e.EventUUID]++
	}
	for i, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("goroutine %d's event: got %d copies, want 1", i, seen[id])
		}
	}
	t.Logf("%d conflicts retried", conflicts.Load())
}

// viewKind lets one set of tests cover both views.
type viewKind struct {
	name string
	// put stores a view of id at version with prev, marked with mark.
	put func(s store.Store, id uuid.UUID, version, prev int64, mark string) error
	// get returns the stored view's version and mark.
	get func(s store.Store, id uuid.UUID) (version int64, mark string, err error)
}

// workflowKind is the workflow view as a viewKind: its version is Seq, its
// mark the Name.
var workflowKind = viewKind{
	name: "workflow",
	put: func(s store.Store, id uuid.UUID, version, prev int64, mark string) error {
		w := NewWorkflow(occurredAt, version)
		w.WorkflowUUID, w.Name = id, mark
		return s.PutWorkflow(context.Background(), w, prev)
	},
	get: func(s store.Store, id uuid.UUID) (int64, string, error) {
		w, err := s.GetWorkflow(context.Background(), id)
		return w.Seq, w.Name, err
	},
}

// executionKind is the execution view as a viewKind: its version is
// Version, its mark the Error.
var executionKind = viewKind{
	name: "execution",
	put: func(s store.Store, id uuid.UUID, version, prev int64, mark string) error {
		x := NewExecution(uuid.New(), model.ExecutionRunning, occurredAt, version)
		x.WorkflowExecutionUUID, x.Error = id, mark
		return s.PutExecution(context.Background(), x, prev)
	},
	get: func(s store.Store, id uuid.UUID) (int64, string, error) {
		x, err := s.GetExecution(context.Background(), id)
		return x.Version, x.Error, err
	},
}

// viewTests are the tests that hold for both views, run on one of them.
type viewTests struct {
	*suite
	viewKind
}

// Getting a view never put is ErrNotFound.
func (k viewTests) getMissingIsNotFound(t *testing.T) {
	s := k.newStore(t)
	_, _, err := k.get(s, uuid.New())
	WantErr(t, "get(unknown)", err, store.ErrNotFound)
}

// A put with prev 0 creates the view, which reads back as put.
func (k viewTests) putWithPrevZeroCreates(t *testing.T) {
	s := k.newStore(t)
	id := uuid.New()
	if err := k.put(s, id, 1, 0, "v1"); err != nil {
		t.Fatalf("put(version 1, prev 0): got error %v, want nil", err)
	}
	v, mark, err := k.get(s, id)
	if err != nil || v != 1 || mark != "v1" {
		t.Fatalf("get: got (%d, %q, %v), want (1, \"v1\", nil)", v, mark, err)
	}
}

// A put with the stored version as prev replaces the view, whatever the step between versions.
func (k viewTests) versionMovesForward(t *testing.T) {
	s := k.newStore(t)
	id := uuid.New()
	steps := []struct {
		version, prev int64
		mark          string
	}{{1, 0, "v1"}, {2, 1, "v2"}, {5, 2, "v5"}, {6, 5, "v6"}}
	for _, st := range steps {
		if err := k.put(s, id, st.version, st.prev, st.mark); err != nil {
			t.Fatalf("put(version %d, prev %d): got error %v, want nil", st.version, st.prev, err)
		}
		v, mark, err := k.get(s, id)
		if err != nil || v != st.version || mark != st.mark {
			t.Fatalf("get after version %d: got (%d, %q, %v), want (%d, %q, nil)", st.version, v, mark, err, st.version, st.mark)
		}
	}
}

// A put whose prev is not the stored version (or no view is stored) is ErrConflict and changes nothing.
func (k viewTests) putWithStalePrevIsConflict(t *testing.T) {
	s := k.newStore(t)
	id := uuid.New()
	for _, st := range [][2]int64{{1, 0}, {2, 1}} {
		if err := k.put(s, id, st[0], st[1], "current"); err != nil {
			t.Fatalf("put(version %d, prev %d): got error %v, want nil", st[0], st[1], err)
		}
	}
	tests := []struct {
		name          string
		version, prev int64
	}{
		{"prev_behind", 3, 1},
		{"prev_ahead", 4, 3},
		{"prev_zero_but_exists", 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			WantErr(t, fmt.Sprintf("put(version %d, prev %d)", tt.version, tt.prev),
				k.put(s, id, tt.version, tt.prev, "stale"), store.ErrConflict)
			v, mark, err := k.get(s, id)
			if err != nil || v != 2 || mark != "current" {
				t.Fatalf("get after conflict: got (%d, %q, %v), want (2, \"current\", nil)", v, mark, err)
			}
		})
	}
	t.Run("prev_set_but_missing", func(t *testing.T) {
		other := uuid.New()
		WantErr(t, "put(missing, prev 1)", k.put(s, other, 2, 1, "x"), store.ErrConflict)
		_, _, err := k.get(s, other)
		WantErr(t, "get after conflict", err, store.ErrNotFound)
	})
}

// A put whose version is not above its prev is ErrInvalid.
func (k viewTests) putVersionNotAfterPrevIsInvalid(t *testing.T) {
	s := k.newStore(t)
	id := uuid.New()
	tests := []struct {
		name          string
		version, prev int64
	}{
		{"version_zero", 0, 0},
		{"version_equal_to_prev", 1, 1},
		{"version_before_prev", 1, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			WantErr(t, fmt.Sprintf("put(version %d, prev %d)", tt.version, tt.prev),
				k.put(s, id, tt.version, tt.prev, "x"), store.ErrInvalid)
		})
	}
}

// Of concurrent puts from the same prev exactly one wins, the others are ErrConflict.
func (k viewTests) raceOneWinnerPerVersion(t *testing.T) {
	s := k.newStore(t)
	id := uuid.New()
	if err := k.put(s, id, 1, 0, "v1"); err != nil {
		t.Fatalf("put(version 1): got error %v, want nil", err)
	}
	const n = 20
	errs := make([]error, n)
	startTogether(n, func(i int) { errs[i] = k.put(s, id, 2, 1, fmt.Sprint("racer ", i)) })
	winner := oneWinner(t, "moved the view to version 2", errs, store.ErrConflict)
	if _, mark, _ := k.get(s, id); mark != fmt.Sprint("racer ", winner) {
		t.Fatalf("get after race: got mark %q, want %q", mark, fmt.Sprint("racer ", winner))
	}
}

// A workflow view reads back as put, with Seq and RecentCommands (not in its JSON).
func (ts *suite) workflowRoundTrips(t *testing.T) {
	s := ts.newStore(t)
	w := NewWorkflow(occurredAt, 3)
	deleted := occurredAt.Add(time.Hour)
	w.DeletedAt = &deleted
	w.RecentCommands = []uuid.UUID{uuid.New(), uuid.New()}
	MustPutWorkflow(t, s, w, 0)
	got := MustGetWorkflow(t, s, w.WorkflowUUID)
	SameJSON(t, "GetWorkflow", got, w)
	if got.Seq != 3 {
		t.Fatalf("GetWorkflow: got Seq %d, want 3 (Seq is json:\"-\"; the backend must keep it)", got.Seq)
	}
	if !slices.Equal(got.RecentCommands, w.RecentCommands) {
		t.Fatalf("GetWorkflow: got RecentCommands %v, want %v (json:\"-\"; the backend must keep them)", got.RecentCommands, w.RecentCommands)
	}
}

// An execution view reads back as put, with its due time and RecentCommands (not in its JSON), the latter only if it had them.
func (ts *suite) executionRoundTrips(t *testing.T) {
	s := ts.newStore(t)
	x := NewExecution(uuid.New(), model.ExecutionRunning, occurredAt, 4)
	x.RecentCommands = []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	x.Due = occurredAt.Add(90*time.Minute + 123456789)
	MustPutExecution(t, s, x, 0)
	got := MustGetExecution(t, s, x.WorkflowExecutionUUID)
	SameJSON(t, "GetExecution", got, x)
	if got.Version != 4 {
		t.Fatalf("GetExecution: got Version %d, want 4", got.Version)
	}
	if !got.Due.Equal(x.Due) {
		t.Fatalf("GetExecution: got Due %v, want %v (json:\"-\"; the backend must keep it)", got.Due, x.Due)
	}
	if !slices.Equal(got.RecentCommands, x.RecentCommands) {
		t.Fatalf("GetExecution: got RecentCommands %v, want %v (json:\"-\"; the backend must keep them)", got.RecentCommands, x.RecentCommands)
	}
	// A view without them reads back without them.
	y := NewExecution(uuid.New(), model.ExecutionRunning, occurredAt, 1)
	MustPutExecution(t, s, y, 0)
	if got := MustGetExecution(t, s, y.WorkflowExecutionUUID); len(got.RecentCommands) != 0 {
		t.Fatalf("GetExecution: got RecentCommands %v for a view put without any", got.RecentCommands)
	}
}

// dueBase is the creation time of the due tests' executions: far in the
// past, so that other items of a shared store come later.
var dueBase = time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC)

// dueExecution returns a running execution created at dueBase that the
// cleanup must look at seconds later (never for 0), as the projector
// would have set it (model.Execution.Due).
func dueExecution(seconds int) model.Execution {
	x := NewExecution(uuid.New(), model.ExecutionRunning, dueBase, 1)
	if seconds > 0 {
		x.Due = dueBase.Add(time.Duration(seconds) * time.Second)
	}
	return x
}

// executionIDs returns the executions' ids, in order.
func executionIDs(xs []model.Execution) []uuid.UUID {
	out := make([]uuid.UUID, len(xs))
	for i, x := range xs {
		out[i] = x.WorkflowExecutionUUID
	}
	return out
}

// listDue returns the ids ListDue lists, failing t on error.
func listDue(t *testing.T, s store.Store, before time.Time, limit int, after *store.DuePosition) []uuid.UUID {
	t.Helper()
	xs, err := s.ListDue(context.Background(), store.DueQuery{Before: before, After: after, Limit: limit})
	if err != nil {
		t.Fatalf("ListDue: %v", err)
	}
	return executionIDs(xs)
}

// ListDue lists running executions once due (inclusive), earliest first, page by page.
func (ts *suite) dueEarliestFirstAndOnlyWhenDue(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	a, b, c := dueExecution(10), dueExecution(20), dueExecution(20)
	if bytes.Compare(b.WorkflowExecutionUUID[:], c.WorkflowExecutionUUID[:]) > 0 {
		b, c = c, b // same due time: the UUID orders them
	}
	never, ended := dueExecution(0), dueExecution(0)
	ended.Status = model.ExecutionSucceeded
	for _, x := range []model.Execution{c, never, b, ended, a} {
		MustPutExecution(t, s, x, 0)
	}
	if got := listDue(t, s, dueBase.Add(9*time.Second), 10, nil); len(got) != 0 {
		t.Fatalf("before anything is due: got %v", got)
	}
	if got, want := listDue(t, s, dueBase.Add(15*time.Second), 10, nil), executionIDs([]model.Execution{a}); !slices.Equal(got, want) {
		t.Fatalf("at +15s: got %v, want %v", got, want)
	}
	all := executionIDs([]model.Execution{a, b, c})
	if got := listDue(t, s, dueBase.Add(20*time.Second), 10, nil); !slices.Equal(got, all) {
		t.Fatalf("at +20s (due times are inclusive): got %v, want %v", got, all)
	}
	// Page by page.
	var paged []uuid.UUID
	var after *store.DuePosition
	for range 5 {
		page, err := s.ListDue(ctx, store.DueQuery{Before: dueBase.Add(time.Hour), After: after, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		x := page[0]
		paged = append(paged, x.WorkflowExecutionUUID)
		if !x.Due.Equal(dueBase.Add(10*time.Second)) && !x.Due.Equal(dueBase.Add(20*time.Second)) {
			t.Fatalf("listed %s with due time %v, want the one it was put with", x.WorkflowExecutionUUID, x.Due)
		}
		after = &store.DuePosition{DueAt: x.Due, ID: x.WorkflowExecutionUUID}
	}
	if !slices.Equal(paged, all) {
		t.Fatalf("one at a time: got %v, want %v", paged, all)
	}
}

// A put that changes an execution's due time moves it in the due index; one without a due time (it ended) removes it.
func (ts *suite) duePutMovesOrRemoves(t *testing.T) {
	s := ts.newStore(t)
	a, b := dueExecution(10), dueExecution(20)
	MustPutExecution(t, s, a, 0)
	MustPutExecution(t, s, b, 0)
	// b's due time moves before a's; a ends.
	b2 := b.Clone()
	b2.Due, b2.Version = dueBase.Add(5*time.Second), 2
	MustPutExecution(t, s, b2, 1)
	a2 := a.Clone()
	a2.Status, a2.Due, a2.Version = model.ExecutionSucceeded, time.Time{}, 2
	MustPutExecution(t, s, a2, 1)
	if got, want := listDue(t, s, dueBase.Add(time.Hour), 10, nil), executionIDs([]model.Execution{b}); !slices.Equal(got, want) {
		t.Fatalf("after the puts: got %v, want %v", got, want)
	}
	if got := listDue(t, s, dueBase.Add(4*time.Second), 10, nil); len(got) != 0 {
		t.Fatalf("before b's new due time: got %v", got)
	}
}

// ListDue with a limit outside 1 to store.MaxListLimit is ErrInvalid.
func (ts *suite) dueLimitOutOfRangeIsInvalid(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	for _, limit := range []int{0, -1, store.MaxListLimit + 1} {
		_, err := s.ListDue(ctx, store.DueQuery{Before: dueBase, Limit: limit})
		WantErr(t, fmt.Sprintf("ListDue(limit %d)", limit), err, store.ErrInvalid)
	}
}

// listBase is the newest creation time of the listing tests' items: far in
// the future, so the test's items come first even in a store that already
// holds some; three items share each createdAt, so the UUID decides their
// order.
var listBase = time.Date(2300, 1, 1, 0, 0, 0, 987654321, time.UTC)

// listLimits are the page sizes every listing is read with.
var listLimits = []int{1, 2, 7, 1000}

// ListWorkflows, paged at every page size, lists the workflows newest first, each once.
func (ts *suite) workflowsNewestFirstEveryItemOnce(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	own := make(map[uuid.UUID]bool)
	var positions []store.Position
	for i := 0; i < 23; i++ {
		w := NewWorkflow(listBase.Add(-time.Duration(i/3)*time.Millisecond), 1)
		MustPutWorkflow(t, s, w, 0)
		own[w.WorkflowUUID] = true
		positions = append(positions, workflowPos(w))
	}
	want := sortNewestFirst(positions)
	for _, limit := range listLimits {
		t.Run(fmt.Sprintf("limit_%d", limit), func(t *testing.T) {
			items := PageAll(t, limit, workflowPos, func(q store.ListQuery) ([]model.Workflow, error) {
				return s.ListWorkflows(ctx, q)
			})
			checkListing(t, "ListWorkflows", items, workflowPos, own, want)
			for _, w := range items {
				if own[w.WorkflowUUID] && w.Seq != 1 {
					t.Fatalf("listed workflow %s: got Seq %d, want 1", w.WorkflowUUID, w.Seq)
				}
			}
		})
	}
}

// ListExecutions, under every filter and page size, lists the matching executions newest first, each once.
func (ts *suite) executionsFilteredNewestFirstEveryItemOnce(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	wfA, wfB := uuid.New(), uuid.New()
	statuses := []string{model.ExecutionPending, model.ExecutionRunning, model.ExecutionSucceeded}
	var all []model.Execution
	for i := 0; i < 30; i++ {
		wf := wfA
		if i%2 == 1 {
			wf = wfB
		}
		x := NewExecution(wf, statuses[i%3], listBase.Add(-time.Duration(i/3)*time.Millisecond), 1)
		MustPutExecution(t, s, x, 0)
		all = append(all, x)
	}
	tests := []struct {
		name   string
		wf     uuid.UUID
		status string
	}{
		{"no_filter", uuid.Nil, ""},
		{"by_workflow", wfA, ""},
		{"by_status", uuid.Nil, model.ExecutionRunning},
		{"by_workflow_and_status", wfB, model.ExecutionSucceeded},
		{"unknown_workflow", uuid.New(), ""},
		{"status_nobody_has", wfA, model.ExecutionTimedOut},
	}
	for _, tt := range tests {
		own := make(map[uuid.UUID]bool)
		var positions []store.Position
		for _, x := range all {
			if (tt.wf == uuid.Nil || x.WorkflowUUID == tt.wf) && (tt.status == "" || x.Status == tt.status) {
				own[x.WorkflowExecutionUUID] = true
				positions = append(positions, executionPos(x))
			}
		}
		want := sortNewestFirst(positions)
		for _, limit := range listLimits {
			t.Run(fmt.Sprintf("%s/limit_%d", tt.name, limit), func(t *testing.T) {
				items := PageAll(t, limit, executionPos, func(q store.ListQuery) ([]model.Execution, error) {
					return s.ListExecutions(ctx, store.ExecutionQuery{ListQuery: q, WorkflowUUID: tt.wf, Status: tt.status})
				})
				for _, x := range items {
					if tt.wf != uuid.Nil && x.WorkflowUUID != tt.wf || tt.status != "" && x.Status != tt.status {
						t.Fatalf("listed execution %s (workflow %s, %s) does not match the filter (workflow %s, status %q)",
							x.WorkflowExecutionUUID, x.WorkflowUUID, x.Status, tt.wf, tt.status)
					}
				}
				checkListing(t, "ListExecutions", items, executionPos, own, want)
			})
		}
	}
}

// A cursor stays exact while new items arrive between pages (in every
// shard of a backend that spreads a listing over several): each page holds
// the items after the cursor, newest first, as they are when it is read;
// items put newer than the cursor never show up later, items put older
// than it do. Items of other tests may share the store: the check is on
// the test's own items, which must be a prefix, in order, of the ones
// after the cursor.
func (ts *suite) cursorsStayValidWhileTheListingFills(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	wf := uuid.New()
	statuses := []string{model.ExecutionRunning, model.ExecutionSucceeded}
	own := map[uuid.UUID]model.Execution{}
	put := func(at time.Time, status string) {
		x := NewExecution(wf, status, at, 1)
		MustPutExecution(t, s, x, 0)
		own[x.WorkflowExecutionUUID] = x
	}
	for i := range 30 {
		put(listBase.Add(-time.Duration(i/2)*time.Millisecond), statuses[i%2]) // pairs share a createdAt
	}
	tests := []struct {
		name   string
		wf     uuid.UUID
		status string
	}{
		{"by_workflow", wf, ""},
		{"by_workflow_and_status", wf, model.ExecutionRunning},
		{"by_status", uuid.Nil, model.ExecutionSucceeded},
		{"no_filter", uuid.Nil, ""},
	}
	const limit = 4
	for round, tt := range tests {
		var after *store.Position
		for page := 0; ; page++ {
			if page > 200 {
				t.Fatalf("%s: the listing did not end", tt.name)
			}
			var want []store.Position
			for _, x := range own {
				p := executionPos(x)
				if (tt.status == "" || x.Status == tt.status) && (after == nil || newer(after.CreatedAt, after.ID, p.CreatedAt, p.ID)) {
					want = append(want, p)
				}
			}
			wantIDs := sortNewestFirst(want)
			got, err := s.ListExecutions(ctx, store.ExecutionQuery{ListQuery: store.ListQuery{Limit: limit, After: after}, WorkflowUUID: tt.wf, Status: tt.status})
			if err != nil {
				t.Fatalf("%s page %d: got error %v, want nil", tt.name, page, err)
			}
			var ownIDs []uuid.UUID
			foreign := 0
			for i, x := range got {
				p := executionPos(x)
				if i == 0 && after != nil && !newer(after.CreatedAt, after.ID, p.CreatedAt, p.ID) ||
					i > 0 && !newer(got[i-1].CreatedAt, got[i-1].WorkflowExecutionUUID, p.CreatedAt, p.ID) {
					t.Fatalf("%s page %d: item %d (%s, %s) is out of order", tt.name, page, i, p.CreatedAt.Format(time.RFC3339Nano), p.ID)
				}
				if tt.status != "" && x.Status != tt.status {
					t.Fatalf("%s page %d: execution %s is %s, want %s", tt.name, page, p.ID, x.Status, tt.status)
				}
				if _, ok := own[p.ID]; ok {
					ownIDs = append(ownIDs, p.ID)
				} else {
					foreign++
				}
			}
			n := min(limit-foreign, len(wantIDs))
			if !slices.Equal(ownIDs, wantIDs[:n]) {
				t.Fatalf("%s page %d: got own items %v, want %v (the first %d after the cursor)", tt.name, page, ownIDs, wantIDs[:n], n)
			}
			if len(got) < limit {
				break
			}
			p := executionPos(got[len(got)-1])
			after = &p
			// Items arrive between pages: one newer than everything, one
			// just older than the cursor, one at the cursor's own time.
			k := time.Duration(round*1000+page+1) * time.Microsecond
			put(listBase.Add(time.Hour+k), statuses[page%2])
			put(after.CreatedAt.Add(-k/10-time.Nanosecond), statuses[(page+1)%2])
			put(after.CreatedAt, statuses[page%2])
		}
	}
}

// A listed workflow or execution equals the view as put (the workflow's Seq included).
func (ts *suite) listedItemsEqualTheViews(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	w := NewWorkflow(listBase, 2)
	MustPutWorkflow(t, s, w, 0)
	x := NewExecution(w.WorkflowUUID, model.ExecutionRunning, listBase, 7)
	MustPutExecution(t, s, x, 0)
	ws, err := s.ListWorkflows(ctx, store.ListQuery{Limit: 1000})
	if err != nil {
		t.Fatalf("ListWorkflows: got error %v, want nil", err)
	}
	found := false
	for _, got := range ws {
		if got.WorkflowUUID == w.WorkflowUUID {
			found = true
			SameJSON(t, "listed workflow", got, w)
			if got.Seq != w.Seq {
				t.Fatalf("listed workflow: got Seq %d, want %d", got.Seq, w.Seq)
			}
		}
	}
	if !found {
		t.Fatalf("ListWorkflows: workflow %s missing", w.WorkflowUUID)
	}
	xs, err := s.ListExecutions(ctx, store.ExecutionQuery{ListQuery: store.ListQuery{Limit: 10}, WorkflowUUID: w.WorkflowUUID})
	if err != nil {
		t.Fatalf("ListExecutions: got error %v, want nil", err)
	}
	if len(xs) != 1 {
		t.Fatalf("ListExecutions(workflow): got %d items, want 1", len(xs))
	}
	SameJSON(t, "listed execution", xs[0], x)
}

// An execution whose status changed is listed, once, only under the filters of its last status.
func (ts *suite) statusChangeMovesExecutionBetweenFilters(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	wf := uuid.New()
	x := NewExecution(wf, model.ExecutionPending, listBase, 1)
	MustPutExecution(t, s, x, 0)
	x2 := x.Clone()
	x2.Status, x2.Version = model.ExecutionRunning, 2
	MustPutExecution(t, s, x2, 1)
	x3 := x2.Clone()
	x3.Status, x3.Version = model.ExecutionSucceeded, 4
	MustPutExecution(t, s, x3, 2)
	tests := []struct {
		name   string
		wf     uuid.UUID
		status string
		want   int
	}{
		{"old_status", uuid.Nil, model.ExecutionPending, 0},
		{"middle_status", uuid.Nil, model.ExecutionRunning, 0},
		{"new_status", uuid.Nil, model.ExecutionSucceeded, 1},
		{"workflow_and_old_status", wf, model.ExecutionPending, 0},
		{"workflow_and_middle_status", wf, model.ExecutionRunning, 0},
		{"workflow_and_new_status", wf, model.ExecutionSucceeded, 1},
		{"workflow", wf, "", 1},
		{"no_filter", uuid.Nil, "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items := PageAll(t, 1000, executionPos, func(q store.ListQuery) ([]model.Execution, error) {
				return s.ListExecutions(ctx, store.ExecutionQuery{ListQuery: q, WorkflowUUID: tt.wf, Status: tt.status})
			})
			n := 0
			for _, it := range items {
				if it.WorkflowExecutionUUID == x.WorkflowExecutionUUID {
					n++
					if it.Status != x3.Status || it.Version != x3.Version {
						t.Fatalf("listed: got (%s, version %d), want (%s, version %d)", it.Status, it.Version, x3.Status, x3.Version)
					}
				}
			}
			if n != tt.want {
				t.Fatalf("ListExecutions(workflow %s, status %q): got the execution %d times, want %d", tt.wf, tt.status, n, tt.want)
			}
		})
	}
}

// ListWorkflows and ListExecutions with a limit outside 1 to store.MaxListLimit are ErrInvalid.
func (ts *suite) listLimitOutside1ToMaxIsInvalid(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	for _, limit := range []int{-1, 0, store.MaxListLimit + 1} {
		_, err := s.ListWorkflows(ctx, store.ListQuery{Limit: limit})
		WantErr(t, fmt.Sprintf("ListWorkflows(limit %d)", limit), err, store.ErrInvalid)
		_, err = s.ListExecutions(ctx, store.ExecutionQuery{ListQuery: store.ListQuery{Limit: limit}})
		WantErr(t, fmt.Sprintf("ListExecutions(limit %d)", limit), err, store.ErrInvalid)
	}
}

// newCommand returns an accepted command's status (Status still empty) for
// a fresh command.
func newCommand() model.CommandStatus {
	return model.CommandStatus{
		CommandUUID: model.NewCommandUUID(occurredAt),
		Type:        model.CommandCreateWorkflow,
		AggregateID: model.WorkflowAggregateID(uuid.New()),
		CreatedAt:   occurredAt,
		UpdatedAt:   occurredAt,
	}
}

// finishedCommand returns c finished with status and reason a second later.
func finishedCommand(c model.CommandStatus, status, reason string) model.CommandStatus {
	c.Status, c.Error, c.UpdatedAt = status, reason, occurredAt.Add(time.Second)
	return c
}

// wantCommandStatus fails t unless the command's stored status and reason
// are these.
func wantCommandStatus(t *testing.T, s store.Store, id uuid.UUID, status, reason string) {
	t.Helper()
	got := MustGetCommand(t, s, id)
	if got.Status != status || got.Error != reason {
		t.Fatalf("GetCommand: got (%s, %q), want (%s, %q)", got.Status, got.Error, status, reason)
	}
}

// PutCommand of a new command stores it as accepted.
func (ts *suite) putCreatesAccepted(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	c := newCommand()
	if err := s.PutCommand(ctx, c); err != nil {
		t.Fatalf("PutCommand: got error %v, want nil", err)
	}
	got := MustGetCommand(t, s, c.CommandUUID)
	want := c
	want.Status = model.CommandAccepted
	SameJSON(t, "GetCommand", got, want)
}

// PutCommand of a command that has a status, accepted or final, succeeds and changes nothing.
func (ts *suite) putIsNoopWhenAStatusExists(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	c := newCommand()
	if err := s.PutCommand(ctx, c); err != nil {
		t.Fatalf("PutCommand: got error %v, want nil", err)
	}
	again := c
	again.Type = model.CommandDeleteWorkflow
	if err := s.PutCommand(ctx, again); err != nil {
		t.Fatalf("PutCommand again: got error %v, want nil", err)
	}
	if got := MustGetCommand(t, s, c.CommandUUID); got.Type != c.Type || got.Status != model.CommandAccepted {
		t.Fatalf("GetCommand after a second put: got (%s, %s), want (%s, %s)", got.Type, got.Status, c.Type, model.CommandAccepted)
	}
	if err := s.FinishCommand(ctx, finishedCommand(c, model.CommandApplied, "")); err != nil {
		t.Fatalf("FinishCommand: got error %v, want nil", err)
	}
	if err := s.PutCommand(ctx, c); err != nil {
		t.Fatalf("PutCommand after finish: got error %v, want nil", err)
	}
	wantCommandStatus(t, s, c.CommandUUID, model.CommandApplied, "")
}

// FinishCommand moves an accepted command to applied or rejected, keeping what it was put with.
func (ts *suite) finishMovesAcceptedToFinal(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, status, reason string
	}{
		{"applied", model.CommandApplied, ""},
		{"rejected", model.CommandRejected, "workflow not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ts.newStore(t)
			c := newCommand()
			if err := s.PutCommand(ctx, c); err != nil {
				t.Fatalf("PutCommand: got error %v, want nil", err)
			}
			if err := s.FinishCommand(ctx, finishedCommand(c, tt.status, tt.reason)); err != nil {
				t.Fatalf("FinishCommand: got error %v, want nil", err)
			}
			wantCommandStatus(t, s, c.CommandUUID, tt.status, tt.reason)
			got := MustGetCommand(t, s, c.CommandUUID)
			if got.Type != c.Type || got.AggregateID != c.AggregateID || !got.CreatedAt.Equal(c.CreatedAt) {
				t.Fatalf("GetCommand: got (%s, %s, %v), want (%s, %s, %v)", got.Type, got.AggregateID, got.CreatedAt, c.Type, c.AggregateID, c.CreatedAt)
			}
		})
	}
}

// FinishCommand of a finished command succeeds and keeps the first final status and reason.
func (ts *suite) finishNeverChangesAFinalStatus(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, first, second string
	}{
		{"applied_then_rejected", model.CommandApplied, model.CommandRejected},
		{"rejected_then_applied", model.CommandRejected, model.CommandApplied},
		{"applied_twice", model.CommandApplied, model.CommandApplied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ts.newStore(t)
			c := newCommand()
			if err := s.FinishCommand(ctx, finishedCommand(c, tt.first, "first")); err != nil {
				t.Fatalf("FinishCommand(%s): got error %v, want nil", tt.first, err)
			}
			if err := s.FinishCommand(ctx, finishedCommand(c, tt.second, "second")); err != nil {
				t.Fatalf("FinishCommand(%s) again: got error %v, want nil", tt.second, err)
			}
			wantCommandStatus(t, s, c.CommandUUID, tt.first, "first")
		})
	}
}

// FinishCommand of a command never put stores it as finished.
func (ts *suite) finishCreatesWhenMissing(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	c := finishedCommand(newCommand(), model.CommandRejected, "bad")
	if err := s.FinishCommand(ctx, c); err != nil {
		t.Fatalf("FinishCommand: got error %v, want nil", err)
	}
	SameJSON(t, "GetCommand", MustGetCommand(t, s, c.CommandUUID), c)
}

// GetCommand of a command never stored is ErrNotFound.
func (ts *suite) getMissingCommandIsNotFound(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	_, err := s.GetCommand(ctx, uuid.New())
	WantErr(t, "GetCommand(unknown)", err, store.ErrNotFound)
}

// The status of a command whose UUID carries no time (an earlier build's, version 4) is stored and finished like the others, and never listed by EachAccepted.
func (ts *suite) uuidWithoutATimeRoundTrips(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	c := newCommand()
	c.CommandUUID = uuid.New()
	if err := s.PutCommand(ctx, c); err != nil {
		t.Fatalf("PutCommand: got error %v, want nil", err)
	}
	wantCommandStatus(t, s, c.CommandUUID, model.CommandAccepted, "")
	if err := s.FinishCommand(ctx, finishedCommand(c, model.CommandRejected, "no")); err != nil {
		t.Fatalf("FinishCommand: got error %v, want nil", err)
	}
	wantCommandStatus(t, s, c.CommandUUID, model.CommandRejected, "no")
	err := s.EachAccepted(ctx, occurredAt.Add(-time.Minute), occurredAt.Add(time.Minute), func(page []model.CommandStatus) error {
		for _, got := range page {
			if got.CommandUUID == c.CommandUUID {
				t.Errorf("EachAccepted listed %s, a UUID without a time", c.CommandUUID)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("EachAccepted: got error %v, want nil", err)
	}
}

// EachAccepted lists exactly the statuses still ACCEPTED of the commands whose UUIDs carry a time in [from, to), across minutes, each once, and stops at fn's error.
func (ts *suite) eachAcceptedListsTheWindow(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	// A random minute of 2021, so that other tests' commands (which carry
	// occurredAt or now) stay out of the window.
	from := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rand.Int64N(365*24*60)) * time.Minute).Add(17 * time.Second)
	to := from.Add(2*time.Minute + 500*time.Millisecond)
	want := map[uuid.UUID]model.CommandStatus{}
	ours := map[uuid.UUID]bool{}
	put := func(at time.Time, status string) {
		t.Helper()
		c := newCommand()
		c.CommandUUID, c.CreatedAt, c.UpdatedAt = model.NewCommandUUID(at), at, at
		ours[c.CommandUUID] = true
		if err := s.PutCommand(ctx, c); err != nil {
			t.Fatalf("PutCommand: got error %v, want nil", err)
		}
		if status != model.CommandAccepted {
			if err := s.FinishCommand(ctx, finishedCommand(c, status, "")); err != nil {
				t.Fatalf("FinishCommand: got error %v, want nil", err)
			}
			return
		}
		if !at.Before(from) && at.Before(to) {
			c.Status = model.CommandAccepted
			want[c.CommandUUID] = c
		}
	}
	put(from.Add(-time.Millisecond), model.CommandAccepted) // before
	put(from, model.CommandAccepted)
	for i := range 40 {
		put(from.Add(time.Duration(i)*3*time.Second+time.Millisecond), model.CommandAccepted)
	}
	put(from.Add(time.Minute), model.CommandRejected)
	put(from.Add(90*time.Second), model.CommandApplied)
	put(to.Add(-time.Millisecond), model.CommandAccepted)
	put(to, model.CommandAccepted) // after
	got := map[uuid.UUID]model.CommandStatus{}
	err := s.EachAccepted(ctx, from, to, func(page []model.CommandStatus) error {
		for _, c := range page {
			if !ours[c.CommandUUID] {
				continue // another test's (the store may hold data)
			}
			if _, dup := got[c.CommandUUID]; dup {
				t.Errorf("EachAccepted listed %s twice", c.CommandUUID)
			}
			got[c.CommandUUID] = c
		}
		return nil
	})
	if err != nil {
		t.Fatalf("EachAccepted: got error %v, want nil", err)
	}
	for id, c := range want {
		g, ok := got[id]
		if !ok {
			at, _ := model.CommandTime(id)
			t.Errorf("EachAccepted left out %s (at %v, window [%v, %v))", id, at, from, to)
			continue
		}
		SameJSON(t, "EachAccepted's status", g, c)
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			at, _ := model.CommandTime(id)
			t.Errorf("EachAccepted listed %s (at %v), not ACCEPTED in the window [%v, %v)", id, at, from, to)
		}
	}
	err = s.EachAccepted(ctx, from, from.Add(store.MaxAcceptedWindow+time.Millisecond), func([]model.CommandStatus) error { return nil })
	WantErr(t, "EachAccepted(a window over MaxAcceptedWindow)", err, store.ErrInvalid)
	stop := errors.New("stop")
	calls := 0
	err = s.EachAccepted(ctx, from, to, func([]model.CommandStatus) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("EachAccepted with fn failing: got error %v after %d calls, want %v after 1", err, calls, stop)
	}
}

// A PutCommand racing the FinishCommand of the same command never undoes the final status.
func (ts *suite) racePutAndFinishEndsFinal(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	for i := 0; i < 20; i++ {
		c := newCommand()
		startTogether(2, func(j int) {
			var err error
			if j == 0 {
				err = s.PutCommand(ctx, c)
			} else {
				err = s.FinishCommand(ctx, finishedCommand(c, model.CommandApplied, ""))
			}
			if err != nil {
				t.Errorf("racer %d: got error %v, want nil", j, err)
			}
		})
		wantCommandStatus(t, s, c.CommandUUID, model.CommandApplied, "")
	}
}

// newIdempotencyRecord returns a record of key, for a fresh request hash
// and command, that expires at expires.
func newIdempotencyRecord(key string, expires time.Time) store.IdempotencyRecord {
	return store.IdempotencyRecord{
		Key:         key,
		RequestHash: uuid.NewString(),
		CommandUUID: uuid.New(),
		CreatedAt:   time.Now().UTC().Truncate(time.Millisecond),
		ExpiresAt:   expires,
	}
}

// sameRecord fails t unless got and want are the same record, field by
// field (times compared with Equal).
func sameRecord(t *testing.T, what string, got, want store.IdempotencyRecord) {
	t.Helper()
	if got.Key != want.Key || got.RequestHash != want.RequestHash || got.CommandUUID != want.CommandUUID ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("%s:\ngot  %+v\nwant %+v", what, got, want)
	}
}

// The first claim of a key succeeds and returns the record claimed.
func (ts *suite) firstClaimIsStored(t *testing.T) {
	ctx := context.Background()
	later := time.Now().Add(time.Hour).UTC()
	s := ts.newStore(t)
	rec := newIdempotencyRecord("POST /v1/workflows\x00"+uuid.NewString(), later)
	got, err := s.ClaimIdempotencyKey(ctx, rec)
	if err != nil {
		t.Fatalf("first claim: got error %v, want nil", err)
	}
	sameRecord(t, "first claim", got, rec)
}

// A second claim of a live key is ErrDuplicate and returns the first claim's record.
func (ts *suite) secondClaimReturnsTheFirstAsDuplicate(t *testing.T) {
	ctx := context.Background()
	later := time.Now().Add(time.Hour).UTC()
	s := ts.newStore(t)
	key := "k-" + uuid.NewString()
	first := newIdempotencyRecord(key, later)
	if _, err := s.ClaimIdempotencyKey(ctx, first); err != nil {
		t.Fatalf("first claim: got error %v, want nil", err)
	}
	got, err := s.ClaimIdempotencyKey(ctx, newIdempotencyRecord(key, later))
	WantErr(t, "second claim", err, store.ErrDuplicate)
	sameRecord(t, "second claim", got, first)
}

// A key whose claim has expired can be claimed anew, and the new claim then holds it.
func (ts *suite) expiredClaimMayBeClaimedAgain(t *testing.T) {
	ctx := context.Background()
	later := time.Now().Add(time.Hour).UTC()
	s := ts.newStore(t)
	key := "k-" + uuid.NewString()
	if _, err := s.ClaimIdempotencyKey(ctx, newIdempotencyRecord(key, time.Now().Add(-time.Minute).UTC())); err != nil {
		t.Fatalf("first claim: got error %v, want nil", err)
	}
	second := newIdempotencyRecord(key, later)
	got, err := s.ClaimIdempotencyKey(ctx, second)
	if err != nil {
		t.Fatalf("claim after expiry: got error %v, want nil", err)
	}
	sameRecord(t, "claim after expiry", got, second)
	got, err = s.ClaimIdempotencyKey(ctx, newIdempotencyRecord(key, later))
	WantErr(t, "third claim", err, store.ErrDuplicate)
	sameRecord(t, "third claim", got, second)
}

// Of concurrent claims of one key exactly one wins; all return the winner's record.
func (ts *suite) raceOneClaimWins(t *testing.T) {
	ctx := context.Background()
	later := time.Now().Add(time.Hour).UTC()
	s := ts.newStore(t)
	key := "k-" + uuid.NewString()
	const n = 20
	recs := make([]store.IdempotencyRecord, n)
	got := make([]store.IdempotencyRecord, n)
	errs := make([]error, n)
	for i := range recs {
		recs[i] = newIdempotencyRecord(key, later)
	}
	startTogether(n, func(i int) { got[i], errs[i] = s.ClaimIdempotencyKey(ctx, recs[i]) })
	winner := oneWinner(t, "claimed the key", errs, store.ErrDuplicate)
	for i := range got {
		sameRecord(t, fmt.Sprintf("claim %d", i), got[i], recs[winner])
	}
}

// Changing appended or loaded events changes nothing in the log.
func (ts *suite) eventsAreNotAliased(t *testing.T) {
	s := ts.newStore(t)
	agg := NewAggregateID()
	in := NewEvents(agg, 1, 2)
	want := []model.Event{in[0].Clone(), in[1].Clone()}
	MustAppend(t, s, in...)
	in[0].Data[0] = 'X' // the caller's slice after Append
	in[1].Type = "Changed"
	got := MustLoad(t, s, agg, 0)
	SameEvents(t, "Load after changing the appended events", got, want)
	got[0].Data[0] = 'Y' // a loaded event
	got[0].Data = append(got[0].Data[:1], "junk"...)
	got[1].EventUUID = uuid.Nil
	SameEvents(t, "Load after changing loaded events", MustLoad(t, s, agg, 0), want)
}

// Changing a workflow view after putting, getting or listing it changes nothing stored.
func (ts *suite) workflowViewIsNotAliased(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	in := NewWorkflow(occurredAt, 1)
	want := in.Clone()
	MustPutWorkflow(t, s, in, 0)
	in.Steps[0].Name = "changed after put"
	got := MustGetWorkflow(t, s, want.WorkflowUUID)
	SameJSON(t, "GetWorkflow after changing the put view", got, want)
	got.Steps[0].Name = "changed after get"
	SameJSON(t, "GetWorkflow after changing a got view", MustGetWorkflow(t, s, want.WorkflowUUID), want)
	list, err := s.ListWorkflows(ctx, store.ListQuery{Limit: 1000})
	if err != nil {
		t.Fatalf("ListWorkflows: got error %v, want nil", err)
	}
	for i := range list {
		if len(list[i].Steps) > 0 {
			list[i].Steps[0].Name = "changed after list"
		}
	}
	SameJSON(t, "GetWorkflow after changing listed views", MustGetWorkflow(t, s, want.WorkflowUUID), want)
}

// Changing an execution view after putting, getting or listing it changes nothing stored.
func (ts *suite) executionViewIsNotAliased(t *testing.T) {
	ctx := context.Background()
	s := ts.newStore(t)
	in := NewExecution(uuid.New(), model.ExecutionRunning, occurredAt, 1)
	want := in.Clone()
	MustPutExecution(t, s, in, 0)
	in.Steps[0].Name = "changed after put"
	in.Steps[0].Output[2] = 'X'
	in.Input[2] = 'X'
	*in.Steps[0].StartedAt = time.Time{}
	got := MustGetExecution(t, s, want.WorkflowExecutionUUID)
	SameJSON(t, "GetExecution after changing the put view", got, want)
	got.Steps[0].Name = "changed after get"
	got.Steps[0].Output[2] = 'Y'
	got.Input[2] = 'Y'
	*got.Steps[0].StartedAt = time.Time{}
	SameJSON(t, "GetExecution after changing a got view", MustGetExecution(t, s, want.WorkflowExecutionUUID), want)
	list, err := s.ListExecutions(ctx, store.ExecutionQuery{ListQuery: store.ListQuery{Limit: 10}, WorkflowUUID: want.WorkflowUUID})
	if err != nil || len(list) != 1 {
		t.Fatalf("ListExecutions: got (%d items, %v), want (1, nil)", len(list), err)
	}
	list[0].Steps[1].Status = "changed after list"
	SameJSON(t, "GetExecution after changing a listed view", MustGetExecution(t, s, want.WorkflowExecutionUUID), want)
}

// Every call with a cancelled context is context.Canceled and writes nothing.
func (ts *suite) cancelledContextIsAnError(t *testing.T) {
	s := ts.newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	agg := NewAggregateID()
	wf := NewWorkflow(occurredAt, 1)
	x := NewExecution(uuid.New(), model.ExecutionPending, occurredAt, 1)
	cmd := model.CommandStatus{CommandUUID: uuid.New(), Type: model.CommandCreateWorkflow, Status: model.CommandApplied}
	rec := store.IdempotencyRecord{Key: "k-" + uuid.NewString(), CommandUUID: uuid.New()}
	tests := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"append", func(ctx context.Context) error { return s.Append(ctx, NewEvents(agg, 1, 1)) }},
		{"load", func(ctx context.Context) error { _, err := s.Load(ctx, agg, 0); return err }},
		{"put_workflow", func(ctx context.Context) error { return s.PutWorkflow(ctx, wf, 0) }},
		{"get_workflow", func(ctx context.Context) error { _, err := s.GetWorkflow(ctx, wf.WorkflowUUID); return err }},
		{"list_workflows", func(ctx context.Context) error {
			_, err := s.ListWorkflows(ctx, store.ListQuery{Limit: 10})
			return err
		}},
		{"put_execution", func(ctx context.Context) error { return s.PutExecution(ctx, x, 0) }},
		{"get_execution", func(ctx context.Context) error {
			_, err := s.GetExecution(ctx, x.WorkflowExecutionUUID)
			return err
		}},
		{"list_executions", func(ctx context.Context) error {
			_, err := s.ListExecutions(ctx, store.ExecutionQuery{ListQuery: store.ListQuery{Limit: 10}})
			return err
		}},
		{"put_command", func(ctx context.Context) error { return s.PutCommand(ctx, cmd) }},
		{"finish_command", func(ctx context.Context) error { return s.FinishCommand(ctx, cmd) }},
		{"get_command", func(ctx context.Context) error { _, err := s.GetCommand(ctx, cmd.CommandUUID); return err }},
		{"claim_idempotency_key", func(ctx context.Context) error { _, err := s.ClaimIdempotencyKey(ctx, rec); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			WantErr(t, tt.name+" with a cancelled context", tt.call(ctx), context.Canceled)
		})
	}
	t.Run("nothing_was_written", func(t *testing.T) {
		bg := context.Background()
		if got := MustLoad(t, s, agg, 0); len(got) != 0 {
			t.Fatalf("Load: got %d events, want 0", len(got))
		}
		_, err := s.GetWorkflow(bg, wf.WorkflowUUID)
		WantErr(t, "GetWorkflow", err, store.ErrNotFound)
		_, err = s.GetExecution(bg, x.WorkflowExecutionUUID)
		WantErr(t, "GetExecution", err, store.ErrNotFound)
		_, err = s.GetCommand(bg, cmd.CommandUUID)
		WantErr(t, "GetCommand", err, store.ErrNotFound)
		if _, err := s.ClaimIdempotencyKey(bg, rec); err != nil {
			t.Fatalf("ClaimIdempotencyKey: got error %v, want nil (the cancelled claim stored nothing)", err)
		}
	})
}
