package bustest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/workflowd/workflowd/bus"
)

// The queues every backend under test has; the "target" attribute values that
// route to them are the same strings.
const (
	Workflows  = "workflows"
	Executions = "executions"
)

// eventually bounds every "it happens eventually" wait of the suite: generous,
// so a loaded two-core machine under -race does not flake. The suite never
// asserts that something happens quickly, only that it does not happen early.
const eventually = 10 * time.Second

// Features declares what a backend guarantees beyond the bus contract's core
// (Publish, Send, Receive with long polling, Delete, ChangeVisibility, size
// limit, unknown queues). The suite skips the tests of what is not declared.
type Features struct {
	// Redelivery: a received message that is not deleted becomes visible
	// again after the visibility timeout, with a higher ReceiveCount.
	Redelivery bool
	// DeadLetterQueue: the receive after MaxReceiveCount receives moves the
	// message to the queue's dead-letter queue, where ListDeadLetters lists
	// it and Redrive puts it back with its receive count reset.
	DeadLetterQueue bool
	// FilterRouting: Publish routes by the "target" attribute to the queue
	// of that name, and a message no queue matches fails with bus.ErrNoRoute
	// (unless UnroutedDropped).
	FilterRouting bool
	// UnroutedDropped: with FilterRouting, a published message that no queue
	// matches is accepted and dropped (as SNS does) rather than refused with
	// bus.ErrNoRoute. The suite then checks it reaches no queue.
	UnroutedDropped bool
	// StaleReceiptRejected: Delete and ChangeVisibility with a handle that is
	// no longer current (the message was received again, or deleted) fail
	// with bus.ErrReceiptInvalid, and do nothing. AWS SQS may accept a stale
	// DeleteMessage, so an SQS backend may not be able to declare it; every
	// backend must still reject a handle it never issued.
	StaleReceiptRejected bool
	// UnissuedReceiptDeleteIgnored: Delete with a receipt handle the
	// backend never issued succeeds and does nothing, instead of failing
	// with bus.ErrReceiptInvalid. The SQS emulator fauxqs does this (its
	// DeleteMessage ignores unknown handles); AWS SQS refuses a malformed
	// handle with ReceiptHandleIsInvalid. The suite then checks that the
	// Delete left the message in flight. ChangeVisibility with such a
	// handle must fail all the same.
	UnissuedReceiptDeleteIgnored bool
	// DelayedDelivery: Queue.Send with a delay keeps the message invisible
	// until the delay has passed.
	DelayedDelivery bool
	// Durable: messages survive a clean close and reopen. The Backend must
	// implement Reopener.
	Durable bool
}

// Backend is what the suite drives: the topic, the dead-letter view and the
// queues by name.
type Backend interface {
	bus.Publisher
	bus.DeadLetters
	// Queue returns the queue named name, or bus.ErrUnknownQueue.
	Queue(name string) (bus.Queue, error)
}

// Reopener is implemented by the Backend of a Durable backend.
type Reopener interface {
	// Reopen closes the backend cleanly and opens it again on the same
	// storage with the same Config, failing t if it cannot. The suite does
	// not use the old Backend, nor queues obtained from it, afterwards.
	Reopen(t *testing.T) Backend
}

// Config is what the suite asks of a new backend.
type Config struct {
	// Queues are the queue names, each also the "target" attribute value
	// routed to it; each queue has its own dead-letter queue.
	Queues []string
	// VisibilityTimeout is every queue's visibility timeout.
	VisibilityTimeout time.Duration
	// MaxReceiveCount is every queue's max receive count before the
	// dead-letter queue.
	MaxReceiveCount int
}

// defaultConfig keeps the suite fast: a message not deleted is back after a
// second and dead after its second receive.
func defaultConfig() Config {
	return Config{Queues: []string{Workflows, Executions}, VisibilityTimeout: time.Second, MaxReceiveCount: 2}
}

type suite struct {
	f          Features
	newBackend func(t *testing.T, cfg Config) Backend
}

