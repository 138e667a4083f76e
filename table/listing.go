package table

import (
	"bytes"
	"context"
	"encoding/binary"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
)

// DefaultIndexShards is the number of partitions each listing key is
// spread over when Config.IndexShards is 0. An index partition absorbs
// about 1,000 write units a second; an execution costs its busiest index
// partition 2 of them (its entry in a status partition put when it starts
// and deleted when it ends; in its workflow's partition, the entry and
// the status it projects), so 64 shards carry about 32,000 new executions
// a second of one workflow before the first partition throttles
// (docs/cost.md, "Partition heat").
const DefaultIndexShards = 64

// MaxIndexShards bounds Config.IndexShards: a listing of all executions
// reads one partition per shard and status.
const MaxIndexShards = 256

// shards returns the configured number of shards.
func (c Config) shards() int {
	if c.IndexShards <= 0 {
		return DefaultIndexShards
	}
	return c.IndexShards
}

// shardOf is the shard of a view: a function of its UUID alone, so a view
// keeps its shard for life and a put moves an entry only when the status
// or the due time in its key changes. The UUID's last 8 bytes are random
// in a version 4 UUID and hash output in a version 5 one.
func shardOf(id uuid.UUID, shards int) int {
	return int(binary.BigEndian.Uint64(id[8:]) % uint64(shards))
}

func shardKey(prefix string, shard int) string { return prefix + "#" + strconv.Itoa(shard) }

// The GSIs of the views table (CreateTables makes them; template.yaml
// declares the same). Each is keyed by a write-sharded string and a
// binary sort key.
type gsi struct {
	name, attr, order string
	include           []string // non-key attributes projected (none: KEYS_ONLY)
}

var (
	// byKind lists workflows: listKind = "workflow#" shard.
	indexByKind = gsi{name: "byKind", attr: attrListKind, order: attrListOrder}
	// byStatus lists executions by status: listStatus = status "#" shard.
	// All executions are the merge of every status's shards.
	indexByStatus = gsi{name: "byStatus", attr: attrListStatus, order: attrListOrder}
	// byWorkflowShard lists a workflow's executions: listWorkflowShard =
	// workflowUUID "#" shard. It projects listStatus, so a listing by
	// workflow and status filters in the Query instead of reading views.
	indexByWorkflow = gsi{name: "byWorkflowShard", attr: attrListWorkflowShard, order: attrListOrder, include: []string{attrListStatus}}
	// byDue is sparse, the executions with a due time: dueShard = "due#"
	// shard, sorted by dueOrder, read forwards.
	indexByDue = gsi{name: "byDue", attr: attrDueShard, order: attrDueOrder}
)

var listIndexes = []gsi{indexByKind, indexByStatus, indexByWorkflow, indexByDue}

// source is one index partition a listing reads, with the filter its
// entries must pass.
type source struct {
	index gsi
	value string // the partition key
	// statusPrefix, if set, keeps only entries whose projected listStatus
	// starts with it (a FilterExpression: DynamoDB reads and charges the
	// rest, but they cost no item reads).
	statusPrefix string
}

// sources returns the shards of one partition key prefix of ix.
func (s *Store) sources(ix gsi, prefix, statusPrefix string) []source {
	out := make([]source, s.cfg.shards())
	for k := range out {
		out[k] = source{index: ix, value: shardKey(prefix, k), statusPrefix: statusPrefix}
	}
	return out
}

// listing is a merged read of several index partitions, all sorted by the
// same kind of sort key: newest first (descending) or, for forward,
// earliest first.
type listing struct {
	sources []source
	kind    string // the sk of the listed items
	forward bool
	upTo    []byte     // forward only: sort keys up to this one
	after   *uuid.UUID // where to resume: the position's ID ...
	order   []byte     // ... and sort key bytes (need not be an item's)
}

// cursor reads one source in chunks.
type cursor struct {
	src  source
	in   *dynamodb.QueryInput
	buf  []map[string]types.AttributeValue
	done bool
}

// mergeChunk is the least a cursor asks for at once; each source's first
// Query asks for its share of the page and a little more, since the
// shards of a key fill evenly.
const mergeChunk = 4

// queryLimit bounds the Queries of a listing in flight at once.
const queryLimit = 32

// list returns up to limit current views of l, in order: a k-way merge of
// its sources' GSI entries (Queries of each, lazily, a chunk at a time),
// then strongly consistent BatchGetItems of the views they name, leaving
// out those that moved since their entry was written (GSIs are eventually
// consistent) and reading on until the page is full.
func (s *Store) list(ctx context.Context, op string, l listing, limit int) ([]map[string]types.AttributeValue, error) {
	if limit < 1 || limit > store.MaxListLimit {
		return nil, invalid(op, "", 0, "limit %d, want 1..%d", limit, store.MaxListLimit)
	}
	curs := make([]*cursor, len(l.sources))
	for i, src := range l.sources {
		curs[i] = &cursor{src: src, in: s.queryInput(l, src)}
	}
	first := max(mergeChunk, limit/len(curs)+limit/(2*len(curs))+2)
	if err := s.fill(ctx, op, curs, first); err != nil {
		return nil, err
	}
	var out []map[string]types.AttributeValue
	for len(out) < limit {
		var cands []map[string]types.AttributeValue
		var from []source
		for len(cands) < limit-len(out) {
			best := -1
			for i, c := range curs {
				if len(c.buf) == 0 {
					continue
				}
				if best < 0 || l.before(c.buf[0], curs[best].buf[0]) {
					best = i
				}
			}
			if best < 0 {
				break
			}
			c := curs[best]
			cands = append(cands, c.buf[0])
			from = append(from, c.src)
			c.buf = c.buf[1:]
			if len(c.buf) == 0 && !c.done {
				// Its next entry may come before every other head.
				if err := s.fill(ctx, op, []*cursor{c}, max(mergeChunk, (limit-len(out)-len(cands))/len(curs)+1)); err != nil {
					return nil, err
				}
			}
		}
		if len(cands) == 0 {
			break
		}
		views, err := s.batchGet(ctx, op, cands)
		if err != nil {
			return nil, wrap(op, "", 0, err)
		}
		for i, entry := range cands {
			pk, _ := getS(entry, attrPK)
			view, ok := views[pk]
			if !ok {
				continue // gone since the GSI was written (TTL, a race)
			}
			if !stillIn(view, entry, from[i]) {
				continue // moved since: the GSI lags behind the view
			}
			out = append(out, view)
		}
	}
	return out, nil
}

