package table

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/internal/backoff"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// Attribute names of the views table.
const (
	attrPK      = "pk"      // partition key (S): the view's UUID, the command's UUID, the idempotency key
	attrSK      = "sk"      // sort key (S): the item's kind
	attrVersion = "version" // N: the view's version (workflow Seq, execution Version)
	attrView    = "view"    // S: the view as JSON (small views)
	attrViewZ   = "viewz"   // B: the view as deflated JSON (views over compressAbove bytes)
	attrRecent  = "recent"  // B: the view's RecentCommands, 16 bytes each, absent when none

	attrListKind          = "listKind"          // S: "workflow#" shard (GSI byKind)
	attrListStatus        = "listStatus"        // S: an execution's status "#" shard (GSI byStatus)
	attrListWorkflowShard = "listWorkflowShard" // S: an execution's workflowUUID "#" shard (GSI byWorkflowShard)
	attrListOrder         = "listOrder"         // B: the sort key of every listing GSI, see listOrder
	attrDueShard          = "dueShard"          // S: "due#" shard when the execution is due some time (GSI byDue)
	attrDueOrder          = "dueOrder"          // B: listOrder(Due, UUID), the sort key of byDue
)

// dueLegacy is the one byDue partition of builds before 2 December 2026:
// ListDue reads it with the shards, so that an execution whose view was
// put by one of them is still found.
const dueLegacy = "due"

// Kinds of item in the views table (their sk).
const (
	kindWorkflow    = "workflow"
	kindExecution   = "execution"
	kindCommand     = "command"
	kindIdempotency = "idempotency"
)

// listOrder is the 28-byte sort key of the listing GSIs: createdAt
// (seconds since 1970 with the sign bit flipped, 8 bytes big-endian, then
// nanoseconds, 4 bytes) and the UUID's 16 bytes. Byte order is (createdAt,
// UUID) order, so a backward Query is newest first.
func listOrder(createdAt time.Time, id uuid.UUID) []byte {
	b := make([]byte, 28)
	binary.BigEndian.PutUint64(b, uint64(createdAt.Unix())^(1<<63))
	binary.BigEndian.PutUint32(b[8:], uint32(createdAt.Nanosecond()))
	copy(b[12:], id[:])
	return b
}

// listOrderTime is the time of a listOrder value.
func listOrderTime(b []byte) (time.Time, error) {
	if len(b) != 28 {
		return time.Time{}, fmt.Errorf("list order of %d bytes, want 28", len(b))
	}
	return time.Unix(int64(binary.BigEndian.Uint64(b)^(1<<63)), int64(binary.BigEndian.Uint32(b[8:]))).UTC(), nil
}

// getDue returns the due time of an execution item (zero if it has none).
func getDue(item map[string]types.AttributeValue) (time.Time, error) {
	v, ok := item[attrDueOrder].(*types.AttributeValueMemberB)
	if !ok {
		return time.Time{}, nil
	}
	return listOrderTime(v.Value)
}

func viewKey(kind string, id uuid.UUID) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: attrS(id.String()), attrSK: attrS(kind)}
}

// GetWorkflow returns the workflow view with its Seq (a strongly consistent
// GetItem), or an error wrapping store.ErrNotFound.
func (s *Store) GetWorkflow(ctx context.Context, id uuid.UUID) (model.Workflow, error) {
	const op = "get workflow"
	var w model.Workflow
	err := s.getView(ctx, op, kindWorkflow, id, func(item map[string]types.AttributeValue) error {
		var err error
		w, err = decodeWorkflow(item)
		return err
	})
	return w, err
}

// GetExecution returns the execution view (a strongly consistent GetItem),
// or an error wrapping store.ErrNotFound.
func (s *Store) GetExecution(ctx context.Context, id uuid.UUID) (model.Execution, error) {
	const op = "get execution"
	var x model.Execution
	err := s.getView(ctx, op, kindExecution, id, func(item map[string]types.AttributeValue) error {
		var err error
		x, err = decodeExecution(item)
		return err
	})
	return x, err
}

func (s *Store) getView(ctx context.Context, op, kind string, id uuid.UUID, decode func(map[string]types.AttributeValue) error) error {
	if err := s.enter(ctx, op, id.String()); err != nil {
		return err
	}
	item, err := s.getItem(ctx, op, viewKey(kind, id))
	if err != nil {
		return wrap(op, id.String(), 0, err)
	}
	if item == nil {
		return wrap(op, id.String(), 0, store.ErrNotFound)
	}
	if err := decode(item); err != nil {
		return wrap(op, id.String(), 0, err)
	}
	return nil
}

