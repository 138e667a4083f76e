// Package workers holds the code that turns commands into events and events
// into views and follow-up work:
//
//   - CommandWorker: the workflow worker and the execution worker. It loads an
//     aggregate's events, decides, and appends with the expected seq; on a seq
//     conflict it reloads and decides again; a command whose events are
//     already in the log is acknowledged as applied.
//   - Projector: folds appended events into the current-state views and marks
//     their commands APPLIED once the views show them.
//   - Dispatcher: publishes the follow-up commands events call for (the event
//     log is the outbox); their UUIDs derive from the event, so a replay of the
//     feed publishes nothing new in effect.
//   - Consume and RunFeed: the long-running loops of the embedded runtime,
//     over a bus queue and over the store's change feed.
//
// Handlers take decoded inputs (message bodies, event slices) so that the
// Lambda adapters only decode an AWS event and call them. The package imports
// model, store (for the sentinel errors and the feed contract) and bus; it
// declares the small interfaces it needs of them.
package workers
