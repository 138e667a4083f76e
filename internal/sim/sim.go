// Package sim is the deterministic simulator of the whole service: the
// components app.New assembles (the API, the command worker, the
// projector, the dispatcher, the cleanup with its reconciliation) over the
// embedded store, driven by one seeded scheduler and a simulated clock,
// with a simulated bus, change feed and http target, and faults injected
// at every step. Run plays one seed and checks the guarantees after it; a
// seed replays exactly (architecture log, entries 39 and 42).
//
// What one step of the scheduler is: one client request to the API, one
// delivery of an append's events to the projector or the dispatcher, or
// one cleanup run, each run to its end; or the start or resumption of a
// task, a delivery of a command message to the worker, which runs until it
// pauses at a store or http call (for the simulated time the call takes)
// or ends, so that other steps, a second delivery of the same message
// among them, run in between. Faults: store calls that fail before they
// take effect or after (a timeout, or an answer lost and the request sent
// again) or take longer than a visibility timeout, publishes refused or of
// unknown outcome, crashes at a store call (the process's handlers fail
// from there on, the store loses what it had not synced, and the service
// is assembled again with empty caches), duplicated and redelivered
// messages, deletes lost, feed records delivered twice, out of order
// across aggregates, or lost for good, http targets that fail, time out or
// answer 4xx.
package sim

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/google/uuid"

	"github.com/workflowd/workflowd/app"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
	"github.com/workflowd/workflowd/store/pebble"
	"github.com/workflowd/workflowd/workers"
)

// Config is one simulation.
type Config struct {
	Seed uint64
	// Executions started by the simulated clients (default 3).
	Executions int
	// FaultRate is the share of store calls, publishes and deliveries
	// that go wrong (default 0.05).
	FaultRate float64
	// Trace, if set, receives a line per step (to read a failing seed).
	Trace io.Writer
	// WithoutReconciliation runs the cleanup without its reconciliation:
	// the simulator's own test that its checks find what a lost change-feed
	// record does then.
	WithoutReconciliation bool
	// HTTPOverrun makes the http target answer long after the attempt's
	// timeout, as a transport that ignores its deadline would: the
	// simulator's own test that its check of calls in flight works.
	HTTPOverrun bool
}

// Result is what a run did and what it found wrong.
type Result struct {
	Seed       uint64
	Steps      int      // scheduler steps
	Faults     int      // faults injected
	Trace      uint64   // a hash of every step taken: equal for equal seeds
	Violations []string // broken guarantees (none: the run passed)
}

const (
	maxReceive      = 8
	visibility      = 30 * time.Second
	cleanupInterval = time.Minute
	maxSteps        = 20000
	faultyFor       = 10 * time.Minute // then the faults stop and the run heals
	settleBy        = 3 * time.Hour    // sim time: a run not settled by then hangs
	target          = "target.sim:80"
)

var epoch = time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)

// Run plays cfg.Seed.
func Run(cfg Config) (Result, error) {
	if cfg.Executions <= 0 {
		cfg.Executions = 3
	}
	if cfg.FaultRate == 0 {
		cfg.FaultRate = 0.05
	}
	w := &world{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d)), now: epoch,
		calls: map[string]int{}, httpCalls: map[string]int{}, inflight: map[string]int{}, faultsOn: true}
	w.fs = syncFS{FS: vfs.NewStrictMem(), syncs: new(atomic.Int64)}
	if err := syncedDir(w.fs, "sim"); err != nil {
		return Result{}, err
	}
	if err := w.openStore(); err != nil {
		return Result{}, err
	}
	defer func() { w.store.Close() }()
	w.faulty = &faultyStore{Store: w.store, w: w}
	w.bus = &simBus{w: w}
	w.rebuild()
	w.clients = make([]*client, cfg.Executions)
	for i := range w.clients {
		w.clients[i] = &client{i: i, next: epoch.Add(time.Duration(i) * time.Second)}
	}
	w.run()
	w.drain()
	defer w.stopRunners()
	w.check()
	return Result{Seed: cfg.Seed, Steps: w.steps, Faults: w.faults, Trace: w.trace.Sum64(), Violations: w.violations}, nil
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// world is one simulation's state. The scheduler is one goroutine; the
// handlers it calls may run goroutines of their own (the dispatcher's and
// the cleanup's sends), so the state they touch is locked, and their
// random draws depend on what is drawn for, not on the order of draws.
type world struct {
	cfg     Config
	rng     *rand.Rand // the scheduler's only
	fs      syncFS     // the store's files: what was not synced is lost at a crash
	store   *pebble.Store
	faulty  *faultyStore
	bus     *simBus
	svc     *app.Service
	clients []*client

	tasks []*task   // handler calls suspended at a store or http call
	idle  []*runner // runners without a task

	mu       sync.Mutex
	now      time.Time
	calls    map[string]int // draws made per purpose (fault decisions)
	faultsOn bool
	faults   int
	// gen counts the process's restarts; running is the generation of the
	// code running now: code of a crashed process fails every call.
	gen, running int
	restart      bool // a crash happened: rebuild once control is back
	feed         []feedItem
	feedN        int        // feed items made so far
	unsynced     []feedItem // handled, but what their handlers wrote is not synced yet
	unsyncedAt   int64      // the log syncs when unsynced began
	httpCalls    map[string]int
	inflight     map[string]int // http calls in flight per Idempotency-Key
	uuids        int
	jitters      int
	five00s      []string
	accepted     []string // commandUUIDs answered 202
	workflow     string
	steps        int
	trace        traceHash
	violations   []string
}

