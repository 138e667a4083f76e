package table

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// Attribute names of the events table.
const (
	attrAggregateID = "aggregateId" // partition key (S)
	attrSeq         = "seq"         // sort key (N): the first seq of the append
	attrLastSeq     = "lastSeq"     // N: the last seq of the append
	attrCommandUUID = "commandUUID" // S: the first event's commandUUID
	attrOccurredAt  = "occurredAt"  // S: the first event's occurredAt (RFC 3339)
	attrEventUUIDs  = "eventUUIDs"  // SS: every eventUUID of the append
	attrEvents      = "events"      // B: the events, JSON (see encodeEvents)
)

// Limits DynamoDB puts on what Append and Load accept.
const (
	maxKeyBytes  = 2048       // a partition key value, in UTF-8 bytes
	maxItemBytes = 400 * 1024 // an item
)

// wireEvent is one element of an item's events attribute: the event's
// envelope without what the item already says (aggregateId; seq, which is
// the item's seq plus the index; commandUUID and occurredAt when they equal
// the item's).
type wireEvent struct {
	EventUUID   uuid.UUID       `json:"eventUUID"`
	Type        string          `json:"type"`
	Data        json.RawMessage `json:"data,omitempty"`
	CommandUUID *uuid.UUID      `json:"commandUUID,omitempty"`
	OccurredAt  string          `json:"occurredAt,omitempty"`
}

// EventItem is an item of the events table in plain values: what a
// DynamoDB stream record's NewImage holds, so that a stream consumer can
// fill one from whatever attribute type its event library gives it (the
// attribute names are in the dynamodbav tags).
type EventItem struct {
	AggregateID string   `dynamodbav:"aggregateId"`
	Seq         int64    `dynamodbav:"seq"`
	LastSeq     int64    `dynamodbav:"lastSeq"`
	CommandUUID string   `dynamodbav:"commandUUID"`
	OccurredAt  string   `dynamodbav:"occurredAt"`
	EventUUIDs  []string `dynamodbav:"eventUUIDs,stringset"`
	Events      []byte   `dynamodbav:"events"`
}

// Decode returns the item's events in seq order; they share no memory with
// it. It returns an error for an item this package did not write.
func (it EventItem) Decode() ([]model.Event, error) {
	var wire []wireEvent
	if err := json.Unmarshal(it.Events, &wire); err != nil {
		return nil, corrupt("events of %s seq %d: %v", it.AggregateID, it.Seq, err)
	}
	if len(wire) == 0 || it.Seq < 1 || it.LastSeq != it.Seq+int64(len(wire))-1 {
		return nil, corrupt("events of %s seq %d: %d events for seqs %d..%d", it.AggregateID, it.Seq, len(wire), it.Seq, it.LastSeq)
	}
	cmd, err := uuid.Parse(it.CommandUUID)
	if err != nil {
		return nil, corrupt("commandUUID of %s seq %d: %v", it.AggregateID, it.Seq, err)
	}
	out := make([]model.Event, len(wire))
	for i, w := range wire {
		e := model.Event{
			AggregateID: it.AggregateID,
			Seq:         it.Seq + int64(i),
			EventUUID:   w.EventUUID,
			Type:        w.Type,
			Data:        w.Data,
			CommandUUID: cmd,
		}
		if w.CommandUUID != nil {
			e.CommandUUID = *w.CommandUUID
		}
		at := it.OccurredAt
		if w.OccurredAt != "" {
			at = w.OccurredAt
		}
		if err := e.OccurredAt.UnmarshalText([]byte(at)); err != nil {
			return nil, corrupt("occurredAt of %s seq %d: %v", it.AggregateID, e.Seq, err)
		}
		out[i] = e
	}
	return out, nil
}

// EventsFromItem decodes an item of the events table (for example a stream
// record's NewImage) into its events, in seq order.
func EventsFromItem(item map[string]types.AttributeValue) ([]model.Event, error) {
	it, err := eventItemFrom(item)
	if err != nil {
		return nil, err
	}
	return it.Decode()
}

func eventItemFrom(item map[string]types.AttributeValue) (EventItem, error) {
	var it EventItem
	var ok [6]bool
	it.AggregateID, ok[0] = getS(item, attrAggregateID)
	it.Seq, ok[1] = getN(item, attrSeq)
	it.LastSeq, ok[2] = getN(item, attrLastSeq)
	it.CommandUUID, ok[3] = getS(item, attrCommandUUID)
	it.OccurredAt, ok[4] = getS(item, attrOccurredAt)
	it.Events, ok[5] = getB(item, attrEvents)
	it.EventUUIDs = getSS(item, attrEventUUIDs)
	if slices.Contains(ok[:], false) {
		return it, corrupt("event item %s seq %d lacks an attribute", it.AggregateID, it.Seq)
	}
	return it, nil
}

// encodeEvents builds the item of one append. The events attribute is a
// JSON array written by hand so that each event's data is kept byte for
// byte (encoding/json would compact it).
// ItemOf returns the events table's item of one append (what Append puts):
// for tools and tests that build stream records.
func ItemOf(events []model.Event) (map[string]types.AttributeValue, error) {
	if err := validateBatch(events); err != nil {
		return nil, err
	}
	return encodeEvents(events)
}

