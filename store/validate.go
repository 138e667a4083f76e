package store

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
)

// Invalid returns an error wrapping ErrInvalid, in the *Error form every
// backend reports, saying what is wrong.
func Invalid(op, id string, seq int64, format string, args ...any) error {
	return &Error{Op: op, AggregateID: id, Seq: seq, Err: fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))}
}

// ValidateBatch checks the shape every backend requires of an Append batch:
// at least one event, one non-empty aggregate id, consecutive seqs from at
// least 1, and distinct non-nil eventUUIDs. Backends add their own limits.
func ValidateBatch(events []model.Event) error {
	const op = "append"
	if len(events) == 0 {
		return Invalid(op, "", 0, "no events")
	}
	id := events[0].AggregateID
	if id == "" {
		return Invalid(op, id, 0, "empty aggregate id")
	}
	if events[0].Seq < 1 {
		return Invalid(op, id, events[0].Seq, "seq must be at least 1")
	}
	seen := make(map[uuid.UUID]bool, len(events))
	for i, e := range events {
		switch {
		case e.AggregateID != id:
			return Invalid(op, id, e.Seq, "event %d is for aggregate %q", i, e.AggregateID)
		case e.Seq != events[0].Seq+int64(i):
			return Invalid(op, id, e.Seq, "event %d has seq %d, want %d", i, e.Seq, events[0].Seq+int64(i))
		case e.EventUUID == uuid.Nil:
			return Invalid(op, id, e.Seq, "event %d has no eventUUID", i)
		case seen[e.EventUUID]:
			return Invalid(op, id, e.Seq, "eventUUID %s is repeated in the batch", e.EventUUID)
		}
		seen[e.EventUUID] = true
	}
	return nil
}

// ValidateViewPut checks the arguments of a view put: a non-nil id and a
// version that moves on from a non-negative previous one.
func ValidateViewPut(op string, id uuid.UUID, version, prev int64) error {
	switch {
	case id == uuid.Nil:
		return Invalid(op, "", version, "nil uuid")
	case prev < 0:
		return Invalid(op, id.String(), version, "previous version %d is negative", prev)
	case version <= prev:
		return Invalid(op, id.String(), version, "version %d does not move on from %d", version, prev)
	}
	return nil
}
