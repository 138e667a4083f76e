package table

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/workflowd/workflowd/store"
)

// An SDK error that says DynamoDB could not answer wraps ErrUnavailable
// (the API answers 503 and a client retries); one that says the request
// was wrong, or is a condition's answer, does not.
func TestWrapMarksWhatDynamoDBCouldNotAnswer(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"retries_exhausted", &retry.MaxAttemptsError{Attempt: 3, Err: &smithy.GenericAPIError{Code: "ThrottlingException"}}, true},
		{"throttled", &types.ProvisionedThroughputExceededException{}, true},
		{"server_error", &smithy.GenericAPIError{Code: "InternalServerError", Fault: smithy.FaultServer}, true},
		{"timeout", &smithy.CanceledError{Err: context.DeadlineExceeded}, true},
		{"connection_reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true},
		{"condition_failed", &types.ConditionalCheckFailedException{}, false},
		{"validation", &smithy.GenericAPIError{Code: "ValidationException", Fault: smithy.FaultClient}, false},
		{"cancelled_by_the_caller", &smithy.CanceledError{Err: context.Canceled}, false},
		{"a_sentinel", store.ErrConflict, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := wrap("get execution", "x", 0, fmt.Errorf("operation error DynamoDB: GetItem, %w", tt.err))
			if got := errors.Is(err, store.ErrUnavailable); got != tt.want {
				t.Fatalf("errors.Is(%v, ErrUnavailable) = %v, want %v", err, got, tt.want)
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("the cause is lost: %v", err)
			}
		})
	}
}
