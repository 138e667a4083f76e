package table

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/workflowd/workflowd/store"
)

// Config names the two tables of a Store.
type Config struct {
	// EventsTable holds the event log: partition key aggregateId (S), sort
	// key seq (N), one item per Append, stream NEW_IMAGE.
	EventsTable string
	// ViewsTable holds the workflow and execution views, the command
	// statuses and the idempotency records (partition key pk, sort key sk,
	// both S), with the listing GSIs and TTL on expiresAt.
	ViewsTable string
	// Retention is how long a finished execution's view is kept after it
	// finished: its last write sets expiresAt, and DynamoDB's TTL deletes
	// it some time after (0: kept for ever). The event log keeps the
	// history.
	Retention time.Duration
	// CommandRetention is how long a command's status (and so its
	// answer at GET /v1/commands/{id}) is kept after the command was
	// accepted: its writes set expiresAt, and DynamoDB's TTL deletes it
	// some time after (0: kept for ever).
	CommandRetention time.Duration
	// IndexShards is how many partitions each listing key of the views
	// table's GSIs is spread over (0: DefaultIndexShards; at most
	// MaxIndexShards). Every writer and reader of the tables must use the
	// same number. It may be raised later (listings then read the new
	// shards too, and a view moves as it is next put) but never lowered:
	// entries in the shards past the new number would not be read.
	IndexShards int
}

func (c Config) validate() error {
	if c.EventsTable == "" || c.ViewsTable == "" {
		return fmt.Errorf("table: Config needs EventsTable and ViewsTable (got %q, %q)", c.EventsTable, c.ViewsTable)
	}
	if c.IndexShards < 0 || c.IndexShards > MaxIndexShards {
		return fmt.Errorf("table: Config.IndexShards is %d, want 0 (the default, %d) to %d", c.IndexShards, DefaultIndexShards, MaxIndexShards)
	}
	return nil
}

// api is the part of *dynamodb.Client the Store uses.
type api interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// Store is the DynamoDB backend of store.Store. It holds no resources of
// its own: the client belongs to the caller, and a Store is safe for
// concurrent use.
type Store struct {
	db  api
	cfg Config
	err error // a Config problem, returned by every call

	mu    sync.Mutex
	usage map[string]Usage // capacity consumed so far, by operation
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Pinger = (*Store)(nil)
)

// New returns a Store on the tables cfg names, which CreateTables (or the
// deployment's template) made. A Config with an empty table name gives a
// Store whose every call (Ping included) returns that problem.
func New(client *dynamodb.Client, cfg Config) *Store {
	return &Store{db: client, cfg: cfg, err: cfg.validate()}
}

// enter starts a call: it fails if ctx is done or the Config is unusable,
// so that nothing is sent in either case.
func (s *Store) enter(ctx context.Context, op, id string) error {
	if err := ctx.Err(); err != nil {
		return wrap(op, id, 0, err)
	}
	if s.err != nil {
		return wrap(op, id, 0, s.err)
	}
	return nil
}

// Close does nothing and returns nil: the client is the caller's.
func (s *Store) Close() error { return nil }

// Ping reports whether both tables can be described (they exist and the
// credentials reach them). It consumes no capacity.
func (s *Store) Ping(ctx context.Context) error {
	const op = "ping"
	if err := s.enter(ctx, op, ""); err != nil {
		return err
	}
	for _, name := range []string{s.cfg.EventsTable, s.cfg.ViewsTable} {
		out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return wrap(op, name, 0, err)
		}
		if st := out.Table.TableStatus; st != types.TableStatusActive && st != types.TableStatusUpdating {
			return wrap(op, name, 0, fmt.Errorf("table status %s", st))
		}
	}
	return nil
}

// Consumed returns the read and write capacity units this Store has
// consumed since New, as DynamoDB reported them (ReturnConsumedCapacity
// TOTAL, indexes included), plus the write units of conditional writes
// that failed: DynamoDB charges those (the larger of the existing and the
// new item's size, at least 1 unit) but reports nothing with the
// ConditionalCheckFailedException, so the Store computes them from the
// item it sent and the one ALL_OLD returned.
func (s *Store) Consumed() (read, write float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.usage {
		read += u.Read
		write += u.Write
	}
	return read, write
}

// Usage is what the requests of one operation consumed.
type Usage struct {
	Requests    int64
	Read, Write float64 // capacity units, as Consumed counts them
}

