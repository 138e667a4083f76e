// Package pebble is the embedded, durable, pure-Go backend of the store
// contract: one pebble database (github.com/cockroachdb/pebble, no cgo) that
// holds the event log, the current-state views, the command statuses, the
// idempotency records and the change feed that drives the in-process
// projector and dispatcher. It is what `workflowd` runs with no AWS account.
//
// It imports model and store of this project and nothing else of it; the
// code that uses it declares the interfaces it needs (store.Store,
// store.Feed, store.Pinger).
//
// # Durability
//
//   - Append commits with pebble.Sync: the event log is the truth, and an
//     append that returned nil survives a crash. Concurrent appends to
//     different aggregates commit concurrently, and pebble's commit pipeline
//     groups them into one WAL fsync. Appends to one aggregate serialize on a
//     striped (fixed-size) mutex table that makes the read-check-write of the
//     last seq and the eventUUID index atomic.
//   - Views, command statuses, idempotency records, checkpoints and feed trims
//     are written with pebble.NoSync. Pebble replays its WAL as a prefix, so a
//     NoSync write becomes durable with the next synced write (or Close); a
//     crash can only lose a tail of them. A lost view tail is rebuilt by the
//     projector, which resumes from its checkpoint (checkpoints are written
//     after the views they cover, so a surviving checkpoint implies its
//     views survived); a lost command status is written again when the
//     command is redelivered; a lost idempotency record only lets a retried
//     request republish the same deterministic command UUID.
//   - Close flushes the memtables and closes pebble. It is idempotent; every
//     other call after Close returns an error wrapping ErrClosed.
//
// # Change feed
//
// Every append writes, in the same synced batch as its events, a feed entry
// keyed by a global position. Positions are allocated from an in-memory
// counter before the commit (initialized on Open past the largest position
// ever stored or trimmed), so two concurrent commits can land out of
// position order. The store keeps the set of allocated but unfinished
// positions; ReadFeed returns only entries below the lowest of them (the
// watermark), so a reader never skips an entry that commits late. A failed
// commit leaves a gap that readers pass over. Waiting readers wake when the
// watermark moves.
//
// Feed entries are trimmed only below the lowest checkpoint of every
// consumer in Options.FeedConsumers, and only once each of them has saved
// one (at most once a second, from SaveCheckpoint). With no FeedConsumers the
// feed is never trimmed.
//
// # Key layout
//
// All integers are big-endian, so pebble's byte order is numeric order.
//
//	e/<aggregateID>\x00<seq 8B>        event (binary codec, see codec.go)
//	u/<aggregateID>\x00<eventUUID 16B> eventUUID index -> seq 8B
//	f/<pos 8B>                         feed entry: the events of one append
//	m/feedtrim                         highest trimmed feed position 8B
//	c/<consumer>                       feed checkpoint 8B
//	vw/<uuid 16B>                      workflow view: header (seq, createdAt) + JSON
//	ve/<uuid 16B>                      execution view: header (version,
//	                                   createdAt, workflowUUID, status) + JSON
//	iw/<sort 28B>                      workflow listing index (empty value)
//	ie/all/<sort 28B>                  execution listing indexes (empty values)
//	ie/wf/<workflowUUID 16B><sort 28B>
//	ie/st/<status>\x00<sort 28B>
//	ie/wfst/<workflowUUID 16B><status>\x00<sort 28B>
//	cmd/<commandUUID 16B>              command status (JSON)
//	idem/<key>                         idempotency record (JSON)
//
// The 28-byte sort key is the bitwise inverse of createdAt (seconds with the
// sign bit flipped, 8B, then nanoseconds, 4B) followed by the bitwise
// inverse of the UUID, so a forward iterator yields newest first (createdAt
// descending, then UUID descending). PutExecution replaces the index keys of
// the old version in the same batch when status, workflow or createdAt
// change. Aggregate IDs and statuses may not contain a NUL byte.
//
// # Memory
//
// The process's memory stays bounded whatever the data size: an 8 MiB block
// cache by default, 4 MiB memtables, a fixed table of 4096 mutexes, and
// in-memory feed state bounded by the number of appends in flight. With
// Options.Dir empty the database itself lives in memory (for tests).
package pebble
