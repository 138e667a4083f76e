package model

import (
	"slices"

	"github.com/google/uuid"
)

// RecentCommandsCap is how many of its last commands a view remembers.
//
// A command is APPLIED once the view of its aggregate shows its events
// (docs/guarantees.md, guarantee 5). Rather than writing that status for every command (a write
// unit each on DynamoDB, as much as the event itself), the views carry the
// UUIDs of the commands whose events they folded last, and a status read
// checks them; for an older command it compares the command's seq in the
// event log with the view's version (see Recent). Eight take 128 bytes of
// a DynamoDB view item.
const RecentCommandsCap = 8

// remember returns recent with id appended, unless id is its last entry
// already (a command's events are consecutive), keeping the last
// RecentCommandsCap. It never changes recent's array, so folded states
// can share it.
func remember(recent []uuid.UUID, id uuid.UUID) []uuid.UUID {
	if n := len(recent); n > 0 && recent[n-1] == id {
		return recent
	}
	keep := recent[max(0, len(recent)-(RecentCommandsCap-1)):]
	out := make([]uuid.UUID, 0, len(keep)+1)
	return append(append(out, keep...), id)
}

// Recent tells from a view's recent commands whether the command id is
// among them (applied) and whether that answer is final (known): it is when
// id is there, or when the list is not full, since then it holds every
// command the aggregate ever applied. When known is false the command may
// be older: the event log has the answer.
func Recent(recent []uuid.UUID, id uuid.UUID) (applied, known bool) {
	if slices.Contains(recent, id) {
		return true, true
	}
	return false, len(recent) < RecentCommandsCap
}
