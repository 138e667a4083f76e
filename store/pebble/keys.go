package pebble

import (
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// Key prefixes (see the key layout in doc.go).
const (
	pEvent      = "e/"
	pEventUUID  = "u/"
	pFeed       = "f/"
	pCheckpoint = "c/"
	pWorkflow   = "vw/"
	pExecution  = "ve/"
	pIdxWf      = "iw/"
	pIdxExAll   = "ie/all/"
	pIdxExWf    = "ie/wf/"
	pIdxExSt    = "ie/st/"
	pIdxExWfSt  = "ie/wfst/"
	pIdxDue     = "id/"
	pIdxExpire  = "ix/"
	pCommand    = "cmd/"
	pIdem       = "idem/"
	pIdxIdem    = "ii/"
)

var keyFeedTrim = []byte("m/feedtrim")

// sortKeyLen is the length of the newest-first listing suffix.
const sortKeyLen = 12 + 16

func be64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

// eventPrefix is "e/<aggregateID>\x00"; eventKey appends the seq.
func eventPrefix(aggregateID string) []byte {
	k := make([]byte, 0, len(pEvent)+len(aggregateID)+1+8)
	k = append(k, pEvent...)
	k = append(k, aggregateID...)
	return append(k, 0)
}

func eventKey(aggregateID string, seq int64) []byte {
	return append(eventPrefix(aggregateID), be64(uint64(seq))...)
}

func eventUUIDKey(aggregateID string, id uuid.UUID) []byte {
	k := make([]byte, 0, len(pEventUUID)+len(aggregateID)+1+16)
	k = append(k, pEventUUID...)
	k = append(k, aggregateID...)
	k = append(k, 0)
	return append(k, id[:]...)
}

func feedKey(pos uint64) []byte { return append([]byte(pFeed), be64(pos)...) }

func checkpointKey(consumer string) []byte { return append([]byte(pCheckpoint), consumer...) }

func uuidKey(prefix string, id uuid.UUID) []byte {
	return append([]byte(prefix), id[:]...)
}

func idemKey(key string) []byte { return append([]byte(pIdem), key...) }

// idemExpiryKey is an idempotency record's key in the expiry index: its
// ExpiresAt, then its key.
func idemExpiryKey(expiresAt time.Time, key string) []byte {
	k := dueKey(expiresAt)
	return cat([]byte(pIdxIdem), k[:], []byte(key))
}

// timeSortKey encodes t so that byte order is time order, descending:
// seconds since the epoch with the sign bit flipped, then nanoseconds, both
// inverted. It covers every time.Time, before 1970 included.
func timeSortKey(t time.Time) [12]byte {
	var b [12]byte
	binary.BigEndian.PutUint64(b[0:8], ^(uint64(t.Unix()) ^ 1<<63))
	binary.BigEndian.PutUint32(b[8:12], ^uint32(t.Nanosecond()))
	return b
}

// sortKey is the newest-first listing suffix: inverted time, inverted UUID.
func sortKey(createdAt time.Time, id uuid.UUID) []byte {
	return sortKeyOf(timeSortKey(createdAt), id)
}

func sortKeyOf(tk [12]byte, id uuid.UUID) []byte {
	b := make([]byte, 0, sortKeyLen)
	b = append(b, tk[:]...)
	for _, c := range id {
		b = append(b, ^c)
	}
	return b
}

// idFromSortKey recovers the UUID from a key ending in a sort key.
func idFromSortKey(key []byte) (uuid.UUID, bool) {
	var id uuid.UUID
	if len(key) < sortKeyLen {
		return id, false
	}
	for i, c := range key[len(key)-16:] {
		id[i] = ^c
	}
	return id, true
}

func cat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// workflowIndexPrefix returns the listing prefix of workflows.
func workflowIndexPrefix() []byte { return []byte(pIdxWf) }

// executionIndexPrefix returns the listing prefix that serves a query with
// these filters (uuid.Nil and "" mean any).
func executionIndexPrefix(wf uuid.UUID, status string) []byte {
	switch {
	case wf != uuid.Nil && status != "":
		return cat([]byte(pIdxExWfSt), wf[:], []byte(status), []byte{0})
	case wf != uuid.Nil:
		return cat([]byte(pIdxExWf), wf[:])
	case status != "":
		return cat([]byte(pIdxExSt), []byte(status), []byte{0})
	}
	return []byte(pIdxExAll)
}

// executionIndexKeys returns the index keys of one execution view: the four
// listing keys, and its due-index key when it is due some time.
func executionIndexKeys(h execHeader, id uuid.UUID) [][]byte {
	sk := sortKeyOf(h.created, id)
	st := append([]byte(h.status), 0)
	keys := [][]byte{
		cat([]byte(pIdxExAll), sk),
		cat([]byte(pIdxExWf), h.workflowUUID[:], sk),
		cat([]byte(pIdxExSt), st, sk),
		cat([]byte(pIdxExWfSt), h.workflowUUID[:], st, sk),
	}
	if h.due != nil {
		keys = append(keys, dueIndexKey(*h.due, id))
	}
	return keys
}

// dueKey encodes t so that byte order is time order, ascending.
func dueKey(t time.Time) [12]byte {
	var b [12]byte
	binary.BigEndian.PutUint64(b[0:8], uint64(t.Unix())^1<<63)
	binary.BigEndian.PutUint32(b[8:12], uint32(t.Nanosecond()))
	return b
}

// dueTime is the inverse of dueKey.
func dueTime(k [12]byte) time.Time {
	return time.Unix(int64(binary.BigEndian.Uint64(k[0:8])^1<<63), int64(binary.BigEndian.Uint32(k[8:12]))).UTC()
}

// dueIndexKey is an execution's key in the due index: its due time, then
// its UUID.
func dueIndexKey(due [12]byte, id uuid.UUID) []byte {
	return cat([]byte(pIdxDue), due[:], id[:])
}

// prefixEnd returns the smallest key greater than every key with prefix p
// (nil if there is none).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
