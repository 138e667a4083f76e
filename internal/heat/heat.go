// Package heat attributes the DynamoDB capacity a process consumes to the
// partition keys it falls on, for the partition-heat report of make bench:
// an SDK middleware sees every call, and a Recorder adds up, per table and
// per GSI, the write and read units of each partition key.
//
// DynamoDB throttles a partition past about 1,000 write units and 3,000
// read units a second, whatever the table's total. What a load run on this
// machine measures is each key's share of the units per execution; the
// ceiling on AWS follows from it, since the share does not depend on the
// rate as long as the choice of key does not depend on time (the store's
// shards are a function of the view's UUID).
//
// Units are counted as DynamoDB charges them, from what the requests
// carry: a write one unit per started KB of the item (an item's size is
// the sum of its attribute names and values, as DynamoDB sizes it, near
// enough), a GSI one unit per entry put, deleted or updated (an update: a
// projected attribute changed), which the Recorder works out from the last
// GSI keys it saw of each item; a refused conditional write its units on
// the table alone (DynamoDB charges them and reports nothing). Reads are
// the ConsumedCapacity DynamoDB reports, at least 0.5 units a Query (the
// AWS minimum; DynamoDB Local reports 0 for one that finds nothing).
package heat

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"
)

// Schema is the key schema of a table: its partition key attribute and,
// per GSI, its partition key attribute and the non-key attributes it
// projects.
type Schema struct {
	PK      string
	Indexes map[string]Index
}

// Index is a GSI's partition key attribute and projected attributes.
type Index struct {
	PK      string
	Include []string
}

// Describe reads the schemas of tables.
func Describe(ctx context.Context, db *dynamodb.Client, tables ...string) (map[string]Schema, error) {
	out := map[string]Schema{}
	for _, name := range tables {
		d, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return nil, err
		}
		s := Schema{PK: hashKey(d.Table.KeySchema), Indexes: map[string]Index{}}
		for _, g := range d.Table.GlobalSecondaryIndexes {
			ix := Index{PK: hashKey(g.KeySchema)}
			if g.Projection != nil {
				ix.Include = g.Projection.NonKeyAttributes
			}
			s.Indexes[aws.ToString(g.IndexName)] = ix
		}
		out[name] = s
	}
	return out, nil
}

func hashKey(ks []types.KeySchemaElement) string {
	for _, k := range ks {
		if k.KeyType == types.KeyTypeHash {
			return aws.ToString(k.AttributeName)
		}
	}
	return ""
}

// Recorder adds up units per partition key. It is safe for concurrent use.
type Recorder struct {
	schemas map[string]Schema

	mu     sync.Mutex
	last   map[string]map[string]string // table "\x00" item key → index → its entry (key "\x00" projected values)
	writes map[string]map[string]float64
	reads  map[string]map[string]float64
}

// NewRecorder records the calls on the tables of schemas.
func NewRecorder(schemas map[string]Schema) *Recorder {
	return &Recorder{schemas: schemas, last: map[string]map[string]string{},
		writes: map[string]map[string]float64{}, reads: map[string]map[string]float64{}}
}

// Config returns cfg with the Recorder's middleware added.
func (r *Recorder) Config(cfg aws.Config) aws.Config {
	cfg.APIOptions = append(append([]func(*middleware.Stack) error(nil), cfg.APIOptions...), func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("partitionHeat",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				r.observe(in.Parameters, out.Result, err)
				return out, md, err
			}), middleware.After)
	})
	return cfg
}

func (r *Recorder) add(m map[string]map[string]float64, where, key string, units float64) {
	if m[where] == nil {
		m[where] = map[string]float64{}
	}
	m[where][key] += units
}

func conditionFailed(err error) bool {
	var c *types.ConditionalCheckFailedException
	return errors.As(err, &c)
}

// observe counts one call.
func (r *Recorder) observe(params, result any, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch in := params.(type) {
	case *dynamodb.PutItemInput:
		table := aws.ToString(in.TableName)
		s, ok := r.schemas[table]
		if !ok || (err != nil && !conditionFailed(err)) {
			return
		}
		pk := str(in.Item[s.PK])
		r.add(r.writes, table, pk, writeUnits(in.Item))
		if err != nil {
			return // refused: no index changes
		}
		r.indexWrites(table, s, itemKey(in.Item), in.Item)
	case *dynamodb.UpdateItemInput:
		table := aws.ToString(in.TableName)
		s, ok := r.schemas[table]
		if !ok || (err != nil && !conditionFailed(err)) {
			return
		}
		// The store's updates (command statuses) set no GSI attribute.
		r.add(r.writes, table, str(in.Key[s.PK]), 1)
	case *dynamodb.DeleteItemInput:
		table := aws.ToString(in.TableName)
		s, ok := r.schemas[table]
		if !ok || err != nil {
			return
		}
		r.add(r.writes, table, str(in.Key[s.PK]), 1)
		r.indexWrites(table, s, itemKey(in.Key), nil)
	case *dynamodb.GetItemInput:
		table := aws.ToString(in.TableName)
		if s, ok := r.schemas[table]; ok && err == nil {
			r.add(r.reads, table, str(in.Key[s.PK]), capacity(result.(*dynamodb.GetItemOutput).ConsumedCapacity))
		}
	case *dynamodb.QueryInput:
		table := aws.ToString(in.TableName)
		s, ok := r.schemas[table]
		if !ok || err != nil {
			return
		}
		where, pk := table, s.PK
		if in.IndexName != nil {
			where += "/" + aws.ToString(in.IndexName)
			pk = s.Indexes[aws.ToString(in.IndexName)].PK
		}
		units := math.Max(0.5, capacity(result.(*dynamodb.QueryOutput).ConsumedCapacity))
		r.add(r.reads, where, str(in.ExpressionAttributeValues[keyPlaceholder(in, pk)]), units)
	case *dynamodb.BatchGetItemInput:
		if err != nil {
			return
		}
		out := result.(*dynamodb.BatchGetItemOutput)
		for table, ka := range in.RequestItems {
			s, ok := r.schemas[table]
			if !ok || len(ka.Keys) == 0 {
				continue
			}
			var total float64
			for _, c := range out.ConsumedCapacity {
				if aws.ToString(c.TableName) == table {
					total += aws.ToFloat64(c.CapacityUnits)
				}
			}
			for _, k := range ka.Keys {
				r.add(r.reads, table, str(k[s.PK]), total/float64(len(ka.Keys)))
			}
		}
	}
}

