// Command stream-function is the projector and the dispatcher on the events
// table's stream (template.yaml: StreamFunction), reporting the first
// failing record and those after it.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/workflowd/workflowd/app"
)

func main() {
	f := app.FunctionsOrExit("stream-function")
	lambda.Start(f.Stream)
}
