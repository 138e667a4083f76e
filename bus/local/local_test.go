package local_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/vfs"

	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/bus/bustest"
	"github.com/workflowd/workflowd/bus/local"
	"github.com/workflowd/workflowd/internal/apitest"
)

func queueConfigs(cfg bustest.Config) []local.QueueConfig {
	qs := make([]local.QueueConfig, len(cfg.Queues))
	for i, name := range cfg.Queues {
		qs[i] = local.QueueConfig{Name: name, VisibilityTimeout: cfg.VisibilityTimeout, MaxReceiveCount: cfg.MaxReceiveCount}
	}
	return qs
}

// MustOpen opens a bus that tb closes at its end.
func MustOpen(tb testing.TB, opts local.Options) *local.Bus {
	tb.Helper()
	b, err := local.Open(opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := b.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return b
}

// reopenable is a file-backed bus the suite can close and open again.
type reopenable struct {
	*local.Bus
	opts local.Options
}

func (r *reopenable) Reopen(t *testing.T) bustest.Backend {
	t.Helper()
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return &reopenable{Bus: MustOpen(t, r.opts), opts: r.opts}
}

func TestBus(t *testing.T) {
	all := bustest.Features{
		Redelivery:           true,
		DeadLetterQueue:      true,
		FilterRouting:        true,
		StaleReceiptRejected: true,
		DelayedDelivery:      true,
	}
	t.Run("memory", func(t *testing.T) {
		bustest.Run(t, all, func(t *testing.T, cfg bustest.Config) bustest.Backend {
			return MustOpen(t, local.Options{Queues: queueConfigs(cfg)})
		})
	})
	t.Run("file", func(t *testing.T) {
		durable := all
		durable.Durable = true
		bustest.Run(t, durable, func(t *testing.T, cfg bustest.Config) bustest.Backend {
			opts := local.Options{Dir: t.TempDir(), Queues: queueConfigs(cfg)}
			return &reopenable{Bus: MustOpen(t, opts), opts: opts}
		})
	})
}

func BenchmarkLocalBus(b *testing.B) {
	b.Run("file", func(b *testing.B) {
		bustest.Bench(b, func(b *testing.B, cfg bustest.Config) bustest.Backend {
			return MustOpen(b, local.Options{Dir: b.TempDir(), Queues: queueConfigs(cfg)})
		})
	})
	b.Run("memory", func(b *testing.B) {
		bustest.Bench(b, func(b *testing.B, cfg bustest.Config) bustest.Backend {
			return MustOpen(b, local.Options{Queues: queueConfigs(cfg)})
		})
	})
}

func workflowsOnly(vt time.Duration, maxReceive int) []local.QueueConfig {
	return []local.QueueConfig{{Name: bustest.Workflows, VisibilityTimeout: vt, MaxReceiveCount: maxReceive}}
}

func mustQueue(tb testing.TB, b *local.Bus, name string) *local.Queue {
	tb.Helper()
	return bustest.MustQueue(tb, b, name).(*local.Queue)
}

func publishTo(target, body string) bus.Message {
	return bus.Message{Body: []byte(body), Attributes: map[string]string{bus.TargetAttribute: target}}
}

// drain receives and deletes everything visible in q now and returns the
// bodies with their receive counts.
func drain(tb testing.TB, q bus.Queue) map[string]int {
	tb.Helper()
	got := map[string]int{}
	for {
		ds, err := q.Receive(tb.Context(), 100, 0)
		if err != nil {
			tb.Fatalf("receive: %v", err)
		}
		if len(ds) == 0 {
			return got
		}
		for _, d := range ds {
			got[string(d.Body)] = d.ReceiveCount
			bustest.MustDelete(tb, q, d)
		}
	}
}

// The crash test runs the publisher in a child process (this test binary,
// started with crashChildEnv naming the bus directory) and SIGKILLs it.
const crashChildEnv = "LOCALBUS_TEST_CRASH_CHILD_DIR"

// TestCrashChild is the child of TestPublishedMessagesSurviveKill9: it
// publishes from 8 goroutines until killed, printing "published <body>"
// after each Publish returns.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("helper process of TestPublishedMessagesSurviveKill9")
	}
	b, err := local.Open(local.Options{Dir: dir, Queues: workflowsOnly(0, 0)})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				body := fmt.Sprintf("g%d-%06d", g, i)
				if err := b.Publish(context.Background(), publishTo(bustest.Workflows, body)); err != nil {
					fmt.Println("publish:", err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintln(w, "published", body)
				w.Flush() // reported only once written to the pipe
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

func TestPublishedMessagesSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	const atLeast = 2000
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	reported := map[string]bool{}
	sc := bufio.NewScanner(out)
	timeout := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
	defer timeout.Stop()
	for sc.Scan() {
		line := sc.Text()
		body, ok := strings.CutPrefix(line, "published ")
		if !ok {
			t.Logf("child: %s", line)
			continue
		}
		reported[body] = true
		if len(reported) == atLeast && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatalf("kill: %v", err)
			}
			killed = true
			// Go on reading: lines already in the pipe were reported too.
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended before reporting %d publishes (got %d): %v", atLeast, len(reported), err)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child: got %v, want killed by SIGKILL", err)
	}

	b := MustOpen(t, local.Options{Dir: dir, Queues: workflowsOnly(0, 0)})
	got := drain(t, mustQueue(t, b, bustest.Workflows))
	missing := 0
	for body := range reported {
		if _, ok := got[body]; !ok {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d messages reported published are gone after kill -9", missing, len(reported))
	}
	t.Logf("reported %d, found %d after kill -9 (unreported ones may have been written too)", len(reported), len(got))
}

