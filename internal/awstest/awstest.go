// Package awstest gives integration tests an AWS configuration pointed at
// the local stack (DynamoDB Local and fauxqs) that `make test` starts, and
// fails loudly when the stack is missing under CI.
package awstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
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
