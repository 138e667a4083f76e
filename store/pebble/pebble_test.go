package pebble_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
	"github.com/workflowd/workflowd/store/pebble"
	"github.com/workflowd/workflowd/store/storetest"
)

// MustOpen opens a store and closes it when the test ends.
func MustOpen(tb testing.TB, opts pebble.Options) *pebble.Store {
	tb.Helper()
	s, err := pebble.Open(opts)
	if err != nil {
		tb.Fatalf("Open(%+v): got error %v, want nil", opts, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: got error %v, want nil", err)
		}
	})
	return s
}

func mustClose(tb testing.TB, s *pebble.Store) {
	tb.Helper()
	if err := s.Close(); err != nil {
		tb.Fatalf("Close: got error %v, want nil", err)
	}
}

// writeSome puts a little of everything into s.
func writeSome(tb testing.TB, s *pebble.Store) {
	tb.Helper()
	ctx := context.Background()
	agg := storetest.NewAggregateID()
	storetest.MustAppend(tb, s, storetest.NewEvents(agg, 1, 2)...)
	storetest.MustAppend(tb, s, storetest.NewEvents(agg, 3, 1)...)
	w := storetest.NewWorkflow(time.Now().UTC(), 1)
	storetest.MustPutWorkflow(tb, s, w, 0)
	storetest.MustPutExecution(tb, s, storetest.NewExecution(w.WorkflowUUID, model.ExecutionRunning, time.Now().UTC(), 2), 0)
	if err := s.PutCommand(ctx, model.CommandStatus{CommandUUID: uuid.New(), Type: model.CommandCreateWorkflow}); err != nil {
		tb.Fatalf("PutCommand: got error %v, want nil", err)
	}
	if err := s.SaveCheckpoint(ctx, "setup", 2); err != nil {
		tb.Fatalf("SaveCheckpoint: got error %v, want nil", err)
	}
}

// backends are the three ways the suites run the embedded store.
var backends = []struct {
	name string
	open func(tb testing.TB) *pebble.Store
}{
	{"memory", func(tb testing.TB) *pebble.Store { return MustOpen(tb, pebble.Options{}) }},
	{"file", func(tb testing.TB) *pebble.Store { return MustOpen(tb, pebble.Options{Dir: tb.TempDir()}) }},
	{"reopened", func(tb testing.TB) *pebble.Store {
		dir := tb.TempDir()
		s, err := pebble.Open(pebble.Options{Dir: dir})
		if err != nil {
			tb.Fatalf("Open: got error %v, want nil", err)
		}
		writeSome(tb, s)
		mustClose(tb, s)
		return MustOpen(tb, pebble.Options{Dir: dir})
	}},
}

func TestStore(t *testing.T) {
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			t.Parallel()
			storetest.Run(t, func(t *testing.T) store.Store { return bk.open(t) },
				storetest.WithFeatures(storetest.Features{DuplicateAtAnySeq: true, NextSeqChecked: true}))
		})
	}
}

func TestFeed(t *testing.T) {
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			t.Parallel()
			storetest.RunFeed(t, func(t *testing.T) storetest.FeedStore { return bk.open(t) })
		})
	}
}

func BenchmarkStore(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		storetest.Bench(b, func(b *testing.B) store.Store { return MustOpen(b, pebble.Options{}) })
	})
	b.Run("file", func(b *testing.B) {
		storetest.Bench(b, func(b *testing.B) store.Store { return MustOpen(b, pebble.Options{Dir: b.TempDir()}) })
	})
}

func TestDataSurvivesCloseAndReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := pebble.Open(pebble.Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	agg := storetest.NewAggregateID()
	events := storetest.NewEvents(agg, 1, 4)
	storetest.MustAppend(t, s, events[:3]...)
	storetest.MustAppend(t, s, events[3])
	w := storetest.NewWorkflow(time.Now().UTC(), 5)
	storetest.MustPutWorkflow(t, s, w, 0)
	x := storetest.NewExecution(w.WorkflowUUID, model.ExecutionRunning, time.Now().UTC(), 3)
	storetest.MustPutExecution(t, s, x, 0)
	cmd := model.CommandStatus{CommandUUID: uuid.New(), Type: model.CommandStartExecution, Status: model.CommandApplied}
	if err := s.FinishCommand(ctx, cmd); err != nil {
		t.Fatalf("FinishCommand: got error %v, want nil", err)
	}
	rec := store.IdempotencyRecord{Key: "survivor", CommandUUID: uuid.New(), ExpiresAt: time.Now().Add(time.Hour)}
	if _, err := s.ClaimIdempotencyKey(ctx, rec); err != nil {
		t.Fatalf("ClaimIdempotencyKey: got error %v, want nil", err)
	}
	feed, lastPos := storetest.DrainFeed(t, s, 0)
	if len(feed) != 2 {
		t.Fatalf("feed before reopen: got %d entries, want 2", len(feed))
	}
	if err := s.SaveCheckpoint(ctx, "projector", lastPos); err != nil {
		t.Fatalf("SaveCheckpoint: got error %v, want nil", err)
	}
	mustClose(t, s)

	s = MustOpen(t, pebble.Options{Dir: dir})
	storetest.SameEvents(t, "Load after reopen", storetest.MustLoad(t, s, agg, 0), events)
	storetest.WantErr(t, "Append(duplicate) after reopen", s.Append(ctx, events[3:]), store.ErrDuplicate)
	storetest.WantErr(t, "Append(taken seq) after reopen", s.Append(ctx, storetest.NewEvents(agg, 4, 1)), store.ErrConflict)

	gotW := storetest.MustGetWorkflow(t, s, w.WorkflowUUID)
	storetest.SameJSON(t, "GetWorkflow after reopen", gotW, w)
	if gotW.Seq != w.Seq {
		t.Fatalf("GetWorkflow after reopen: got Seq %d, want %d", gotW.Seq, w.Seq)
	}
	storetest.SameJSON(t, "GetExecution after reopen", storetest.MustGetExecution(t, s, x.WorkflowExecutionUUID), x)
	if got := storetest.MustGetCommand(t, s, cmd.CommandUUID); got.Status != model.CommandApplied {
		t.Fatalf("GetCommand after reopen: got %s, want %s", got.Status, model.CommandApplied)
	}
	if got, err := s.ClaimIdempotencyKey(ctx, store.IdempotencyRecord{Key: "survivor"}); !errors.Is(err, store.ErrDuplicate) || got.CommandUUID != rec.CommandUUID {
		t.Fatalf("ClaimIdempotencyKey after reopen: got (%s, %v), want (%s, duplicate)", got.CommandUUID, err, rec.CommandUUID)
	}
	if got, err := s.LoadCheckpoint(ctx, "projector"); err != nil || got != lastPos {
		t.Fatalf("LoadCheckpoint after reopen: got (%d, %v), want (%d, nil)", got, err, lastPos)
	}
	again, _ := storetest.DrainFeed(t, s, 0)
	if len(again) != 2 || again[0].Pos != feed[0].Pos || again[1].Pos != feed[1].Pos {
		t.Fatalf("feed after reopen: got %d entries, want the same 2 at the same positions", len(again))
	}
	storetest.MustAppend(t, s, storetest.NewEvents(agg, 5, 1)...)
	next, _ := storetest.DrainFeed(t, s, lastPos)
	if len(next) != 1 || next[0].Pos <= lastPos {
		t.Fatalf("feed after reopen and append: got %d entries (first pos %v), want 1 past %d", len(next), positions(next), lastPos)
	}
}

func positions(entries []store.FeedEntry) []uint64 {
	out := make([]uint64, len(entries))
	for i, e := range entries {
		out[i] = e.Pos
	}
	return out
}