// rebuild assembles the service again: what a restarted process has,
// with empty caches.
func (w *world) rebuild() {
	log := quiet
	if w.cfg.Trace != nil {
		log = slog.New(slog.NewTextHandler(w.cfg.Trace, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w.svc = app.New(app.Deps{Store: w.faulty, Publisher: w.bus, Scheduler: w.bus, Logger: log}, app.Options{
		MaxDelay: 15 * time.Minute,
		Steps:    app.StepsConfig{HTTPAllowHosts: []string{target}, CleanupInterval: cleanupInterval, CommandRetention: store.DefaultCommandRetention},
		Sim: &app.SimHooks{Now: w.clock, NewCommandUUID: w.newCommandUUID, Jitter: w.jitter,
			HTTPTransport: simTransport{w}},
	})
	if w.cfg.WithoutReconciliation {
		w.svc.Cleanup.Reconciler = nil
	}
}

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

// newCommandUUID is model.NewCommandUUID with the random bits drawn from
// the seed (the API calls it from the scheduler's goroutine, in order).
func (w *world) newCommandUUID(at time.Time) uuid.UUID {
	w.mu.Lock()
	w.uuids++
	n := w.uuids
	w.mu.Unlock()
	id := model.NewCommandUUID(at) // its time, version and variant; the rest from the seed
	binary.BigEndian.PutUint64(id[8:], w.hash("uuid", "", n))
	r := w.hash("uuid-a", "", n)
	id[6], id[7] = 0x70|byte(r>>8)&0x0f, byte(r)
	id[8] = id[8]&0x3f | 0x80
	return id
}

func (w *world) jitter() float64 {
	w.mu.Lock()
	w.jitters++
	n := w.jitters
	w.mu.Unlock()
	return float64(w.hash("jitter", "", n)>>11) / (1 << 53)
}

// hash is the seed's draw for a purpose and key, the n-th of them.
func (w *world) hash(purpose, key string, n int) uint64 {
	h := fnv.New64a()
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], w.cfg.Seed)
	binary.BigEndian.PutUint64(b[8:], uint64(n))
	h.Write(b[:])
	h.Write([]byte(purpose))
	h.Write([]byte{0})
	h.Write([]byte(key))
	x := h.Sum64()
	// A finalizer spreads fnv's low bits.
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	return x
}

// draw returns a number in [0, 1) for the next decision about purpose and
// key: the same for the same seed whatever order goroutines ask in.
func (w *world) draw(purpose, key string) float64 {
	w.mu.Lock()
	k := purpose + "\x00" + key
	w.calls[k]++
	n := w.calls[k]
	w.mu.Unlock()
	return float64(w.hash(purpose, key, n)>>11) / (1 << 53)
}

// fault decides whether a call for purpose and key fails, and how:
// 0 none, 1 before its effect, 2 after it (timed out), 3 after it
// (the answer lost and the request sent again), 4 a crash.
func (w *world) fault(purpose, key string) int {
	d := w.draw(purpose, key)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running != w.gen {
		return 1
	}
	if !w.faultsOn || d >= w.cfg.FaultRate {
		return 0
	}
	w.faults++
	switch k := int(d / w.cfg.FaultRate * 4); k {
	case 3:
		if d < w.cfg.FaultRate*0.925 { // a crash is rarer than the rest (7.5% of faults)
			return 2
		}
		w.gen++ // the process is gone: whatever it runs fails from here
		w.restart = true
		return 4
	default:
		return k + 1
	}
}

var errInjected = fmt.Errorf("sim: injected fault: %w", store.ErrUnavailable)

// step records what the scheduler does in the trace.
func (w *world) step(what string) {
	w.steps++
	w.trace.add(what)
	if w.cfg.Trace != nil {
		fmt.Fprintf(w.cfg.Trace, "%v %s\n", w.clock().Sub(epoch), what)
	}
}

// note records an event inside a step in the trace.
func (w *world) note(what string) {
	w.trace.add(what)
	if w.cfg.Trace != nil {
		fmt.Fprintf(w.cfg.Trace, "    %s\n", what)
	}
}

// run is the scheduler: until nothing is left to do, take one of the
// things ready now, chosen by the seed, or move the clock to the next.
func (w *world) run() {
	nextCleanup := epoch.Add(cleanupInterval)
	for w.steps < maxSteps {
		now := w.clock()
		if w.faultsOn && now.Sub(epoch) > faultyFor {
			w.mu.Lock()
			w.faultsOn = false
			w.mu.Unlock()
			w.bus.redriveDead() // what an operator does when the storm is over
		}
		if now.Sub(epoch) > settleBy {
			w.violate("the run did not settle within %v of simulated time", settleBy)
			return
		}
		var ready []func()
		var names []string
		later := time.Time{}
		soonest := func(t time.Time) {
			if later.IsZero() || t.Before(later) {
				later = t
			}
		}
		// Messages.
		for _, m := range w.bus.visible(now) {
			ready = append(ready, func() { w.deliver(m) })
			names = append(names, "deliver "+m.key())
		}
		if t, ok := w.bus.nextVisible(now); ok {
			soonest(t)
		}
		// Suspended handler calls.
		for _, t := range w.tasks {
			if !t.at.After(now) {
				ready = append(ready, func() { w.resume(t) })
				names = append(names, "resume "+t.name)
			} else {
				soonest(t.at)
			}
		}
		// The feed.
		for i, it := range w.feedReady(now) {
			ready = append(ready, func() { w.project(it) })
			names = append(names, fmt.Sprintf("feed %d %s", i, it.key()))
		}
		if t, ok := w.feedNext(now); ok {
			soonest(t)
		}
		// Clients.
		busy := false
		for _, c := range w.clients {
			if c.done {
				continue
			}
			busy = true
			if !c.next.After(now) {
				ready = append(ready, func() { w.act(c) })
				names = append(names, fmt.Sprintf("client %d", c.i))
			} else {
				soonest(c.next)
			}
		}
		// The cleanup runs while anything is left, or might be.
		if !nextCleanup.After(now) {
			ready = append(ready, func() { w.cleanup(); nextCleanup = now.Add(cleanupInterval) })
			names = append(names, "cleanup")
		} else if busy || len(ready) > 0 || !later.IsZero() || w.unsettled() {
			soonest(nextCleanup)
		}
		if len(ready) == 0 {
			if later.IsZero() {
				return // nothing left at all
			}
			w.mu.Lock()
			w.now = later
			w.mu.Unlock()
			continue
		}
		i := w.rng.IntN(len(ready))
		w.step(names[i])
		ready[i]()
	}
	w.violate("the run took more than %d steps", maxSteps)
}

// unsettled reports whether an execution is neither finished nor waiting
// for a client: the cleanup must keep running for it.
func (w *world) unsettled() bool {
	w.mu.Lock()
	faults := w.faultsOn
	w.mu.Unlock()
	if faults {
		return true
	}
	for _, c := range w.clients {
		if c.id == "" {
			continue
		}
		x, err := w.store.GetExecution(context.Background(), uuid.MustParse(c.id))
		if err != nil || !model.IsTerminal(x.Status) {
			return true
		}
	}
	return false
}

// handle runs one handler call to its end: a crash during it ends in a
// rebuilt service (the process restarted, its caches gone).
func (w *world) handle(f func(ctx context.Context) error) error {
	w.mu.Lock()
	w.running = w.gen
	w.mu.Unlock()
	err := f(context.Background())
	if w.restarted() && err == nil {
		err = errors.New("sim: crashed")
	}
	return err
}

// restarted restarts the process if the code that just ran crashed it,
// and reports whether it did: the store loses what was not synced, the
// service is assembled again with empty caches.
func (w *world) restarted() bool {
	w.mu.Lock()
	crashed := w.restart
	w.restart = false
	w.mu.Unlock()
	if crashed {
		w.note("crash")
		w.crashStore()
		w.rebuild()
	}
	return crashed
}

// openStore opens the store on w.fs.
func (w *world) openStore() error {
	st, err := pebble.Open(pebble.Options{Dir: "sim", FS: w.fs, Logger: quiet, CacheBytes: 1 << 20, Now: w.clock})
	if err != nil {
		return err
	}
	w.store = st
	if w.faulty != nil {
		w.faulty.Store = st
	}
	return nil
}

// crashStore drops the store's unsynced writes (the views, checkpoints
// and statuses written without a sync since the log's last sync) and
// opens it again. The embedded runtime's change-feed checkpoints are
// unsynced writes too: the items whose handling was lost with them are
// delivered again, first.
func (w *world) crashStore() {
	lost := w.fs.syncs.Load() == w.unsyncedAt
	mem := w.fs.FS.(*vfs.MemFS)
	mem.SetIgnoreSyncs(true)
	_ = w.store.Close()
	mem.ResetToSyncedState()
	mem.SetIgnoreSyncs(false)
	if err := w.openStore(); err != nil {
		panic(fmt.Sprint("sim: reopen the store after a crash: ", err)) // the store lost what it had synced
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if lost && len(w.unsynced) > 0 {
		w.note(fmt.Sprint("unsynced handling of ", len(w.unsynced), " feed items lost"))
		w.feed = append(slices.Clone(w.unsynced), w.feed...)
	}
	w.unsynced, w.unsyncedAt = nil, w.fs.syncs.Load()
}

// handled records feed item it as handled: what its handler wrote is
// durable once the log is synced next.
func (w *world) handled(it feedItem) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.fs.syncs.Load(); n != w.unsyncedAt {
		w.unsynced, w.unsyncedAt = nil, n
	}
	it.at = w.now
	w.unsynced = append(w.unsynced, it)
}

// deliver receives m and hands it to the command worker, as a task: the
// handler may be suspended at its store and http calls, and m becomes
// visible again when its visibility timeout expires, handled or not. The
// delete and the visibility change after the handler use this receive's
// receipt: once m was received again they are ignored, as SQS may.
func (w *world) deliver(m *message) {
	m.receives++
	if m.receives > maxReceive {
		w.bus.deadLetter(m)
		return
	}
	receipt := m.receives
	m.visibleAt = w.clock().Add(visibility)
	if w.fault("duplicate", m.key()) != 0 {
		w.bus.add(m.body, m.attrs, w.clock()) // delivered twice (at least once)
	}
	svc := w.svc
	w.spawn(fmt.Sprint("handle ", m.key(), " #", receipt), func(ctx context.Context, t *task) {
		err := svc.Worker.Handle(ctx, m.body, receipt)
		if !w.alive(t) {
			return // the process is gone: the message comes back when its time is up
		}
		if m.receives != receipt {
			w.note(fmt.Sprint("stale receipt #", receipt, " of ", m.key()))
			return
		}
		var retry *workers.RetryError
		switch {
		case err == nil:
			if w.fault("delete", m.key()) != 0 {
				return // the delete was lost
			}
			w.bus.remove(m)
		case errors.As(err, &retry):
			m.visibleAt = w.clock().Add(max(retry.After, time.Millisecond))
		}
	})
}

// --- tasks -------------------------------------------------------------

// task is a handler call the scheduler can suspend (pause) at its store
// and http calls, to run other steps meanwhile: it runs on a goroutine of
// its own (a runner), and only one runner, or the scheduler, runs at a
// time.
type task struct {
	name string
	gen  int // the process generation it runs in
	r    *runner
	at   time.Time // when a suspended task may go on
	done bool
}

// runner is a goroutine that runs tasks, one after the other (kept for the
// next task: its stack has grown to what a handler needs).
type runner struct {
	wake chan struct{} // the scheduler hands over
	park chan struct{} // the task hands back: suspended or done
	job  func()        // the task to start at the next wake; nil: stop
}

func (r *runner) loop() {
	for {
		<-r.wake
		if r.job == nil {
			return
		}
		r.job()
		r.park <- struct{}{}
	}
}

type taskKey struct{}

// spawn starts body as a task and runs it up to its first pause.
func (w *world) spawn(name string, body func(ctx context.Context, t *task)) {
	var r *runner
	if n := len(w.idle); n > 0 {
		r, w.idle = w.idle[n-1], w.idle[:n-1]
	} else {
		r = &runner{wake: make(chan struct{}), park: make(chan struct{})}
		go r.loop()
	}
	t := &task{name: name, gen: w.gen, r: r}
	r.job = func() {
		body(context.WithValue(context.Background(), taskKey{}, t), t)
		t.done = true
	}
	w.tasks = append(w.tasks, t)
	w.resume(t)
}

// resume runs t until it pauses again or ends.
func (w *world) resume(t *task) {
	w.mu.Lock()
	w.running = t.gen
	w.mu.Unlock()
	t.r.wake <- struct{}{}
	<-t.r.park
	w.mu.Lock()
	w.running = w.gen // the scheduler's own draws are the live process's
	w.mu.Unlock()
	if t.done {
		w.tasks = slices.DeleteFunc(w.tasks, func(x *task) bool { return x == t })
		w.idle = append(w.idle, t.r)
	}
	w.restarted()
}

// pause suspends the task ctx carries, if any, for d of simulated time.
// A task of a crashed process does not pause: it runs to its end.
func (w *world) pause(ctx context.Context, d time.Duration) {
	t, _ := ctx.Value(taskKey{}).(*task)
	if t == nil || !w.alive(t) {
		return
	}
	t.at = w.clock().Add(d)
	t.r.park <- struct{}{}
	<-t.r.wake
}

func (w *world) alive(t *task) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return t.gen == w.gen
}

