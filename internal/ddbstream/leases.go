package ddbstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Leases let several instances share the work of one stream, and run a
// singleton (the cleanup) on one of them at a time. A lease is an item of
// the checkpoints table, "lease#" + name, with its owner (an instance id),
// a counter that grows by one each time the lease changes hands (the
// owner's fencing token), and when it expires. Every change is a
// conditional write on owner and counter, so two instances never both
// believe they hold a lease:
//
//   - the owner renews it every Period/4, and stops the work under it (its
//     context ends) as soon as its own clock passes the expiry without a
//     renewal;
//   - another instance takes it only Period/2 after its expiry (room for
//     clocks that differ), or steals it from an owner that holds more than
//     its share (then it starts the work only once the old owner's expiry
//     and that grace have passed, since the old owner keeps working until
//     its next renewal fails);
//   - a shard's checkpoint is kept in its lease item and saved under the
//     same condition, so an instance that lost the lease cannot move it.
//
// Each instance also keeps a heartbeat item, "instance#" + id, renewed
// with its leases: the instances alive are those whose heartbeat has not
// expired, and each aims at holding its share of the shards,
// ceil(shards / instances alive).
type Leases struct {
	Client *dynamodb.Client
	// Table is the checkpoints table (a string partition key "pk").
	Table string
	// Instance names this process; unique among the instances (default:
	// a random id).
	Instance string
	// Period is how long a lease lasts without a renewal (default 10s).
	Period time.Duration
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	lastBeat atomic.Int64 // Unix ms of the last heartbeat put
}

// ErrLeaseLost is returned by a write under a lease this instance no
// longer holds.
var ErrLeaseLost = errors.New("lease lost")

// DefaultLeasePeriod is Leases.Period's default.
const DefaultLeasePeriod = 10 * time.Second

func (l *Leases) period() time.Duration {
	if l.Period > 0 {
		return l.Period
	}
	return DefaultLeasePeriod
}

func (l *Leases) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Leases) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.Default()
}

// grace is how long past a lease's expiry another instance waits before
// it takes the lease.
func (l *Leases) grace() time.Duration { return l.period() / 2 }

// lease is a lease item as read.
type lease struct {
	name    string
	owner   string
	counter int64
	expires time.Time
	// attrs are the item's other attributes (checkpoints).
	attrs map[string]ddbtypes.AttributeValue
}

func leaseKey(name string) string { return "lease#" + name }

func ms(t time.Time) ddbtypes.AttributeValue {
	return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixMilli(), 10)}
}

func num(n int64) ddbtypes.AttributeValue {
	return &ddbtypes.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func str(s string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: s} }

func numOf(av ddbtypes.AttributeValue) int64 {
	if n, ok := av.(*ddbtypes.AttributeValueMemberN); ok {
		v, _ := strconv.ParseInt(n.Value, 10, 64)
		return v
	}
	return 0
}

func strOf(av ddbtypes.AttributeValue) string {
	if s, ok := av.(*ddbtypes.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func parseLease(item map[string]ddbtypes.AttributeValue) lease {
	return lease{
		name:    strings.TrimPrefix(strOf(item["pk"]), "lease#"),
		owner:   strOf(item["owner"]),
		counter: numOf(item["counter"]),
		expires: time.UnixMilli(numOf(item["expiresAt"])),
		attrs:   item,
	}
}

// get reads lease name (a zero lease, counter 0, if it has no item).
func (l *Leases) get(ctx context.Context, name string) (lease, error) {
	out, err := l.Client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(l.Table), ConsistentRead: aws.Bool(true),
		Key: map[string]ddbtypes.AttributeValue{"pk": str(leaseKey(name))},
	})
	if err != nil {
		return lease{}, fmt.Errorf("read lease %s: %w", name, err)
	}
	if out.Item == nil {
		return lease{name: name}, nil
	}
	return parseLease(out.Item), nil
}

// scan reads every lease and heartbeat item.
func (l *Leases) scan(ctx context.Context) (leases map[string]lease, alive []string, err error) {
	leases = map[string]lease{}
	now := l.now()
	var start map[string]ddbtypes.AttributeValue
	for {
		out, err := l.Client.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(l.Table), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return nil, nil, fmt.Errorf("scan leases: %w", err)
		}
		for _, item := range out.Items {
			pk := strOf(item["pk"])
			switch {
			case strings.HasPrefix(pk, "lease#"):
				le := parseLease(item)
				leases[le.name] = le
			case strings.HasPrefix(pk, "instance#"):
				exp := time.UnixMilli(numOf(item["expiresAt"]))
				if exp.After(now) {
					alive = append(alive, strings.TrimPrefix(pk, "instance#"))
				} else if now.Sub(exp) > time.Hour {
					// An instance gone for an hour: forget it.
					l.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(l.Table), Key: map[string]ddbtypes.AttributeValue{"pk": str(pk)},
						ConditionExpression: aws.String("expiresAt = :e"), ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":e": item["expiresAt"]}})
				}
			}
		}
		if start = out.LastEvaluatedKey; start == nil {
			return leases, alive, nil
		}
	}
}

