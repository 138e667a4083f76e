// Command api-function is the REST API as a Lambda function behind an API
// Gateway HTTP API (template.yaml: ApiFunction): the same gorilla/mux
// handler workflowd serves, through aws-lambda-go-api-proxy's adapter for
// the HTTP API's payload format 2.0.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/workflowd/workflowd/functions"
)

func main() {
	f, err := functions.FromEnv(context.Background(), os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "api-function:", err)
		os.Exit(1)
	}
	lambda.Start(httpadapter.NewV2(f.API()).ProxyWithContext)
}
