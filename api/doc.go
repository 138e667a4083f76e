// Package api is the versioned REST API (its contract: docs/api.md and the
// served OpenAPI document, openapi.json) on gorilla/mux. It validates
// requests, publishes commands and answers 202, and serves the
// current-state views, the event history and command statuses. Every error
// is an RFC 9457 problem+json answer produced by one function, writeError.
//
// The domain names aggregates by id; this package alone knows their paths
// (resourcePath builds the links). The same http.Handler serves workflowd
// and, through aws-lambda-go-api-proxy, the SAM deployment's API functions
// behind API Gateway. The package imports model, store (sentinel errors and
// value types) and bus; it declares the interfaces it needs of them.
package api
