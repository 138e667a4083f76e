package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/model"
)

// Sentinel errors. Backends wrap them (in *Error) so callers test with errors.Is.
var (
	// ErrNotFound: the item does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: an optimistic condition failed (a seq already taken, a
	// view version that moved on).
	ErrConflict = errors.New("conflict")
	// ErrDuplicate: the item is already there (an eventUUID already in the
	// aggregate's log, an idempotency key already claimed).
	ErrDuplicate = errors.New("duplicate")
	// ErrInvalid: the call's arguments break the contract (empty batch,
	// mixed aggregates, non-consecutive seqs).
	ErrInvalid = errors.New("invalid argument")
	// ErrUnavailable: the backend did not answer in time, or refused under
	// load (throttling, a timeout, a server error after the SDK's
	// retries). The outcome of a write is unknown: it may have taken
	// effect. Try again later. A backend wraps it beside the cause.
	ErrUnavailable = errors.New("unavailable")
)

// Error gives a sentinel error its context.
type Error struct {
	Op          string // "append", "put execution", ...
	AggregateID string // or the view's id
	Seq         int64
	Err         error
}

func (e *Error) Error() string {
	if e.Seq != 0 {
		return fmt.Sprintf("%s %s seq %d: %v", e.Op, e.AggregateID, e.Seq, e.Err)
	}
	return fmt.Sprintf("%s %s: %v", e.Op, e.AggregateID, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// EventLog is the append-only, per-aggregate event log.
type EventLog interface {
	// Append stores the events of one command atomically. They share one
	// AggregateID and carry consecutive seqs starting at the aggregate's next
	// seq (1 for a new aggregate). Returns ErrConflict when events[0].Seq is
	// the first seq of an earlier append, ErrDuplicate when that earlier
	// append holds one of the eventUUIDs (a racing twin of the same command),
	// ErrInvalid for a malformed batch; nothing is written then. Backends may
	// detect more (storetest.Features): an eventUUID anywhere in the log, a
	// seq inside an earlier append, a gap. The DynamoDB backend does one
	// conditional put and detects only what the contract requires, so the
	// workers read the history (consistently) and skip a command already in
	// it before they append.
	Append(ctx context.Context, events []model.Event) error
	// Load returns the aggregate's events with seq > afterSeq in seq order
	// (empty, not an error, for an unknown aggregate). The slice and the
	// events' Data are the caller's own.
	Load(ctx context.Context, aggregateID string, afterSeq int64) ([]model.Event, error)
}

// Position is where a listing resumes: the (CreatedAt, ID) of the last item
// returned. Listings go newest first: createdAt descending, then ID descending.
// The API turns it into an opaque cursor.
type Position struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// MaxListLimit is the most items one listing call may ask for. The API shows
// at most 1000 a page and asks one more to learn whether a next page exists.
const MaxListLimit = 1001

// ListQuery selects a page of a listing.
type ListQuery struct {
	Limit int       // 1..MaxListLimit
	After *Position // nil: from the start
}

// ExecutionQuery selects a page of executions, optionally filtered.
type ExecutionQuery struct {
	ListQuery
	WorkflowUUID uuid.UUID // uuid.Nil: any workflow
	Status       string    // "": any status
}

// Views holds the current-state items the projector writes and the API reads.
// Puts are conditioned on the version (seq) the writer read: prevSeq 0 means
// "must not exist yet". A failed condition is ErrConflict.
type Views interface {
	// GetWorkflow returns ErrNotFound for an unknown workflow.
	GetWorkflow(ctx context.Context, id uuid.UUID) (model.Workflow, error)
	// PutWorkflow stores w (keyed by w.WorkflowUUID, version w.Seq) if the
	// stored view's Seq is prevSeq.
	PutWorkflow(ctx context.Context, w model.Workflow, prevSeq int64) error
	ListWorkflows(ctx context.Context, q ListQuery) ([]model.Workflow, error)

	// GetExecution returns ErrNotFound for an unknown execution.
	GetExecution(ctx context.Context, id uuid.UUID) (model.Execution, error)
	// PutExecution stores x (keyed by x.WorkflowExecutionUUID, version
	// x.Version) if the stored view's Version is prevVersion, and indexes it
	// by its due time x.Due (none when zero). GetExecution and ListDue
	// return x.Due and x.RecentCommands with the view, though its JSON
	// leaves them out.
	PutExecution(ctx context.Context, x model.Execution, prevVersion int64) error
	ListExecutions(ctx context.Context, q ExecutionQuery) ([]model.Execution, error)

	// ListDue returns the executions whose due time (model.Execution.Due,
	// as last put) is at or before q.Before, earliest first, then by UUID,
	// after q.After: the cleanup's work list. A view put moves its
	// execution in (a due time), out (none) or along it.
	ListDue(ctx context.Context, q DueQuery) ([]model.Execution, error)
}

// DueQuery selects a page of due executions.
type DueQuery struct {
	Before time.Time    // due at or before this
	After  *DuePosition // nil: from the earliest
	Limit  int          // 1..MaxListLimit
}

// DuePosition is where a ListDue page resumes: the last item's due time and
// UUID.
type DuePosition struct {
	DueAt time.Time
	ID    uuid.UUID
}

// Commands holds the command-status view and the idempotency records.
type Commands interface {
	// PutCommand records a command as ACCEPTED unless a status for it exists
	// already (then it does nothing and returns nil).
	PutCommand(ctx context.Context, c model.CommandStatus) error
	// FinishCommand moves a command to APPLIED or REJECTED. A command that is
	// already APPLIED or REJECTED keeps its status (nil is returned); one with
	// no status yet is created with this one. A REJECTED status is durable
	// when it returns (the worker then deletes the message, and nothing else
	// would rebuild it); an APPLIED one may be rebuilt by the projector.
	FinishCommand(ctx context.Context, c model.CommandStatus) error
	// GetCommand returns ErrNotFound for an unknown command.
	GetCommand(ctx context.Context, id uuid.UUID) (model.CommandStatus, error)
	// EachAccepted calls fn with pages of the statuses still ACCEPTED of
	// the commands whose UUIDs carry a time in [from, to)
	// (model.CommandTime), in no set order, one call at a time. fn's error
	// stops the listing and is returned; a backend that reads the window
	// in parts may go on past a part it could not read, and returns the
	// errors of those parts joined. Statuses whose UUIDs carry no time are
	// not listed. A window longer than MaxAcceptedWindow is ErrInvalid.
	// The reconciliation reads it.
	EachAccepted(ctx context.Context, from, to time.Time, fn func([]model.CommandStatus) error) error

	// ClaimIdempotencyKey stores rec if rec.Key is not claimed yet and returns
	// (rec, nil). If it is claimed, it returns the stored record and
	// ErrDuplicate.
	ClaimIdempotencyKey(ctx context.Context, rec IdempotencyRecord) (IdempotencyRecord, error)
}

// DefaultCommandRetention is how long command statuses are kept after
// their command was accepted unless configured otherwise.
const DefaultCommandRetention = 7 * 24 * time.Hour

// MaxAcceptedWindow is the longest window EachAccepted lists at once (on
// DynamoDB a window reads every shard of each of its minutes).
const MaxAcceptedWindow = 24 * time.Hour

// IdempotencyRecord remembers what an Idempotency-Key was first used for.
type IdempotencyRecord struct {
	Key         string    // route + client key
	RequestHash string    // hash of method, path and body
	CommandUUID uuid.UUID // the command the first request published
	CreatedAt   time.Time
	ExpiresAt   time.Time // after this the key may be forgotten
}

// FeedEntry is one append in the change feed.
type FeedEntry struct {
	Pos    uint64        // strictly increasing in commit order, never reused
	Events []model.Event // the events of that append
}

// Feed is the embedded backend's change feed: every append, in commit order,
// durable and resumable. (On AWS, DynamoDB Streams plays this part.)
type Feed interface {
	// ReadFeed returns up to limit entries with Pos > after in commit order.
	// If none is there it waits up to wait for one (or ctx's end), then
	// returns what it has (possibly nothing).
	ReadFeed(ctx context.Context, after uint64, limit int, wait time.Duration) ([]FeedEntry, error)
	// SaveCheckpoint records how far consumer has processed the feed.
	SaveCheckpoint(ctx context.Context, consumer string, pos uint64) error
	// LoadCheckpoint returns consumer's checkpoint (0 if it has none).
	LoadCheckpoint(ctx context.Context, consumer string) (uint64, error)
}

// Store is everything a complete backend offers.
type Store interface {
	EventLog
	Views
	Commands
	Close() error
}

// Pinger is the optional readiness check of a backend.
type Pinger interface {
	Ping(ctx context.Context) error
}