func TestFeedTrim(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := pebble.Options{Dir: dir, FeedConsumers: []string{"projector", "dispatcher"}}
	s, err := pebble.Open(opts)
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	agg := storetest.NewAggregateID()
	for seq := int64(1); seq <= 5; seq++ {
		storetest.MustAppend(t, s, storetest.NewEvent(agg, seq))
	}
	all, last := storetest.DrainFeed(t, s, 0)
	if len(all) != 5 {
		t.Fatalf("feed: got %d entries, want 5", len(all))
	}
	save := func(consumer string, pos uint64) {
		t.Helper()
		if err := s.SaveCheckpoint(ctx, consumer, pos); err != nil {
			t.Fatalf("SaveCheckpoint(%s, %d): got error %v, want nil", consumer, pos, err)
		}
	}
	save("projector", all[3].Pos)
	save("someone-else", last) // not a trimming consumer
	if got, _ := storetest.DrainFeed(t, s, 0); len(got) != 5 {
		t.Fatalf("feed with one trimming consumer's checkpoint missing: got %d entries, want all 5", len(got))
	}
	save("dispatcher", all[1].Pos)
	got, _ := storetest.DrainFeed(t, s, 0)
	if len(got) != 3 || got[0].Pos != all[2].Pos {
		t.Fatalf("feed after trimming to the lowest checkpoint: got positions %v, want %v", positions(got), positions(all[2:]))
	}

	// Trim everything, reopen: positions go on, never reused.
	mustClose(t, s)
	s, err = pebble.Open(opts) // first trim after open is immediate
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	save("projector", last)
	save("dispatcher", last)
	if got, _ := storetest.DrainFeed(t, s, 0); len(got) != 0 {
		t.Fatalf("feed after every consumer passed the end: got positions %v, want none", positions(got))
	}
	mustClose(t, s)
	s = MustOpen(t, opts)
	storetest.MustAppend(t, s, storetest.NewEvent(agg, 6))
	got, _ = storetest.DrainFeed(t, s, 0)
	if len(got) != 1 || got[0].Pos <= last {
		t.Fatalf("feed after reopen and append: got positions %v, want one past %d", positions(got), last)
	}
}

func TestAppendPastNextSeqIsInvalid(t *testing.T) {
	s := MustOpen(t, pebble.Options{})
	agg := storetest.NewAggregateID()
	storetest.MustAppend(t, s, storetest.NewEvent(agg, 1))
	storetest.WantErr(t, "Append(seq 3 after 1)", s.Append(context.Background(), storetest.NewEvents(agg, 3, 1)), store.ErrInvalid)
	storetest.WantErr(t, "Append(seq 2 on a new aggregate)", s.Append(context.Background(), storetest.NewEvents(storetest.NewAggregateID(), 2, 1)), store.ErrInvalid)
}

func TestPing(t *testing.T) {
	s := MustOpen(t, pebble.Options{})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: got error %v, want nil", err)
	}
}

