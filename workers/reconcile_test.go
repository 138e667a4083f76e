package workers_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store/pebble"
	"github.com/workflowd/workflowd/workers"
)

// waitThenManual is a workflow of a one-second wait step, then a manual one.
func waitThenManual() model.Definition {
	return model.Definition{Name: "wf", Steps: []model.StepDefinition{
		{Name: "cool-off", Type: model.StepWait, Seconds: 1},
		{Name: "approve", Type: model.StepManual},
	}}
}

// reconcileRig is a store, a worker, a projector and a dispatcher whose
// feed the test hands over by hand, dropping what it likes.
type reconcileRig struct {
	st    *pebble.Store
	w     *workers.CommandWorker
	p     *workers.Projector
	pub   *recordingPublisher
	sched *recordingScheduler
	r     *workers.Reconciler
	now   time.Time
}

func newReconcileRig(t *testing.T) *reconcileRig {
	st := mustStore(t)
	g := &reconcileRig{st: st, pub: &recordingPublisher{}, sched: &recordingScheduler{}, now: time.Now()}
	g.w = &workers.CommandWorker{Log: st, Commands: st, Logger: quiet}
	g.p = &workers.Projector{Log: st, Views: st, Logger: quiet}
	d := &workers.Dispatcher{Publisher: g.pub, Scheduler: g.sched, MaxDelay: 15 * time.Minute, Logger: quiet, Now: func() time.Time { return g.now }}
	g.r = &workers.Reconciler{Log: st, Views: st, Accepted: st, Handlers: workers.EventHandlers{g.p, d},
		Logger: quiet, Now: func() time.Time { return g.now }}
	return g
}