// Run runs the suite against the backends newBackend makes. newBackend is
// called once or more per subtest, from parallel subtests, and must return a
// fresh, empty, independent backend each time, closing it in t.Cleanup.
// Times are whole seconds where a backend may round them (as SQS does).
func Run(t *testing.T, f Features, newBackend func(t *testing.T, cfg Config) Backend) {
	t.Helper()
	s := &suite{f: f, newBackend: newBackend}
	tests := []struct {
		name    string
		feature string // "" = core contract
		enabled bool
		run     func(t *testing.T)
	}{
		{"publish_routes_by_target", "FilterRouting", f.FilterRouting, s.publishRoutesByTarget},
		{"every_message_delivered_at_least_once", "", true, s.everyMessageDeliveredAtLeastOnce},
		{"delete_with_stale_receipt_fails", "", true, s.deleteWithStaleReceiptFails},
		{"change_visibility_zero_redelivers_now", "", true, s.changeVisibilityZeroRedeliversNow},
		{"undeleted_message_is_redelivered_with_higher_receive_count", "Redelivery", f.Redelivery, s.undeletedMessageIsRedelivered},
		{"poison_message_goes_to_dlq_after_max_receives", "DeadLetterQueue", f.DeadLetterQueue, s.poisonMessageGoesToDLQ},
		{"delayed_send_is_invisible_until_due", "DelayedDelivery", f.DelayedDelivery, s.delayedSendIsInvisibleUntilDue},
		{"receive_waits_up_to_wait_then_returns_empty", "", true, s.receiveWaitsThenReturnsEmpty},
		{"receive_returns_early_when_message_arrives", "", true, s.receiveReturnsEarlyWhenMessageArrives},
		{"receive_returns_when_context_is_cancelled", "", true, s.receiveReturnsWhenContextCancelled},
		{"oversize_body_is_ErrTooLarge", "", true, s.oversizeBodyIsErrTooLarge},
		{"unknown_queue_is_ErrUnknownQueue", "", true, s.unknownQueueIsErrUnknownQueue},
		{"durable_across_reopen", "Durable", f.Durable, s.durableAcrossReopen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.enabled {
				t.Skipf("backend does not declare Features.%s", tt.feature)
			}
			t.Parallel()
			tt.run(t)
		})
	}
}

func (s *suite) backend(t *testing.T, change func(*Config)) Backend {
	t.Helper()
	cfg := defaultConfig()
	if change != nil {
		change(&cfg)
	}
	b := s.newBackend(t, cfg)
	if b == nil {
		t.Fatal("newBackend returned nil")
	}
	return b
}

func longVisibility(c *Config) { c.VisibilityTimeout = 30 * time.Second }

func (s *suite) publishRoutesByTarget(t *testing.T) {
	b := s.backend(t, nil)
	ctx := t.Context()
	for _, name := range []string{Workflows, Executions} {
		MustPublish(t, b, bus.Message{
			Body:       []byte("for " + name),
			Attributes: map[string]string{bus.TargetAttribute: name, "k": "v-" + name},
		})
	}
	for _, name := range []string{Workflows, Executions} {
		q := MustQueue(t, b, name)
		d := ReceiveOne(t, q, eventually)
		if got, want := string(d.Body), "for "+name; got != want {
			t.Errorf("queue %s: got body %q, want %q", name, got, want)
		}
		if got, want := d.Attributes["k"], "v-"+name; got != want {
			t.Errorf("queue %s: got attribute k=%q, want %q", name, got, want)
		}
		if got, want := d.Attributes[bus.TargetAttribute], name; got != want {
			t.Errorf("queue %s: got attribute %s=%q, want %q", name, bus.TargetAttribute, got, want)
		}
		MustDelete(t, q, d)
	}

	for _, m := range []bus.Message{
		{Body: []byte("no such target"), Attributes: map[string]string{bus.TargetAttribute: "nowhere"}},
		{Body: []byte("no target attribute"), Attributes: map[string]string{"k": "v"}},
		{Body: []byte("no attributes")},
	} {
		err := b.Publish(ctx, m)
		switch {
		case s.f.UnroutedDropped && err != nil:
			t.Errorf("publish %q: got error %v, want it dropped (Features.UnroutedDropped)", m.Body, err)
		case !s.f.UnroutedDropped && !errors.Is(err, bus.ErrNoRoute):
			t.Errorf("publish %q: got error %v, want bus.ErrNoRoute", m.Body, err)
		}
	}
	for _, name := range []string{Workflows, Executions} {
		ExpectEmpty(t, MustQueue(t, b, name), time.Second)
	}
}

