package model

import (
	"slices"

	"github.com/google/uuid"
)

// RecentCommandsCap is how many of its last client commands a view
// remembers.
//
// A command is APPLIED once the view of its aggregate shows its events
// (docs/guarantees.md, guarantee 5). Rather than writing that status for every
// command (a write unit each on DynamoDB, as much as the event itself), the
// views carry the UUIDs of the client commands whose events they folded
// last, and a status read checks them. A command pushed out of the list is
// marked APPLIED in its status by the projector (Evicted), so a status read
// takes one read of the status and one of the view, whatever the length of
// the aggregate's history. Commands the service issues itself
// (SystemCommandUUID) have no status and are not remembered: a chain of
// http steps does not push its client commands out. Eight take 128 bytes of
// a DynamoDB view item.
const RecentCommandsCap = 8

// IsClientCommand reports whether id is the UUID of a command a client sent
// (random or time-ordered, version 4 or 7) rather than one the service
// derived (SystemCommandUUID, version 5).
func IsClientCommand(id uuid.UUID) bool {
	return id != uuid.Nil && id.Version() != 5
}

// remember returns recent with id appended, unless id is its last entry
// already (a command's events are consecutive) or a system command,
// keeping the last RecentCommandsCap. It never changes recent's array, so
// folded states can share it.
func remember(recent []uuid.UUID, id uuid.UUID) []uuid.UUID {
	if n := len(recent); n > 0 && recent[n-1] == id || !IsClientCommand(id) {
		return recent
	}
	keep := recent[max(0, len(recent)-(RecentCommandsCap-1)):]
	out := make([]uuid.UUID, 0, len(keep)+1)
	return append(append(out, keep...), id)
}

// Recent tells from a view's recent commands whether the client command
// id is among them (applied) and whether that answer is final (known): it
// is when id is there, or when the list is not full, since then it holds
// every client command the aggregate ever applied. When known is false
// the command is either not applied yet or was pushed out of the list, and
// then its status says APPLIED (Evicted).
func Recent(recent []uuid.UUID, id uuid.UUID) (applied, known bool) {
	if slices.Contains(recent, id) {
		return true, true
	}
	return false, len(recent) < RecentCommandsCap
}

// Evicted returns the client commands a fold pushed out of a view's recent
// commands: those of before (the view's list before the fold) or of the
// folded events that after (the list after it) does not hold, in the
// order they were applied. The projector marks them APPLIED once the view
// that folded them is stored.
func Evicted(before []uuid.UUID, folded []Event, after []uuid.UUID) []uuid.UUID {
	var out []uuid.UUID
	add := func(id uuid.UUID) {
		if IsClientCommand(id) && !slices.Contains(after, id) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	for _, id := range before {
		add(id)
	}
	for _, e := range folded {
		add(e.CommandUUID)
	}
	return out
}
