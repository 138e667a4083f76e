// Package awstest gives integration tests an AWS configuration pointed at
// the local stack (DynamoDB Local and fauxqs) that `make test` starts, and
// fails loudly when the stack is missing under CI.
package awstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

const howTo = `The AWS integration tests need DynamoDB Local and the SNS/SQS emulator
fauxqs. "make test" starts both (.ci/localstack/with-stack.sh installs them
with npm on first use and needs java 17+ and node 20+). To run one package by
hand:
    .ci/localstack/with-stack.sh go test ./table/
which exports AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_SQS, … for the SDK.`

// Config returns the SDK configuration for the local stack. Without the
// stack the test is skipped, except under -short (skipped too) … and with
// CI=true, where it fails: CI must never pass by not running these tests.
func Config(tb testing.TB, service string) aws.Config {
	tb.Helper()
	if testing.Short() {
		tb.Skip("integration test: skipped under -short")
	}
	env := map[string]string{
		"dynamodb": "AWS_ENDPOINT_URL_DYNAMODB",
		"sqs":      "AWS_ENDPOINT_URL_SQS",
		"sns":      "AWS_ENDPOINT_URL_SNS",
	}[service]
	endpoint := os.Getenv(env)
	problem := ""
	switch {
	case endpoint == "":
		problem = env + " is not set"
	case !reachable(endpoint):
		problem = "nothing answers at " + env + "=" + endpoint
	}
	if problem != "" {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("%s: the local AWS stack is missing (%s).\n%s", service, problem, howTo)
		}
		tb.Skipf("%s: local AWS stack not running (%s); see how to start it:\n%s", service, problem, howTo)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		tb.Fatalf("load AWS config: %v", err)
	}
	return cfg
}

func reachable(endpoint string) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(endpoint)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// Name returns a unique resource name with the given prefix (tests create
// their own tables and queues, so they can run in parallel).
func Name(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// WithLatency returns cfg whose clients wait d before each attempt of
// every call: the round trip of an AWS region, which the local stack on
// loopback lacks. The benchmarks of throughput a service call bounds use it.
func WithLatency(cfg aws.Config, d time.Duration) aws.Config {
	cfg.APIOptions = append(append([]func(*middleware.Stack) error(nil), cfg.APIOptions...), func(s *middleware.Stack) error {
		return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("injectedLatency",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				t := time.NewTimer(d)
				defer t.Stop()
				select {
				case <-ctx.Done():
					return middleware.FinalizeOutput{}, middleware.Metadata{}, ctx.Err()
				case <-t.C:
				}
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	})
	return cfg
}

// Killable returns cfg whose clients fail every call once kill is called:
// a process that died (kill -9), as the services see it, for tests of
// what the others do then. Nothing it had in flight completes after kill.
func Killable(cfg aws.Config) (aws.Config, func()) {
	var dead atomic.Bool
	cfg.APIOptions = append(append([]func(*middleware.Stack) error(nil), cfg.APIOptions...), func(s *middleware.Stack) error {
		return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("killable",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if dead.Load() {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, errors.New("awstest: the process was killed")
				}
				out, md, err := next.HandleFinalize(ctx, in)
				if dead.Load() {
					return middleware.FinalizeOutput{}, middleware.Metadata{}, errors.New("awstest: the process was killed")
				}
				return out, md, err
			}), middleware.After)
	})
	return cfg, func() { dead.Store(true) }
}

// Faults counts the faults WithFaults injected, by kind.
type Faults struct {
	// Throttled: a call refused before it was sent, as DynamoDB, SNS and
	// SQS throttle (the SDK's retryer retries it).
	Throttled atomic.Int64
	// Reset: a call that took effect whose answer was lost on the way
	// back, as a reset connection loses it (the SDK's retryer sends the
	// request again, so the service sees it twice).
	Reset atomic.Int64
	// TimedOut: a call that took effect whose caller stopped waiting for
	// the answer, as an SDK timeout after the accept does (not retried:
	// the caller sees an unknown outcome).
	TimedOut atomic.Int64
	// Calls: every attempt the middleware saw.
	Calls atomic.Int64
	// Off, while set, injects nothing (a test sets it up, or checks the
	// outcome, with the faults off).
	Off atomic.Bool

	mu   sync.Mutex
	byOp map[string]int // faults by service and operation
}

func (f *Faults) add(ctx context.Context, kind *atomic.Int64) {
	kind.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byOp == nil {
		f.byOp = map[string]int{}
	}
	f.byOp[middleware.GetServiceID(ctx)+"."+middleware.GetOperationName(ctx)]++
}

// ByOperation returns the faults injected into each service's operations
// ("DynamoDB.PutItem": 12, …).
func (f *Faults) ByOperation() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.byOp)
}

// String prints the counts.
func (f *Faults) String() string {
	return fmt.Sprintf("%d calls: %d throttled, %d answers lost and retried, %d timed out after the call",
		f.Calls.Load(), f.Throttled.Load(), f.Reset.Load(), f.TimedOut.Load())
}

// WithFaults returns cfg whose clients fail a share rate (0 to 1) of
// every call's attempts, split evenly between the three kinds of Faults,
// for load tests that check nothing is lost or applied twice when AWS
// misbehaves. Which attempts fail is drawn from seed. It sits after the
// SDK's retryer, so each attempt is a draw; operations named in spare
// (for example "GetRecords") are left alone.
func WithFaults(cfg aws.Config, rate float64, seed uint64, spare ...string) (aws.Config, *Faults) {
	f := &Faults{}
	var mu sync.Mutex
	rng := mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	draw := func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return rng.Float64()
	}
	cfg.APIOptions = append(append([]func(*middleware.Stack) error(nil), cfg.APIOptions...), func(s *middleware.Stack) error {
		return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("injectedFaults",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if f.Off.Load() || slices.Contains(spare, middleware.GetOperationName(ctx)) {
					return next.HandleFinalize(ctx, in)
				}
				f.Calls.Add(1)
				d := draw()
				switch {
				case d < rate/3:
					f.add(ctx, &f.Throttled)
					return middleware.FinalizeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{
						Code: "ThrottlingException", Message: "awstest: injected throttling", Fault: smithy.FaultServer}
				case d < 2*rate/3:
					out, md, err := next.HandleFinalize(ctx, in)
					if err != nil {
						return out, md, err
					}
					f.add(ctx, &f.Reset)
					return middleware.FinalizeOutput{}, md, &net.OpError{Op: "read", Net: "tcp",
						Err: fmt.Errorf("awstest: injected connection reset after the call: %w", syscall.ECONNRESET)}
				case d < rate:
					out, md, err := next.HandleFinalize(ctx, in)
					if err != nil {
						return out, md, err
					}
					f.add(ctx, &f.TimedOut)
					// As the SDK reports a deadline that passed during the
					// call; its retryer does not retry a cancelled request.
					return middleware.FinalizeOutput{}, md, &smithy.CanceledError{
						Err: fmt.Errorf("awstest: injected timeout after the call: %w", context.DeadlineExceeded)}
				}
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	})
	return cfg, f
}
