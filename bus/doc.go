// Package bus is the messaging contract with SNS/SQS semantics that the API
// publishes commands to and the workers consume from: a topic that routes each
// message to a queue by its "target" attribute (as SNS filter policies do), and
// queues with at-least-once delivery, a visibility timeout, receive counts,
// delayed delivery and a dead-letter queue after MaxReceiveCount receives.
//
// No backend promises exactly-once delivery: consumers stay idempotent.
// bus/bustest holds the suite every backend runs; the backends live beside it:
// bus/local (in-process, durable) and bus/snssqs (SNS and SQS).
package bus
