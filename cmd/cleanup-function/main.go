// Command cleanup-function is the cleanup worker, run every minute by an
// EventBridge schedule (template.yaml: CleanupFunction).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/workflowd/workflowd/functions"
)

func main() {
	f, err := functions.FromEnv(context.Background(), os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cleanup-function:", err)
		os.Exit(1)
	}
	lambda.Start(f.Cleanup)
}