// getItem is a strongly consistent GetItem of the views table; a missing
// item is nil.
func (s *Store) getItem(ctx context.Context, op string, key map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:              aws.String(s.cfg.ViewsTable),
		Key:                    key,
		ConsistentRead:         aws.Bool(true),
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		return nil, err
	}
	if out.ConsumedCapacity != nil {
		s.addRead(op, *out.ConsumedCapacity)
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return out.Item, nil
}

// PutWorkflow stores w, keyed by w.WorkflowUUID with version w.Seq, if the
// stored view's Seq is prevSeq (0: there must be none): one conditional
// PutItem. It returns an error wrapping store.ErrConflict when the
// condition fails, and store.ErrInvalid for a nil WorkflowUUID or a w.Seq
// not above prevSeq.
func (s *Store) PutWorkflow(ctx context.Context, w model.Workflow, prevSeq int64) error {
	const op = "put workflow"
	id := w.WorkflowUUID
	if err := s.enter(ctx, op, id.String()); err != nil {
		return err
	}
	if err := validateView(op, id, w.Seq, prevSeq); err != nil {
		return err
	}
	item, err := viewItem(kindWorkflow, id, w.Seq, w, w.RecentCommands)
	if err != nil {
		return wrap(op, id.String(), w.Seq, err)
	}
	item[attrListKind] = attrS(shardKey(kindWorkflow, shardOf(id, s.cfg.shards())))
	item[attrListOrder] = attrB(listOrder(w.CreatedAt, id))
	return s.putView(ctx, op, id, w.Seq, prevSeq, item)
}

// PutExecution stores x, keyed by x.WorkflowExecutionUUID with version
// x.Version, if the stored view's Version is prevVersion (0: there must be
// none): one conditional PutItem, which also moves the execution between
// the listing GSIs when its status changes. It returns an error wrapping
// store.ErrConflict when the condition fails, and store.ErrInvalid for a
// nil uuid, a Version not above prevVersion or a status that is not UTF-8
// or holds a NUL byte.
func (s *Store) PutExecution(ctx context.Context, x model.Execution, prevVersion int64) error {
	const op = "put execution"
	id := x.WorkflowExecutionUUID
	if err := s.enter(ctx, op, id.String()); err != nil {
		return err
	}
	if err := validateView(op, id, x.Version, prevVersion); err != nil {
		return err
	}
	if err := validateStatus(op, x.Status); err != nil {
		return err
	}
	item, err := viewItem(kindExecution, id, x.Version, x, x.RecentCommands)
	if err != nil {
		return wrap(op, id.String(), x.Version, err)
	}
	shard := shardOf(id, s.cfg.shards())
	item[attrListWorkflowShard] = attrS(shardKey(x.WorkflowUUID.String(), shard))
	if x.Status != "" { // an empty string cannot be a GSI key
		item[attrListStatus] = attrS(shardKey(x.Status, shard))
	}
	item[attrListOrder] = attrB(listOrder(x.CreatedAt, id))
	if !x.Due.IsZero() {
		item[attrDueShard] = attrS(shardKey(dueLegacy, shard))
		item[attrDueOrder] = attrB(listOrder(x.Due, id))
	}
	if s.cfg.Retention > 0 && model.IsTerminal(x.Status) {
		item[attrExpiresAt] = attrN(ceilSeconds(x.UpdatedAt.Add(s.cfg.Retention)))
	}
	return s.putView(ctx, op, id, x.Version, prevVersion, item)
}

func (s *Store) putView(ctx context.Context, op string, id uuid.UUID, version, prev int64, item map[string]types.AttributeValue) error {
	in := &dynamodb.PutItemInput{
		TableName:                           aws.String(s.cfg.ViewsTable),
		Item:                                item,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		ReturnConsumedCapacity:              types.ReturnConsumedCapacityTotal,
	}
	if prev == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(#pk)")
		in.ExpressionAttributeNames = map[string]string{"#pk": attrPK}
	} else {
		in.ConditionExpression = aws.String("#v = :prev")
		in.ExpressionAttributeNames = map[string]string{"#v": attrVersion}
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":prev": attrN(prev)}
	}
	out, err := s.db.PutItem(ctx, in)
	if old, ok := conditionFailed(err); ok {
		s.addFailedWrite(op, old, itemSize(item))
		stored, _ := getN(old, attrVersion)
		return wrap(op, id.String(), version, fmt.Errorf("%w: stored version %d, expected %d", store.ErrConflict, stored, prev))
	}
	if err != nil {
		return wrap(op, id.String(), version, err)
	}
	s.addWrite(op, out.ConsumedCapacity)
	return nil
}

func validateView(op string, id uuid.UUID, version, prev int64) error {
	return store.ValidateViewPut(op, id, version, prev)
}

func validateStatus(op, status string) error {
	if !utf8.ValidString(status) || strings.IndexByte(status, 0) >= 0 {
		return invalid(op, "", 0, "status %q is not UTF-8 without NUL bytes", status)
	}
	return nil
}