func (s *suite) everyMessageDeliveredAtLeastOnce(t *testing.T) {
	const producers, perProducer, consumers = 4, 50, 4
	const total = producers * perProducer
	b := s.backend(t, longVisibility)
	q := MustQueue(t, b, Workflows)
	ctx, cancel := context.WithTimeout(t.Context(), 3*eventually)
	defer cancel()

	var (
		mu     sync.Mutex
		seen   = make(map[string]int)
		unique int
	)
	var wg sync.WaitGroup
	for c := range consumers {
		wg.Go(func() {
			for ctx.Err() == nil {
				ds, err := q.Receive(ctx, 10, time.Second)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("consumer %d: receive: %v", c, err)
					}
					return
				}
				for _, d := range ds {
					mu.Lock()
					seen[string(d.Body)]++
					if seen[string(d.Body)] == 1 {
						unique++
						if unique == total {
							cancel()
						}
					}
					mu.Unlock()
					if err := q.Delete(context.WithoutCancel(ctx), d.ReceiptHandle); err != nil {
						t.Errorf("consumer %d: delete %s: %v", c, d.ID, err)
					}
				}
			}
		})
	}
	want := make(map[string]bool, total)
	for p := range producers {
		for i := range perProducer {
			want[fmt.Sprintf("m-%d-%02d", p, i)] = true
		}
		wg.Go(func() {
			for i := range perProducer {
				m := bus.Message{
					Body:       fmt.Appendf(nil, "m-%d-%02d", p, i),
					Attributes: map[string]string{bus.TargetAttribute: Workflows},
				}
				if err := b.Publish(t.Context(), m); err != nil {
					t.Errorf("producer %d: publish %s: %v", p, m.Body, err)
				}
			}
		})
	}
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	var missing, unexpected []string
	dups := 0
	for body := range want {
		if seen[body] == 0 {
			missing = append(missing, body)
		}
	}
	for body, n := range seen {
		if !want[body] {
			unexpected = append(unexpected, body)
		}
		dups += n - 1
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%d of %d messages never delivered within %v, first %q", len(missing), total, 3*eventually, missing[0])
	}
	if len(unexpected) > 0 {
		t.Errorf("got %d messages nobody published, e.g. %q", len(unexpected), unexpected[0])
	}
	t.Logf("%d messages, %d duplicate deliveries", total, dups)
}

