package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/app"
	"github.com/workflowd/workflowd/internal/apitest"
	"github.com/workflowd/workflowd/internal/awstest"
	"github.com/workflowd/workflowd/table"
)

// BenchmarkAWSStepCost measures what one workflow step costs on AWS: a
// client's increment, from its POST to its status read that says APPLIED
// (one long poll). It runs workflowd's AWS runtime on the local stack, 64
// clients each moving its own executions step by step, and reports per
// step the DynamoDB capacity units consumed (ReturnConsumedCapacity, by
// operation), the SNS publishes and the SQS requests made, and the cost
// per million steps at DESIGN.md §7's prices for two deployments:
//
//   - workflowd on AWS (the long-running service this benchmark runs: API,
//     workers and stream readers in one process), everything measured;
//     its own compute (a container or an instance) is not in §7's list;
//   - the SAM deployment (Lambda functions; issue 5), where the DynamoDB
//     work is the same code's, and the rest follows from how Lambda runs:
//     the API function publishes each command alone (no batching across
//     invocations), and the event source mappings poll SQS and the stream
//     in batches (the assumptions are printed).
func BenchmarkAWSStepCost(b *testing.B) {
	awstest.Config(b, "dynamodb")
	awstest.Config(b, "sqs")
	const perExecution, clients = 10, 64
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.OpenAWS(context.Background(), app.AWSConfig{
		Prefix: "cost" + strings.ReplaceAll(uuid.NewString()[:8], "-", ""), Logger: log, Workers: clients,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { stop(); <-done }()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	c := apitest.New(srv.URL)

	executions := (b.N + perExecution - 1) / perExecution
	wf := c.MustApply(b, "POST", "/v1/workflows", apitest.ManualWorkflow("cost", perExecution)).String("workflowUUID")
	ids := make([]string, executions)
	for i := range ids {
		ids[i] = c.MustApply(b, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf)).String("workflowExecutionUUID")
	}
	for _, id := range ids {
		c.WaitExecution(b, id, time.Minute, "RUNNING", func(r apitest.Response) bool { return r.String("status") == "RUNNING" })
	}

	u0 := a.Store.Usage()
	p0, q0 := a.Bus.Counts()
	b.ResetTimer()
	// Each client owns whole executions, so steps go in order; the last
	// execution takes what is left of b.N.
	next := make(chan int, executions)
	for i := range executions {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for x := range next {
				for step := 0; step < perExecution && x*perExecution+step < b.N; step++ {
					r := c.Expect(b, 202, "POST", "/v1/workflow-executions/"+ids[x]+"/increments", fmt.Sprintf(`{"step":%d}`, step))
					if st := c.WaitCommand(b, r.String("commandUUID"), time.Minute); st.String("status") != "APPLIED" {
						b.Errorf("step %d of %s: %s", step, ids[x], st.Raw)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	time.Sleep(2 * time.Second) // the dispatcher's stream reads catch up
	p1, q1 := a.Bus.Counts()
	n := float64(b.N)
	m := measure{steps: n, usage: usageSince(u0, a.Store.Usage()), publishes: float64(p1-p0) / n, sqsRequests: float64(q1-q0) / n}
	rcu, wcu := m.units()
	b.ReportMetric(wcu, "WCU/step")
	b.ReportMetric(rcu, "RCU/step")
	b.ReportMetric(m.publishes, "publishes/step")
	b.ReportMetric(m.sqsRequests, "SQSrequests/step")
	longRunning, sam := m.longRunning(), m.sam()
	b.ReportMetric(longRunning.total(), "$/Msteps")
	b.ReportMetric(sam.total(), "$/Msteps-SAM")
	if b.N < 10 {
		return // the benchmark's probe run; the real one prints
	}
	fmt.Printf("aws cost per step (%d steps, %d clients): %s\n", b.N, clients, m.breakdown())
	fmt.Printf("aws cost per 1M steps, workflowd on AWS (measured): %s (target $2.50; Step Functions Standard $25)\n", longRunning)
	fmt.Printf("aws cost per 1M steps, SAM deployment: %s\n", sam)
	fmt.Printf("  SAM assumptions: the API function runs once per POST (%.0f ms) and publishes alone (1 SNS publish); "+
		"the worker gets SQS batches of %d (a receive and a DeleteMessageBatch each, %.0f ms a message) and reads the log before each command "+
		"(+%.0f RCU: Lambda does not trust its cache); the stream function gets batches of %d (%.0f ms a record); all 128 MB, arm64\n",
		apiMillis, samSQSBatch, workerMillis, samLoadRCU, samStreamBatch, streamMillis)
}

// Prices, us-east-1 on demand, late 2026 (DESIGN.md §7), in dollars.
const (
	pricePerWCU        = 0.625 / 1e6
	pricePerRCU        = 0.125 / 1e6
	pricePerPublish    = 0.50 / 1e6
	pricePerSQSRequest = 0.40 / 1e6
	pricePerInvocation = 0.20 / 1e6
	pricePerGBSecond   = 0.0000133334
)

// The SAM deployment's assumptions: batch sizes at a load of some tens of
// steps a second (template.yaml: BatchSize 10 with a batching window), run
// times of warm Go functions, and the worker's read of the log, which
// workflowd saves by trusting its cache (workers.CommandWorker.TrustCache)
// and Lambda should not: a strongly consistent Query of one small item.
const (
	samSQSBatch    = 10
	samStreamBatch = 100
	samLoadRCU     = 1.0
	apiMillis      = 10.0 // per POST
	workerMillis   = 20.0 // per command
	streamMillis   = 5.0  // per stream record
	lambdaGB       = 0.125
)

// measure is what the benchmark measured, per step.
type measure struct {
	steps                  float64
	usage                  map[string]table.Usage // totals, by operation
	publishes, sqsRequests float64                // per step
}

func usageSince(before, after map[string]table.Usage) map[string]table.Usage {
	out := make(map[string]table.Usage)
	for op, u := range after {
		b := before[op]
		d := table.Usage{Requests: u.Requests - b.Requests, Read: u.Read - b.Read, Write: u.Write - b.Write}
		if d.Requests > 0 {
			out[op] = d
		}
	}
	return out
}

// units returns the read and write units per step.
func (m measure) units() (rcu, wcu float64) {
	for _, u := range m.usage {
		rcu += u.Read
		wcu += u.Write
	}
	return rcu / m.steps, wcu / m.steps
}

// breakdown lists the units per step by operation, then the bus requests.
func (m measure) breakdown() string {
	ops := make([]string, 0, len(m.usage))
	for op := range m.usage {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var parts []string
	for _, op := range ops {
		u := m.usage[op]
		switch {
		case u.Write > 0:
			parts = append(parts, fmt.Sprintf("%s %.2f WCU", op, u.Write/m.steps))
		case u.Read > 0:
			parts = append(parts, fmt.Sprintf("%s %.2f RCU", op, u.Read/m.steps))
		}
	}
	return fmt.Sprintf("DynamoDB %s; SNS %.2f publishes; SQS %.2f requests", strings.Join(parts, ", "), m.publishes, m.sqsRequests)
}

// bill is a cost per million steps, by service.
type bill struct {
	writes, reads, sns, sqs, lambda float64
	invocations                     float64 // per step
}

func (b bill) total() float64 { return b.writes + b.reads + b.sns + b.sqs + b.lambda }

func (b bill) String() string {
	s := fmt.Sprintf("DynamoDB writes $%.2f + reads $%.2f + SNS $%.2f + SQS $%.2f", b.writes, b.reads, b.sns, b.sqs)
	if b.invocations > 0 {
		s += fmt.Sprintf(" + Lambda $%.2f (%.2f invocations)", b.lambda, b.invocations)
	}
	return s + fmt.Sprintf(" = $%.2f", b.total())
}

const million = 1e6

func (m measure) longRunning() bill {
	rcu, wcu := m.units()
	return bill{
		writes: wcu * pricePerWCU * million, reads: rcu * pricePerRCU * million,
		sns: m.publishes * pricePerPublish * million, sqs: m.sqsRequests * pricePerSQSRequest * million,
	}
}

func (m measure) sam() bill {
	b := m.longRunning()
	// Each POST is an API invocation that publishes its command alone.
	b.sns = 1 * pricePerPublish * million
	// The event source mapping receives a batch and deletes it in one
	// request (its empty polls are a fixed cost, not a per-step one).
	b.sqs = 2.0 / samSQSBatch * pricePerSQSRequest * million
	b.reads += samLoadRCU * pricePerRCU * million
	api, worker, stream := 1.0, 1.0/samSQSBatch, 1.0/samStreamBatch
	b.invocations = api + worker + stream
	gbSeconds := lambdaGB * (apiMillis + workerMillis + streamMillis) / 1000
	b.lambda = (b.invocations*pricePerInvocation + gbSeconds*pricePerGBSecond) * million
	return b
}