// A power loss loses whatever was not synced. vfs.NewStrictMem keeps only
// synced data when reset: every publish that returned must be there.
func TestPublishedMessagesSurvivePowerLoss(t *testing.T) {
	fs := vfs.NewStrictMem()
	opts := local.Options{Dir: "bus", Queues: workflowsOnly(time.Minute, 0)}
	// The directory itself must survive: create it and sync its parent, as
	// an installation would have long before.
	if err := fs.MkdirAll(opts.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if root, err := fs.OpenDir(""); err != nil {
		t.Fatal(err)
	} else if err := root.Sync(); err != nil {
		t.Fatal(err)
	}
	b, err := local.OpenFS(opts, fs)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range n / 8 {
				if err := b.Publish(t.Context(), publishTo(bustest.Workflows, fmt.Sprintf("g%d-%03d", g, i))); err != nil {
					t.Errorf("publish: %v", err)
				}
			}
		})
	}
	wg.Wait()

	fs.SetIgnoreSyncs(true) // the power goes
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	fs.ResetToSyncedState()
	fs.SetIgnoreSyncs(false)

	b, err = local.OpenFS(opts, fs)
	if err != nil {
		t.Fatalf("open after power loss: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	got := drain(t, mustQueue(t, b, bustest.Workflows))
	if len(got) != n {
		t.Errorf("after power loss: got %d messages, want the %d published", len(got), n)
	}
}

func TestNackReasonReachesDeadLetterLogAndListing(t *testing.T) {
	var logs apitest.SyncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	b := MustOpen(t, local.Options{Queues: workflowsOnly(time.Minute, 2), Logger: logger})
	q, err := b.Queue(bustest.Workflows)
	if err != nil {
		t.Fatal(err)
	}
	nacker, ok := q.(interface {
		Nack(ctx context.Context, receiptHandle string, d time.Duration, reason string) error
	})
	if !ok {
		t.Fatalf("%T has no Nack method", q)
	}
	bustest.MustSend(t, q, bus.Message{Body: []byte("poison")}, 0)
	var id string
	for i := 1; i <= 2; i++ {
		d := bustest.ReceiveOne(t, q, 10*time.Second)
		id = d.ID
		if err := nacker.Nack(t.Context(), d.ReceiptHandle, 0, fmt.Sprintf("boom %d", i)); err != nil {
			t.Fatalf("Nack: %v", err)
		}
	}
	bustest.ExpectEmpty(t, q, 0)

	dead := bustest.MustListDeadLetters(t, b, bustest.Workflows)
	if len(dead) != 1 {
		t.Fatalf("got %d dead letters, want 1", len(dead))
	}
	if got, want := dead[0].Attributes[local.LastErrorAttribute], "boom 2"; got != want {
		t.Errorf("dead letter attribute %s: got %q, want %q", local.LastErrorAttribute, got, want)
	}
	if dead[0].ID != id || dead[0].ReceiveCount != 2 {
		t.Errorf("dead letter: got %s with ReceiveCount %d, want %s with 2", dead[0].ID, dead[0].ReceiveCount, id)
	}

	var line struct {
		Level        string
		Queue        string
		MessageID    string
		ReceiveCount int
		LastError    string
	}
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("want one JSON log line, got %q: %v", logs.Bytes(), err)
	}
	if line.Level != "WARN" || line.Queue != bustest.Workflows || line.MessageID != id || line.ReceiveCount != 2 || line.LastError != "boom 2" {
		t.Errorf("got log line %+v, want WARN with queue, message ID %s, receive count 2 and last error", line, id)
	}

	if n, err := b.Redrive(t.Context(), bustest.Workflows, 0); err != nil || n != 1 {
		t.Fatalf("Redrive: got %d, %v, want 1, nil", n, err)
	}
	d := bustest.ReceiveOne(t, q, 10*time.Second)
	if d.ReceiveCount != 1 || d.ID != id {
		t.Errorf("after redrive: got %s with ReceiveCount %d, want %s with 1", d.ID, d.ReceiveCount, id)
	}
}