// drain ends the tasks still suspended when a run stops (a run that did
// not settle): their process is declared gone, so they run to their end
// without a pause or an effect.
func (w *world) drain() {
	if len(w.tasks) == 0 {
		return
	}
	w.mu.Lock()
	w.gen++
	w.mu.Unlock()
	for len(w.tasks) > 0 {
		w.resume(w.tasks[0])
	}
	w.restarted()
}

// stopRunners ends the runners' goroutines.
func (w *world) stopRunners() {
	for _, r := range w.idle {
		r.job = nil
		r.wake <- struct{}{}
	}
	w.idle = nil
}

// latency is how long a store call of the task ctx carries takes, drawn
// for purpose and key: mostly a few milliseconds; while the faults last,
// now and then longer than a message's visibility timeout (a call
// throttled and retried by the SDK), so the message is received again
// while its first handler is still at work.
func (w *world) latency(ctx context.Context, purpose, key string) time.Duration {
	if ctx.Value(taskKey{}) == nil {
		return 0
	}
	d := w.draw("latency", purpose+" "+key)
	w.mu.Lock()
	stalls := w.faultsOn
	w.mu.Unlock()
	if stalls && d < 0.02 { // ending just after the message came back
		return visibility + time.Duration(d/0.02*float64(5*time.Second))
	}
	return time.Duration(d * float64(20*time.Millisecond))
}