// heartbeat tells the others this instance is alive for a period. The
// readers of one instance share its Leases: one put a quarter period
// serves them all.
func (l *Leases) heartbeat(ctx context.Context) error {
	now := l.now()
	if last := l.lastBeat.Load(); last != 0 && now.Sub(time.UnixMilli(last)) < l.period()/8 {
		return nil
	}
	_, err := l.Client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(l.Table), Item: map[string]ddbtypes.AttributeValue{
		"pk": str("instance#" + l.Instance), "expiresAt": ms(now.Add(l.period())),
	}})
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	l.lastBeat.Store(now.UnixMilli())
	return nil
}

// leave removes the heartbeat at a clean stop.
func (l *Leases) leave(ctx context.Context) {
	l.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(l.Table), Key: map[string]ddbtypes.AttributeValue{"pk": str("instance#" + l.Instance)}})
}

// free reports whether le may be taken at now: nobody holds it, or its
// owner let it expire (plus the grace).
func (l *Leases) free(le lease, now time.Time) bool {
	return le.owner == "" || now.After(le.expires.Add(l.grace()))
}

// take makes this instance the owner of le (as read), with the next
// counter; it fails with ErrLeaseLost if le changed since it was read.
func (l *Leases) take(ctx context.Context, le lease) (lease, error) {
	now := l.now()
	in := &dynamodb.UpdateItemInput{
		TableName:        aws.String(l.Table),
		Key:              map[string]ddbtypes.AttributeValue{"pk": str(leaseKey(le.name))},
		UpdateExpression: aws.String("SET #o = :me, #c = :next, expiresAt = :exp"),
		ExpressionAttributeNames: map[string]string{
			"#o": "owner", "#c": "counter",
		},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":me": str(l.Instance), ":next": num(le.counter + 1), ":exp": ms(now.Add(l.period())),
		},
		ReturnValues: ddbtypes.ReturnValueAllNew,
	}
	if le.counter == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(#c)")
	} else {
		in.ConditionExpression = aws.String("#c = :was")
		in.ExpressionAttributeValues[":was"] = num(le.counter)
	}
	out, err := l.Client.UpdateItem(ctx, in)
	var failed *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return lease{}, ErrLeaseLost
	}
	if err != nil {
		return lease{}, fmt.Errorf("take lease %s: %w", le.name, err)
	}
	return parseLease(out.Attributes), nil
}

// renew extends a lease this instance holds under counter.
func (l *Leases) renew(ctx context.Context, name string, counter int64) (time.Time, error) {
	exp := l.now().Add(l.period())
	ctx, cancel := context.WithTimeout(ctx, l.period()/4)
	defer cancel()
	_, err := l.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.Table),
		Key:                       map[string]ddbtypes.AttributeValue{"pk": str(leaseKey(name))},
		UpdateExpression:          aws.String("SET expiresAt = :exp"),
		ConditionExpression:       aws.String("#o = :me AND #c = :c"),
		ExpressionAttributeNames:  map[string]string{"#o": "owner", "#c": "counter"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":exp": ms(exp), ":me": str(l.Instance), ":c": num(counter)},
	})
	var failed *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return time.Time{}, ErrLeaseLost
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("renew lease %s: %w", name, err)
	}
	return exp, nil
}

// release gives a lease up at a clean stop, so that another instance
// takes it at once rather than after its expiry.
func (l *Leases) release(ctx context.Context, name string, counter int64) {
	l.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.Table),
		Key:                       map[string]ddbtypes.AttributeValue{"pk": str(leaseKey(name))},
		UpdateExpression:          aws.String("REMOVE #o"),
		ConditionExpression:       aws.String("#o = :me AND #c = :c"),
		ExpressionAttributeNames:  map[string]string{"#o": "owner", "#c": "counter"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":me": str(l.Instance), ":c": num(counter)},
	})
}

// held is a lease this instance holds, and the work it runs under it.
type held struct {
	counter int64
	expires time.Time
	cancel  context.CancelFunc
	done    chan struct{}
	// lapse stops the work when the expiry passes without a renewal,
	// whatever the renewal loop is doing (a slow DynamoDB call).
	lapse *time.Timer
}