func (s *suite) deleteWithStaleReceiptFails(t *testing.T) {
	b := s.backend(t, longVisibility)
	ctx := t.Context()
	q := MustQueue(t, b, Workflows)
	MustSend(t, q, bus.Message{Body: []byte("stale")}, 0)
	d1 := ReceiveOne(t, q, eventually)

	const bogus = "not-a-receipt-handle"
	switch err := q.Delete(ctx, bogus); {
	case s.f.UnissuedReceiptDeleteIgnored && err != nil:
		t.Errorf("Delete(%q): got %v, want it ignored (Features.UnissuedReceiptDeleteIgnored)", bogus, err)
	case !s.f.UnissuedReceiptDeleteIgnored && !errors.Is(err, bus.ErrReceiptInvalid):
		t.Errorf("Delete(%q): got %v, want bus.ErrReceiptInvalid", bogus, err)
	}
	if err := q.ChangeVisibility(ctx, bogus, 0); !errors.Is(err, bus.ErrReceiptInvalid) {
		t.Errorf("ChangeVisibility(%q): got %v, want bus.ErrReceiptInvalid", bogus, err)
	}
	if s.f.UnissuedReceiptDeleteIgnored {
		// The ignored Delete did nothing: d1 is still in flight, so its
		// visibility can be changed (a long one: it stays in flight).
		if err := q.ChangeVisibility(ctx, d1.ReceiptHandle, 30*time.Second); err != nil {
			t.Errorf("ChangeVisibility after Delete(%q): got %v, want the message still in flight", bogus, err)
		}
	}
	if !s.f.StaleReceiptRejected {
		MustDelete(t, q, d1)
		t.Log("stale handles not checked: backend does not declare Features.StaleReceiptRejected")
		return
	}

	if err := q.ChangeVisibility(ctx, d1.ReceiptHandle, 0); err != nil {
		t.Fatalf("ChangeVisibility(0): %v", err)
	}
	d2 := ReceiveOne(t, q, eventually)
	if d2.ID != d1.ID {
		t.Fatalf("got message %s, want %s again", d2.ID, d1.ID)
	}
	if d2.ReceiptHandle == d1.ReceiptHandle {
		t.Errorf("second receive got the first receive's handle %q, want a new one", d1.ReceiptHandle)
	}
	if err := q.Delete(ctx, d1.ReceiptHandle); !errors.Is(err, bus.ErrReceiptInvalid) {
		t.Errorf("Delete with the first receive's handle: got %v, want bus.ErrReceiptInvalid", err)
	}
	if err := q.ChangeVisibility(ctx, d1.ReceiptHandle, 0); !errors.Is(err, bus.ErrReceiptInvalid) {
		t.Errorf("ChangeVisibility with the first receive's handle: got %v, want bus.ErrReceiptInvalid", err)
	}
	// The stale calls did nothing: the message is still in flight.
	ExpectEmpty(t, q, 0)
	MustDelete(t, q, d2)
	if err := q.Delete(ctx, d2.ReceiptHandle); !errors.Is(err, bus.ErrReceiptInvalid) {
		t.Errorf("second Delete with the same handle: got %v, want bus.ErrReceiptInvalid", err)
	}
}

func (s *suite) changeVisibilityZeroRedeliversNow(t *testing.T) {
	b := s.backend(t, longVisibility) // 30 s: a redelivery within eventually is the change's doing
	q := MustQueue(t, b, Workflows)
	MustSend(t, q, bus.Message{Body: []byte("again")}, 0)
	d1 := ReceiveOne(t, q, eventually)
	ExpectEmpty(t, q, 0) // in flight
	if err := q.ChangeVisibility(t.Context(), d1.ReceiptHandle, 0); err != nil {
		t.Fatalf("ChangeVisibility(0): %v", err)
	}
	d2 := ReceiveOne(t, q, eventually)
	if d2.ID != d1.ID || string(d2.Body) != "again" {
		t.Fatalf("got message %s %q, want %s %q", d2.ID, d2.Body, d1.ID, "again")
	}
	if got, want := d2.ReceiveCount, d1.ReceiveCount+1; got != want {
		t.Errorf("got ReceiveCount %d, want %d", got, want)
	}
	MustDelete(t, q, d2)
}