func TestCallsAfterCloseFail(t *testing.T) {
	ctx := context.Background()
	s, err := pebble.Open(pebble.Options{})
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	mustClose(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: got error %v, want nil", err)
	}
	agg := storetest.NewAggregateID()
	tests := []struct {
		name string
		call func() error
	}{
		{"ping", func() error { return s.Ping(ctx) }},
		{"append", func() error { return s.Append(ctx, storetest.NewEvents(agg, 1, 1)) }},
		{"load", func() error { _, err := s.Load(ctx, agg, 0); return err }},
		{"get_workflow", func() error { _, err := s.GetWorkflow(ctx, uuid.New()); return err }},
		{"put_execution", func() error {
			return s.PutExecution(ctx, storetest.NewExecution(uuid.New(), model.ExecutionPending, time.Now(), 1), 0)
		}},
		{"list_executions", func() error {
			_, err := s.ListExecutions(ctx, store.ExecutionQuery{ListQuery: store.ListQuery{Limit: 1}})
			return err
		}},
		{"get_command", func() error { _, err := s.GetCommand(ctx, uuid.New()); return err }},
		{"claim_idempotency_key", func() error {
			_, err := s.ClaimIdempotencyKey(ctx, store.IdempotencyRecord{Key: "k"})
			return err
		}},
		{"read_feed", func() error { _, err := s.ReadFeed(ctx, 0, 1, time.Second); return err }},
		{"save_checkpoint", func() error { return s.SaveCheckpoint(ctx, "c", 1) }},
		{"load_checkpoint", func() error { _, err := s.LoadCheckpoint(ctx, "c"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storetest.WantErr(t, tt.name+" after Close", tt.call(), pebble.ErrClosed)
		})
	}
}

func TestCloseWakesWaitingReader(t *testing.T) {
	s, err := pebble.Open(pebble.Options{})
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.ReadFeed(context.Background(), 0, 10, time.Minute)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	mustClose(t, s)
	select {
	case err := <-done:
		storetest.WantErr(t, "ReadFeed ended by Close", err, pebble.ErrClosed)
	case <-time.After(10 * time.Second):
		t.Fatalf("ReadFeed still waiting 10s after Close")
	}
}

// Finished executions' views go once the retention has passed; running ones
// and the event log stay.
func TestPurgeExpiredDeletesFinishedViewsAfterTheRetention(t *testing.T) {
	s, err := pebble.Open(pebble.Options{Retention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	wf := uuid.New()
	done := storetest.NewExecution(wf, model.ExecutionRunning, at, 1)
	running := storetest.NewExecution(wf, model.ExecutionRunning, at, 1)
	storetest.MustPutExecution(t, s, done, 0)
	storetest.MustPutExecution(t, s, running, 0)
	finished := done.Clone()
	finished.Status, finished.Version, finished.UpdatedAt = model.ExecutionSucceeded, 2, at.Add(time.Minute)
	storetest.MustPutExecution(t, s, finished, 1)

	if n, err := s.PurgeExpired(ctx, at.Add(time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("before the retention passed: purged %d, %v", n, err)
	}
	if n, err := s.PurgeExpired(ctx, at.Add(time.Hour+2*time.Minute), 100); err != nil || n != 1 {
		t.Fatalf("after it: purged %d, %v; want 1", n, err)
	}
	if _, err := s.GetExecution(ctx, done.WorkflowExecutionUUID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the purged view: got %v, want not found", err)
	}
	list, err := s.ListExecutions(ctx, store.ExecutionQuery{ListQuery: store.ListQuery{Limit: 10}, WorkflowUUID: wf})
	if err != nil || len(list) != 1 || list[0].WorkflowExecutionUUID != running.WorkflowExecutionUUID {
		t.Fatalf("listing after the purge: %v %v, want only the running execution", list, err)
	}
	if n, err := s.PurgeExpired(ctx, at.Add(48*time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("again: purged %d, %v; want nothing (the running one never expires)", n, err)
	}
}

// A change of the retention between runs: keys set under the old one move
// to the new one's time, and the purge never stalls on them.
func TestPurgeExpiredFollowsARetentionChange(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	open := func(retention time.Duration) *pebble.Store {
		s, err := pebble.Open(pebble.Options{Dir: dir, Retention: retention})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open(time.Hour)
	var ids []uuid.UUID
	for i := range 3 {
		x := storetest.NewExecution(uuid.New(), model.ExecutionSucceeded, at, 1)
		x.UpdatedAt = at.Add(time.Duration(i) * time.Minute)
		storetest.MustPutExecution(t, s, x, 0)
		ids = append(ids, x.WorkflowExecutionUUID)
	}
	s.Close()
	s = open(3 * time.Hour)
	defer s.Close()
	// Under the old keys all three are due after an hour; under the new
	// retention none is.
	if n, err := s.PurgeExpired(ctx, at.Add(2*time.Hour), 2); err != nil || n != 0 {
		t.Fatalf("after 2h: purged %d, %v; want none (the retention is 3h now)", n, err)
	}
	if n, err := s.PurgeExpired(ctx, at.Add(2*time.Hour), 2); err != nil || n != 0 {
		t.Fatalf("after 2h again: purged %d, %v; want none", n, err)
	}
	if n, err := s.PurgeExpired(ctx, at.Add(4*time.Hour), 2); err != nil || n != 2 {
		t.Fatalf("after 4h, 2 at a time: purged %d, %v; want 2", n, err)
	}
	if n, err := s.PurgeExpired(ctx, at.Add(4*time.Hour), 2); err != nil || n != 1 {
		t.Fatalf("after 4h, the rest: purged %d, %v; want 1", n, err)
	}
	for _, id := range ids {
		if _, err := s.GetExecution(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("execution %s: %v, want purged", id, err)
		}
	}
}

// An idempotency claim expires by the store's clock (Options.Now), not the
// machine's: the simulator's clock is days from the machine's.
func TestClaimExpiresByTheStoresClock(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := MustOpen(t, pebble.Options{Now: func() time.Time { return now }})
	first := store.IdempotencyRecord{Key: "k", CommandUUID: uuid.New(), ExpiresAt: now.Add(time.Hour)}
	if _, err := s.ClaimIdempotencyKey(ctx, first); err != nil {
		t.Fatalf("ClaimIdempotencyKey: got error %v, want nil", err)
	}
	second := store.IdempotencyRecord{Key: "k", CommandUUID: uuid.New(), ExpiresAt: now.Add(2 * time.Hour)}
	if got, err := s.ClaimIdempotencyKey(ctx, second); !errors.Is(err, store.ErrDuplicate) || got.CommandUUID != first.CommandUUID {
		t.Fatalf("claim within the hour (the machine's clock is years before): got (%s, %v), want (%s, duplicate)", got.CommandUUID, err, first.CommandUUID)
	}
	now = now.Add(time.Hour + time.Second)
	if got, err := s.ClaimIdempotencyKey(ctx, second); err != nil || got.CommandUUID != second.CommandUUID {
		t.Fatalf("claim after the hour: got (%s, %v), want (%s, nil)", got.CommandUUID, err, second.CommandUUID)
	}
}

// On a file system that drops what was not synced (Options.FS), a crash
// keeps every append (synced) and may lose a later unsynced view; the
// store opens again.
func TestACrashKeepsWhatWasSynced(t *testing.T) {
	ctx := context.Background()
	fs := vfs.NewStrictMem()
	if err := fs.MkdirAll("db", 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := fs.OpenDir("")
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sync(); err != nil {
		t.Fatal(err)
	}
	root.Close()
	s, err := pebble.Open(pebble.Options{Dir: "db", FS: fs})
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	agg := model.ExecutionAggregateID(uuid.New())
	events := storetest.NewEvents(agg, 1, 2)
	storetest.MustAppend(t, s, events...)
	x := model.Execution{WorkflowExecutionUUID: uuid.New(), Status: model.ExecutionRunning, Version: 1}
	if err := s.PutExecution(ctx, x, 0); err != nil {
		t.Fatalf("PutExecution: got error %v, want nil", err)
	}
	// The crash: nothing more is synced, what was not is dropped.
	fs.SetIgnoreSyncs(true)
	_ = s.Close()
	fs.ResetToSyncedState()
	fs.SetIgnoreSyncs(false)

	s = MustOpen(t, pebble.Options{Dir: "db", FS: fs})
	storetest.SameEvents(t, "Load after the crash", storetest.MustLoad(t, s, agg, 0), events)
	if _, err := s.GetExecution(ctx, x.WorkflowExecutionUUID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetExecution of the view written without a sync after the last append: got %v, want not found (lost in the crash)", err)
	}
}