// stillIn reports whether view is where its GSI entry says.
func stillIn(view, entry map[string]types.AttributeValue, src source) bool {
	ix := src.index
	want, _ := getB(entry, ix.order)
	got, _ := getB(view, ix.order)
	if v, _ := getS(view, ix.attr); v != src.value || !bytes.Equal(got, want) {
		return false
	}
	if src.statusPrefix != "" {
		st, _ := getS(view, attrListStatus)
		return strings.HasPrefix(st, src.statusPrefix)
	}
	return true
}

// before reports whether entry a comes before b in the listing's order.
// Sort keys are unique (they end with the UUID), so there are no ties
// within a source; across sources an item is in only one.
func (l listing) before(a, b map[string]types.AttributeValue) bool {
	order := l.sources[0].index.order
	ka, _ := getB(a, order)
	kb, _ := getB(b, order)
	if l.forward {
		return bytes.Compare(ka, kb) < 0
	}
	return bytes.Compare(ka, kb) > 0
}

func (s *Store) queryInput(l listing, src source) *dynamodb.QueryInput {
	ix := src.index
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.cfg.ViewsTable),
		IndexName:                 aws.String(ix.name),
		KeyConditionExpression:    aws.String("#k = :k"),
		ExpressionAttributeNames:  map[string]string{"#k": ix.attr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":k": attrS(src.value)},
		ScanIndexForward:          aws.Bool(l.forward),
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	}
	if l.upTo != nil {
		in.KeyConditionExpression = aws.String("#k = :k AND #o <= :o")
		in.ExpressionAttributeNames["#o"] = ix.order
		in.ExpressionAttributeValues[":o"] = attrB(l.upTo)
	}
	if src.statusPrefix != "" {
		in.FilterExpression = aws.String("begins_with(#s, :s)")
		in.ExpressionAttributeNames["#s"] = attrListStatus
		in.ExpressionAttributeValues[":s"] = attrS(src.statusPrefix)
	}
	if l.after != nil {
		// The position need not be an existing item: DynamoDB resumes
		// after the key wherever it would sort, in every shard alike.
		in.ExclusiveStartKey = map[string]types.AttributeValue{
			attrPK:   attrS(l.after.String()),
			attrSK:   attrS(l.kind),
			ix.attr:  attrS(src.value),
			ix.order: attrB(l.order),
		}
	}
	return in
}

// fill queries each cursor that has no entry buffered and is not done,
// concurrently, until it has at least one entry or is done (a filtered
// Query may return none and a next key).
func (s *Store) fill(ctx context.Context, op string, curs []*cursor, chunk int) error {
	var todo []*cursor
	for _, c := range curs {
		if len(c.buf) == 0 && !c.done {
			todo = append(todo, c)
		}
	}
	errs := make([]error, len(todo))
	sem := make(chan struct{}, queryLimit)
	var wg sync.WaitGroup
	for i, c := range todo {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			for len(c.buf) == 0 && !c.done && errs[i] == nil {
				errs[i] = s.query(ctx, op, c, chunk)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return wrap(op, "", 0, err)
		}
	}
	return nil
}

// query reads the cursor's next chunk.
func (s *Store) query(ctx context.Context, op string, c *cursor, chunk int) error {
	c.in.Limit = aws.Int32(int32(min(chunk, store.MaxListLimit)))
	page, err := s.db.Query(ctx, c.in)
	if err != nil {
		return err
	}
	if page.ConsumedCapacity != nil {
		s.addRead(op, *page.ConsumedCapacity)
	}
	c.buf = append(c.buf, page.Items...)
	if len(page.LastEvaluatedKey) == 0 {
		c.done = true
	} else {
		c.in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	return nil
}

// executionSources returns the index partitions a listing of executions
// reads for its filter: a workflow's shards (filtered by status if one is
// given), a status's shards, or every status's shards.
func (s *Store) executionSources(wf uuid.UUID, status string) []source {
	switch {
	case wf != uuid.Nil && status != "":
		return s.sources(indexByWorkflow, wf.String(), status+"#")
	case wf != uuid.Nil:
		return s.sources(indexByWorkflow, wf.String(), "")
	case status != "":
		return s.sources(indexByStatus, status, "")
	}
	var all []source
	for _, st := range model.ExecutionStatuses {
		all = append(all, s.sources(indexByStatus, st, "")...)
	}
	return all
}