func (s *suite) undeletedMessageIsRedelivered(t *testing.T) {
	b := s.backend(t, nil)
	vt := defaultConfig().VisibilityTimeout
	q := MustQueue(t, b, Workflows)
	MustSend(t, q, bus.Message{Body: []byte("redeliver"), Attributes: map[string]string{"k": "v"}}, 0)

	start := time.Now()
	d1 := ReceiveOne(t, q, eventually)
	if d1.ID == "" || d1.ReceiptHandle == "" {
		t.Errorf("got ID %q and receipt handle %q, want both set", d1.ID, d1.ReceiptHandle)
	}
	if d1.ReceiveCount != 1 {
		t.Errorf("first receive: got ReceiveCount %d, want 1", d1.ReceiveCount)
	}
	if age := time.Since(d1.SentAt); d1.SentAt.IsZero() || age < -time.Minute || age > time.Minute {
		t.Errorf("got SentAt %v, want about now", d1.SentAt)
	}

	d2 := ReceiveOne(t, q, eventually+vt)
	if elapsed := time.Since(start); elapsed < vt*9/10 {
		t.Errorf("redelivered %v after the first receive began, before the visibility timeout %v", elapsed, vt)
	}
	if d2.ID != d1.ID {
		t.Fatalf("got message %s, want %s again", d2.ID, d1.ID)
	}
	if d2.ReceiveCount != 2 {
		t.Errorf("second receive: got ReceiveCount %d, want 2", d2.ReceiveCount)
	}
	if d2.ReceiptHandle == d1.ReceiptHandle {
		t.Errorf("second receive reused the receipt handle %q", d1.ReceiptHandle)
	}
	if string(d2.Body) != "redeliver" || d2.Attributes["k"] != "v" {
		t.Errorf("got body %q attributes %v, want %q with k=v", d2.Body, d2.Attributes, "redeliver")
	}
	if diff := d2.SentAt.Sub(d1.SentAt); diff < -time.Second || diff > time.Second {
		t.Errorf("got SentAt %v on redelivery, want %v", d2.SentAt, d1.SentAt)
	}
	MustDelete(t, q, d2)
}

func (s *suite) poisonMessageGoesToDLQ(t *testing.T) {
	cfg := defaultConfig()
	b := s.backend(t, nil)
	ctx := t.Context()
	q := MustQueue(t, b, Workflows)
	MustSend(t, q, bus.Message{Body: []byte("poison"), Attributes: map[string]string{"k": "v"}}, 0)

	var id string
	for i := 1; i <= cfg.MaxReceiveCount; i++ {
		d := ReceiveOne(t, q, eventually)
		if d.ReceiveCount != i {
			t.Errorf("receive %d: got ReceiveCount %d, want %d", i, d.ReceiveCount, i)
		}
		id = d.ID
		if err := q.ChangeVisibility(ctx, d.ReceiptHandle, 0); err != nil {
			t.Fatalf("ChangeVisibility(0): %v", err)
		}
	}
	ds, err := q.Receive(ctx, 10, 2*time.Second)
	if err != nil {
		t.Fatalf("receive %d: %v", cfg.MaxReceiveCount+1, err)
	}
	if len(ds) > 0 {
		t.Fatalf("receive %d returned %q (ReceiveCount %d), want it moved to the dead-letter queue",
			cfg.MaxReceiveCount+1, ds[0].Body, ds[0].ReceiveCount)
	}

	dead := EventuallyDeadLetters(t, b, Workflows, 1)
	if d := dead[0]; d.ID != id || string(d.Body) != "poison" || d.Attributes["k"] != "v" {
		t.Errorf("dead letter: got %s %q attributes %v, want %s %q with k=v", d.ID, d.Body, d.Attributes, id, "poison")
	}
	if got := dead[0].ReceiveCount; got < cfg.MaxReceiveCount {
		t.Errorf("dead letter: got ReceiveCount %d, want at least %d", got, cfg.MaxReceiveCount)
	}
	if again := MustListDeadLetters(t, b, Workflows); len(again) != 1 {
		t.Errorf("second ListDeadLetters: got %d messages, want the same 1 (listing must not consume)", len(again))
	}
	if other := MustListDeadLetters(t, b, Executions); len(other) != 0 {
		t.Errorf("ListDeadLetters(%s): got %d messages, want 0", Executions, len(other))
	}
	ExpectEmpty(t, q, time.Second)

	n, err := b.Redrive(ctx, Workflows, 10)
	if err != nil || n != 1 {
		t.Fatalf("Redrive: got %d, %v, want 1, nil", n, err)
	}
	EventuallyDeadLetters(t, b, Workflows, 0)
	d := ReceiveOne(t, q, eventually)
	if string(d.Body) != "poison" {
		t.Errorf("after redrive: got body %q, want %q", d.Body, "poison")
	}
	if d.ReceiveCount != 1 {
		t.Errorf("after redrive: got ReceiveCount %d, want 1 (reset)", d.ReceiveCount)
	}
	MustDelete(t, q, d)
	if n, err := b.Redrive(ctx, Workflows, 10); err != nil || n != 0 {
		t.Errorf("Redrive of an empty dead-letter queue: got %d, %v, want 0, nil", n, err)
	}
}