func TestRestartRedeliversInFlightAtOnceAndKeepsDeferrals(t *testing.T) {
	opts := local.Options{Dir: t.TempDir(), Queues: workflowsOnly(time.Hour, 5)}
	b, err := local.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	q := mustQueue(t, b, bustest.Workflows)
	bustest.MustSend(t, q, bus.Message{Body: []byte("in-flight")}, 0)
	bustest.MustSend(t, q, bus.Message{Body: []byte("delayed")}, time.Hour)
	d := bustest.ReceiveOne(t, q, 10*time.Second)
	if string(d.Body) != "in-flight" {
		t.Fatalf("got %q, want %q", d.Body, "in-flight")
	}
	bustest.MustSend(t, q, bus.Message{Body: []byte("nacked")}, 0)
	d = bustest.ReceiveOne(t, q, 10*time.Second)
	if err := q.Nack(t.Context(), d.ReceiptHandle, time.Hour, "later"); err != nil {
		t.Fatal(err)
	}
	if got, want := b.Stats(bustest.Workflows), (local.QueueStats{InFlight: 2, Delayed: 1}); got != want {
		t.Errorf("before restart: got %+v, want %+v", got, want)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b = MustOpen(t, opts)
	if got, want := b.Stats(bustest.Workflows), (local.QueueStats{Visible: 1, Delayed: 2}); got != want {
		t.Errorf("after restart: got %+v, want %+v", got, want)
	}
	got := drain(t, mustQueue(t, b, bustest.Workflows))
	if want := map[string]int{"in-flight": 2}; !equalMaps(got, want) {
		t.Errorf("after restart: got %v (body → receive count), want %v", got, want)
	}
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestClockDecidesVisibility(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	b := MustOpen(t, local.Options{
		Queues: workflowsOnly(10*time.Second, 5),
		Now: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			return now
		},
	})
	q := mustQueue(t, b, bustest.Workflows)
	bustest.MustSend(t, q, bus.Message{Body: []byte("later")}, 5*time.Second)
	steps := []struct {
		name      string
		advance   time.Duration
		wantCount int // 0: nothing received
		wantStats local.QueueStats
	}{
		{"delayed", 0, 0, local.QueueStats{Delayed: 1}},
		{"almost_due", 4 * time.Second, 0, local.QueueStats{Delayed: 1}},
		{"due", time.Second, 1, local.QueueStats{InFlight: 1}},
		{"lease_running", 9 * time.Second, 0, local.QueueStats{InFlight: 1}},
		{"lease_over", time.Second, 2, local.QueueStats{InFlight: 1}},
	}
	for _, s := range steps {
		advance(s.advance)
		ds, err := q.Receive(t.Context(), 10, 0)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		switch {
		case s.wantCount == 0 && len(ds) != 0:
			t.Errorf("%s: got %d messages, want none", s.name, len(ds))
		case s.wantCount != 0 && (len(ds) != 1 || ds[0].ReceiveCount != s.wantCount):
			t.Errorf("%s: got %d messages %v, want 1 with ReceiveCount %d", s.name, len(ds), ds, s.wantCount)
		case s.wantCount != 0 && !ds[0].SentAt.Equal(time.Unix(1_700_000_000, 0)):
			t.Errorf("%s: got SentAt %v, want the clock's time at the send", s.name, ds[0].SentAt)
		}
		if got := b.Stats(bustest.Workflows); got != s.wantStats {
			t.Errorf("%s: got stats %+v, want %+v", s.name, got, s.wantStats)
		}
	}
}

func TestClosedBusFailsEveryCall(t *testing.T) {
	b, err := local.Open(local.Options{Queues: workflowsOnly(0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	q := mustQueue(t, b, bustest.Workflows)
	bustest.MustSend(t, q, bus.Message{Body: []byte("x")}, 0)
	d := bustest.ReceiveOne(t, q, 10*time.Second)

	waiting := make(chan error, 1)
	go func() {
		_, err := q.Receive(context.Background(), 1, time.Minute)
		waiting <- err
	}()
	time.Sleep(100 * time.Millisecond) // let it wait (it returns ErrClosed either way)
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-waiting:
		if !errors.Is(err, local.ErrClosed) {
			t.Errorf("waiting Receive: got %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting Receive did not return after Close")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}

	ctx := t.Context()
	calls := []struct {
		name string
		call func() error
	}{
		{"Publish", func() error { return b.Publish(ctx, publishTo(bustest.Workflows, "y")) }},
		{"Publish_unrouted", func() error { return b.Publish(ctx, publishTo("nowhere", "y")) }},
		{"Send", func() error { return q.Send(ctx, bus.Message{Body: []byte("y")}, 0) }},
		{"Receive", func() error { _, err := q.Receive(ctx, 1, time.Second); return err }},
		{"Delete", func() error { return q.Delete(ctx, d.ReceiptHandle) }},
		{"ChangeVisibility", func() error { return q.ChangeVisibility(ctx, d.ReceiptHandle, 0) }},
		{"Nack", func() error { return q.Nack(ctx, d.ReceiptHandle, 0, "r") }},
		{"Queue", func() error { _, err := b.Queue(bustest.Workflows); return err }},
		{"ListDeadLetters", func() error { _, err := b.ListDeadLetters(ctx, bustest.Workflows, 1); return err }},
		{"Redrive", func() error { _, err := b.Redrive(ctx, bustest.Workflows, 1); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, local.ErrClosed) {
			t.Errorf("%s after Close: got %v, want ErrClosed", c.name, err)
		}
	}
	_ = b.Stats(bustest.Workflows) // must not panic
}

func TestOpenRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name   string
		queues []local.QueueConfig
	}{
		{"no_queues", nil},
		{"empty_name", []local.QueueConfig{{Name: ""}}},
		{"slash_in_name", []local.QueueConfig{{Name: "a/b"}}},
		{"name_too_long", []local.QueueConfig{{Name: strings.Repeat("a", 81)}}},
		{"duplicate_name", []local.QueueConfig{{Name: "a"}, {Name: "a"}}},
		{"negative_visibility_timeout", []local.QueueConfig{{Name: "a", VisibilityTimeout: -time.Second}}},
		{"negative_max_receive_count", []local.QueueConfig{{Name: "a", MaxReceiveCount: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := local.Open(local.Options{Queues: tt.queues})
			if err == nil {
				_ = b.Close()
				t.Fatalf("Open(%+v): got nil error, want one", tt.queues)
			}
		})
	}
}

func TestDirectoryIsHeldByOneBus(t *testing.T) {
	opts := local.Options{Dir: t.TempDir(), Queues: workflowsOnly(0, 0)}
	MustOpen(t, opts)
	if b, err := local.Open(opts); err == nil {
		_ = b.Close()
		t.Fatal("second Open of the same directory: got nil error, want one")
	}
}

func TestChangeVisibilityRejectsNegativeDuration(t *testing.T) {
	b := MustOpen(t, local.Options{Queues: workflowsOnly(0, 0)})
	q := mustQueue(t, b, bustest.Workflows)
	bustest.MustSend(t, q, bus.Message{Body: []byte("x")}, 0)
	d := bustest.ReceiveOne(t, q, 10*time.Second)
	if err := q.ChangeVisibility(t.Context(), d.ReceiptHandle, -time.Second); err == nil {
		t.Error("ChangeVisibility(-1s): got nil error, want one")
	}
}

func TestDrainedQueueIsEmpty(t *testing.T) {
	b := MustOpen(t, local.Options{Queues: workflowsOnly(time.Minute, 0)})
	q := mustQueue(t, b, bustest.Workflows)
	const n = 3000
	for i := range n {
		bustest.MustPublish(t, b, publishTo(bustest.Workflows, fmt.Sprint(i)))
	}
	if got := b.Stats(bustest.Workflows); got.Visible != n {
		t.Fatalf("got %+v, want %d visible", got, n)
	}
	if got := drain(t, q); len(got) != n {
		t.Errorf("drained %d, want %d", len(got), n)
	}
	if got := b.Stats(bustest.Workflows); got != (local.QueueStats{}) {
		t.Errorf("after draining: got %+v, want all zero", got)
	}
}

// A publish refused before anything is written says so
// (bus.NotPublished), so that the API may record its command REJECTED; a
// published message is not.
func TestPublishRefusedBeforeWritingIsNotPublished(t *testing.T) {
	b, err := local.Open(local.Options{Dir: t.TempDir(), Queues: workflowsOnly(time.Hour, 5)})
	if err != nil {
		t.Fatal(err)
	}
	msg := bus.Message{Body: []byte("x"), Attributes: map[string]string{bus.TargetAttribute: bus.QueueWorkflows}}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Publish(done, msg); !bus.NotPublished(err) {
		t.Errorf("publish with a context already done: %v, want NotPublished", err)
	}
	if err := b.Publish(context.Background(), bus.Message{Body: make([]byte, bus.MaxMessageSize+1), Attributes: msg.Attributes}); !bus.NotPublished(err) {
		t.Errorf("publish of a message too large: %v, want NotPublished", err)
	}
	if err := b.Publish(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := b.Publish(context.Background(), msg); !bus.NotPublished(err) || !errors.Is(err, local.ErrClosed) {
		t.Errorf("publish on a closed bus: %v, want ErrClosed and NotPublished", err)
	}
}

// crashLoopEnv names the bus directory of TestCrashLoopChild.
const crashLoopEnv = "LOCALBUS_TEST_CRASH_LOOP_DIR"

// TestCrashLoopChild is the child of TestAMessageThatCrashesTheProcessEndsInTheDeadLetterQueue:
// it receives one message and dies at once (as a fatal runtime error in
// its handler would), or prints "idle" when there is none.
func TestCrashLoopChild(t *testing.T) {
	dir := os.Getenv(crashLoopEnv)
	if dir == "" {
		t.Skip("helper process of TestAMessageThatCrashesTheProcessEndsInTheDeadLetterQueue")
	}
	b, err := local.Open(local.Options{Dir: dir, Queues: workflowsOnly(30*time.Second, 3)})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	q, err := b.Queue(bustest.Workflows)
	if err != nil {
		fmt.Println("queue:", err)
		os.Exit(2)
	}
	ds, err := q.Receive(context.Background(), 1, 200*time.Millisecond)
	if err != nil {
		fmt.Println("receive:", err)
		os.Exit(2)
	}
	if len(ds) > 0 {
		os.Exit(3) // the handler's fatal error: no defer, no close
	}
	fmt.Println("idle")
}

// A message whose handler kills the process (a fatal error no recover
// catches) is counted as received by each life of the process, so after
// the maximum receive count it moves to the dead-letter queue instead of
// crashing every restart for ever.
func TestAMessageThatCrashesTheProcessEndsInTheDeadLetterQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	const maxReceive = 3
	dir := t.TempDir()
	b := MustOpen(t, local.Options{Dir: dir, Queues: workflowsOnly(30*time.Second, maxReceive)})
	if err := b.Publish(t.Context(), publishTo(bustest.Workflows, "poison")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	crashes := 0
	for life := 1; ; life++ {
		if life > 3*maxReceive {
			t.Fatalf("after %d lives the message still crashes the process (%d crashes): a crash loop", life-1, crashes)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashLoopChild$", "-test.timeout=1m")
		cmd.Env = append(os.Environ(), crashLoopEnv+"="+dir)
		out, err := cmd.Output()
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 3 {
			crashes++
			continue
		}
		if err != nil || !strings.Contains(string(out), "idle") {
			t.Fatalf("life %d: %v: %s", life, err, out)
		}
		break
	}
	if crashes != maxReceive {
		t.Fatalf("the process crashed %d times on the message, want %d (its maximum receive count)", crashes, maxReceive)
	}
	b = MustOpen(t, local.Options{Dir: dir, Queues: workflowsOnly(30*time.Second, maxReceive)})
	if dead := bustest.MustListDeadLetters(t, b, bustest.Workflows); len(dead) != 1 || string(dead[0].Body) != "poison" {
		t.Fatalf("dead letters: %v, want the poison message", dead)
	}
}