func decodeWorkflow(item map[string]types.AttributeValue) (model.Workflow, error) {
	var w model.Workflow
	version, err := decodeView(item, &w)
	w.Seq = version
	if err == nil {
		w.RecentCommands, err = getRecent(item)
	}
	return w, err
}

func decodeExecution(item map[string]types.AttributeValue) (model.Execution, error) {
	var x model.Execution
	version, err := decodeView(item, &x)
	x.Version = version
	if err == nil {
		x.RecentCommands, err = getRecent(item)
	}
	if err == nil {
		x.Due, err = getDue(item)
	}
	// encoding/json turns a nil RawMessage into null and back into the
	// bytes "null"; give the caller back the nil it stored.
	x.Input = unNull(x.Input)
	x.Output = unNull(x.Output)
	for i := range x.Steps {
		x.Steps[i].Output = unNull(x.Steps[i].Output)
	}
	return x, err
}

// compressAbove is the JSON size past which a view is stored deflated: a
// write unit covers 1 KB, and an execution view of ten steps (about 1.5 KB
// of JSON) deflates to well under it.
const compressAbove = 700

// setView puts a view's JSON in item, deflated when that saves write units.
func setView(item map[string]types.AttributeValue, j []byte) error {
	if len(j) <= compressAbove {
		item[attrView] = attrS(string(j))
		return nil
	}
	var buf bytes.Buffer
	zw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(j); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	item[attrViewZ] = attrB(buf.Bytes())
	return nil
}

// viewJSON returns a view item's JSON, inflating it when it is stored
// deflated.
func viewJSON(item map[string]types.AttributeValue) ([]byte, bool, error) {
	if j, ok := getS(item, attrView); ok {
		return []byte(j), true, nil
	}
	z, ok := getB(item, attrViewZ)
	if !ok {
		return nil, false, nil
	}
	j, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(z)), maxItemBytes*8))
	return j, true, err
}

func decodeView(item map[string]types.AttributeValue, v any) (int64, error) {
	version, ok := getN(item, attrVersion)
	j, ok2, err := viewJSON(item)
	if err != nil {
		return 0, corrupt("view: %v", err)
	}
	if !ok || !ok2 {
		return 0, corrupt("view item lacks version or view")
	}
	if err := json.Unmarshal(j, v); err != nil {
		return 0, corrupt("view: %v", err)
	}
	return version, nil
}

// viewItem is the part of a view's item every kind has: its key, its
// version, its JSON (deflated when large) and its recent commands.
func viewItem(kind string, id uuid.UUID, version int64, view any, recent []uuid.UUID) (map[string]types.AttributeValue, error) {
	j, err := json.Marshal(view)
	if err != nil {
		return nil, err
	}
	item := viewKey(kind, id)
	item[attrVersion] = attrN(version)
	if err := setView(item, j); err != nil {
		return nil, err
	}
	setRecent(item, recent)
	return item, nil
}

// setRecent stores a view's RecentCommands as one binary attribute (64
// bytes for four, against 156 as JSON: the item stays within a write unit).
func setRecent(item map[string]types.AttributeValue, ids []uuid.UUID) {
	if len(ids) == 0 {
		return
	}
	b := make([]byte, 0, 16*len(ids))
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	item[attrRecent] = attrB(b)
}

func getRecent(item map[string]types.AttributeValue) ([]uuid.UUID, error) {
	b, ok := getB(item, attrRecent)
	if !ok {
		return nil, nil
	}
	if len(b)%16 != 0 {
		return nil, corrupt("view: %s of %d bytes, not a multiple of 16", attrRecent, len(b))
	}
	ids := make([]uuid.UUID, len(b)/16)
	for i := range ids {
		copy(ids[i][:], b[16*i:])
	}
	return ids, nil
}

func unNull(r json.RawMessage) json.RawMessage {
	if string(r) == "null" {
		return nil
	}
	return r
}

// ListWorkflows returns a page of workflow views, newest first (CreatedAt
// descending, then WorkflowUUID descending), after q.After: a merge of the
// byKind GSI's workflow shards and a strongly consistent BatchGetItem of
// the views it names. The GSI is eventually consistent: a workflow put a
// moment ago may be missing. It returns store.ErrInvalid when q.Limit is
// outside 1..store.MaxListLimit.
func (s *Store) ListWorkflows(ctx context.Context, q store.ListQuery) ([]model.Workflow, error) {
	const op = "list workflows"
	if err := s.enter(ctx, op, ""); err != nil {
		return nil, err
	}
	l := listing{sources: s.sources(indexByKind, kindWorkflow, ""), kind: kindWorkflow}
	l.after, l.order = listPosition(q.After)
	items, err := s.list(ctx, op, l, q.Limit)
	if err != nil {
		return nil, err
	}
	out := make([]model.Workflow, len(items))
	for i, item := range items {
		if out[i], err = decodeWorkflow(item); err != nil {
			return nil, wrap(op, "", 0, err)
		}
	}
	return out, nil
}

