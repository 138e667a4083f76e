package ddbstream

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/workflowd/workflowd/internal/awstest"
)

// Instances that come and go end up holding ceil(shards / instances)
// each: a new one takes the free shards, then steals from the busiest; the
// shards of one that leaves are taken by the others.
func TestLeasesBalanceTheShards(t *testing.T) {
	cfg := awstest.Config(t, "dynamodb")
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	table := awstest.Name("leases")
	ctx := context.Background()
	if err := CreateCheckpointTable(ctx, db, table); err != nil {
		t.Fatal(err)
	}
	var shards []types.Shard
	for i := range 6 {
		shards = append(shards, types.Shard{ShardId: aws.String(fmt.Sprintf("shardId-%d", i))})
	}
	type inst struct {
		r *Reader
		h *holder
	}
	newInst := func(name string) *inst {
		// The shards are not in any stream: their readers retry until
		// their lease is dropped, which is all this test needs of them.
		l := &Leases{Client: db, Table: table, Instance: name, Period: time.Minute, Logger: slog.New(slog.DiscardHandler)}
		r := &Reader{Client: dynamodbstreams.NewFromConfig(cfg), StreamARN: "arn:aws:dynamodb:us-east-1:000000000000:table/none/stream/x",
			Leases: l, Consumer: "projector", Logger: slog.New(slog.DiscardHandler)}
		r.defaults()
		return &inst{r: r, h: newHolder(l)}
	}
	round := func(all ...*inst) {
		for range 4 {
			for _, i := range all {
				if err := i.r.Leases.heartbeat(ctx); err != nil {
					t.Fatal(err)
				}
				i.h.renewAll(ctx)
				leases, alive, err := i.r.Leases.scan(ctx)
				if err != nil {
					t.Fatal(err)
				}
				i.r.balance(ctx, i.h, shards, leases, alive)
			}
		}
	}
	counts := func(all ...*inst) []int {
		var n []int
		for _, i := range all {
			n = append(n, i.h.count())
		}
		return n
	}
	want := func(got []int, want ...int) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("shards held: %v, want %v", got, want)
		}
	}
	a, b := newInst("a"), newInst("b")
	round(a, b)
	want(counts(a, b), 3, 3)
	c := newInst("c")
	// c steals from the busiest, but starts reading a stolen shard only
	// once its old holder's lease would have lapsed: the old holder drops
	// it at its next renewal.
	round(a, b, c)
	want(counts(a, b, c), 2, 2, 2)
	c.h.stop(ctx)
	c.r.Leases.leave(ctx)
	round(a, b)
	want(counts(a, b), 3, 3)
	a.h.stop(ctx)
	b.h.stop(ctx)
}
