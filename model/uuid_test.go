package model

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"
)

// A command UUID carries its time, sorts by it, and lies within its
// millisecond's bounds; other UUIDs carry none.
func TestCommandUUIDTime(t *testing.T) {
	base := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	prev := uuid.Nil
	for i := range 1000 {
		at := base.Add(time.Duration(i) * 1500 * time.Microsecond)
		id := NewCommandUUID(at)
		if id.Version() != 7 || id.Variant() != uuid.RFC4122 {
			t.Fatalf("%s: version %d variant %v, want 7 RFC4122", id, id.Version(), id.Variant())
		}
		got, ok := CommandTime(id)
		if !ok || !got.Equal(at.Truncate(time.Millisecond)) {
			t.Fatalf("CommandTime(%s) = %v %v, want %v", id, got, ok, at.Truncate(time.Millisecond))
		}
		lo, hi := CommandUUIDBounds(at)
		if bytes.Compare(lo[:], id[:]) > 0 || bytes.Compare(id[:], hi[:]) > 0 || lo.String() > id.String() || id.String() > hi.String() {
			t.Fatalf("%s outside its millisecond's bounds [%s, %s]", id, lo, hi)
		}
		if i > 0 && at.Truncate(time.Millisecond).After(mustTime(t, prev)) && id.String() <= prev.String() {
			t.Fatalf("%s (at %v) sorts before %s, made earlier", id, at, prev)
		}
		prev = id
	}
	for _, id := range []uuid.UUID{uuid.New(), SystemCommandUUID(uuid.New(), "run", 1, 1), uuid.Nil} {
		if at, ok := CommandTime(id); ok {
			t.Errorf("CommandTime(%s) = %v, want none", id, at)
		}
	}
}

func mustTime(t *testing.T, id uuid.UUID) time.Time {
	t.Helper()
	at, ok := CommandTime(id)
	if !ok {
		t.Fatalf("no time in %s", id)
	}
	return at
}
