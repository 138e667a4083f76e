package pebble

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/workflowd/workflowd/model"
)

// Value formats. The first byte of every binary value is its format, so a
// later version can change the encoding and still read old values.
const (
	fmtEvent     byte = 1 // one event
	fmtFeed      byte = 1 // the events of one append
	fmtWorkflow  byte = 1 // header + JSON
	fmtExecution byte = 2 // header + JSON; 1: the header without its due time
)

var errCorrupt = errors.New("corrupt value")

// Events use a binary codec, not JSON: Data must come back byte for byte
// (encoding/json would compact it and reject invalid JSON) and nil must stay
// nil.
//
//	uvarint len, aggregateID | uvarint seq | eventUUID 16B | commandUUID 16B |
//	uvarint len, occurredAt (time.MarshalBinary) | uvarint len, type |
//	0 (nil data) or 1, uvarint len, data
func appendEvent(b []byte, e model.Event) ([]byte, error) {
	t, err := e.OccurredAt.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("occurredAt: %w", err)
	}
	b = appendBytes(b, []byte(e.AggregateID))
	b = binary.AppendUvarint(b, uint64(e.Seq))
	b = append(b, e.EventUUID[:]...)
	b = append(b, e.CommandUUID[:]...)
	b = appendBytes(b, t)
	b = appendBytes(b, []byte(e.Type))
	if e.Data == nil {
		return append(b, 0), nil
	}
	b = append(b, 1)
	return appendBytes(b, e.Data), nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func encodeEvent(e model.Event) ([]byte, error) {
	return appendEvent([]byte{fmtEvent}, e)
}