// holder runs work under leases: it starts the work when a lease is
// taken (after a wait, for a stolen one), renews the leases, and stops
// the work of a lease that is lost or lapses.
type holder struct {
	l    *Leases
	mu   sync.Mutex
	held map[string]*held
	wg   sync.WaitGroup
}

func newHolder(l *Leases) *holder { return &holder{l: l, held: map[string]*held{}} }

func (h *holder) holds(name string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.held[name]
	return ok
}

func (h *holder) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.held)
}

// start runs work(ctx, counter) under le, just taken, once startAt has
// passed; ctx ends when the lease is lost or lapses, or parent ends.
func (h *holder) start(parent context.Context, le lease, startAt time.Time, work func(ctx context.Context, counter int64)) {
	ctx, cancel := context.WithCancel(parent)
	hd := &held{counter: le.counter, expires: le.expires, cancel: cancel, done: make(chan struct{})}
	hd.lapse = time.AfterFunc(le.expires.Sub(h.l.now()), func() {
		h.l.logger().Warn("lease lapsed unrenewed: its work stops", "lease", le.name, "counter", le.counter)
		cancel()
	})
	h.mu.Lock()
	h.held[le.name] = hd
	h.mu.Unlock()
	h.wg.Go(func() {
		defer close(hd.done)
		defer cancel()
		if wait := startAt.Sub(h.l.now()); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		h.l.logger().Info("lease taken", "lease", le.name, "counter", le.counter)
		work(ctx, le.counter)
	})
}

// renewAll renews every lease held; one lost, or lapsed on this
// instance's clock, has its work stopped. A lease whose work ended by
// itself (a finished shard) is released; renewAll reports whether there
// was one.
func (h *holder) renewAll(ctx context.Context) (ended bool) {
	h.mu.Lock()
	names := make([]string, 0, len(h.held))
	for name := range h.held {
		names = append(names, name)
	}
	h.mu.Unlock()
	for _, name := range names {
		h.mu.Lock()
		hd := h.held[name]
		h.mu.Unlock()
		select {
		case <-hd.done: // the work ended by itself (a finished shard)
			h.drop(ctx, name, hd, true)
			ended = true
			continue
		default:
		}
		exp, err := h.l.renew(ctx, name, hd.counter)
		switch {
		case err == nil:
			h.mu.Lock()
			hd.expires = exp
			h.mu.Unlock()
			hd.lapse.Reset(exp.Sub(h.l.now()))
		case errors.Is(err, ErrLeaseLost):
			h.l.logger().Info("lease lost to another instance", "lease", name, "counter", hd.counter)
			h.drop(ctx, name, hd, false)
		default:
			h.l.logger().Warn("lease renewal failed", "lease", name, "err", err)
			if !h.l.now().Before(hd.expires) {
				h.l.logger().Warn("lease lapsed: its work stops", "lease", name)
				h.drop(ctx, name, hd, false)
			}
		}
	}
	return ended
}

// drop stops the work of a lease and forgets it; release gives it up.
func (h *holder) drop(ctx context.Context, name string, hd *held, release bool) {
	hd.lapse.Stop()
	hd.cancel()
	<-hd.done
	h.l.logger().Info("lease work stopped", "lease", name, "counter", hd.counter)
	h.mu.Lock()
	delete(h.held, name)
	h.mu.Unlock()
	if release {
		h.l.release(ctx, name, hd.counter)
	}
}

// stop stops all work and releases the leases (a clean stop).
func (h *holder) stop(ctx context.Context) {
	h.mu.Lock()
	all := make(map[string]*held, len(h.held))
	for name, hd := range h.held {
		all[name] = hd
	}
	h.mu.Unlock()
	for name, hd := range all {
		h.drop(ctx, name, hd, true)
	}
	h.wg.Wait()
}

// Hold runs run on this instance while it holds lease name, and only
// then, until ctx ends: of all the instances that call Hold with one
// name, one at a time runs it, and when it dies (its lease lapses) another
// takes over within two lease periods. run's ctx ends when the lease is
// lost.
func (l *Leases) Hold(ctx context.Context, name string, run func(ctx context.Context)) {
	h := newHolder(l)
	defer h.stop(context.WithoutCancel(ctx))
	tick := time.NewTicker(l.period() / 4)
	defer tick.Stop()
	for {
		h.renewAll(ctx)
		if !h.holds(name) {
			if le, err := l.get(ctx, name); err != nil {
				l.logger().Warn("read lease failed", "lease", name, "err", err)
			} else if l.free(le, l.now()) {
				if le, err := l.take(ctx, le); err == nil {
					h.start(ctx, le, l.now(), func(ctx context.Context, _ int64) { run(ctx) })
				} else if !errors.Is(err, ErrLeaseLost) {
					l.logger().Warn("take lease failed", "lease", name, "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