// apply has the worker apply cmd (a client command, whose ACCEPTED status
// the API writes first, when client is set) and returns its aggregate's
// events after seq after, which the test may project or drop.
func (g *reconcileRig) apply(t *testing.T, cmd model.Command, client bool, after int64) []model.Event {
	t.Helper()
	ctx := context.Background()
	if client {
		if err := g.st.PutCommand(ctx, model.CommandStatus{CommandUUID: cmd.CommandUUID, Type: cmd.Type, AggregateID: cmd.AggregateID(), CreatedAt: cmd.IssuedAt}); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.w.HandleCommand(ctx, cmd, 1); err != nil {
		t.Fatalf("apply %s: %v", cmd.Type, err)
	}
	events, err := g.st.Load(ctx, cmd.AggregateID(), after)
	if err != nil {
		t.Fatal(err)
	}
	return events
}

// workflow creates a workflow of def and projects it.
func (g *reconcileRig) workflow(t *testing.T, def model.Definition) uuid.UUID {
	t.Helper()
	id := uuid.New()
	created := g.apply(t, model.NewCommand(model.NewCommandUUID(g.now), model.CreateWorkflow{WorkflowUUID: id, Definition: def}, g.now), true, 0)
	if err := g.p.Handle(context.Background(), created); err != nil {
		t.Fatal(err)
	}
	return id
}

func (g *reconcileRig) execution(t *testing.T, id uuid.UUID) model.Execution {
	t.Helper()
	x, err := g.st.GetExecution(context.Background(), id)
	if err != nil {
		t.Fatalf("execution view: %v", err)
	}
	return x
}

func publishedTypes(t *testing.T, msgs []bus.Message) []string {
	t.Helper()
	var out []string
	for _, m := range msgs {
		cmd, err := model.DecodeCommand(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, cmd.Type)
	}
	return out
}

// The record of the append that created an execution never reaches the
// projector and the dispatcher: a reconciliation run a minute after the
// start command was accepted finds the command still without its effect,
// projects the execution from the log and dispatches its timer; runs before
// that minute and after the repair change nothing.
func TestReconcilerRepairsAnExecutionWhoseCreationRecordWasLost(t *testing.T) {
	g := newReconcileRig(t)
	ctx := context.Background()
	wfID := g.workflow(t, waitThenManual())
	exID := uuid.New()
	start := model.NewCommand(model.NewCommandUUID(g.now), model.StartExecution{WorkflowExecutionUUID: exID, WorkflowUUID: wfID}, g.now)
	lost := g.apply(t, start, true, 0)
	if len(lost) == 0 {
		t.Fatal("the start appended nothing")
	}
	// (the stream record of lost is dropped: nothing projects or dispatches it)

	accepted := g.now
	g.now = accepted.Add(30 * time.Second)
	if n, err := g.r.Run(ctx); err != nil || n != 0 {
		t.Fatalf("run 30s after: repaired %d, err %v; want 0 (the command is younger than MinAge)", n, err)
	}
	if _, err := g.st.GetExecution(ctx, exID); err == nil {
		t.Fatal("the execution has a view before any repair")
	}
	g.now = accepted.Add(70 * time.Second)
	if n, err := g.r.Run(ctx); err != nil || n != 1 {
		t.Fatalf("run 70s after: repaired %d, err %v; want 1", n, err)
	}
	x := g.execution(t, exID)
	if x.Version != lost[len(lost)-1].Seq || x.Status != model.ExecutionRunning || x.CurrentStep != 0 {
		t.Fatalf("view after the repair: version %d status %s step %d; want %d RUNNING 0", x.Version, x.Status, x.CurrentStep, lost[len(lost)-1].Seq)
	}
	if applied, _ := model.Recent(x.RecentCommands, start.CommandUUID); !applied {
		t.Fatal("the repaired view does not show the start command (its status would read ACCEPTED)")
	}
	if len(g.sched.delays) != 1 || g.sched.delays[0] != time.Millisecond || len(g.pub.msgs) != 0 {
		t.Fatalf("dispatched after the repair: delayed %v, published %v; want the wait step's timer, due already (delayed 1ms)", g.sched.delays, publishedTypes(t, g.pub.msgs))
	}
	g.now = accepted.Add(130 * time.Second)
	if n, err := g.r.Run(ctx); err != nil || n != 0 {
		t.Fatalf("run after the repair: repaired %d, err %v; want 0", n, err)
	}
	if len(g.sched.delays) != 1 || len(g.pub.msgs) != 0 {
		t.Fatalf("dispatched after a run with nothing to repair: delayed %v, published %d; want the one timer still", g.sched.delays, len(g.pub.msgs))
	}
}

// The record of a timer's outcome (the service's own work: no command
// status) is lost. The view still shows the wait step, due a grace after
// the timer: the cleanup, finding it due, compares it with the log and
// projects the events it lacks instead of firing the timer again.
func TestCleanupRepairsADueExecutionWhoseViewLagsItsLog(t *testing.T) {
	g := newReconcileRig(t)
	ctx := context.Background()
	wfID := g.workflow(t, waitThenManual())
	exID := uuid.New()
	started := g.apply(t, model.NewCommand(model.NewCommandUUID(g.now), model.StartExecution{WorkflowExecutionUUID: exID, WorkflowUUID: wfID}, g.now), true, 0)
	if err := g.p.Handle(ctx, started); err != nil {
		t.Fatal(err)
	}
	before := g.execution(t, exID)
	if before.Due.IsZero() {
		t.Fatal("the view of a waiting execution is not due")
	}
	time.Sleep(1100 * time.Millisecond) // the timer's time (the worker reads the real clock)
	fired := g.apply(t, model.TimerCommand(exID, 0, 0, time.Now()), false, before.Version)
	if len(fired) == 0 {
		t.Fatal("the timer appended nothing")
	}
	// (fired's record is dropped)

	cleanup := &workers.Cleanup{Due: g.st, Publisher: g.pub, Reconciler: g.r, Logger: quiet, Now: func() time.Time { return g.now }}
	g.now = before.Due.Add(time.Second)
	if _, err := cleanup.Run(ctx); err != nil {
		t.Fatal(err)
	}
	x := g.execution(t, exID)
	if x.Version != fired[len(fired)-1].Seq || x.CurrentStep != 1 {
		t.Fatalf("view after the cleanup: version %d step %d, want %d 1", x.Version, x.CurrentStep, fired[len(fired)-1].Seq)
	}
	if got := publishedTypes(t, g.pub.msgs); len(got) != 0 || len(g.sched.delays) != 0 {
		t.Fatalf("the cleanup published %v (timers %v), want nothing (the log, not the stale view, says what comes next)", got, g.sched.delays)
	}
	if !x.Due.IsZero() {
		t.Fatalf("the repaired view (waiting on a manual step) is still due at %v", x.Due)
	}
}

// An execution whose view expired after the retention period is not
// brought back by its accepted command's check.
func TestReconcilerLeavesAnExpiredExecutionAlone(t *testing.T) {
	g := newReconcileRig(t)
	ctx := context.Background()
	g.r.Retention = time.Millisecond
	wfID := uuid.New()
	def := model.Definition{Name: "wf", Steps: []model.StepDefinition{{Name: "s", Type: model.StepManual}}}
	created := g.apply(t, model.NewCommand(model.NewCommandUUID(g.now), model.CreateWorkflow{WorkflowUUID: wfID, Definition: def}, g.now), true, 0)
	if err := g.p.Handle(ctx, created); err != nil {
		t.Fatal(err)
	}
	exID := uuid.New()
	g.apply(t, model.NewCommand(model.NewCommandUUID(g.now), model.StartExecution{WorkflowExecutionUUID: exID, WorkflowUUID: wfID}, g.now), true, 0)
	g.apply(t, model.NewCommand(model.NewCommandUUID(g.now), model.CancelExecution{WorkflowExecutionUUID: exID}, g.now), true, 0)
	g.now = g.now.Add(90 * time.Second)
	if n, err := g.r.Run(ctx); err != nil || n != 0 {
		t.Fatalf("repaired %d, err %v; want 0", n, err)
	}
	if _, err := g.st.GetExecution(ctx, exID); err == nil {
		t.Fatal("the reconciliation brought an expired execution's view back")
	}
}

// A workflow updated more often than its view remembers commands: the
// projector marks each command it pushes out of the view's list APPLIED,
// and where that mark was lost (a projector without Statuses stands for
// one that crashed between the view's put and the mark) the reconciliation
// makes it from the log. Either way a status read needs no log.
func TestCommandsPushedOutOfAViewAreMarkedApplied(t *testing.T) {
	for _, lost := range []bool{false, true} {
		t.Run(map[bool]string{false: "by_the_projector", true: "mark_lost_then_by_the_reconciliation"}[lost], func(t *testing.T) {
			g := newReconcileRig(t)
			ctx := context.Background()
			if !lost {
				g.p.Statuses = g.st
			}
			g.r.Statuses = g.st
			wfID := uuid.New()
			def := model.Definition{Name: "wf", Steps: []model.StepDefinition{{Name: "s", Type: model.StepManual}}}
			var ids []uuid.UUID
			after := int64(0)
			for i := range model.RecentCommandsCap + 3 {
				var body model.Payload = model.UpdateWorkflow{WorkflowUUID: wfID, Definition: def}
				if i == 0 {
					body = model.CreateWorkflow{WorkflowUUID: wfID, Definition: def}
				}
				cmd := model.NewCommand(model.NewCommandUUID(g.now), body, g.now)
				events := g.apply(t, cmd, true, after)
				if err := g.p.Handle(ctx, events); err != nil {
					t.Fatal(err)
				}
				after = events[len(events)-1].Seq
				ids = append(ids, cmd.CommandUUID)
			}
			status := func(id uuid.UUID) string {
				st, err := g.st.GetCommand(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				return st.Status
			}
			pushedOut := ids[:3]
			for _, id := range pushedOut {
				want := model.CommandApplied
				if lost {
					want = model.CommandAccepted
				}
				if got := status(id); got != want {
					t.Fatalf("a command pushed out of the view's list: status %s, want %s", got, want)
				}
			}
			for _, id := range ids[3:] {
				if got := status(id); got != model.CommandAccepted {
					t.Fatalf("a command the view remembers: stored status %s, want ACCEPTED (APPLIED is read from the view)", got)
				}
			}
			g.now = g.now.Add(90 * time.Second)
			if n, err := g.r.Run(ctx); err != nil || n != 0 {
				t.Fatalf("reconciliation: repaired %d, err %v; want 0 (the view is current)", n, err)
			}
			for _, id := range pushedOut {
				if got := status(id); got != model.CommandApplied {
					t.Fatalf("after the reconciliation: a pushed-out command reads %s, want APPLIED", got)
				}
			}
		})
	}
}

// failingViews fails its next n reads.
type failingViews struct {
	workers.ViewReader
	n int
}

func (f *failingViews) GetExecution(ctx context.Context, id uuid.UUID) (model.Execution, error) {
	if f.n > 0 {
		f.n--
		return model.Execution{}, errors.New("the store did not answer")
	}
	return f.ViewReader.GetExecution(ctx, id)
}

// A run that fails leaves its window to the next runs: a command whose
// checks all failed while it was in the usual window is still checked,
// and its lost record repaired, by the first run that succeeds.
func TestReconcilerRetriesTheWindowOfAFailedRun(t *testing.T) {
	g := newReconcileRig(t)
	ctx := context.Background()
	wfID := g.workflow(t, waitThenManual())
	exID := uuid.New()
	g.apply(t, model.NewCommand(model.NewCommandUUID(g.now), model.StartExecution{WorkflowExecutionUUID: exID, WorkflowUUID: wfID}, g.now), true, 0)
	// (its record is lost)
	accepted := g.now
	g.r.Views = &failingViews{ViewReader: g.st, n: 2}
	for _, at := range []time.Duration{70 * time.Second, 130 * time.Second} {
		g.now = accepted.Add(at)
		if _, err := g.r.Run(ctx); err == nil {
			t.Fatalf("run %v after: nil error, want the view read's", at)
		}
	}
	g.now = accepted.Add(200 * time.Second) // the usual window no longer holds the command
	if n, err := g.r.Run(ctx); err != nil || n != 1 {
		t.Fatalf("the first run that succeeds: repaired %d, err %v; want 1", n, err)
	}
	if x := g.execution(t, exID); x.Status != model.ExecutionRunning {
		t.Fatalf("execution %s after the repair, want RUNNING", x.Status)
	}
	g.now = accepted.Add(400 * time.Second)
	if n, err := g.r.Run(ctx); err != nil || n != 0 {
		t.Fatalf("a run after: repaired %d, err %v; want 0", n, err)
	}
}
