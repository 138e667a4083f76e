package table

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/internal/parallel"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// Attribute names of command statuses and idempotency records in the views
// table.
const (
	attrType        = "type"        // S
	attrStatus      = "status"      // S
	attrError       = "error"       // S, absent when empty
	attrAggregate   = "resource"    // S, absent when empty: CommandStatus.AggregateID (an API path in statuses of earlier builds)
	attrCreatedAt   = "createdAt"   // S (RFC 3339), absent when zero
	attrUpdatedAt   = "updatedAt"   // S (RFC 3339), absent when zero
	attrRequestHash = "requestHash" // S
	attrExpires     = "expires"     // S (RFC 3339): the record's exact ExpiresAt, absent when zero
	attrExpiresAt   = "expiresAt"   // N: ExpiresAt in epoch seconds rounded up, the TTL attribute
)

// PutCommand records c with status ACCEPTED (whatever c.Status says) unless
// a status for c.CommandUUID exists already; then it does nothing and
// returns nil. It is one PutItem on condition attribute_not_exists(pk). It
// returns store.ErrInvalid for a nil CommandUUID.
func (s *Store) PutCommand(ctx context.Context, c model.CommandStatus) error {
	const op = "put command"
	id := c.CommandUUID
	if err := s.enter(ctx, op, id.String()); err != nil {
		return err
	}
	if id == uuid.Nil {
		return invalid(op, "", 0, "nil command uuid")
	}
	item := commandKey(id)
	item[attrStatus] = attrS(model.CommandAccepted)
	if exp, ok := s.commandExpiry(id, c.CreatedAt); ok {
		item[attrExpiresAt] = attrN(exp)
	}
	setIf(item, attrType, c.Type)
	setIf(item, attrAggregate, c.AggregateID)
	setIf(item, attrError, c.Error)
	if err := setTime(item, attrCreatedAt, c.CreatedAt); err != nil {
		return invalid(op, id.String(), 0, "createdAt: %v", err)
	}
	if err := setTime(item, attrUpdatedAt, c.UpdatedAt); err != nil {
		return invalid(op, id.String(), 0, "updatedAt: %v", err)
	}
	out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.cfg.ViewsTable),
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(#pk)"),
		ExpressionAttributeNames:            map[string]string{"#pk": attrPK},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
	})
	if old, ok := conditionFailed(err); ok {
		s.addFailedWrite(op, old, itemSize(item))
		return nil // a status exists already
	}
	if err != nil {
		return wrap(op, id.String(), 0, err)
	}
	s.addWrite(op, out.ConsumedCapacity)
	return nil
}

// FinishCommand moves a command to c.Status, APPLIED or REJECTED, with one
// UpdateItem on condition attribute_not_exists(pk) OR status = ACCEPTED. A
// command already APPLIED or REJECTED keeps its status (nil is returned);
// one with no status yet is created with c. Fields c leaves empty (Type,
// AggregateID) keep their stored values, and a stored CreatedAt is kept. The
// write is durable when it returns. It returns store.ErrInvalid for a nil
// CommandUUID or another status.
func (s *Store) FinishCommand(ctx context.Context, c model.CommandStatus) error {
	const op = "finish command"
	id := c.CommandUUID
	if err := s.enter(ctx, op, id.String()); err != nil {
		return err
	}
	if id == uuid.Nil {
		return invalid(op, "", 0, "nil command uuid")
	}
	if c.Status != model.CommandApplied && c.Status != model.CommandRejected {
		return invalid(op, id.String(), 0, "status %q, want %s or %s", c.Status, model.CommandApplied, model.CommandRejected)
	}
	u := update{names: map[string]string{"#pk": attrPK}, values: map[string]types.AttributeValue{
		":accepted": attrS(model.CommandAccepted),
	}}
	u.set(attrStatus, attrS(c.Status))
	if c.Type != "" {
		u.set(attrType, attrS(c.Type))
	}
	if c.AggregateID != "" {
		u.set(attrAggregate, attrS(c.AggregateID))
	}
	if c.Error != "" {
		u.set(attrError, attrS(c.Error))
	} else {
		u.remove(attrError)
	}
	if !c.CreatedAt.IsZero() {
		t, err := timeText(c.CreatedAt)
		if err != nil {
			return invalid(op, id.String(), 0, "createdAt: %v", err)
		}
		u.setIfNotExists(attrCreatedAt, attrS(t))
	}
	if !c.UpdatedAt.IsZero() {
		t, err := timeText(c.UpdatedAt)
		if err != nil {
			return invalid(op, id.String(), 0, "updatedAt: %v", err)
		}
		u.set(attrUpdatedAt, attrS(t))
	} else {
		u.remove(attrUpdatedAt)
	}
	if exp, ok := s.commandExpiry(id, c.CreatedAt); ok {
		u.setIfNotExists(attrExpiresAt, attrN(exp))
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(s.cfg.ViewsTable),
		Key:                                 commandKey(id),
		UpdateExpression:                    aws.String(u.expression()),
		ConditionExpression:                 aws.String("attribute_not_exists(#pk) OR #status = :accepted"),
		ExpressionAttributeNames:            u.names,
		ExpressionAttributeValues:           u.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
	})
	if old, ok := conditionFailed(err); ok {
		s.addFailedWrite(op, old, 0)
		return nil // already final
	}
	if err != nil {
		return wrap(op, id.String(), 0, err)
	}
	s.addWrite(op, out.ConsumedCapacity)
	return nil
}

