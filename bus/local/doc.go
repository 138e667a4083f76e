// Package local is the in-process bus of the embedded runtime: a topic
// that routes each message by its "target" attribute to one of its queues,
// and queues with SQS semantics (at-least-once delivery, long polling, a
// visibility timeout, receive counts, delayed sends, a dead-letter queue per
// queue after MaxReceiveCount receives, redrive). It implements
// bus.Publisher, bus.Queue and bus.DeadLetters and passes bustest.Run with
// every feature.
//
// Storage is a pebble database of its own (a directory, or memory for
// tests). Durability, chosen per operation:
//
//   - Publish, Send and Redrive return only after a synced write: once they
//     return, a crash (kill -9, power loss) loses nothing. Concurrent callers
//     share fsyncs through pebble's commit pipeline; no lock of ours is held
//     across the sync.
//   - Receive (the receive count, the lease), ChangeVisibility, Nack, Delete
//     and the move to the dead-letter queue are written without a sync. A
//     crash can undo the last of them: a deleted message comes back once, a
//     message is received once more than its count says, a dead letter is
//     back in its queue. Consumers are idempotent, so this costs a
//     redelivery, never a lost or doubled effect.
//
// Memory: each undeleted message has an index entry of about a hundred bytes
// (no body: Receive reads it from pebble), in one heap per queue ordered by
// the time it becomes visible, plus a map of current receipt handles.
// Open rebuilds the index by scanning the database. After a restart a
// message that was in flight is visible at once (its consumer was in the
// process that stopped); one deferred by ChangeVisibility or Nack, or sent
// with a delay, becomes visible when due.
//
// It imports bus and no other package of this project.
package local
