package model

import (
	"strconv"

	"github.com/google/uuid"
)

// namespace is the root of every name-based UUID the service derives.
var namespace = uuid.MustParse("6f1d8a4e-2b7c-4c61-9a5e-0d3b8f2c7a10")

// EventUUID returns the deterministic UUID of the i-th event produced by the
// command commandUUID. A redelivered command produces the same eventUUIDs, so
// the event log can refuse the second copy.
func EventUUID(commandUUID uuid.UUID, i int) uuid.UUID {
	return uuid.NewSHA1(commandUUID, []byte("event/"+strconv.Itoa(i)))
}

// DerivedUUID returns a name-based UUID derived from parent and a purpose
// (for example the workflowUUID a creation command creates, or the command
// the dispatcher issues in reaction to an event). Same inputs, same UUID.
func DerivedUUID(parent uuid.UUID, purpose string) uuid.UUID {
	return uuid.NewSHA1(parent, []byte(purpose))
}

// SystemCommandUUID returns the UUID of a command the service issues to an
// execution by itself: kind "begin", "run" (step, attempt), "timer" (step)
// or "timeout". The dispatcher and the cleanup derive the same UUID for the
// same purpose, so whichever copy comes second is a duplicate, and two
// overlapping cleanup runs change nothing twice.
func SystemCommandUUID(execution uuid.UUID, kind string, step, attempt int) uuid.UUID {
	return uuid.NewSHA1(namespace, []byte("execution/"+execution.String()+"/"+kind+"/"+strconv.Itoa(step)+"/"+strconv.Itoa(attempt)))
}