func (w *world) cleanup() {
	err := w.handle(func(ctx context.Context) error { _, err := w.svc.Cleanup.Run(ctx); return err })
	if err != nil {
		w.note(fmt.Sprint("cleanup failed: ", err))
	}
}

func (w *world) violate(format string, args ...any) {
	w.violations = append(w.violations, fmt.Sprintf(format, args...))
}

// traceHash hashes the steps taken.
type traceHash struct{ h uint64 }

func (t *traceHash) add(s string) {
	f := fnv.New64a()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], t.h)
	f.Write(b[:])
	f.Write([]byte(s))
	t.h = f.Sum64()
}

func (t *traceHash) Sum64() uint64 { return t.h }

// --- the store ---------------------------------------------------------

// faultyStore is the embedded store with faults injected at each call; an
// append that takes effect goes to the simulated change feed.
type faultyStore struct {
	*pebble.Store
	w *world
}

// write runs a store write do under the faults drawn for purpose and key:
// it fails before its effect, after it (a timeout), or is sent again after
// a lost answer (what the second send answers is returned). A write that
// takes effect is passed to took. A task pauses on the way there and on
// the way back.
func (s *faultyStore) write(ctx context.Context, purpose, key string, do func() error, took func()) error {
	s.w.pause(ctx, s.w.latency(ctx, purpose, key))
	switch s.w.fault(purpose, key) {
	case 1, 4:
		return errInjected
	}
	err := do()
	if err == nil && took != nil {
		took()
	}
	s.w.pause(ctx, s.w.latency(ctx, purpose+"-after", key))
	switch s.w.fault(purpose+"-after", key) {
	case 2, 4:
		return errInjected
	case 3:
		if err == nil {
			return do()
		}
	}
	return err
}