func encodeFeedEntry(events []model.Event) ([]byte, error) {
	b := []byte{fmtFeed}
	b = binary.AppendUvarint(b, uint64(len(events)))
	for _, e := range events {
		var err error
		if b, err = appendEvent(b, e); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// decoder reads the binary codec; the first problem sticks in err. Every
// slice it returns is a copy.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) fixed(n int) []byte {
	if len(d.b) < n {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u64() uint64 {
	if b := d.fixed(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	return d.fixed(int(n))
}

func (d *decoder) uuid() uuid.UUID {
	var id uuid.UUID
	copy(id[:], d.fixed(16))
	return id
}

func (d *decoder) event() model.Event {
	var e model.Event
	e.AggregateID = string(d.bytes())
	e.Seq = int64(d.uvarint())
	e.EventUUID = d.uuid()
	e.CommandUUID = d.uuid()
	if t := d.bytes(); d.err == nil {
		if err := e.OccurredAt.UnmarshalBinary(t); err != nil {
			d.fail()
		}
	}
	e.Type = string(d.bytes())
	if d.byte() == 1 {
		e.Data = append(json.RawMessage{}, d.bytes()...)
	}
	return e
}

func decodeEvent(v []byte) (model.Event, error) {
	d := decoder{b: v}
	if d.byte() != fmtEvent {
		d.fail()
	}
	e := d.event()
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return e, d.err
}

func decodeFeedEntry(v []byte) ([]model.Event, error) {
	d := decoder{b: v}
	if d.byte() != fmtFeed {
		d.fail()
	}
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
	}
	var out []model.Event
	if d.err == nil {
		out = make([]model.Event, 0, n)
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		out = append(out, d.event())
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	return out, d.err
}

// Views are stored as a small binary header, which holds what the version
// check and the listing-index maintenance need, followed by the view's JSON.
//
//	workflow:  fmt | seq 8B | createdAt sort key 12B | JSON (Seq is json:"-")
//	execution: fmt | version 8B | createdAt sort key 12B | workflowUUID 16B |
//	           uvarint len, status | 0, or 1 and the due time's key 12B | JSON
//
// (Format 1 had no due byte: such values decode as not due.)
//
// The JSON adds the RecentCommands the API does not show (storedWorkflow).
type wfHeader struct {
	seq     int64
	created [12]byte
}

type execHeader struct {
	version      int64
	created      [12]byte
	workflowUUID uuid.UUID
	status       string
	due          *[12]byte // model.Execution.Due as dueKey, nil if none
}

// storedWorkflow and storedExecution are a view's JSON as the store keeps
// it: the view's fields and its RecentCommands, which are json:"-" in the
// model so that the API does not show them. Views written before they
// existed decode with none.
type storedWorkflow struct {
	model.Workflow
	Recent []uuid.UUID `json:"recentCommands,omitempty"`
}

type storedExecution struct {
	model.Execution
	Recent []uuid.UUID `json:"recentCommands,omitempty"`
}

func encodeWorkflow(w model.Workflow) ([]byte, error) {
	j, err := json.Marshal(storedWorkflow{w, w.RecentCommands})
	if err != nil {
		return nil, err
	}
	tk := timeSortKey(w.CreatedAt)
	b := make([]byte, 0, 1+8+12+len(j))
	b = append(b, fmtWorkflow)
	b = append(b, be64(uint64(w.Seq))...)
	b = append(b, tk[:]...)
	return append(b, j...), nil
}

func decodeWorkflowHeader(v []byte) (wfHeader, []byte, error) {
	d := decoder{b: v}
	if d.byte() != fmtWorkflow {
		d.fail()
	}
	var h wfHeader
	h.seq = int64(d.u64())
	copy(h.created[:], d.fixed(12))
	return h, d.b, d.err
}

func decodeWorkflow(v []byte) (model.Workflow, error) {
	h, j, err := decodeWorkflowHeader(v)
	if err != nil {
		return model.Workflow{}, err
	}
	var sw storedWorkflow
	if err := json.Unmarshal(j, &sw); err != nil {
		return model.Workflow{}, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	w := sw.Workflow
	w.Seq, w.RecentCommands = h.seq, sw.Recent
	return w, nil
}

func newExecHeader(x model.Execution) execHeader {
	h := execHeader{
		version:      x.Version,
		created:      timeSortKey(x.CreatedAt),
		workflowUUID: x.WorkflowUUID,
		status:       x.Status,
	}
	if !x.Due.IsZero() {
		k := dueKey(x.Due)
		h.due = &k
	}
	return h
}

func encodeExecution(x model.Execution) ([]byte, execHeader, error) {
	j, err := json.Marshal(storedExecution{x, x.RecentCommands})
	if err != nil {
		return nil, execHeader{}, err
	}
	h := newExecHeader(x)
	b := make([]byte, 0, 1+8+12+16+1+len(h.status)+13+len(j))
	b = append(b, fmtExecution)
	b = append(b, be64(uint64(h.version))...)
	b = append(b, h.created[:]...)
	b = append(b, h.workflowUUID[:]...)
	b = appendBytes(b, []byte(h.status))
	if h.due == nil {
		b = append(b, 0)
	} else {
		b = append(append(b, 1), h.due[:]...)
	}
	return append(b, j...), h, nil
}

func decodeExecutionHeader(v []byte) (execHeader, []byte, error) {
	d := decoder{b: v}
	format := d.byte()
	if format != fmtExecution && format != 1 {
		d.fail()
	}
	var h execHeader
	h.version = int64(d.u64())
	copy(h.created[:], d.fixed(12))
	h.workflowUUID = d.uuid()
	h.status = string(d.bytes())
	if format == fmtExecution && d.byte() == 1 {
		var k [12]byte
		copy(k[:], d.fixed(12))
		h.due = &k
	}
	return h, d.b, d.err
}

func decodeExecution(v []byte) (model.Execution, error) {
	h, j, err := decodeExecutionHeader(v)
	if err != nil {
		return model.Execution{}, err
	}
	var sx storedExecution
	if err := json.Unmarshal(j, &sx); err != nil {
		return model.Execution{}, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	x := sx.Execution
	x.Version, x.RecentCommands = h.version, sx.Recent
	if h.due != nil {
		x.Due = dueTime(*h.due)
	}
	// encoding/json turns a nil RawMessage into null and back into the
	// bytes "null"; give the caller back the nil it stored.
	x.Input = unNull(x.Input)
	x.Output = unNull(x.Output)
	for i := range x.Steps {
		x.Steps[i].Output = unNull(x.Steps[i].Output)
	}
	return x, nil
}

func unNull(r json.RawMessage) json.RawMessage {
	if string(r) == "null" {
		return nil
	}
	return r
}

// The commands' and idempotency records' values are plain JSON.
func encodeJSON(v any) ([]byte, error) { return json.Marshal(v) }

func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return nil
}

// expired reports whether a record expiring at expiresAt has expired at
// now; the zero time never expires.
func expired(expiresAt, now time.Time) bool {
	return !expiresAt.IsZero() && !now.Before(expiresAt)
}
