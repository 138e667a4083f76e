package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/app"
	"github.com/workflowd/workflowd/internal/apitest"
	"github.com/workflowd/workflowd/internal/awstest"
)

// Prices, us-east-1 on demand, late 2026 (DESIGN.md §7), in dollars.
const (
	pricePerWCU        = 0.625 / 1e6
	pricePerRCU        = 0.125 / 1e6
	pricePerPublish    = 0.50 / 1e6
	pricePerSQSRequest = 0.40 / 1e6
	pricePerInvocation = 0.20 / 1e6
	pricePerGBSecond   = 0.0000133334
)

// BenchmarkAWSStepCost measures what one workflow step (an increment, from
// POST to APPLIED) costs on AWS: it runs the AWS runtime on the local stack,
// completes b.N steps through the API, and reports per step the DynamoDB
// capacity units consumed (ReturnConsumedCapacity), the SNS publishes and
// SQS requests made, the Lambda invocations the SAM deployment would need,
// and the cost per million steps at DESIGN.md §7's prices.
func BenchmarkAWSStepCost(b *testing.B) {
	awstest.Config(b, "dynamodb")
	awstest.Config(b, "sqs")
	const perExecution, clients = 10, 8
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.OpenAWS(context.Background(), app.AWSConfig{
		Prefix: "cost" + strings.ReplaceAll(uuid.NewString()[:8], "-", ""), Logger: log, Workers: 4,
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

	r0, w0 := a.Store.Consumed()
	p0, q0 := a.Bus.Counts()
	b.ResetTimer()
	work := make(chan [2]int, b.N)
	for i := range b.N {
		work <- [2]int{i / perExecution, i % perExecution}
	}
	close(work)
	// Each client owns whole executions, so steps go in order.
	var wg sync.WaitGroup
	byExec := make([][]int, executions)
	for w := range work {
		byExec[w[0]] = append(byExec[w[0]], w[1])
	}
	next := make(chan int, executions)
	for i := range executions {
		next <- i
	}
	close(next)
	for range clients {
		wg.Go(func() {
			for x := range next {
				for _, step := range byExec[x] {
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
	r1, w1 := a.Store.Consumed()
	p1, q1 := a.Bus.Counts()
	n := float64(b.N)
	rcu, wcu := (r1-r0)/n, (w1-w0)/n
	pubs, reqs := float64(p1-p0)/n, float64(q1-q0)/n
	// The SAM deployment's invocations for one step: the API function for
	// the POST and one status read, the worker for the command (an SQS batch
	// of one: the worst case at low load), the projector and the dispatcher
	// for its stream record (batches of one, likewise); 128 MB, 20 ms each.
	const invocations, gbSeconds = 5.0, 5 * 0.125 * 0.020
	dollars := func(v float64) float64 { return v * 1e6 }
	writes, reads := dollars(wcu*pricePerWCU), dollars(rcu*pricePerRCU)
	sns, sqs := dollars(pubs*pricePerPublish), dollars(reqs*pricePerSQSRequest)
	lambda := dollars(invocations*pricePerInvocation + gbSeconds*pricePerGBSecond)
	total := writes + reads + sns + sqs + lambda
	b.ReportMetric(wcu, "WCU/step")
	b.ReportMetric(rcu, "RCU/step")
	b.ReportMetric(pubs, "publishes/step")
	b.ReportMetric(reqs, "SQSrequests/step")
	b.ReportMetric(invocations, "invocations/step")
	b.ReportMetric(total, "$/Msteps")
	if b.N < 10 {
		return // the benchmark's probe run; the real one prints
	}
	fmt.Printf("aws cost per 1M steps: DynamoDB writes $%.2f + reads $%.2f + SNS $%.2f + SQS $%.2f + Lambda $%.2f = $%.2f (target $2.50; Step Functions Standard $25)\n",
		writes, reads, sns, sqs, lambda, total)
}
