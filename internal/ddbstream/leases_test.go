package ddbstream_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/workflowd/workflowd/internal/awstest"
	"github.com/workflowd/workflowd/internal/ddbstream"
)

const period = time.Second

// instance is one process's view of the stream: its own clients, which a
// kill makes fail every call.
type instance struct {
	leases *ddbstream.Leases
	reader *ddbstream.Reader
	seen   *collector
	kill   func()
	stop   func()
}

func (f *fixture) instance(t *testing.T, name string) *instance {
	t.Helper()
	cfg, kill := awstest.Killable(awstest.Config(t, "dynamodb"))
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	l := &ddbstream.Leases{Client: db, Table: f.cps, Instance: name, Period: period, Logger: slog.New(slog.DiscardHandler)}
	c := &collector{failAt: -1}
	r := &ddbstream.Reader{
		Client: dynamodbstreams.NewFromConfig(cfg), StreamARN: f.stream, Handle: c.handle,
		Leases: l, Consumer: "projector", Logger: slog.New(slog.DiscardHandler), PollInterval: 20 * time.Millisecond,
	}
	return &instance{leases: l, reader: r, seen: c, kill: kill}
}

func (f *fixture) shardID(t *testing.T) string {
	t.Helper()
	out, err := f.streams.DescribeStream(context.Background(), &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(f.stream)})
	if err != nil || len(out.StreamDescription.Shards) == 0 {
		t.Fatalf("describe stream: %v", err)
	}
	return aws.ToString(out.StreamDescription.Shards[0].ShardId)
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// Two instances share a shard's lease: one reads it, the other waits;
// when the reader is killed (its lease is neither renewed nor released),
// the other takes the lease within two lease periods and reads on from the
// dead one's checkpoint. The dead one's checkpoint can no longer be saved,
// and no checkpoint moves backwards.
func TestLeasedReadersTakeOverAfterAKill(t *testing.T) {
	f := newFixture(t)
	f.put(t, 0, 30)
	a, b := f.instance(t, "a"), f.instance(t, "b")
	a.stop = run(a.reader)
	a.seen.waitFor(t, 30)
	b.stop = run(b.reader)
	defer b.stop()
	f.put(t, 30, 40)
	a.seen.waitFor(t, 40)
	time.Sleep(period / 2) // b has looked at the leases a few times
	if n := b.seen.count(); n != 0 {
		t.Fatalf("the instance without the lease read %d records", n)
	}
	name := "projector#" + f.shardID(t)
	owner, counter, err := b.leases.LeaseOf(context.Background(), name)
	if err != nil || owner != "a" {
		t.Fatalf("lease %s: owner %q (%v), want a", name, owner, err)
	}

	a.kill()
	killed := time.Now()
	a.stop()
	f.put(t, 40, 50)
	got := b.seen.waitFor(t, 10)
	took := time.Since(killed)
	t.Logf("the lease moved %s after the kill (lease period %s)", took, period)
	if took > 2*period+500*time.Millisecond {
		t.Fatalf("took over %s after the kill, want within two lease periods (%s)", took, 2*period)
	}
	for _, n := range got {
		if n < 40 {
			t.Fatalf("the new holder read record %d again, before the dead one's checkpoint: %v", n, got)
		}
	}
	owner, next, err := b.leases.LeaseOf(context.Background(), name)
	if err != nil || owner != "b" || next != counter+1 {
		t.Fatalf("lease after the takeover: owner %q counter %d (%v), want b and %d", owner, next, err, counter+1)
	}
	// The dead holder's checkpoint, saved late, is refused; so is the new
	// holder's own checkpoint moved backwards.
	ctx := context.Background()
	if err := b.leases.LeaseCheckpoints(name, counter).Save(ctx, "", "1", false); !errors.Is(err, ddbstream.ErrLeaseLost) {
		t.Fatalf("a checkpoint saved under the lost lease: %v, want ErrLeaseLost", err)
	}
	if err := b.leases.LeaseCheckpoints(name, next).Save(ctx, "", "1", false); !errors.Is(err, ddbstream.ErrLeaseLost) {
		t.Fatalf("a checkpoint moved backwards: %v, want refused", err)
	}
}

// Of the instances that Hold one name, one at a time runs the work; when
// it is killed, another runs it within two lease periods.
func TestHoldRunsOneAtATimeAndMovesAfterAKill(t *testing.T) {
	f := newFixture(t)
	var running, most atomic.Int32
	var mu sync.Mutex
	started := map[string]time.Time{}
	hold := func(i *instance) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			i.leases.Hold(ctx, "cleanup", func(ctx context.Context) {
				n := running.Add(1)
				defer running.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				mu.Lock()
				started[i.leases.Instance] = time.Now()
				mu.Unlock()
				<-ctx.Done()
			})
		}()
		return func() { cancel(); <-done }
	}
	a, b, c := f.instance(t, "a"), f.instance(t, "b"), f.instance(t, "c")
	stopA := hold(a)
	for deadline := time.Now().Add(5 * time.Second); running.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no instance runs the work after 5s")
		}
	}
	stopB, stopC := hold(b), hold(c)
	defer stopB()
	defer stopC()
	time.Sleep(period)
	a.kill()
	killed := time.Now()
	stopA()
	var took time.Duration
	for deadline := killed.Add(5 * period); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		tb, okB := started["b"]
		tc, okC := started["c"]
		mu.Unlock()
		if okB || okC {
			if okB {
				took = tb.Sub(killed)
			} else {
				took = tc.Sub(killed)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no other instance runs the work after five lease periods")
		}
	}
	t.Logf("the work moved %s after the kill (lease period %s)", took, period)
	if took > 2*period {
		t.Fatalf("moved %s after the kill, want within two lease periods", took)
	}
	time.Sleep(period)
	if m := most.Load(); m != 1 {
		t.Fatalf("at most %d instances ran the work at once, want 1", m)
	}
}