// update builds an UpdateExpression with placeholders named after the
// attributes.
type update struct {
	sets, removes []string
	names         map[string]string
	values        map[string]types.AttributeValue
}

func (u *update) set(attr string, v types.AttributeValue) {
	u.names["#"+attr] = attr
	u.values[":"+attr] = v
	u.sets = append(u.sets, fmt.Sprintf("#%s = :%s", attr, attr))
}

func (u *update) setIfNotExists(attr string, v types.AttributeValue) {
	u.names["#"+attr] = attr
	u.values[":"+attr] = v
	u.sets = append(u.sets, fmt.Sprintf("#%s = if_not_exists(#%s, :%s)", attr, attr, attr))
}

func (u *update) remove(attr string) {
	u.names["#"+attr] = attr
	u.removes = append(u.removes, "#"+attr)
}

func (u *update) expression() string {
	e := "SET " + strings.Join(u.sets, ", ")
	if len(u.removes) > 0 {
		e += " REMOVE " + strings.Join(u.removes, ", ")
	}
	return e
}

// GetCommand returns the command's status (a strongly consistent GetItem,
// so a status a writer has just recorded is seen), or an error wrapping
// store.ErrNotFound.
func (s *Store) GetCommand(ctx context.Context, id uuid.UUID) (model.CommandStatus, error) {
	const op = "get command"
	if err := s.enter(ctx, op, id.String()); err != nil {
		return model.CommandStatus{}, err
	}
	item, err := s.getItem(ctx, op, commandKey(id))
	if err != nil {
		return model.CommandStatus{}, wrap(op, id.String(), 0, err)
	}
	if item == nil {
		return model.CommandStatus{}, wrap(op, id.String(), 0, store.ErrNotFound)
	}
	c, err := decodeCommand(id, item)
	if err != nil {
		return model.CommandStatus{}, wrap(op, id.String(), 0, err)
	}
	return c, nil
}

func decodeCommand(id uuid.UUID, item map[string]types.AttributeValue) (model.CommandStatus, error) {
	c := model.CommandStatus{CommandUUID: id}
	c.Type, _ = getS(item, attrType)
	c.Status, _ = getS(item, attrStatus)
	c.Error, _ = getS(item, attrError)
	c.AggregateID, _ = getS(item, attrAggregate)
	var err error
	if c.CreatedAt, err = getTime(item, attrCreatedAt); err != nil {
		return c, err
	}
	if c.UpdatedAt, err = getTime(item, attrUpdatedAt); err != nil {
		return c, err
	}
	return c, nil
}

// Command statuses are keyed by the time their UUID carries
// (model.NewCommandUUID): pk "commands#<minute>#<shard>" (the minute as
// yyyymmddhhmm in UTC, the shard two digits of the UUID's last byte modulo
// commandShards), sk the UUID's text, which sorts by time. A status read
// finds the key from the UUID alone; the reconciliation reads a window of
// time, minute by minute and shard by shard (EachAccepted); the shards keep
// any one partition under a 64th of the command rate. A UUID without a time
// (a status written by a build before 3 December 2026) keeps the key of its
// build: pk the UUID, sk "command".
const (
	commandPrefix = "commands#"
	commandShards = 64
	commandMinute = "200601021504"
)

func commandKey(id uuid.UUID) map[string]types.AttributeValue {
	at, ok := model.CommandTime(id)
	if !ok {
		return viewKey(kindCommand, id)
	}
	return map[string]types.AttributeValue{attrPK: attrS(commandPartition(at, int(id[15])%commandShards)), attrSK: attrS(id.String())}
}

func commandPartition(minute time.Time, shard int) string {
	return fmt.Sprintf("%s%s#%02d", commandPrefix, minute.UTC().Format(commandMinute), shard)
}