// read runs a store read do unless a fault drawn for purpose and key fails
// it first. A task pauses between the read and its answer (what it read
// may have changed by then), except in a read of a workflow: the command
// worker shares one between commands (freshReads), and a task suspended
// in it would hold the others on a channel the scheduler cannot see.
func read[T any](ctx context.Context, s *faultyStore, purpose, key string, do func() (T, error)) (T, error) {
	if s.w.fault(purpose, key) != 0 {
		var zero T
		return zero, errInjected
	}
	v, err := do()
	if !strings.HasPrefix(key, model.KindWorkflow+":") {
		s.w.pause(ctx, s.w.latency(ctx, purpose, key))
	}
	return v, err
}

func (s *faultyStore) Append(ctx context.Context, events []model.Event) error {
	return s.write(ctx, "append", fmt.Sprint(events[0].AggregateID, "/", events[0].Seq),
		func() error { return s.Store.Append(ctx, events) }, func() { s.w.addFeed(events) })
}

func (s *faultyStore) Load(ctx context.Context, aggregateID string, afterSeq int64) ([]model.Event, error) {
	return read(ctx, s, "load", aggregateID, func() ([]model.Event, error) { return s.Store.Load(ctx, aggregateID, afterSeq) })
}

func (s *faultyStore) GetExecution(ctx context.Context, id uuid.UUID) (model.Execution, error) {
	return read(ctx, s, "get-execution", id.String(), func() (model.Execution, error) { return s.Store.GetExecution(ctx, id) })
}