func (s *suite) delayedSendIsInvisibleUntilDue(t *testing.T) {
	const delay = 2 * time.Second
	b := s.backend(t, nil)
	q := MustQueue(t, b, Workflows)
	start := time.Now()
	MustSend(t, q, bus.Message{Body: []byte("late")}, delay)
	MustSend(t, q, bus.Message{Body: []byte("early")}, 0)

	got := map[string]bool{}
	for len(got) < 2 {
		d := ReceiveOne(t, q, eventually+delay)
		elapsed := time.Since(start)
		body := string(d.Body)
		if body == "late" && elapsed < delay*19/20 {
			t.Errorf("message sent with delay %v received after %v", delay, elapsed)
		}
		if got[body] {
			t.Errorf("got %q twice", body)
		}
		got[body] = true
		MustDelete(t, q, d)
	}
	if !got["early"] || !got["late"] {
		t.Errorf("got %v, want early and late", got)
	}
}

func (s *suite) receiveWaitsThenReturnsEmpty(t *testing.T) {
	const wait = time.Second
	b := s.backend(t, nil)
	q := MustQueue(t, b, Executions)
	start := time.Now()
	ds, err := q.Receive(t.Context(), 10, wait)
	elapsed := time.Since(start)
	if err != nil || len(ds) != 0 {
		t.Fatalf("Receive on an empty queue: got %d messages, %v, want 0, nil", len(ds), err)
	}
	if elapsed < wait*9/10 {
		t.Errorf("Receive with wait %v returned empty after %v, want it to wait", wait, elapsed)
	}
	if elapsed > wait+eventually {
		t.Errorf("Receive with wait %v returned after %v", wait, elapsed)
	}
}

func (s *suite) receiveReturnsEarlyWhenMessageArrives(t *testing.T) {
	const wait = 10 * time.Second
	b := s.backend(t, nil)
	q := MustQueue(t, b, Workflows)
	sent := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		sent <- q.Send(t.Context(), bus.Message{Body: []byte("wake")}, 0)
	}()
	start := time.Now()
	ds, err := q.Receive(t.Context(), 1, wait)
	elapsed := time.Since(start)
	if err := <-sent; err != nil {
		t.Fatalf("send: %v", err)
	}
	if err != nil || len(ds) != 1 || string(ds[0].Body) != "wake" {
		t.Fatalf("got %d messages, %v, want the one sent during the wait", len(ds), err)
	}
	if elapsed > wait*9/10 {
		t.Errorf("Receive returned after %v, want soon after the send, well before its wait %v", elapsed, wait)
	}
	MustDelete(t, q, ds[0])
}

func (s *suite) receiveReturnsWhenContextCancelled(t *testing.T) {
	const wait = 20 * time.Second
	b := s.backend(t, nil)
	q := MustQueue(t, b, Workflows)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	ds, err := q.Receive(ctx, 1, wait)
	elapsed := time.Since(start)
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("got error %v, want nil or context.Canceled", err)
	}
	if len(ds) != 0 {
		t.Errorf("got %d messages from an empty queue", len(ds))
	}
	if elapsed > wait/2 {
		t.Errorf("Receive returned %v after its context was cancelled, want soon", elapsed)
	}
}

func (s *suite) oversizeBodyIsErrTooLarge(t *testing.T) {
	b := s.backend(t, nil)
	ctx := t.Context()
	q := MustQueue(t, b, Workflows)
	big := bytes.Repeat([]byte("x"), bus.MaxMessageSize+1)
	if err := b.Publish(ctx, bus.Message{Body: big, Attributes: map[string]string{bus.TargetAttribute: Workflows}}); !errors.Is(err, bus.ErrTooLarge) {
		t.Errorf("Publish of %d bytes: got %v, want bus.ErrTooLarge", len(big), err)
	}
	if err := q.Send(ctx, bus.Message{Body: big}, 0); !errors.Is(err, bus.ErrTooLarge) {
		t.Errorf("Send of %d bytes: got %v, want bus.ErrTooLarge", len(big), err)
	}
	largest := bytes.Repeat([]byte("y"), bus.MaxMessageSize)
	MustSend(t, q, bus.Message{Body: largest}, 0)
	d := ReceiveOne(t, q, eventually)
	if !bytes.Equal(d.Body, largest) {
		t.Errorf("got a body of %d bytes, want the %d sent", len(d.Body), len(largest))
	}
	MustDelete(t, q, d)
	ExpectEmpty(t, q, time.Second)
}

