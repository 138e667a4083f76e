package model

import (
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Timing of the work the service does by itself. Timers and retries due
// within the bus's longest delay (the maxDelay the functions below take,
// which the runtime passes) are delivered by a delayed message; later ones
// by the cleanup.
const (
	// CleanupGrace is how long after the queue should have delivered
	// something the cleanup steps in and issues it again.
	CleanupGrace = time.Minute
	// stuckAttempt is how long an http attempt may seem to run before the
	// cleanup issues it again: the longest attempt timeout, and the grace.
	stuckAttempt = MaxHTTPTimeout*time.Second + CleanupGrace
	// stuckRound coarsens the times at which the cleanup checks for stuck
	// work, so that the quick steps of one execution keep the same due
	// time: on DynamoDB, every change of it rewrites an index entry.
	stuckRound = 5 * time.Minute
)

// DueAt returns when the cleanup must next look at the execution, if ever:
// the earliest of its deadline (Deadline), a timer or retry too far off for
// a delayed message (exactly when due), and the time past which the work
// the service owes it (begin it, fire a timer, run or retry an http
// attempt) is overdue. maxDelay is the longest delay of the bus's delayed
// messages. The projector keeps it in the view (Execution.Due), stores index
// executions by that, and the cleanup reads the index. Terminal executions
// and ones waiting for a client (a manual step without a deadline) have
// none.
func (x Execution) DueAt(maxDelay time.Duration) (time.Time, bool) {
	var due time.Time
	consider := func(t time.Time) {
		if due.IsZero() || t.Before(due) {
			due = t
		}
	}
	if IsTerminal(x.Status) || !x.Exists() {
		return due, false
	}
	if at, _, ok := x.Deadline(); ok {
		consider(at)
	}
	if at, _, ok := x.HTTPDeadline(); ok {
		consider(at)
	}
	switch {
	case x.Paused:
		// Deadlines only (above): the resume issues what the pause held.
	case x.Status == ExecutionPending:
		consider(roundUp(x.CreatedAt.Add(CleanupGrace)))
	case x.Status == ExecutionRunning:
		for _, i := range x.activeSteps() {
			st := x.Steps[i]
			switch {
			case st.Type == StepManual || st.Status == StepPending:
				// A retry due only offers the step again: nothing to issue.
			case st.DueAt != nil && st.DueAt.Sub(x.UpdatedAt) > maxDelay:
				consider(*st.DueAt) // no delayed message: the cleanup fires it
			case st.DueAt != nil && st.Type == StepHTTP:
				// The queue delivers the retry; once it runs, the attempt may
				// take up to the longest timeout before its outcome shows.
				consider(roundUp(st.DueAt.Add(stuckAttempt)))
			case st.DueAt != nil:
				consider(st.DueAt.Add(CleanupGrace)) // the queue fires the timer
			case st.Type == StepHTTP && st.Status == StepRunning:
				consider(roundUp(x.attemptLostAt(i)))
			}
		}
	}
	return due, !due.IsZero()
}

// attemptLostAt is when the http attempt in progress of step i seems
// lost, so that the cleanup issues it again: a grace after its holder's
// time is up (a redelivery of the message its holder handled takes it
// over sooner); for an attempt no event claimed (an earlier build's, or
// one of a branch that the dispatcher issues), a grace after the longest
// attempt timeout.
func (x Execution) attemptLostAt(i int) time.Time {
	if h, ok := x.heldAt(i); ok {
		return h.TakeoverAt().Add(CleanupGrace)
	}
	return x.UpdatedAt.Add(stuckAttempt)
}

func roundUp(t time.Time) time.Time {
	r := t.Truncate(stuckRound)
	if r.Before(t) {
		r = r.Add(stuckRound)
	}
	return r
}

// DueCommand returns the command the cleanup issues for the execution at
// now, if something is due: a timeout past a deadline, the begin of an
// execution still PENDING, a timer or an http attempt that is due. Its
// UUID is SystemCommandUUID's, the one the dispatcher gave the same work,
// so a copy of work already done is a duplicate. maxDelay is DueAt's.
func (x Execution) DueCommand(now time.Time, maxDelay time.Duration) (Command, bool) {
	id := x.WorkflowExecutionUUID
	if IsTerminal(x.Status) || !x.Exists() {
		return Command{}, false
	}
	if at, _, ok := x.executionDeadline(); ok && !now.Before(at) {
		// After a redrive the execution's deadline is a new one: so is
		// its command (the first is in the history, a duplicate).
		return NewCommand(SystemCommandUUID(id, ofRun("timeout", x.Redrives+1), 0, 0), TimeOutExecution{WorkflowExecutionUUID: id}, now), true
	}
	if at, _, i, ok := x.earliest(x.stepDeadlineOf); ok && !now.Before(at) {
		// A step's timeout may be retried or caught, and come again: each
		// attempt's is a command of its own.
		return NewCommand(SystemCommandUUID(id, ofRun("step-timeout", x.Steps[i].Runs), i, x.manualAttempt(i)), TimeOutExecution{WorkflowExecutionUUID: id}, now), true
	}
	if at, _, i, ok := x.earliest(x.httpDeadlineOf); ok && !now.Before(at) {
		// The same command: its rule fails an http step that ran out of
		// time (which a catch may route on, and a loop meet again).
		return NewCommand(SystemCommandUUID(id, ofRun("http-timeout", x.Steps[i].Runs), i, 0), TimeOutExecution{WorkflowExecutionUUID: id}, now), true
	}
	if x.Paused {
		return Command{}, false // timeouts only (above); the resume issues the rest
	}
	if x.Status == ExecutionPending {
		if now.Before(x.CreatedAt.Add(CleanupGrace)) {
			return Command{}, false // the dispatcher's begin is on its way
		}
		return BeginCommand(id, now), true
	}
	for _, i := range x.activeSteps() {
		if c, ok := x.dueWork(i, now, maxDelay); ok {
			return c, true
		}
	}
	return Command{}, false
}

// dueWork is the command DueCommand issues for step i in progress, if its
// work is due: its timer, or an http attempt.
func (x Execution) dueWork(i int, now time.Time, maxDelay time.Duration) (Command, bool) {
	id, st := x.WorkflowExecutionUUID, x.Steps[i]
	switch {
	case st.Type == StepWait && st.Status == StepWaiting && st.DueAt != nil && !now.Before(*st.DueAt):
		return TimerCommand(id, i, st.Runs, now), true
	case st.Type == StepHTTP && st.Status == StepRunning && st.DueAt == nil:
		if now.Before(roundUp(x.attemptLostAt(i))) {
			return Command{}, false // the attempt may still be running
		}
		return RunStepCommand(id, i, st.Runs, st.Attempts, now), true // it seems lost: once more
	case st.Type == StepHTTP && st.Status == StepRunning && !now.Before(*st.DueAt):
		// A retry runs once: the cleanup issues one too far off for the
		// queue in the first runs after it is due, and any retry again only
		// once its attempt seems lost (an attempt in progress leaves the
		// view as it was until its outcome).
		long := st.DueAt.Sub(x.UpdatedAt) > maxDelay
		lost := !now.Before(roundUp(st.DueAt.Add(stuckAttempt)))
		if lost || long && now.Before(st.DueAt.Add(2*CleanupGrace)) {
			return RunStepCommand(id, i, st.Runs, st.Attempts+1, now), true
		}
	}
	return Command{}, false
}

// RunStepCommand is the command that runs attempt of http step step, in
// the step's run run (0 or 1: its first).
func RunStepCommand(execution uuid.UUID, step, run, attempt int, now time.Time) Command {
	return NewCommand(SystemCommandUUID(execution, ofRun("run", run), step, attempt),
		RunStep{WorkflowExecutionUUID: execution, Step: step, Attempt: attempt}, now)
}

// TimerCommand is the command that ends wait step step, in the step's run
// run (0 or 1: its first).
func TimerCommand(execution uuid.UUID, step, run int, now time.Time) Command {
	return NewCommand(SystemCommandUUID(execution, ofRun("timer", run), step, 0),
		FireTimer{WorkflowExecutionUUID: execution, Step: step}, now)
}

// ofRun is the kind of a system command of a step's run: the kind alone
// for the first run (the UUIDs of builds without loops), kind@run after.
func ofRun(kind string, run int) string {
	if run <= 1 {
		return kind
	}
	return kind + "@" + strconv.Itoa(run)
}

// BeginCommand is the command that begins a created execution.
func BeginCommand(execution uuid.UUID, now time.Time) Command {
	return NewCommand(SystemCommandUUID(execution, "begin", 0, 0), BeginExecution{WorkflowExecutionUUID: execution}, now)
}