func encodeEvents(events []model.Event) (map[string]types.AttributeValue, error) {
	first := events[0]
	firstAt, err := first.OccurredAt.MarshalText()
	if err != nil {
		return nil, fmt.Errorf("event seq %d: occurredAt: %v", first.Seq, err)
	}
	buf := make([]byte, 0, 160*len(events))
	ids := make([]string, len(events))
	buf = append(buf, '[')
	for i, e := range events {
		ids[i] = e.EventUUID.String()
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"eventUUID":"`...)
		buf = append(buf, ids[i]...)
		buf = append(buf, `","type":`...)
		t, err := json.Marshal(e.Type)
		if err != nil {
			return nil, fmt.Errorf("event seq %d: type: %v", e.Seq, err)
		}
		buf = append(buf, t...)
		if len(e.Data) > 0 {
			buf = append(buf, `,"data":`...)
			buf = append(buf, e.Data...)
		}
		if e.CommandUUID != first.CommandUUID {
			buf = append(buf, `,"commandUUID":"`...)
			buf = append(buf, e.CommandUUID.String()...)
			buf = append(buf, '"')
		}
		at, err := e.OccurredAt.MarshalText()
		if err != nil {
			return nil, fmt.Errorf("event seq %d: occurredAt: %v", e.Seq, err)
		}
		if string(at) != string(firstAt) {
			buf = append(buf, `,"occurredAt":"`...)
			buf = append(buf, at...)
			buf = append(buf, '"')
		}
		buf = append(buf, '}')
	}
	buf = append(buf, ']')
	last := events[len(events)-1].Seq
	return map[string]types.AttributeValue{
		attrAggregateID: attrS(first.AggregateID),
		attrSeq:         attrN(first.Seq),
		attrLastSeq:     attrN(last),
		attrCommandUUID: attrS(first.CommandUUID.String()),
		attrOccurredAt:  attrS(string(firstAt)),
		attrEventUUIDs:  &types.AttributeValueMemberSS{Value: ids},
		attrEvents:      attrB(buf),
	}, nil
}

// Append stores the events of one command as one item with one
// conditional PutItem (condition: no item has the batch's first seq). It
// returns an error wrapping store.ErrDuplicate when an item with that first
// seq exists and holds one of the eventUUIDs (a repeated append),
// store.ErrConflict when it holds others (another writer took the seq), and
// store.ErrInvalid for a malformed batch: empty, mixed or bad aggregate ids,
// a seq below 1, non-consecutive seqs, a repeated or nil eventUUID, a type
// that is not UTF-8, data that is not one JSON value without surrounding
// white space, an occurredAt outside years 0-9999, or an item over 400 KB.
// Nothing is written when it returns an error.
//
// Without a read it cannot see an eventUUID of the log repeated at a new
// seq, a first seq inside an earlier append's batch, or a first seq past
// the aggregate's next one (a gap): callers append at the next seq of a
// strongly consistent Load and look for their command in it, as the
// workers do (docs/cost.md, "One item per append").
func (s *Store) Append(ctx context.Context, events []model.Event) error {
	const op = "append"
	var id string
	if len(events) > 0 {
		id = events[0].AggregateID
	}
	if err := s.enter(ctx, op, id); err != nil {
		return err
	}
	if err := validateBatch(events); err != nil {
		return err
	}
	first := events[0].Seq
	item, err := encodeEvents(events)
	if err != nil {
		return invalid(op, id, first, "%v", err)
	}
	size := itemSize(item)
	if size > maxItemBytes {
		return invalid(op, id, first, "the append's item is %d bytes, DynamoDB's limit is %d", size, maxItemBytes)
	}
	out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.cfg.EventsTable),
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(#seq)"),
		ExpressionAttributeNames:            map[string]string{"#seq": attrSeq},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
	})
	if old, ok := conditionFailed(err); ok {
		s.addFailedWrite(op, old, size)
		stored := getSS(old, attrEventUUIDs)
		for _, e := range events {
			if slices.Contains(stored, e.EventUUID.String()) {
				return wrap(op, id, e.Seq, fmt.Errorf("%w: eventUUID %s", store.ErrDuplicate, e.EventUUID))
			}
		}
		return wrap(op, id, first, store.ErrConflict)
	}
	if err != nil {
		return wrap(op, id, first, err)
	}
	s.addWrite(op, out.ConsumedCapacity)
	return nil
}

