package model

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"time"

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

// NewCommandUUID returns a new UUID for a command a client sends: a
// version 7 UUID (RFC 9562) whose first 48 bits are now's Unix time in
// milliseconds, the rest random. A command's UUID so tells when it was
// accepted: the stores key its status by that time (a status read finds
// the key from the UUID alone; the reconciliation lists the statuses of a
// window of time; they expire by it), and CommandTime reads it back.
func NewCommandUUID(now time.Time) uuid.UUID {
	var id uuid.UUID
	if _, err := rand.Read(id[6:]); err != nil {
		panic(fmt.Sprintf("model: read random bytes: %v", err)) // crypto/rand does not fail (Go 1.24+)
	}
	return stampV7(id, now)
}

// stampV7 writes t's milliseconds and the version and variant bits into id.
func stampV7(id uuid.UUID, t time.Time) uuid.UUID {
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		id[i] = byte(ms)
		ms >>= 8
	}
	id[6] = id[6]&0x0f | 0x70 // version 7
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	return id
}

// CommandTime returns the time (to the millisecond) a command UUID made by
// NewCommandUUID carries, and false for a UUID of another version (the
// commands of builds before 3 December 2026, and the service's own).
func CommandTime(id uuid.UUID) (time.Time, bool) {
	if id.Version() != 7 || id.Variant() != uuid.RFC4122 {
		return time.Time{}, false
	}
	var ms int64
	for _, b := range id[:6] {
		ms = ms<<8 | int64(b)
	}
	return time.UnixMilli(ms).UTC(), true
}

// CommandUUIDBounds returns the least and the greatest version 7 UUID of
// time t's millisecond: in byte order (and in their text's order) every
// UUID NewCommandUUID makes at t lies between them.
func CommandUUIDBounds(t time.Time) (lo, hi uuid.UUID) {
	for i := 6; i < 16; i++ {
		hi[i] = 0xff
	}
	return stampV7(lo, t), stampV7(hi, t)
}
