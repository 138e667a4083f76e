// Package model is the domain of the workflow service: workflows (versioned
// step lists), executions, the commands that ask for change, the events that
// record it, a pure Decide (state, command → events or a rejection) and a pure
// Apply (state, event → state).
//
// It imports no package of this project. Everything here is deterministic:
// the same state and command always give the same events with the same
// eventUUIDs, which is what makes redelivered commands harmless.
package model