// ListExecutions returns a page of execution views, newest first
// (CreatedAt descending, then WorkflowExecutionUUID descending), after
// q.After, filtered by q.WorkflowUUID and q.Status when set: a merge of the
// shards of the GSI that matches the filter (executionSources) and a
// strongly consistent BatchGetItem of the views they name. Views that no
// longer match the filter (the GSI lags behind a status change) are left
// out and the page is filled from further in the GSI. It returns
// store.ErrInvalid when q.Limit is outside 1..store.MaxListLimit or
// q.Status is not UTF-8 or holds a NUL byte.
func (s *Store) ListExecutions(ctx context.Context, q store.ExecutionQuery) ([]model.Execution, error) {
	const op = "list executions"
	if err := s.enter(ctx, op, ""); err != nil {
		return nil, err
	}
	if err := validateStatus(op, q.Status); err != nil {
		return nil, err
	}
	l := listing{sources: s.executionSources(q.WorkflowUUID, q.Status), kind: kindExecution}
	l.after, l.order = listPosition(q.After)
	items, err := s.list(ctx, op, l, q.Limit)
	if err != nil {
		return nil, err
	}
	return decodeExecutions(op, items)
}

func decodeExecutions(op string, items []map[string]types.AttributeValue) ([]model.Execution, error) {
	out := make([]model.Execution, len(items))
	for i, item := range items {
		var err error
		if out[i], err = decodeExecution(item); err != nil {
			return nil, wrap(op, "", 0, err)
		}
	}
	return out, nil
}

// listPosition returns where a listing resumes, as list takes it.
func listPosition(p *store.Position) (*uuid.UUID, []byte) {
	if p == nil {
		return nil, nil
	}
	return &p.ID, listOrder(p.CreatedAt, p.ID)
}

// ListDue returns the executions whose due time is at or before q.Before,
// earliest first, after q.After: a merge of the sparse byDue GSI's shards
// (and its one partition of earlier builds) and a strongly consistent
// BatchGetItem of the views it names. The GSI is eventually consistent: an
// execution that became due a moment ago may be missing (the next cleanup
// run finds it), and one whose due time moved since is left out. It
// returns store.ErrInvalid when q.Limit is outside 1..store.MaxListLimit.
func (s *Store) ListDue(ctx context.Context, q store.DueQuery) ([]model.Execution, error) {
	const op = "list due"
	if err := s.enter(ctx, op, ""); err != nil {
		return nil, err
	}
	l := listing{
		sources: append(s.sources(indexByDue, dueLegacy, ""), source{index: indexByDue, value: dueLegacy}),
		kind:    kindExecution, forward: true, upTo: listOrder(q.Before, uuid.Max),
	}
	if q.After != nil {
		l.after, l.order = &q.After.ID, listOrder(q.After.DueAt, q.After.ID)
	}
	items, err := s.list(ctx, op, l, q.Limit)
	if err != nil {
		return nil, err
	}
	return decodeExecutions(op, items)
}

// batchGet reads the views table items whose keys are in entries (GSI
// entries carry them) with strongly consistent BatchGetItems of up to 100
// keys, retrying unprocessed keys, and returns them by pk.
func (s *Store) batchGet(ctx context.Context, op string, entries []map[string]types.AttributeValue) (map[string]map[string]types.AttributeValue, error) {
	out := make(map[string]map[string]types.AttributeValue, len(entries))
	for start := 0; start < len(entries); start += 100 {
		keys := make([]map[string]types.AttributeValue, 0, 100)
		for _, e := range entries[start:min(start+100, len(entries))] {
			keys = append(keys, map[string]types.AttributeValue{attrPK: e[attrPK], attrSK: e[attrSK]})
		}
		req := map[string]types.KeysAndAttributes{
			s.cfg.ViewsTable: {Keys: keys, ConsistentRead: aws.Bool(true)},
		}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt > 0 {
				if err := backoff.Sleep(ctx, retryDelay(attempt)); err != nil {
					return nil, err
				}
			}
			res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{
				RequestItems:           req,
				ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
			})
			if err != nil {
				return nil, err
			}
			s.addRead(op, res.ConsumedCapacity...)
			for _, item := range res.Responses[s.cfg.ViewsTable] {
				pk, _ := getS(item, attrPK)
				out[pk] = item
			}
			req = res.UnprocessedKeys
		}
	}
	return out, nil
}

// retryDelay is the wait before retry attempt n (1, 2, ...) of unprocessed
// keys: 10 ms doubling, at most 1.28 s.
func retryDelay(n int) time.Duration {
	return backoff.Exponential(n, 10*time.Millisecond, 1280*time.Millisecond)
}
