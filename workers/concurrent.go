package workers

// sendLimit bounds the messages the dispatcher and the cleanup send at
// once: enough for the bus to fill its batches, few enough to be polite.
const sendLimit = 16

// streamLimit bounds the aggregates of one stream batch handled at once.
// Each holds a view read and write and a few publishes in flight: 64 keep a
// shard moving at a thousand records a second with calls of 5 ms, and the
// SDK's connections few.
const streamLimit = 64
