package workers

import "github.com/workflowd/workflowd/internal/parallel"

// sendLimit bounds the messages the dispatcher and the cleanup send at
// once: enough for the bus to fill its batches, few enough to be polite.
const sendLimit = 16

// streamLimit bounds the aggregates of one stream batch handled at once.
// Each holds a view read and write and a few publishes in flight: 64 keep a
// shard moving at a thousand records a second with calls of 5 ms, and the
// SDK's connections few.
const streamLimit = 64

// atOnce runs f(0) … f(n-1), at most limit at a time, and returns their
// errors by index.
func atOnce(n, limit int, f func(i int) error) []error { return parallel.Each(n, limit, f) }
