// Command worker-function handles the command messages of both SQS queues
// (template.yaml: WorkerFunction), reporting partial batch failures.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/workflowd/workflowd/app"
)

func main() {
	f := app.FunctionsOrExit("worker-function")
	lambda.Start(f.Worker)
}