// commandExpiry is the TTL (epoch seconds) of a command's status: the
// retention after the time its UUID carries, or else after createdAt.
func (s *Store) commandExpiry(id uuid.UUID, createdAt time.Time) (int64, bool) {
	if s.cfg.CommandRetention <= 0 {
		return 0, false
	}
	at, ok := model.CommandTime(id)
	if !ok {
		if at = createdAt; at.IsZero() {
			return 0, false
		}
	}
	return ceilSeconds(at.Add(s.cfg.CommandRetention)), true
}

// EachAccepted calls fn with pages of the statuses still ACCEPTED of the
// commands whose UUIDs carry a time in [from, to): a Query per minute and
// shard (eventually consistent, a filter on status; a Query reads at least
// half a unit, so a window of m minutes costs at least 32·m read units,
// plus half a unit per 4 KB of statuses), several shards at once. A Query
// that fails does not stop the others: the errors of the partitions it
// could not read are returned, joined. fn's error stops the listing and is
// returned alone.
func (s *Store) EachAccepted(ctx context.Context, from, to time.Time, fn func([]model.CommandStatus) error) error {
	const op = "list accepted"
	if err := s.enter(ctx, op, ""); err != nil {
		return err
	}
	if !from.Before(to) {
		return nil
	}
	if to.Sub(from) > store.MaxAcceptedWindow {
		return invalid(op, "", 0, "window %v to %v is longer than %v", from, to, store.MaxAcceptedWindow)
	}
	last := to.Add(-time.Millisecond)
	type part struct {
		pk     string
		lo, hi uuid.UUID
	}
	var parts []part
	for m := from.UTC().Truncate(time.Minute); !m.After(last); m = m.Add(time.Minute) {
		lo, _ := model.CommandUUIDBounds(maxTime(m, from))
		_, hi := model.CommandUUIDBounds(minTime(m.Add(time.Minute-time.Millisecond), last))
		for shard := range commandShards {
			parts = append(parts, part{commandPartition(m, shard), lo, hi})
		}
	}
	var mu sync.Mutex // fn is called by one goroutine at a time
	var fnErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := parallel.Each(len(parts), queryLimit, func(i int) error {
		p := parts[i]
		in := &dynamodb.QueryInput{
			TableName:                aws.String(s.cfg.ViewsTable),
			KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
			FilterExpression:         aws.String("#status = :accepted"),
			ExpressionAttributeNames: map[string]string{"#pk": attrPK, "#sk": attrSK, "#status": attrStatus},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":pk": attrS(p.pk), ":lo": attrS(p.lo.String()), ":hi": attrS(p.hi.String()),
				":accepted": attrS(model.CommandAccepted),
			},
			ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
		}
		for {
			out, err := s.db.Query(ctx, in)
			if err != nil {
				return wrap(op, p.pk, 0, err)
			}
			if out.ConsumedCapacity != nil {
				s.addRead(op, *out.ConsumedCapacity)
			}
			page := make([]model.CommandStatus, 0, len(out.Items))
			for _, item := range out.Items {
				sk, _ := getS(item, attrSK)
				id, err := uuid.Parse(sk)
				if err != nil {
					return wrap(op, p.pk, 0, corrupt("command status key %q: %v", sk, err))
				}
				c, err := decodeCommand(id, item)
				if err != nil {
					return wrap(op, id.String(), 0, err)
				}
				page = append(page, c)
			}
			if len(page) > 0 {
				mu.Lock()
				err := ctx.Err() // after fn's error, no more calls
				if err == nil {
					if err = fn(page); err != nil {
						fnErr = err
						cancel()
					}
				}
				mu.Unlock()
				if err != nil {
					return err
				}
			}
			if len(out.LastEvaluatedKey) == 0 {
				return nil
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	})
	if fnErr != nil {
		return fnErr
	}
	return errors.Join(errs...)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ClaimIdempotencyKey stores rec if rec.Key is not claimed, or its claim
// has expired (a zero ExpiresAt never expires), and returns (rec, nil):
// one PutItem on condition attribute_not_exists(pk) OR expiresAt <= now,
// in whole seconds (expiresAt is ExpiresAt rounded up, so a claim never
// ends early, and may last up to a second longer). Otherwise it returns
// the stored record, which the failed write hands back (ALL_OLD), and an
// error wrapping store.ErrDuplicate. The record carries expiresAt for
// DynamoDB's TTL, which deletes it some time after it expires. It returns
// store.ErrInvalid for an empty key, one over 2048 bytes or not UTF-8.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, rec store.IdempotencyRecord) (store.IdempotencyRecord, error) {
	const op = "claim idempotency key"
	if err := s.enter(ctx, op, rec.Key); err != nil {
		return store.IdempotencyRecord{}, err
	}
	if err := validateKey(op, "idempotency key", rec.Key); err != nil {
		return store.IdempotencyRecord{}, err
	}
	key := map[string]types.AttributeValue{attrPK: attrS(rec.Key), attrSK: attrS(kindIdempotency)}
	item := map[string]types.AttributeValue{
		attrPK:          key[attrPK],
		attrSK:          key[attrSK],
		attrRequestHash: attrS(rec.RequestHash),
		attrCommandUUID: attrS(rec.CommandUUID.String()),
	}
	if err := setTime(item, attrCreatedAt, rec.CreatedAt); err != nil {
		return store.IdempotencyRecord{}, invalid(op, rec.Key, 0, "createdAt: %v", err)
	}
	if err := setTime(item, attrExpires, rec.ExpiresAt); err != nil {
		return store.IdempotencyRecord{}, invalid(op, rec.Key, 0, "expiresAt: %v", err)
	}
	if !rec.ExpiresAt.IsZero() {
		item[attrExpiresAt] = attrN(ceilSeconds(rec.ExpiresAt))
	}
	out, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(s.cfg.ViewsTable),
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(#pk) OR #exp <= :now"),
		ExpressionAttributeNames:            map[string]string{"#pk": attrPK, "#exp": attrExpiresAt},
		ExpressionAttributeValues:           map[string]types.AttributeValue{":now": attrN(time.Now().Unix())},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
	})
	if old, ok := conditionFailed(err); ok {
		s.addFailedWrite(op, old, itemSize(item))
		if old == nil { // ALL_OLD came back empty: read it
			if old, err = s.getItem(ctx, op, key); err != nil {
				return store.IdempotencyRecord{}, wrap(op, rec.Key, 0, err)
			}
		}
		stored, err := decodeIdempotency(rec.Key, old)
		if err != nil {
			return store.IdempotencyRecord{}, wrap(op, rec.Key, 0, err)
		}
		return stored, wrap(op, rec.Key, 0, store.ErrDuplicate)
	}
	if err != nil {
		return store.IdempotencyRecord{}, wrap(op, rec.Key, 0, err)
	}
	s.addWrite(op, out.ConsumedCapacity)
	return rec, nil
}