// Usage returns Consumed per operation ("append", "get execution", ...).
func (s *Store) Usage() map[string]Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.usage)
}

func (s *Store) addRead(op string, cc ...types.ConsumedCapacity) {
	s.record(op, units(cc), 0)
}

func (s *Store) addWrite(op string, cc *types.ConsumedCapacity) {
	if cc != nil {
		s.record(op, 0, units([]types.ConsumedCapacity{*cc}))
	}
}

func units(cc []types.ConsumedCapacity) float64 {
	var n float64
	for _, c := range cc {
		if c.CapacityUnits != nil {
			n += *c.CapacityUnits
		}
	}
	return n
}

func (s *Store) record(op string, read, write float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.usage == nil {
		s.usage = make(map[string]Usage)
	}
	u := s.usage[op]
	u.Requests++
	u.Read += read
	u.Write += write
	s.usage[op] = u
}

// addFailedWrite counts what a failed conditional write costs: the larger
// of the existing item (returned by ALL_OLD, nil if there was none) and the
// item the write would have stored, in 1 KB units, at least 1.
func (s *Store) addFailedWrite(op string, old map[string]types.AttributeValue, newSize int) {
	size := max(itemSize(old), newSize)
	s.record(op+" (condition failed)", 0, math.Max(1, math.Ceil(float64(size)/1024)))
}

// conditionFailed reports whether err is a failed condition, and returns
// the existing item if the request asked for ALL_OLD.
func conditionFailed(err error) (map[string]types.AttributeValue, bool) {
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, true
	}
	return nil, false
}

// wrap gives err its context as a *store.Error.
func wrap(op, id string, seq int64, err error) error {
	if unavailable(err) {
		err = fmt.Errorf("%w (%w)", err, store.ErrUnavailable)
	}
	return &store.Error{Op: op, AggregateID: id, Seq: seq, Err: err}
}

// unavailable reports whether err says DynamoDB could not answer rather
// than that the request was wrong: throttling or a server error (after
// the SDK's retries, or one it does not retry), a timeout.
func unavailable(err error) bool {
	var maxAttempts *retry.MaxAttemptsError
	var api smithy.APIError
	var netErr net.Error
	switch {
	case errors.As(err, &maxAttempts):
		return true
	case errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &api):
		switch api.ErrorCode() {
		case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
			"InternalServerError", "ServiceUnavailable", "LimitExceededException":
			return true
		}
		return api.ErrorFault() == smithy.FaultServer
	case errors.As(err, &netErr):
		return true // the connection failed: the request may or may not have arrived
	}
	return false
}

// invalid returns an ErrInvalid for op saying what is wrong.
func invalid(op, id string, seq int64, format string, args ...any) error {
	return store.Invalid(op, id, seq, format, args...)
}

// itemSize is DynamoDB's size of an item: attribute names plus values
// (strings and binaries by length, numbers about one byte per two digits
// plus one, documents with 3 bytes of overhead and 1 per element).
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return numberSize(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberNS:
		n := 0
		for _, s := range v.Value {
			n += numberSize(s)
		}
		return n
	case *types.AttributeValueMemberBS:
		n := 0
		for _, b := range v.Value {
			n += len(b)
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		return 3 + itemSize(v.Value) + len(v.Value)
	}
	return 0
}

func numberSize(s string) int {
	digits := 0
	for _, c := range s {
		if c >= '0' && c <= '9' {
			digits++
		}
	}
	return (digits+1)/2 + 1
}

// Attribute value helpers.

func attrS(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func attrB(b []byte) types.AttributeValue { return &types.AttributeValueMemberB{Value: b} }
func attrN(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func getS(item map[string]types.AttributeValue, name string) (string, bool) {
	v, ok := item[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}

func getB(item map[string]types.AttributeValue, name string) ([]byte, bool) {
	v, ok := item[name].(*types.AttributeValueMemberB)
	if !ok {
		return nil, false
	}
	return v.Value, true
}

func getN(item map[string]types.AttributeValue, name string) (int64, bool) {
	v, ok := item[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	return n, err == nil
}

func getSS(item map[string]types.AttributeValue, name string) []string {
	v, ok := item[name].(*types.AttributeValueMemberSS)
	if !ok {
		return nil
	}
	return v.Value
}

// errCorrupt marks an item the Store cannot decode.
var errCorrupt = errors.New("corrupt item")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errCorrupt, fmt.Sprintf(format, args...))
}
