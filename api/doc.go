// Package api is the versioned REST API (DESIGN.md §3) on gorilla/mux. It
// validates requests, publishes commands and answers 202, and serves the
// current-state views, the event history and command statuses. Every error
// is an RFC 9457 problem+json answer produced by one function, writeError.
//
// The same http.Handler serves workflowd and (later) the API Gateway
// adapter. The package imports model, store (sentinel errors and value
// types) and bus; it declares the interfaces it needs of them.
package api