func (s *suite) unknownQueueIsErrUnknownQueue(t *testing.T) {
	b := s.backend(t, nil)
	ctx := t.Context()
	const nope = "no-such-queue"
	if _, err := b.Queue(nope); !errors.Is(err, bus.ErrUnknownQueue) {
		t.Errorf("Queue(%q): got %v, want bus.ErrUnknownQueue", nope, err)
	}
	for _, name := range defaultConfig().Queues {
		if got := MustQueue(t, b, name).Name(); got != name {
			t.Errorf("Queue(%q).Name(): got %q", name, got)
		}
	}
	if !s.f.DeadLetterQueue {
		return
	}
	if _, err := b.ListDeadLetters(ctx, nope, 10); !errors.Is(err, bus.ErrUnknownQueue) {
		t.Errorf("ListDeadLetters(%q): got %v, want bus.ErrUnknownQueue", nope, err)
	}
	if _, err := b.Redrive(ctx, nope, 10); !errors.Is(err, bus.ErrUnknownQueue) {
		t.Errorf("Redrive(%q): got %v, want bus.ErrUnknownQueue", nope, err)
	}
}

func (s *suite) durableAcrossReopen(t *testing.T) {
	b := s.backend(t, nil)
	r, ok := b.(Reopener)
	if !ok {
		t.Fatalf("Features.Durable is set but %T does not implement bustest.Reopener", b)
	}
	ctx := t.Context()
	wq, eq := MustQueue(t, b, Workflows), MustQueue(t, b, Executions)

	// workflows: one in flight, one deleted, one visible.
	for _, body := range []string{"in-flight", "deleted"} {
		MustPublish(t, b, bus.Message{Body: []byte(body), Attributes: map[string]string{bus.TargetAttribute: Workflows}})
	}
	for deleted := false; !deleted; {
		d := ReceiveOne(t, wq, eventually)
		if string(d.Body) == "deleted" {
			MustDelete(t, wq, d)
			deleted = true
		}
	}
	MustPublish(t, b, bus.Message{Body: []byte("visible"), Attributes: map[string]string{bus.TargetAttribute: Workflows}})

	// executions: one dead letter (if the backend has them), one delayed.
	if s.f.DeadLetterQueue {
		MustSend(t, eq, bus.Message{Body: []byte("dead")}, 0)
		for range defaultConfig().MaxReceiveCount {
			d := ReceiveOne(t, eq, eventually)
			if err := eq.ChangeVisibility(ctx, d.ReceiptHandle, 0); err != nil {
				t.Fatalf("ChangeVisibility(0): %v", err)
			}
		}
		ExpectEmpty(t, eq, time.Second) // moves it
		EventuallyDeadLetters(t, b, Executions, 1)
	}
	var delay time.Duration
	if s.f.DelayedDelivery {
		delay = time.Second
	}
	MustSend(t, eq, bus.Message{Body: []byte("delayed")}, delay)

	b = r.Reopen(t)
	wq, eq = MustQueue(t, b, Workflows), MustQueue(t, b, Executions)
	got := map[string]int{}
	for got["in-flight"] == 0 || got["visible"] == 0 {
		d := ReceiveOne(t, wq, eventually)
		got[string(d.Body)]++
		MustDelete(t, wq, d)
	}
	ExpectEmpty(t, wq, time.Second)
	if got["deleted"] > 0 {
		t.Errorf("a message deleted before the reopen was delivered after it")
	}
	if d := ReceiveOne(t, eq, eventually); string(d.Body) != "delayed" {
		t.Errorf("executions after reopen: got %q, want %q", d.Body, "delayed")
	} else {
		MustDelete(t, eq, d)
	}
	if s.f.DeadLetterQueue {
		dead := MustListDeadLetters(t, b, Executions)
		if len(dead) != 1 || string(dead[0].Body) != "dead" {
			t.Errorf("dead letters of executions after reopen: got %d (%v), want the one %q", len(dead), bodies(dead), "dead")
		}
	}
}

