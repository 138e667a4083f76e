package app_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/app"
	"github.com/workflowd/workflowd/internal/apitest"
	"github.com/workflowd/workflowd/internal/awstest"
	"github.com/workflowd/workflowd/internal/heat"
	"github.com/workflowd/workflowd/table"
)

var heatExecutions = flag.Int("heat-executions", 2000, "BenchmarkPartitionHeat: executions of the 3-step http workflow")

// Per partition key, on AWS.
const (
	partitionWriteUnits = 1000.0
	partitionReadUnits  = 3000.0
)

// BenchmarkPartitionHeat runs -heat-executions executions of a workflow of
// three http steps (against a local endpoint, 50 in flight) through the
// long-running AWS runtime on the local stack, attributes every DynamoDB
// unit to the partition key it falls on (internal/heat), and prints, for
// each table and index, the hottest key's units per execution and share,
// and the ceiling that implies on AWS: the new executions a second (and
// steps, three per execution) at which that key reaches a partition's
// 1,000 write or 3,000 read units a second.
//
// Two ceilings: "measured" takes the hottest key of this run as it is
// (with K shards and N executions a shard's share is above 1/K by
// sampling noise, so it is low); "at scale" spreads a sharded key's
// prefix evenly over the configured shards, the share a large run tends
// to. A key of one aggregate (an execution's log, its view) is counted as
// if every execution wrote it, which overstates it: its load does not grow
// with the rate of executions.
func BenchmarkPartitionHeat(b *testing.B) {
	ctx := context.Background()
	base := awstest.Config(b, "dynamodb")
	awstest.Config(b, "sqs")
	prefix := "heat" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	if _, err := app.InitAWS(ctx, app.AWSConfig{Prefix: prefix, SDK: &base}); err != nil {
		b.Fatal(err)
	}
	schemas, err := heat.Describe(ctx, dynamodb.NewFromConfig(base), prefix+"-events", prefix+"-views", prefix+"-checkpoints")
	if err != nil {
		b.Fatal(err)
	}
	rec := heat.NewRecorder(schemas)
	recorded := rec.Config(base)

	const steps, inFlight = 3, 50
	n := *heatExecutions
	var lastCalls atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
		if parts := strings.Split(r.Header.Get("Idempotency-Key"), ":"); len(parts) == 3 && parts[1] == fmt.Sprint(steps-1) {
			lastCalls.Add(1)
		}
	}))
	defer hook.Close()
	u, _ := url.Parse(hook.URL)
	a, err := app.OpenAWS(ctx, app.AWSConfig{
		Prefix: prefix, SDK: &recorded, Workers: inFlight,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Steps:  app.StepsConfig{HTTPAllowHosts: []string{u.Host}, CleanupInterval: -1},
	})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	srv := httptest.NewServer(a.Handler())
	defer func() { srv.Close(); stop(); <-done }()
	c := apitest.New(srv.URL)

	var s []string
	for i := range steps {
		s = append(s, fmt.Sprintf(`{"name":"s%d","type":"http","url":%q}`, i, hook.URL))
	}
	wf := c.MustApply(b, "POST", "/v1/workflows", `{"name":"heat","steps":[`+strings.Join(s, ",")+`]}`).String("workflowUUID")
	b.ResetTimer()
	start := time.Now()
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for range next {
				c.Expect(b, 202, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf))
			}
		})
	}
	wg.Wait()
	for lastCalls.Load() < int64(n) {
		if time.Since(start) > 10*time.Minute {
			b.Fatalf("%d of %d executions reached their last step in 10 minutes", lastCalls.Load(), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(start)
	time.Sleep(3 * time.Second) // the last outcomes reach the views
	b.StopTimer()

	shards := table.DefaultIndexShards
	fmt.Printf("partition heat: %d executions of %d http steps in %.1fs (%.0f executions/s here), index shards %d; ceilings on AWS at %.0f write / %.0f read units per partition key a second\n",
		n, steps, elapsed.Seconds(), float64(n)/elapsed.Seconds(), shards, partitionWriteUnits, partitionReadUnits)
	minMeasured, minScale := math.Inf(1), math.Inf(1)
	var limMeasured, limScale string
	report := func(kind string, lines []heat.Line, perPartition float64) {
		for _, l := range lines {
			spread := 1.0
			if l.GroupShards > 1 {
				spread = float64(shards)
			}
			measured := perPartition * float64(n) / l.HottestUnits
			scale := perPartition * float64(n) / (l.HottestGroupUnits / spread)
			fmt.Printf("  %-5s %-32s %8.0f units (%5.2f/execution, %5.2f/step), %6d keys; hottest %-44.44q %6.1f (%4.1f%%) → %7.0f executions/s measured; key %-40.40q over %3.0f shards → %7.0f executions/s at scale\n",
				kind, strings.TrimPrefix(l.Where, prefix), l.Units, l.Units/float64(n), l.Units/float64(n*steps), l.Keys,
				l.Hottest, l.HottestUnits, 100*l.HottestUnits/l.Units, measured, l.HottestGroup, spread, scale)
			if measured < minMeasured {
				minMeasured, limMeasured = measured, kind+" "+strings.TrimPrefix(l.Where, prefix)
			}
			if scale < minScale {
				minScale, limScale = scale, kind+" "+strings.TrimPrefix(l.Where, prefix)
			}
		}
	}
	// The checkpoints table is left out of the ceiling: a stream shard's
	// checkpoint is written once a batch, at most a few times a second
	// whatever the load (batches grow with it), and shards multiply with
	// the table's partitions.
	var writes, reads []heat.Line
	for _, l := range rec.Writes() {
		if strings.HasSuffix(l.Where, "-checkpoints") {
			fmt.Printf("  write %-32s %8.0f units in %.1fs, %d keys (one per shard and consumer, once a batch: not in the ceiling)\n",
				strings.TrimPrefix(l.Where, prefix), l.Units, elapsed.Seconds(), l.Keys)
			continue
		}
		writes = append(writes, l)
	}
	for _, l := range rec.Reads() {
		if !strings.HasSuffix(l.Where, "-checkpoints") && l.Units > 0 {
			reads = append(reads, l)
		}
	}
	report("write", writes, partitionWriteUnits)
	report("read", reads, partitionReadUnits)
	fmt.Printf("partition heat ceiling: %.0f new executions/s and %.0f steps/s measured (limited by %s); %.0f and %.0f at scale (limited by %s)\n",
		minMeasured, steps*minMeasured, limMeasured, minScale, steps*minScale, limScale)
	b.ReportMetric(minScale, "executions/s-ceiling")
	b.ReportMetric(steps*minScale, "steps/s-ceiling")
}
