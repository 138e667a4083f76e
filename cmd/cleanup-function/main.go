// Command cleanup-function is the cleanup worker, run every minute by an
// EventBridge schedule (template.yaml: CleanupFunction).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/workflowd/workflowd/app"
)

func main() {
	f := app.FunctionsOrExit("cleanup-function")
	lambda.Start(f.Cleanup)
}