// MustQueue returns the backend's queue name or fails tb.
func MustQueue(tb testing.TB, b Backend, name string) bus.Queue {
	tb.Helper()
	q, err := b.Queue(name)
	if err != nil {
		tb.Fatalf("Queue(%q): %v", name, err)
	}
	return q
}

// MustPublish publishes m or fails tb.
func MustPublish(tb testing.TB, b bus.Publisher, m bus.Message) {
	tb.Helper()
	if err := b.Publish(tb.Context(), m); err != nil {
		tb.Fatalf("publish %q: %v", m.Body, err)
	}
}

// MustSend sends m to q with delay or fails tb.
func MustSend(tb testing.TB, q bus.Queue, m bus.Message, delay time.Duration) {
	tb.Helper()
	if err := q.Send(tb.Context(), m, delay); err != nil {
		tb.Fatalf("send %q to %s: %v", m.Body, q.Name(), err)
	}
}

// MustDelete deletes d from q or fails tb.
func MustDelete(tb testing.TB, q bus.Queue, d bus.Delivery) {
	tb.Helper()
	if err := q.Delete(tb.Context(), d.ReceiptHandle); err != nil {
		tb.Fatalf("delete %s (%q) from %s: %v", d.ID, d.Body, q.Name(), err)
	}
}

// ReceiveOne long-polls q, one second at a time, until it returns a message,
// and fails tb if none comes within the given time.
func ReceiveOne(tb testing.TB, q bus.Queue, within time.Duration) bus.Delivery {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		ds, err := q.Receive(tb.Context(), 1, time.Second)
		if err != nil {
			tb.Fatalf("receive from %s: %v", q.Name(), err)
		}
		if len(ds) > 1 {
			tb.Fatalf("receive of at most 1 from %s: got %d", q.Name(), len(ds))
		}
		if len(ds) == 1 {
			return ds[0]
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no message on %s within %v", q.Name(), within)
		}
	}
}

// ExpectEmpty fails tb if a Receive on q waiting up to wait returns anything.
func ExpectEmpty(tb testing.TB, q bus.Queue, wait time.Duration) {
	tb.Helper()
	ds, err := q.Receive(tb.Context(), 10, wait)
	if err != nil {
		tb.Fatalf("receive from %s: %v", q.Name(), err)
	}
	if len(ds) > 0 {
		tb.Errorf("receive from %s: got %d messages %q, want none", q.Name(), len(ds), bodies(ds))
	}
}

// MustListDeadLetters lists (up to 100 of) queue's dead letters or fails tb.
func MustListDeadLetters(tb testing.TB, b bus.DeadLetters, queue string) []bus.Delivery {
	tb.Helper()
	ds, err := b.ListDeadLetters(tb.Context(), queue, 100)
	if err != nil {
		tb.Fatalf("ListDeadLetters(%s): %v", queue, err)
	}
	return ds
}

// EventuallyDeadLetters polls queue's dead letters until there are n (a
// backend may move messages asynchronously) and returns them; it fails tb
// if that does not happen within ten seconds.
func EventuallyDeadLetters(tb testing.TB, b bus.DeadLetters, queue string, n int) []bus.Delivery {
	tb.Helper()
	deadline := time.Now().Add(eventually)
	for {
		ds := MustListDeadLetters(tb, b, queue)
		if len(ds) == n {
			return ds
		}
		if time.Now().After(deadline) {
			tb.Fatalf("dead letters of %s: got %d %q after %v, want %d", queue, len(ds), bodies(ds), eventually, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func bodies(ds []bus.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Body)
	}
	return out
}