// validateBatch checks an Append batch: the contract's shape, then
// DynamoDB's limits on the key and what the events attribute can carry.
func validateBatch(events []model.Event) error {
	const op = "append"
	if err := store.ValidateBatch(events); err != nil {
		return err
	}
	id := events[0].AggregateID
	if err := validateKey(op, "aggregate id", id); err != nil {
		return err
	}
	for i, e := range events {
		switch {
		case !utf8.ValidString(e.Type):
			return invalid(op, id, e.Seq, "event %d: type is not UTF-8", i)
		case len(e.Data) > 0 && (!json.Valid(e.Data) || isSpace(e.Data[0]) || isSpace(e.Data[len(e.Data)-1])):
			return invalid(op, id, e.Seq, "event %d: data is not one JSON value without surrounding white space", i)
		}
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// validateKey checks a string used as a partition key value.
func validateKey(op, what, key string) error {
	switch {
	case key == "":
		return invalid(op, "", 0, "empty %s", what)
	case len(key) > maxKeyBytes:
		return invalid(op, "", 0, "%s of %d bytes, the most is %d", what, len(key), maxKeyBytes)
	case !utf8.ValidString(key):
		return invalid(op, "", 0, "%s is not UTF-8", what)
	}
	return nil
}

// Load returns the aggregate's events with seq > afterSeq in seq order (nil
// for an unknown aggregate), read with strongly consistent Queries. With
// afterSeq 0 it is one Query of the partition (paginated). Otherwise it
// first reads the newest item alone: when nothing is new, or only that
// item, that one Query answers; else a Query of the items after afterSeq
// follows (and, if afterSeq falls inside an item rather than at its end,
// one more for that item). It returns store.ErrInvalid for a bad aggregate
// id, and an error if the stored items do not chain (an append that did not
// start at the aggregate's next seq, which Append cannot refuse).
func (s *Store) Load(ctx context.Context, aggregateID string, afterSeq int64) ([]model.Event, error) {
	const op = "load"
	if err := s.enter(ctx, op, aggregateID); err != nil {
		return nil, err
	}
	if err := validateKey(op, "aggregate id", aggregateID); err != nil {
		return nil, err
	}
	afterSeq = max(afterSeq, 0)
	items, err := s.loadItems(ctx, aggregateID, afterSeq)
	if err != nil {
		return nil, wrap(op, aggregateID, afterSeq, err)
	}
	var out []model.Event
	for _, item := range items {
		events, err := EventsFromItem(item)
		if err != nil {
			return nil, wrap(op, aggregateID, afterSeq, err)
		}
		for _, e := range events {
			if e.Seq <= afterSeq {
				continue
			}
			if n := len(out); n > 0 && e.Seq != out[n-1].Seq+1 {
				return nil, wrap(op, aggregateID, e.Seq, fmt.Errorf(
					"the log does not chain: seq %d follows %d (an append that did not start at the aggregate's next seq)", e.Seq, out[n-1].Seq))
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// loadItems returns, in seq order, the items holding events after afterSeq.
func (s *Store) loadItems(ctx context.Context, id string, afterSeq int64) ([]map[string]types.AttributeValue, error) {
	if afterSeq == 0 {
		return s.queryEvents(ctx, id, "", 0, true, 0)
	}
	newest, err := s.queryEvents(ctx, id, "", 0, false, 1)
	if err != nil || len(newest) == 0 {
		return nil, err
	}
	first, _ := getN(newest[0], attrSeq)
	last, _ := getN(newest[0], attrLastSeq)
	switch {
	case last <= afterSeq:
		return nil, nil // nothing new
	case first <= afterSeq+1:
		return newest, nil // only the newest item holds new events
	}
	items, err := s.queryEvents(ctx, id, ">", afterSeq, true, 0)
	if err != nil {
		return nil, err
	}
	if len(items) > 0 {
		if first, _ := getN(items[0], attrSeq); first == afterSeq+1 {
			return items, nil
		}
	}
	// afterSeq falls inside an item: its tail comes first.
	before, err := s.queryEvents(ctx, id, "<=", afterSeq, false, 1)
	if err != nil {
		return nil, err
	}
	if len(before) > 0 {
		if last, _ := getN(before[0], attrLastSeq); last > afterSeq {
			items = append(before, items...)
		}
	}
	return items, nil
}

// queryEvents runs a strongly consistent Query of the aggregate's items,
// with seq <cmp> bound when cmp is not empty, forward or backward, reading
// at most limit items (every page when limit is 0).
func (s *Store) queryEvents(ctx context.Context, id, cmp string, bound int64, forward bool, limit int32) ([]map[string]types.AttributeValue, error) {
	cond := "#a = :a"
	names := map[string]string{"#a": attrAggregateID}
	values := map[string]types.AttributeValue{":a": attrS(id)}
	if cmp != "" {
		cond += " AND #s " + cmp + " :s"
		names["#s"] = attrSeq
		values[":s"] = attrN(bound)
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.cfg.EventsTable),
		KeyConditionExpression:    aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
		ConsistentRead:            aws.Bool(true),
		ScanIndexForward:          aws.Bool(forward),
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	}
	if limit > 0 {
		in.Limit = aws.Int32(limit)
	}
	var items []map[string]types.AttributeValue
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, err
		}
		if out.ConsumedCapacity != nil {
			s.addRead("load", *out.ConsumedCapacity)
		}
		items = append(items, out.Items...)
		if len(out.LastEvaluatedKey) == 0 || limit > 0 && len(items) >= int(limit) {
			return items, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
