package ddbstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// runLeased is Run for one of several instances (Reader.Leases): every
// Period/4 it renews its heartbeat and its leases, reads the leases of
// its consumer, and takes (or steals) shards until it holds its share of
// the open ones; it reads the shards it holds, each until it finishes or
// the lease is lost.
func (r *Reader) runLeased(ctx context.Context) error {
	l := r.Leases
	if r.Consumer == "" || l.Instance == "" || l.Table == "" {
		return errors.New("ddbstream: a leased reader needs a Consumer, and Leases an Instance and a Table")
	}
	h := newHolder(l)
	stop := context.WithoutCancel(ctx)
	defer l.leave(stop)
	defer h.stop(stop)
	tick := time.NewTicker(l.period() / 4)
	defer tick.Stop()
	var shards []types.Shard
	var described time.Time
	for {
		if err := l.heartbeat(ctx); err != nil && ctx.Err() == nil {
			r.Logger.Warn("lease heartbeat failed", "err", err)
		}
		if h.renewAll(ctx) {
			described = time.Time{} // a shard finished: look for its children
		}
		if time.Since(described) >= r.DescribeInterval {
			s, err := r.describe(ctx)
			if err != nil && ctx.Err() == nil {
				r.Logger.Error("describe stream failed", "stream", r.StreamARN, "err", err)
			}
			if err == nil {
				shards, described = s, time.Now()
			}
		}
		if leases, alive, err := l.scan(ctx); err != nil {
			if ctx.Err() == nil {
				r.Logger.Warn("read leases failed", "err", err)
			}
		} else {
			r.balance(ctx, h, shards, leases, alive)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (r *Reader) leaseName(shardID string) string { return r.Consumer + "#" + shardID }

// balance takes free shards, and steals one from the busiest instance,
// until this instance holds ceil(open shards / instances alive). A shard
// is open until its lease says it is finished; a child only once its
// parent is finished.
func (r *Reader) balance(ctx context.Context, h *holder, shards []types.Shard, leases map[string]lease, alive []string) {
	l := r.Leases
	now := l.now()
	finished := func(id string) bool {
		le, ok := leases[r.leaseName(id)]
		return ok && boolOf(le.attrs["finished"])
	}
	known := map[string]bool{}
	for _, s := range shards {
		known[aws.ToString(s.ShardId)] = true
	}
	var open []string
	for _, s := range shards {
		id, parent := aws.ToString(s.ShardId), aws.ToString(s.ParentShardId)
		if finished(id) || parent != "" && known[parent] && !finished(parent) {
			continue
		}
		open = append(open, id)
	}
	r.forgetGone(ctx, known, leases)
	if !slices.Contains(alive, l.Instance) {
		alive = append(alive, l.Instance)
	}
	target := (len(open) + len(alive) - 1) / len(alive)
	mine := h.count()
	owners := map[string][]lease{} // the open shards others hold
	for _, id := range open {
		if mine >= target {
			break
		}
		name := r.leaseName(id)
		if h.holds(name) {
			continue
		}
		le, ok := leases[name]
		if !ok {
			le = lease{name: name}
		}
		if !l.free(le, now) {
			if le.owner != l.Instance {
				owners[le.owner] = append(owners[le.owner], le)
			}
			continue
		}
		taken, err := l.take(ctx, le)
		if err != nil {
			if !errors.Is(err, ErrLeaseLost) {
				r.Logger.Warn("take lease failed", "lease", name, "err", err)
			}
			continue
		}
		h.start(ctx, taken, now, r.work(id))
		mine++
	}
	if mine < target {
		// Steal one shard from the instance that holds the most, if it
		// holds more than its share; start reading it only once the old
		// owner has stopped (its lease would have lapsed by then).
		var busiest string
		for owner, les := range owners {
			if len(les) > len(owners[busiest]) {
				busiest = owner
			}
		}
		if les := owners[busiest]; len(les) > target {
			le := les[0]
			if taken, err := l.take(ctx, le); err == nil {
				r.Logger.Info("lease stolen to balance the shards", "lease", le.name, "from", le.owner)
				h.start(ctx, taken, le.expires.Add(l.grace()), r.work(strings.TrimPrefix(le.name, r.Consumer+"#")))
			}
		}
	}
}

// forgetGone deletes the leases of finished shards the stream no longer
// lists (trimmed after 24 hours), so that the table does not grow.
func (r *Reader) forgetGone(ctx context.Context, known map[string]bool, leases map[string]lease) {
	if len(known) == 0 {
		return
	}
	for name, le := range leases {
		shard, ok := strings.CutPrefix(name, r.Consumer+"#")
		if !ok || known[shard] || !boolOf(le.attrs["finished"]) {
			continue
		}
		r.Leases.Client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName: aws.String(r.Leases.Table), Key: map[string]ddbtypes.AttributeValue{"pk": str(leaseKey(name))},
			ConditionExpression:       aws.String("#c = :c"),
			ExpressionAttributeNames:  map[string]string{"#c": "counter"},
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":c": num(le.counter)},
		})
	}
}

// work reads shard id under its lease's counter.
func (r *Reader) work(id string) func(ctx context.Context, counter int64) {
	return func(ctx context.Context, counter int64) {
		r.readShard(ctx, id, &leaseCheckpoints{l: r.Leases, name: r.leaseName(id), counter: counter, legacy: r.Checkpoints})
	}
}

func boolOf(av ddbtypes.AttributeValue) bool {
	b, ok := av.(*ddbtypes.AttributeValueMemberBOOL)
	return ok && b.Value
}

// leaseCheckpoints keeps a shard's checkpoint in its lease item, saved
// only by the lease's holder and never backwards.
type leaseCheckpoints struct {
	l       *Leases
	name    string
	counter int64
	// legacy is read for a lease with no checkpoint yet: the checkpoint a
	// build without leases kept (nil: none).
	legacy Checkpoints
}

// order makes stream sequence numbers (decimal strings of up to 40
// digits) compare as strings in their numeric order.
func order(seq string) string {
	if len(seq) >= 48 {
		return seq
	}
	return strings.Repeat("0", 48-len(seq)) + seq
}

func (c *leaseCheckpoints) Load(ctx context.Context, shardID string) (string, bool, error) {
	le, err := c.l.get(ctx, c.name)
	if err != nil {
		return "", false, err
	}
	if seq, ok := le.attrs["seq"]; ok {
		return strOf(seq), boolOf(le.attrs["finished"]), nil
	}
	if c.legacy != nil {
		return c.legacy.Load(ctx, shardID)
	}
	return "", false, nil
}

func (c *leaseCheckpoints) Save(ctx context.Context, _ string, seq string, finished bool) error {
	_, err := c.l.Client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(c.l.Table),
		Key:                 map[string]ddbtypes.AttributeValue{"pk": str(leaseKey(c.name))},
		UpdateExpression:    aws.String("SET seq = :s, ord = :o, finished = :f"),
		ConditionExpression: aws.String("#o = :me AND #c = :c AND (attribute_not_exists(ord) OR ord <= :o)"),
		ExpressionAttributeNames: map[string]string{
			"#o": "owner", "#c": "counter",
		},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":s": str(seq), ":o": str(order(seq)), ":f": &ddbtypes.AttributeValueMemberBOOL{Value: finished},
			":me": str(c.l.Instance), ":c": num(c.counter),
		},
	})
	var failed *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &failed) {
		return fmt.Errorf("save checkpoint %s at %s: %w", c.name, seq, ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", c.name, err)
	}
	return nil
}
