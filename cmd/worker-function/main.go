// Command worker-function handles the command messages of both SQS queues
// (template.yaml: WorkerFunction), reporting partial batch failures.
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
		fmt.Fprintln(os.Stderr, "worker-function:", err)
		os.Exit(1)
	}
	lambda.Start(f.Worker)
}
