package local

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Keys. Queue names are restricted to [A-Za-z0-9_-] (see validName), so the
// prefix "<kind>/<queue>/" of one queue is never a prefix of another's.
//
//	m/<queue>/<sentAt><id>   the message: immutable after the publish
//	s/<queue>/<sentAt><id>   its mutable state: receive count, visibleAt, last error
//	d/<queue>/<movedAt><id>  a dead letter: the message and its last state
//
// Timestamps are Unix nanoseconds, big-endian with the sign bit flipped so
// that byte order is time order; the 16-byte UUID breaks ties. Iterating a
// queue's m/ keys therefore gives its messages oldest first.
const (
	kindMessage = 'm'
	kindState   = 's'
	kindDead    = 'd'

	suffixLen = 8 + 16
)

func keyPrefix(kind byte, queue string) []byte {
	k := make([]byte, 0, 3+len(queue)+suffixLen)
	k = append(k, kind, '/')
	k = append(k, queue...)
	return append(k, '/')
}

func key(kind byte, queue string, ts int64, id uuid.UUID) []byte {
	k := keyPrefix(kind, queue)
	k = binary.BigEndian.AppendUint64(k, uint64(ts)^(1<<63))
	return append(k, id[:]...)
}

// prefixEnd is the smallest key greater than every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// parseSuffix reads the timestamp and ID at the end of a key.
func parseSuffix(k []byte) (int64, uuid.UUID, error) {
	if len(k) < suffixLen {
		return 0, uuid.UUID{}, fmt.Errorf("key %q too short", k)
	}
	s := k[len(k)-suffixLen:]
	ts := int64(binary.BigEndian.Uint64(s[:8]) ^ (1 << 63))
	var id uuid.UUID
	copy(id[:], s[8:])
	return ts, id, nil
}

// record is the value of every key. A message record (m/) carries the body,
// the attributes, SentAt and the first VisibleAt (SentAt plus the delay); a
// state record (s/) carries only ReceiveCount, VisibleAt, Leased and
// LastError; a dead letter (d/) carries everything.
type record struct {
	SentAt       int64 // Unix nanoseconds
	VisibleAt    int64 // Unix nanoseconds
	ReceiveCount int
	// Leased: VisibleAt was set by a receive (the visibility timeout of a
	// consumer's lease), not by ChangeVisibility, Nack or a delayed send.
	// After a restart a leased message is visible at once: its consumer
	// lived in the process that stopped.
	Leased     bool
	LastError  string
	Attributes map[string]string
	Body       []byte
}

const recordVersion = 1

var errCorrupt = errors.New("corrupt record")

func (r *record) encode() []byte {
	n := 1 + 1 + 3*binary.MaxVarintLen64 + binary.MaxVarintLen64 + len(r.LastError) + binary.MaxVarintLen64 + len(r.Body)
	for k, v := range r.Attributes {
		n += 2*binary.MaxVarintLen64 + len(k) + len(v)
	}
	b := make([]byte, 0, n)
	b = append(b, recordVersion)
	var flags byte
	if r.Leased {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, r.SentAt)
	b = binary.AppendVarint(b, r.VisibleAt)
	b = binary.AppendUvarint(b, uint64(r.ReceiveCount))
	b = appendString(b, r.LastError)
	b = binary.AppendUvarint(b, uint64(len(r.Attributes)))
	for k, v := range r.Attributes {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	return append(b, r.Body...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decodeRecord parses b. With full, the attributes and a copy of the body are
// filled in too; without, only the header fields (the body is not copied).
func decodeRecord(b []byte, full bool) (record, error) {
	var r record
	d := decoder{b: b}
	if v := d.byte(); v != recordVersion {
		return r, fmt.Errorf("%w: version %d", errCorrupt, v)
	}
	flags := d.byte()
	r.Leased = flags&1 != 0
	r.SentAt = d.varint()
	r.VisibleAt = d.varint()
	r.ReceiveCount = int(d.uvarint())
	r.LastError = d.string()
	if !full {
		return r, d.err
	}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = errCorrupt
	}
	if d.err == nil && n > 0 {
		r.Attributes = make(map[string]string, n)
		for i := uint64(0); i < n && d.err == nil; i++ {
			k := d.string()
			r.Attributes[k] = d.string()
		}
	}
	if d.err != nil {
		return r, d.err
	}
	r.Body = append([]byte(nil), d.b...)
	return r, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errCorrupt
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
