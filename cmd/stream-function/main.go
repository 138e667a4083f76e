// Command stream-function is the projector and the dispatcher on the events
// table's stream (template.yaml: StreamFunction), reporting the first
// failing record and those after it.
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
		fmt.Fprintln(os.Stderr, "stream-function:", err)
		os.Exit(1)
	}
	lambda.Start(f.Stream)
}
