// Command stream-function is the projector and the dispatcher on the events
// table's stream (template.yaml: StreamFunction), reporting the first
// failing record and those after it.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/workflowd/workflowd/app"
)

func main() {
	f, err := app.FunctionsFromEnv(context.Background(), os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "stream-function:", err)
		os.Exit(1)
	}
	lambda.Start(f.Stream)
}
