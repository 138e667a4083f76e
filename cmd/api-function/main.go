// Command api-function is the REST API as a Lambda function behind an API
// Gateway HTTP API (template.yaml: IamApiFunction or JwtApiFunction): the
// same gorilla/mux handler workflowd serves, through aws-lambda-go-api-proxy's
// adapter for the HTTP API's payload format 2.0.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
	"github.com/workflowd/workflowd/app"
)

func main() {
	f := app.FunctionsOrExit("api-function")
	lambda.Start(httpadapter.NewV2(f.API()).ProxyWithContext)
}
