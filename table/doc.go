// Package table is the DynamoDB backend of the store contract (store.Store
// and store.Pinger): the event log in one table, the views, command
// statuses and idempotency records in another. DynamoDB Streams on the
// events table plays the part of the embedded store's change feed; this
// package does not read the stream, it only writes what a stream consumer
// decodes (EventsFromItem, EventItem).
//
// It imports model and store of this project and nothing else of it, and
// the AWS SDK's dynamodb client, which the caller builds once (per Lambda
// container) and hands to New. CreateTables makes the tables for tests and
// for the long-running mode; a SAM template that creates them must match
// the design below.
//
// # Events table
//
// Partition key aggregateId (S), sort key seq (N); on-demand; stream
// NEW_IMAGE. One item per Append (docs/cost.md, "One item per append"), keyed by the
// batch's first seq, written by one PutItem on condition
// attribute_not_exists(seq):
//
//	aggregateId  S   the aggregate
//	seq          N   the first seq of the append
//	lastSeq      N   the last seq of the append
//	commandUUID  S   the first event's commandUUID
//	occurredAt   S   the first event's occurredAt (RFC 3339, nanoseconds)
//	eventUUIDs   SS  every eventUUID of the append
//	events       B   a JSON array, one object per event in seq order:
//	                 {"eventUUID", "type", "data", "commandUUID", "occurredAt"},
//	                 data kept byte for byte and left out when empty,
//	                 commandUUID and occurredAt left out when they equal the
//	                 item's; an event's seq is the item's seq plus its index
//
// Two writers that loaded the same history append at the same first seq,
// whatever their batch lengths, so the condition lets exactly one win. What
// one conditional put cannot see without a read: an eventUUID of the log
// repeated at a new seq, a first seq inside an earlier append's batch, and
// a first seq past the next one (a gap). The workers never do those: they
// append at the next seq of a strongly consistent Load and look for their
// command in it. The conformance suite runs with none of storetest.Features
// declared, and Load refuses a log whose items do not chain (an error
// without a sentinel) rather than return one a fold would misread.
//
// Load reads with strongly consistent Queries. Load(id, 0) reads the whole
// partition. Load(id, after) first reads the newest item alone (Limit 1,
// backwards): when nothing is new, or only that item, it answers; otherwise
// a Query of seq > after follows, and one more for the item that after
// falls inside of, if it is not the end of an item.
//
// # Views table
//
// Partition key pk (S), sort key sk (S), on-demand, TTL on expiresAt. The
// sk says what the item is:
//
//	pk              sk           attributes
//	workflowUUID    workflow     version N (Seq), view S (JSON), listing keys
//	executionUUID   execution    version N (Version), view S (JSON), listing keys
//	commandUUID     command      type, status, error, resource, createdAt, updatedAt (S)
//	idempotency key idempotency  requestHash, commandUUID, createdAt, expires (S),
//	                             expiresAt N (epoch seconds, rounded up; TTL)
//
// Views are put whole on condition attribute_not_exists(pk) when the
// previous version is 0, version = :prev otherwise. Four GSIs list them,
// each keyed by a write-sharded string: the key's prefix, "#", and the
// view's shard, a function of its UUID alone (shardOf: its last 8 bytes
// modulo Config.IndexShards, default 64), so a view keeps its shard for
// life and an index partition takes 1/IndexShards of a key's writes. The
// listing GSIs' sort key is listOrder (B, 28 bytes: createdAt seconds with
// the sign bit flipped, nanoseconds, UUID, big-endian), read backwards, so
// newest first (createdAt, then UUID, descending):
//
//	byKind           listKind = "workflow#" k                 all workflows        KEYS_ONLY
//	byStatus         listStatus = status "#" k                executions by status KEYS_ONLY
//	byWorkflowShard  listWorkflowShard = workflowUUID "#" k   a workflow's         INCLUDE listStatus
//
// All executions are the merge of every status's shards; a workflow's
// executions with a status are its byWorkflowShard shards with a
// FilterExpression on the listStatus it projects (DynamoDB reads and
// charges the entries it drops, at 0.5 read units per 4 KB of entries,
// but no view is read for them). A fourth GSI, byDue (dueShard = "due#" k,
// sort key dueOrder: listOrder of the execution's due time,
// model.Execution.Due, and its UUID, read forwards), is sparse: it holds
// the executions the cleanup must look at some time, and ListDue reads it
// up to a time, with the one partition ("due") that builds before 2
// December 2026 wrote. The due time of an execution whose quick steps
// follow each other stays the same (DueAt coarsens the times it checks
// for stuck work), so most puts leave its entry alone.
//
// A listing is a k-way merge of its partitions: each is Queried for its
// share of the page and a little more (ExclusiveStartKey built from the
// store.Position, which need not be an item, so one cursor resumes every
// shard at the same place whatever was put since), and a partition whose
// entries run out is read on before the merge goes past it. The merged
// entries' views are read with a strongly consistent BatchGetItem; those
// that moved since the GSI entry (GSIs are eventually consistent: a status
// change may not have reached them yet) are dropped and the merge reads on
// until the page is full. A view put a moment ago may be missing from a
// listing on AWS; DynamoDB Local updates its GSIs at once. A page reads
// one partition per shard (all executions: one per shard and status,
// 6 × 64 Queries, at most 32 at once), each counted as at least 0.5
// read units.
//
// An execution's index writes: 3 when it is created (status, workflow
// and due entries), 4 when it ends (the status entry moved: a delete and a
// put; the status its workflow entry projects; its due entry deleted),
// none in between unless its due time changes (2: a delete and a put). The
// busiest partition an execution touches takes 2 of them (its status
// shard of RUNNING: the put and the delete; its workflow's shard: the
// entry and the status update), so a partition's 1,000 write units a
// second carry IndexShards × 500 new executions a second of one workflow.
// The indexes of earlier builds (byWorkflow, byWorkflowStatus, and
// byKind's "execution" and byStatus's unsharded partitions) are no longer
// written; CreateTables leaves them on a table that has them, and views
// put before are listed again once they are next put.
//
// Command statuses: PutCommand is a PutItem on condition
// attribute_not_exists(pk) (a failed condition is nil); FinishCommand an
// UpdateItem on condition attribute_not_exists(pk) OR status = ACCEPTED (a
// failed condition is nil) that keeps the stored type, resource and
// createdAt when the new ones are empty. Idempotency: a PutItem on
// condition attribute_not_exists(pk) OR expiresAt <= now; on a failed
// condition the stored record comes back with the error (ALL_OLD), so no
// read follows. Gets are strongly consistent: a command seen APPLIED means
// its views are already there (read-your-writes).
//
// # Cost per operation
//
// Every call asks for ReturnConsumedCapacity TOTAL and Consumed adds it
// up, with the write units of failed conditional writes that DynamoDB
// charges without reporting them. Measured on DynamoDB Local (which
// charges GSIs as AWS does) with items under 1 KB (writes) and 4 KB
// (reads); a write costs one unit per started KB of the larger of the old
// and the new item, and an index write one unit per index it touches (two
// when an index key changes: a delete and a put):
//
//	Append (any number of events in 1 KB)         1 write
//	Append refused (duplicate or conflict)        1 write
//	Load: all, nothing new, one new item          1 read per 4 KB read (one Query)
//	PutWorkflow, new                              2 writes (item + byKind)
//	PutExecution, new (and due)                   4 writes (item + byStatus, byWorkflowShard, byDue)
//	PutExecution, same status, createdAt, due     1 write (no GSI key changes)
//	PutExecution, status changed, no longer due   5 writes (item + byStatus × 2 + byWorkflowShard + byDue)
//	PutExecution/PutWorkflow refused (stale)      1 write
//	GetWorkflow, GetExecution, GetCommand         1 read
//	ListExecutions, page of n                     0.5 read per Query (per 4 KB of GSI entries) + n reads
//	PutCommand, FinishCommand (done or no-op)     1 write
//	ClaimIdempotencyKey, first or duplicate       1 write
//
// (DynamoDB Local charges nothing for a Query that finds no entry; the
// figures of docs/cost.md count 0.5 read units for every Query, as AWS
// rounds a read up.)
//
// # Errors
//
// A ConditionalCheckFailedException (matched with errors.As, never by its
// text) becomes: in Append, store.ErrDuplicate if the existing item (ALL_OLD)
// holds one of the batch's eventUUIDs, else store.ErrConflict; in
// PutWorkflow and PutExecution, store.ErrConflict; in ClaimIdempotencyKey,
// store.ErrDuplicate with the stored record; in PutCommand and
// FinishCommand, nil. A missing item is store.ErrNotFound, a malformed
// call store.ErrInvalid (checked before anything is sent). Every error is
// a *store.Error naming the operation and the id; other DynamoDB errors
// (throttling after the SDK's retries, a missing table) are wrapped in it
// unchanged, and a done context is reported before any request is sent.
package table
