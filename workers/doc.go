// Package workers holds the code that turns commands into events and events
// into views and follow-up work:
//
//   - CommandWorker: the workflow worker and the execution worker. It loads an
//     aggregate's events, decides, and appends with the expected seq; on a seq
//     conflict it reloads and decides again; a command whose events are
//     already in the log is acknowledged as applied.
//   - Projector: folds appended events into the current-state views. It
//     writes no command status: a view remembers its recent commands, and
//     the API derives APPLIED from the view (and, for older commands, the
//     event log); OnFinished wakes the long polls of this process.
//   - Dispatcher: publishes the follow-up commands events call for (the event
//     log is the outbox); their UUIDs derive from the event, so a replay of the
//     feed publishes nothing new in effect.
//   - Cleanup: issues what overdue executions are owed (timeouts, timers
//     and retries too far off for a delayed message, work that seems lost).
//   - Consume and RunFeed: the long-running loops, over a bus queue and over
//     the embedded store's change feed (on AWS a stream reader takes
//     RunFeed's place); HandleSQSEvent and HandleDynamoDBEvent: the same for
//     Lambda's event source mappings.
//
// Handlers take decoded inputs (message bodies, event slices) so that the
// Lambda adapters only decode an AWS event and call them. The package imports
// model, store (for the sentinel errors and the feed contract), bus and
// internal/backoff; it declares the small interfaces it needs of them.
package workers
