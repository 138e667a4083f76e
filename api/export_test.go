package api

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// OpenAPIDocument returns the OpenAPI 3 document served at /v1/openapi.json.
func OpenAPIDocument() []byte { return openAPIDocument }

// StreamTimings are the clocks of execution streams a test may shorten;
// a zero field keeps its default.
type StreamTimings struct {
	Heartbeat, Poll, SafetyPoll, Lifetime time.Duration
}

// SetStreamTimings changes the clocks of execution streams for the rest of
// tb and puts them back after it. Call it before the test starts its server
// (so that the server has stopped when they are put back), and not from
// parallel tests.
func SetStreamTimings(tb testing.TB, st StreamTimings) {
	tb.Helper()
	old := streamClock
	tb.Cleanup(func() { streamClock = old })
	set := func(d *time.Duration, v time.Duration) {
		if v > 0 {
			*d = v
		}
	}
	set(&streamClock.heartbeat, st.Heartbeat)
	set(&streamClock.poll, st.Poll)
	set(&streamClock.safetyPoll, st.SafetyPoll)
	set(&streamClock.lifetime, st.Lifetime)
}

// Subscribe is subscribe, for the tests of Changes.
func (c *Changes) Subscribe(id uuid.UUID) (<-chan struct{}, func()) { return c.subscribe(id) }

// Listeners returns how many streams listen to id.
func (c *Changes) Listeners(id uuid.UUID) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.subs[id])
}
