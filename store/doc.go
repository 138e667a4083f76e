// Package store is the storage contract every backend implements: the event
// log, the current-state views, the command-status view, idempotency records
// and (for the embedded backend) the change feed. It declares the interfaces,
// the sentinel errors and the value types; it imports only model.
//
// storetest holds the conformance suite that every backend runs. The embedded
// (pebble) backend lives in package embedded, the DynamoDB one in table.
package store