func (s *faultyStore) PutExecution(ctx context.Context, x model.Execution, prev int64) error {
	return s.write(ctx, "put-execution", fmt.Sprint(x.WorkflowExecutionUUID, "/", x.Version),
		func() error { return s.Store.PutExecution(ctx, x, prev) }, nil)
}

func (s *faultyStore) PutCommand(ctx context.Context, c model.CommandStatus) error {
	return s.write(ctx, "put-command", c.CommandUUID.String(), func() error { return s.Store.PutCommand(ctx, c) }, nil)
}

func (s *faultyStore) FinishCommand(ctx context.Context, c model.CommandStatus) error {
	return s.write(ctx, "finish-command", c.CommandUUID.String(), func() error { return s.Store.FinishCommand(ctx, c) }, nil)
}

func (s *faultyStore) ClaimIdempotencyKey(ctx context.Context, rec store.IdempotencyRecord) (store.IdempotencyRecord, error) {
	var got store.IdempotencyRecord
	err := s.write(ctx, "claim-key", rec.Key, func() error {
		var err error
		got, err = s.Store.ClaimIdempotencyKey(ctx, rec)
		return err
	}, nil)
	return got, err
}

func (s *faultyStore) ListDue(ctx context.Context, q store.DueQuery) ([]model.Execution, error) {
	return read(ctx, s, "list-due", "", func() ([]model.Execution, error) { return s.Store.ListDue(ctx, q) })
}

// --- the change feed ---------------------------------------------------

// feedItem is one append's events on their way to one consumer.
type feedItem struct {
	consumer string // "projector" or "dispatcher"
	events   []model.Event
	at       time.Time // when it may be delivered
	n        int       // its number: which item it is
}

func (it feedItem) key() string {
	return fmt.Sprint(it.consumer, " ", it.events[0].AggregateID, "/", it.events[0].Seq)
}

func (w *world) addFeed(events []model.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cp := make([]model.Event, len(events))
	for i, e := range events {
		cp[i] = e.Clone()
	}
	for _, c := range []string{app.ConsumerProjector, app.ConsumerDispatcher} {
		w.feedN++
		w.feed = append(w.feed, feedItem{consumer: c, events: cp, at: w.now.Add(10 * time.Millisecond), n: w.feedN})
	}
}

// feedReady returns the items deliverable now: for each consumer and
// aggregate, the first pending one (a stream keeps an item's order).
func (w *world) feedReady(now time.Time) []feedItem {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{}
	var out []feedItem
	for _, it := range w.feed {
		k := it.consumer + " " + it.events[0].AggregateID
		if seen[k] {
			continue
		}
		seen[k] = true
		if !it.at.After(now) {
			out = append(out, it)
		}
	}
	return out
}

func (w *world) feedNext(now time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var t time.Time
	for _, it := range w.feed {
		if it.at.After(now) && (t.IsZero() || it.at.Before(t)) {
			t = it.at
		}
	}
	return t, !t.IsZero()
}

func (w *world) removeFeed(it feedItem) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.feed = slices.DeleteFunc(w.feed, func(x feedItem) bool { return x.consumer == it.consumer && x.n == it.n })
}

// project delivers a feed item: lost for good now and then, delivered
// twice now and then, retried after a failure.
func (w *world) project(it feedItem) {
	switch w.fault("feed", it.key()) {
	case 1: // lost for good (a batch Lambda gave up on)
		w.note("lost " + it.key())
		w.removeFeed(it)
		return
	case 2: // delivered again later
		w.mu.Lock()
		w.feedN++
		w.feed = append(w.feed, feedItem{consumer: it.consumer, events: it.events, at: w.now.Add(time.Second), n: w.feedN})
		w.mu.Unlock()
	}
	var h workers.EventHandler = w.svc.Projector
	if it.consumer == app.ConsumerDispatcher {
		h = w.svc.Dispatcher
	}
	if err := w.handle(func(ctx context.Context) error { return h.Handle(ctx, it.events) }); err != nil {
		w.mu.Lock()
		for i := range w.feed {
			if w.feed[i].consumer == it.consumer && w.feed[i].n == it.n {
				w.feed[i].at = w.now.Add(100 * time.Millisecond)
			}
		}
		w.mu.Unlock()
		return
	}
	w.removeFeed(it)
	w.handled(it)
}

// --- the bus -----------------------------------------------------------

type message struct {
	body      []byte
	attrs     map[string]string
	visibleAt time.Time
	receives  int
	n         int // order of sending, for a stable sort among equals
}

func (m *message) key() string { return string(m.body) }

// simBus is the topic, both queues and their dead-letter queues.
type simBus struct {
	w    *world
	mu   sync.Mutex
	msgs []*message
	dead []*message
	sent int
}

func (b *simBus) Publish(ctx context.Context, msg bus.Message) error {
	return b.Send(ctx, msg, 0)
}