func decodeIdempotency(key string, item map[string]types.AttributeValue) (store.IdempotencyRecord, error) {
	if item == nil {
		return store.IdempotencyRecord{}, corrupt("idempotency record %q vanished", key)
	}
	rec := store.IdempotencyRecord{Key: key}
	rec.RequestHash, _ = getS(item, attrRequestHash)
	id, _ := getS(item, attrCommandUUID)
	var err error
	if rec.CommandUUID, err = uuid.Parse(id); err != nil {
		return rec, corrupt("idempotency record %q: commandUUID: %v", key, err)
	}
	if rec.CreatedAt, err = getTime(item, attrCreatedAt); err != nil {
		return rec, err
	}
	if rec.ExpiresAt, err = getTime(item, attrExpires); err != nil {
		return rec, err
	}
	return rec, nil
}

// ceilSeconds returns t in whole seconds since 1970, rounded up.
func ceilSeconds(t time.Time) int64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 && sec < math.MaxInt64 {
		sec++
	}
	return sec
}

func setIf(item map[string]types.AttributeValue, attr, v string) {
	if v != "" {
		item[attr] = attrS(v)
	}
}

// setTime stores t (RFC 3339 with nanoseconds) unless it is zero.
func setTime(item map[string]types.AttributeValue, attr string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	s, err := timeText(t)
	if err != nil {
		return err
	}
	item[attr] = attrS(s)
	return nil
}

// getTime reads what setTime stored; an absent attribute is the zero time.
func getTime(item map[string]types.AttributeValue, attr string) (time.Time, error) {
	s, ok := getS(item, attr)
	if !ok {
		return time.Time{}, nil
	}
	t, err := parseTime(s)
	if err != nil {
		return time.Time{}, corrupt("%s: %v", attr, err)
	}
	return t, nil
}

// timeText formats t as encoding/json does (RFC 3339 with nanoseconds).
func timeText(t time.Time) (string, error) {
	b, err := t.MarshalText()
	return string(b), err
}

// parseTime is the inverse of timeText.
func parseTime(s string) (time.Time, error) {
	var t time.Time
	err := t.UnmarshalText([]byte(s))
	return t, err
}
