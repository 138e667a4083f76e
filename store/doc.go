// Package store is the storage contract every backend implements: the event
// log, the current-state views, the command-status view, idempotency records
// and (for the embedded backend) the change feed. It declares the interfaces,
// the sentinel errors and the value types; it imports only model.
//
// The backends sit under the contract: store/storetest holds the
// conformance suite every backend runs, store/pebble is the embedded
// backend; the DynamoDB backend is package table (kept at the top level).
package store
