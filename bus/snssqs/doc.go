// Package snssqs is the production bus: the bus contract (package bus) on
// one SNS topic that fans out by filter policy on the "target" message
// attribute to SQS queues ("workflows", "executions"), each with a
// dead-letter queue. Bus implements bus.Publisher and bus.DeadLetters, and
// Queue returns a *Queue (bus.Queue plus Nack) per queue. Setup creates the
// resources for `workflowd init` and tests; Counts feeds the cost benchmark.
//
// What it guarantees, as declared to the conformance suite (bustest
// Features, checked against the fauxqs emulator):
//
//   - FilterRouting: a published message reaches, raw (body unchanged,
//     attributes kept), exactly the queue its target names. SNS would drop a
//     message no subscription matches, so Publish refuses an unknown target
//     with bus.ErrNoRoute before sending (UnroutedDropped is false).
//   - At-least-once delivery, long polling, Redelivery after the visibility
//     timeout with a higher ReceiveCount, DelayedDelivery (Send's delay, up to
//     15 minutes), and DeadLetterQueue: SQS moves a message to the
//     dead-letter queue on the receive after its RedrivePolicy's
//     maxReceiveCount; ListDeadLetters lists it and Redrive sends it back.
//   - Published and sent messages are durable once the call returns (SNS and
//     SQS store them redundantly).
//
// What it does not guarantee:
//
//   - Exactly-once or ordered delivery: SQS standard queues deliver at least
//     once, occasionally twice, in roughly the order sent. Consumers stay
//     idempotent.
//   - Stale receipt handles are not rejected (StaleReceiptRejected is
//     false): SQS accepts a DeleteMessage with the handle of an earlier
//     receive, or of a deleted message, and does nothing. A stale
//     ChangeVisibility does fail, with bus.ErrReceiptInvalid
//     (MessageNotInflight).
//   - Durable is not declared: that flag is about closing and reopening a
//     backend on the same storage, which the emulator (in memory) cannot
//     do. On AWS the messages live in SQS, not in the process.
//   - The failure reason of Nack does not travel with the message (SQS has
//     no field for it): Nack logs it, at WARN on the last receive before the
//     dead-letter queue.
//
// Differences from the in-process bus (package bus/local) a user may notice:
//
//   - SQS has no true peek. ListDeadLetters receives the dead letters and
//     makes them visible again: each listing counts as a receive on the
//     dead-letter queue (their ApproximateReceiveCount grows; the count SQS
//     reports for a dead letter includes the receives that killed it, plus
//     one for the move on fauxqs), and during the listing, about a second,
//     other listings and Redrive do not see them.
//   - Redrive sends a new message: new ID, new SentAt, receive count 0.
//   - Times are whole seconds (delays, waits and visibility changes are
//     rounded up). The SDK omits a zero DelaySeconds, WaitTimeSeconds and a
//     zero ReceiveMessage VisibilityTimeout, so Send(…, 0) and Receive(…, 0)
//     get the queue's defaults: Setup makes both 0.
//   - bus.MaxMessageSize covers the body and the attributes together (names,
//     the type "String", values), as SQS counts them; a body must be
//     non-empty UTF-8 text of the characters SQS accepts.
//   - Only String (and Number) message attributes are returned.
//
// Errors from the SDK are translated with errors.As, never by message:
// *types.QueueDoesNotExist to bus.ErrUnknownQueue,
// *types.ReceiptHandleIsInvalid and *types.MessageNotInflight to
// bus.ErrReceiptInvalid, *snstypes.NotFoundException (no such topic) to
// bus.ErrNoRoute; the SDK error stays in the chain.
//
// It imports bus, the AWS SDK and the standard library.
package snssqs