func (b *simBus) Send(ctx context.Context, msg bus.Message, delay time.Duration) error {
	switch b.w.fault("publish", string(msg.Body)) {
	case 1, 4:
		return fmt.Errorf("sim: injected publish fault (%w)", bus.ErrNotPublished)
	case 2, 3:
		b.add(msg.Body, msg.Attributes, b.w.clock().Add(delay))
		return errors.New("sim: injected publish fault after the publish")
	}
	b.add(msg.Body, msg.Attributes, b.w.clock().Add(delay))
	return nil
}

func (b *simBus) add(body []byte, attrs map[string]string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sent++
	b.msgs = append(b.msgs, &message{body: slices.Clone(body), attrs: attrs, visibleAt: at, n: b.sent})
}

// visible returns the messages visible at now in an order that does not
// depend on the order concurrent senders sent them in.
func (b *simBus) visible(now time.Time) []*message {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*message
	for _, m := range b.msgs {
		if !m.visibleAt.After(now) {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if c := strings.Compare(string(out[i].body), string(out[j].body)); c != 0 {
			return c < 0
		}
		return out[i].receives < out[j].receives
	})
	return out
}

func (b *simBus) nextVisible(now time.Time) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var t time.Time
	for _, m := range b.msgs {
		if m.visibleAt.After(now) && (t.IsZero() || m.visibleAt.Before(t)) {
			t = m.visibleAt
		}
	}
	return t, !t.IsZero()
}

func (b *simBus) remove(m *message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.msgs = slices.DeleteFunc(b.msgs, func(x *message) bool { return x == m })
}

func (b *simBus) deadLetter(m *message) {
	b.remove(m)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dead = append(b.dead, m)
}

func (b *simBus) redriveDead() {
	b.mu.Lock()
	dead := b.dead
	b.dead = nil
	b.mu.Unlock()
	for _, m := range dead {
		b.add(m.body, m.attrs, b.w.clock())
	}
}

// --- the http target ---------------------------------------------------

type simTransport struct{ w *world }

// RoundTrip answers an http step's attempt: its task pauses for the call's
// time, at most the attempt's timeout (then the call timed out, or its
// answer came too late). Two calls of one attempt (one Idempotency-Key)
// in flight at once break the guarantee that its holder is its only
// caller.
func (t simTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := t.w
	key := r.Header.Get("Idempotency-Key")
	w.mu.Lock()
	w.httpCalls[key]++
	if w.inflight[key] > 0 {
		w.violations = append(w.violations, fmt.Sprintf("two calls of http attempt %s in flight at %v", key, w.now.Sub(epoch)))
	}
	w.inflight[key]++
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.inflight[key]--
		w.mu.Unlock()
	}()
	timeout, ok := workers.AttemptTimeout(r.Context())
	if !ok {
		w.violate("http attempt %s: its request carries no timeout", key)
	}
	d := w.draw("http", key)
	took := time.Duration(w.draw("http-took", key) * float64(timeout))
	if w.cfg.HTTPOverrun {
		took = 2*timeout + model.AttemptGrace
	}
	reply := func(code int, body string) (*http.Response, error) {
		w.pause(r.Context(), took)
		return &http.Response{StatusCode: code, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
	}
	switch {
	case d < 0.15:
		return reply(503, `{"error":"busy"}`)
	case d < 0.25:
		w.pause(r.Context(), timeout) // timed out, or answered too late
		return nil, fmt.Errorf("sim: %w", context.DeadlineExceeded)
	case d < 0.27:
		return reply(400, `{"error":"refused"}`)
	}
	return reply(200, `{"charged":true}`)
}

// --- the clients ---------------------------------------------------------

// client starts one execution and drives it to its end: each request with
// an Idempotency-Key, retried after 5xx, and the manual step completed
// when the execution reaches it.
type client struct {
	i      int
	next   time.Time
	id     string // the execution, once started
	start  string // the command that started it
	starts int    // starts refused so far
	done   bool
	incs   int
	seen   int64         // the version of the view it read last
	wait   time.Duration // between polls of an unchanged view
}

// Polls of a view that has not changed back off from pollEvery to
// pollAtMost.
const (
	pollEvery  = 10 * time.Second
	pollAtMost = time.Minute
)

const definition = `{"name":"sim","steps":[` +
	`{"name":"charge","type":"http","url":"http://target.sim/charge","method":"POST","timeoutSeconds":2,"retry":{"maxAttempts":4,"backoffSeconds":1}},` +
	`{"name":"cool-off","type":"wait","seconds":5},` +
	`{"name":"approve","type":"manual"},` +
	`{"name":"again?","type":"choice","rules":[{"when":"steps.approve.again","next":"cool-off"}],"default":"done"},` +
	`{"name":"done","type":"succeed"}]}`