// indexWrites counts the GSI entries a write of item (nil: a delete) puts,
// deletes or updates, against the entries the item had.
func (r *Recorder) indexWrites(table string, s Schema, key string, item map[string]types.AttributeValue) {
	id := table + "\x00" + key
	before := r.last[id]
	after := map[string]string{}
	for name, ix := range s.Indexes {
		if item == nil {
			break
		}
		v, ok := item[ix.PK]
		if !ok {
			continue
		}
		entry := str(v)
		for _, a := range ix.Include {
			entry += "\x00" + str(item[a])
		}
		after[name] = entry
	}
	for name := range s.Indexes {
		old, had := before[name]
		now, has := after[name]
		oldKey, newKey := entryKey(old), entryKey(now)
		switch {
		case had && has && oldKey == newKey:
			if old != now {
				r.add(r.writes, table+"/"+name, newKey, 1) // a projected attribute changed
			}
		default:
			if had {
				r.add(r.writes, table+"/"+name, oldKey, 1)
			}
			if has {
				r.add(r.writes, table+"/"+name, newKey, 1)
			}
		}
	}
	if item == nil {
		delete(r.last, id)
	} else {
		r.last[id] = after
	}
}

// keyPlaceholder returns the value placeholder the key condition gives
// the partition key attribute pk ("#a = :a" with #a naming pk: ":a").
func keyPlaceholder(in *dynamodb.QueryInput, pk string) string {
	cond := aws.ToString(in.KeyConditionExpression)
	for name, attr := range in.ExpressionAttributeNames {
		if attr != pk {
			continue
		}
		if _, rest, ok := strings.Cut(cond, name+" = "); ok {
			v, _, _ := strings.Cut(rest, " ")
			return v
		}
	}
	return ""
}

func entryKey(entry string) string {
	k, _, _ := strings.Cut(entry, "\x00")
	return k
}

func itemKey(item map[string]types.AttributeValue) string {
	names := make([]string, 0, 2)
	for _, n := range []string{"pk", "sk", "aggregateId", "seq"} {
		if _, ok := item[n]; ok {
			names = append(names, n+"="+str(item[n]))
		}
	}
	return strings.Join(names, ",")
}

func capacity(c *types.ConsumedCapacity) float64 {
	if c == nil {
		return 0
	}
	return aws.ToFloat64(c.CapacityUnits)
}

// str renders an attribute value as a key: S and N as they are, B as hex.
func str(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return v.Value
	case *types.AttributeValueMemberB:
		return fmt.Sprintf("%x", v.Value)
	}
	return ""
}

// writeUnits is an item's write units: one per started KB.
func writeUnits(item map[string]types.AttributeValue) float64 {
	n := 0
	for name, v := range item {
		n += len(name) + size(v)
	}
	return math.Max(1, math.Ceil(float64(n)/1024))
}

func size(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return len(v.Value)/2 + 1
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	}
	return 8
}

// Line is the report of one table or index.
type Line struct {
	Where        string  // table, or table/index
	Units        float64 // in all
	Keys         int     // distinct partition keys
	Hottest      string  // the partition key with the most units
	HottestUnits float64
	// Groups is the number of key prefixes (before the last "#"); a
	// sharded key spreads one prefix over its shards.
	HottestGroup      string
	HottestGroupUnits float64
	GroupShards       int // distinct keys of the hottest group
}

// Writes and Reads return the report lines, busiest first.
func (r *Recorder) Writes() []Line { return r.lines(r.writes) }
func (r *Recorder) Reads() []Line  { return r.lines(r.reads) }

func (r *Recorder) lines(m map[string]map[string]float64) []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Line
	for where, keys := range m {
		l := Line{Where: where, Keys: len(keys)}
		groups := map[string]float64{}
		shards := map[string]int{}
		for k, u := range keys {
			l.Units += u
			if u > l.HottestUnits || u == l.HottestUnits && k < l.Hottest {
				l.Hottest, l.HottestUnits = k, u
			}
			g := k
			if i := strings.LastIndexByte(k, '#'); i >= 0 {
				g = k[:i]
			}
			groups[g] += u
			shards[g]++
		}
		for g, u := range groups {
			if u > l.HottestGroupUnits || u == l.HottestGroupUnits && g < l.HottestGroup {
				l.HottestGroup, l.HottestGroupUnits = g, u
			}
		}
		l.GroupShards = shards[l.HottestGroup]
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Units > out[j].Units })
	return out
}