func (w *world) act(c *client) {
	now := w.clock()
	c.next = now.Add(pollEvery)
	if w.workflow == "" {
		if r, ok := w.post(c, "/v1/workflows", definition, "workflow"); ok {
			w.workflow = r["workflowUUID"].(string)
		}
		return
	}
	if c.id == "" {
		if r, ok := w.post(c, "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q,"input":{"client":%d}}`, w.workflow, c.i), fmt.Sprint("start-", c.i, "-", c.starts)); ok {
			c.id, c.start = r["workflowExecutionUUID"].(string), r["commandUUID"].(string)
		}
		return
	}
	code, body := w.call("GET", "/v1/workflow-executions/"+c.id, "", "")
	if code == http.StatusNotFound {
		// Not projected yet, or its start was refused (a workflow not
		// created yet is waited for only a few seconds): its status says.
		if code, body := w.call("GET", "/v1/commands/"+c.start, "", ""); code == http.StatusOK && strings.Contains(string(body), `"REJECTED"`) {
			c.id, c.starts = "", c.starts+1 // start again, a new command
		}
		return
	}
	if code != http.StatusOK {
		return // the store did not answer
	}
	var x model.Execution
	if err := json.Unmarshal(body, &x); err != nil {
		w.violate("client %d: the view does not decode: %v", c.i, err)
		c.done = true
		return
	}
	if x.Version == c.seen {
		c.wait = min(max(2*c.wait, pollEvery), pollAtMost)
		c.next = now.Add(c.wait)
	} else {
		c.seen, c.wait = x.Version, 0
	}
	switch {
	case model.IsTerminal(x.Status):
		c.done = true
		if x.Status == model.ExecutionSucceeded && x.Steps[2].Runs != 2 {
			w.violate("client %d: the execution SUCCEEDED after %d runs of the approval, want 2 (the loop)", c.i, x.Steps[2].Runs)
		}
	case x.CurrentStep == 2 && x.Status == model.ExecutionRunning:
		// The first approval sends the execution round the loop once more
		// (the wait step and the approval run again); the second ends it.
		c.incs++
		run := x.Steps[2].Runs
		key := fmt.Sprint("approve-", c.i, "-", run)
		if c.incs%3 == 0 {
			key = fmt.Sprint(key, "-", c.incs) // another click: a second command
		}
		w.post(c, "/v1/workflow-executions/"+c.id+"/increments", fmt.Sprintf(`{"step":2,"run":%d,"output":{"ok":true,"again":%t}}`, run, run == 1), key)
	}
}

// post sends a command; a 202 is remembered, a 5xx retried by the
// client's next turn, a 500 a violation.
func (w *world) post(c *client, path, body, key string) (map[string]any, bool) {
	code, raw := w.call("POST", path, body, key)
	if code != http.StatusAccepted {
		return nil, false
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		w.violate("client %d: a 202 that does not decode: %v", c.i, err)
		return nil, false
	}
	w.accepted = append(w.accepted, m["commandUUID"].(string))
	return m, true
}

func (w *world) call(method, path, body, key string) (int, []byte) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	rec := httptest.NewRecorder()
	_ = w.handle(func(ctx context.Context) error { w.svc.API.ServeHTTP(rec, req.WithContext(ctx)); return nil })
	w.note(fmt.Sprint(method, " ", path, " ", rec.Code))
	if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
		w.five00s = append(w.five00s, fmt.Sprintf("%s %s: %d %s", method, path, rec.Code, rec.Body.String()))
	}
	return rec.Code, rec.Body.Bytes()
}

// --- the file system -----------------------------------------------------

// syncedDir makes dir, synced in its parent: what pebble expects of the
// directory it is given.
func syncedDir(fs vfs.FS, dir string) error {
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	parent, err := fs.OpenDir(fs.PathDir(dir))
	if err != nil {
		return err
	}
	defer parent.Close()
	return parent.Sync()
}

// syncFS is a file system that counts the syncs of the store's write-ahead
// logs: an unsynced write is durable once a sync of its log follows it.
type syncFS struct {
	vfs.FS
	syncs *atomic.Int64
}

func (fs syncFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	return fs.wrap(name, f, err)
}

func (fs syncFS) OpenReadWrite(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, opts...)
	return fs.wrap(name, f, err)
}

func (fs syncFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname)
	return fs.wrap(newname, f, err)
}

func (fs syncFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return syncFile{File: f, syncs: fs.syncs}, nil
}

type syncFile struct {
	vfs.File
	syncs *atomic.Int64
}

func (f syncFile) Sync() error {
	err := f.File.Sync()
	if err == nil {
		f.syncs.Add(1)
	}
	return err
}

func (f syncFile) SyncData() error {
	err := f.File.SyncData()
	if err == nil {
		f.syncs.Add(1)
	}
	return err
}
