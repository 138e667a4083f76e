package table_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/internal/awstest"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store"
	"github.com/workflowd/workflowd/store/storetest"
	"github.com/workflowd/workflowd/table"
)

// features are the optional guarantees the table store declares: none.
// One conditional PutItem per append cannot see an eventUUID of the log at
// a new seq, nor a first seq inside an earlier append or past the next one,
// without a read (docs/cost.md, "One item per append").
var features = storetest.Features{DuplicateAtAnySeq: false, NextSeqChecked: false}

// MustClient returns a DynamoDB client for the local stack (the test is
// skipped without it, or fails under CI=true).
func MustClient(tb testing.TB) *dynamodb.Client {
	tb.Helper()
	cfg := awstest.Config(tb, "dynamodb")
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = true // DynamoDB Local's 4xx answers fail it
	})
}

// MustCreate creates a fresh pair of tables. They are left in place: the
// local stack keeps them in memory and drops them when it stops, and
// deleting tables with indexes while other tests add indexes to theirs can
// leave DynamoDB Local's index jobs stuck (see
// TestCreateTablesCompletesAnOlderTable).
func MustCreate(tb testing.TB, client *dynamodb.Client) table.Config {
	tb.Helper()
	ctx := context.Background()
	cfg := table.Config{EventsTable: awstest.Name("events"), ViewsTable: awstest.Name("views")}
	if err := table.CreateTables(ctx, client, cfg); err != nil {
		tb.Fatalf("CreateTables(%+v): got error %v, want nil", cfg, err)
	}
	return cfg
}

// MustNew returns a store on fresh tables.
func MustNew(tb testing.TB) *table.Store {
	tb.Helper()
	client := MustClient(tb)
	return table.New(client, MustCreate(tb, client))
}

// TestCreateTablesCompletesAnOlderTable creates bare tables (no stream, no
// GSI, no TTL) and has CreateTables complete them.
//
// It runs first (before TestStore): DynamoDB Local 3.3.1 leaves an index it
// adds to an existing table CREATING for ever once it holds a few dozen
// tables with indexes (its CreateGSIJobScheduler keeps polling without
// taking the job). Should it still happen, each attempt has a minute, and a
// stuck one is started over on fresh tables, three times at most.
func TestCreateTablesCompletesAnOlderTable(t *testing.T) {
	client := MustClient(t)
	var cfg table.Config
	for attempt := 1; ; attempt++ {
		var err error
		if cfg, err = completeBareTables(t, client); err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "is not ACTIVE") && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("CreateTables on bare tables: got error %v, want nil", err)
		}
		t.Logf("attempt %d: %v; again on fresh tables", attempt, err)
	}
	ctx := context.Background()
	events, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(cfg.EventsTable)})
	if err != nil {
		t.Fatalf("DescribeTable(events): %v", err)
	}
	if sp := events.Table.StreamSpecification; sp == nil || !aws.ToBool(sp.StreamEnabled) || sp.StreamViewType != types.StreamViewTypeNewImage {
		t.Fatalf("events table stream: got %+v, want enabled with NEW_IMAGE", sp)
	}
	views, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(cfg.ViewsTable)})
	if err != nil {
		t.Fatalf("DescribeTable(views): %v", err)
	}
	if n, want := len(views.Table.GlobalSecondaryIndexes), len(table.ViewsIndexes()); n != want {
		t.Fatalf("views table: got %d indexes, want %d (three listings and byDue)", n, want)
	}
	// And the store works on them.
	s := table.New(client, cfg)
	w := storetest.NewWorkflow(time.Now().UTC(), 1)
	storetest.MustPutWorkflow(t, s, w, 0)
	list, err := s.ListWorkflows(ctx, store.ListQuery{Limit: 10})
	if err != nil || len(list) != 1 || list[0].WorkflowUUID != w.WorkflowUUID {
		t.Fatalf("ListWorkflows: got (%d items, %v), want the one workflow", len(list), err)
	}

	// A table with other keys is refused, not changed.
	other := table.Config{EventsTable: cfg.ViewsTable, ViewsTable: cfg.EventsTable}
	if err := table.CreateTables(ctx, client, other); err == nil {
		t.Fatalf("CreateTables with the tables swapped: got nil error, want one")
	}
}

func TestStore(t *testing.T) {
	client := MustClient(t)
	storetest.Run(t, func(t *testing.T) store.Store { return table.New(client, MustCreate(t, client)) },
		storetest.WithFeatures(features))
}

// TestStoreWithFewShards runs the listings of the conformance suite with
// three shards per listing key, so that each shard holds several of a
// test's items and a merged page takes more than one Query of a shard.
func TestStoreWithFewShards(t *testing.T) {
	client := MustClient(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		cfg := MustCreate(t, client)
		cfg.IndexShards = 3
		return table.New(client, cfg)
	}, storetest.WithFeatures(features), storetest.Only("listing/", "due/"))
}

func TestCreateTablesIsIdempotent(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	cfg := MustCreate(t, client)
	if err := table.CreateTables(ctx, client, cfg); err != nil {
		t.Fatalf("CreateTables again: got error %v, want nil", err)
	}
	events, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(cfg.EventsTable)})
	if err != nil {
		t.Fatalf("DescribeTable(events): %v", err)
	}
	if sp := events.Table.StreamSpecification; sp == nil || !aws.ToBool(sp.StreamEnabled) || sp.StreamViewType != types.StreamViewTypeNewImage {
		t.Fatalf("events table stream: got %+v, want enabled with NEW_IMAGE", sp)
	}
	views, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(cfg.ViewsTable)})
	if err != nil {
		t.Fatalf("DescribeTable(views): %v", err)
	}
	var got []string
	for _, g := range views.Table.GlobalSecondaryIndexes {
		got = append(got, fmt.Sprintf("%s %s %v", aws.ToString(g.IndexName), g.Projection.ProjectionType, g.Projection.NonKeyAttributes))
	}
	slices.Sort(got)
	want := []string{"byDue KEYS_ONLY []", "byKind KEYS_ONLY []", "byStatus KEYS_ONLY []", "byWorkflowShard INCLUDE [listStatus]"}
	if !slices.Equal(got, want) {
		t.Fatalf("views table indexes: got %v, want %v", got, want)
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(cfg.ViewsTable)})
	if err != nil {
		t.Fatalf("DescribeTimeToLive(views): %v", err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || d.TimeToLiveStatus != types.TimeToLiveStatusEnabled || aws.ToString(d.AttributeName) != "expiresAt" {
		t.Fatalf("views table TTL: got %+v, want ENABLED on expiresAt", d)
	}
	for _, d := range []*types.TableDescription{events.Table, views.Table} {
		if b := d.BillingModeSummary; b == nil || b.BillingMode != types.BillingModePayPerRequest {
			t.Fatalf("table %s: got billing mode %+v, want %s", aws.ToString(d.TableName), b, types.BillingModePayPerRequest)
		}
	}
}

func TestDuplicateIsStoreErrorAndCostsAWrite(t *testing.T) {
	ctx := context.Background()
	s := MustNew(t)
	events := storetest.NewEvents(storetest.NewAggregateID(), 1, 2)
	storetest.MustAppend(t, s, events...)
	_, w0 := s.Consumed()
	if w0 < 1 {
		t.Fatalf("Consumed after an append: got %v write units, want at least 1", w0)
	}
	err := s.Append(ctx, events)
	if !errors.Is(err, store.ErrDuplicate) {
		t.Fatalf("Append(again): got error %v, want one wrapping %q", err, store.ErrDuplicate)
	}
	var se *store.Error
	if !errors.As(err, &se) || se.Op != "append" || se.AggregateID != events[0].AggregateID {
		t.Fatalf("Append(again): got error %v (%T), want a *store.Error of op append on %s", err, err, events[0].AggregateID)
	}
	if _, w1 := s.Consumed(); w1 <= w0 {
		t.Fatalf("Consumed after a refused append: got %v write units, want more than %v (a failed condition costs a write)", w1, w0)
	}
	r0, _ := s.Consumed()
	storetest.MustLoad(t, s, events[0].AggregateID, 0)
	if r1, _ := s.Consumed(); r1 <= r0 {
		t.Fatalf("Consumed after a Load: got %v read units, want more than %v", r1, r0)
	}
}

// TestCapacityPerOperation measures what each operation costs, as the cost
// benchmark will count it, and holds the figures doc.go states.
func TestCapacityPerOperation(t *testing.T) {
	ctx := context.Background()
	s := MustNew(t)
	at := time.Now().UTC()
	wf := storetest.NewWorkflow(at, 1)
	x := storetest.NewExecution(wf.WorkflowUUID, model.ExecutionPending, at, 1)
	cmd := model.CommandStatus{CommandUUID: uuid.New(), Type: model.CommandIncrementExecution,
		AggregateID: model.ExecutionAggregateID(x.WorkflowExecutionUUID), CreatedAt: at, UpdatedAt: at}
	rec := store.IdempotencyRecord{Key: "POST /v1/workflows\x00" + uuid.NewString(), RequestHash: "h",
		CommandUUID: cmd.CommandUUID, CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour)}
	agg := model.ExecutionAggregateID(x.WorkflowExecutionUUID)
	step := func(seq int64, n int) []model.Event {
		events := storetest.NewEvents(agg, seq, n)
		for i := range events {
			events[i].CommandUUID, events[i].OccurredAt = cmd.CommandUUID, at
		}
		return events
	}
	x2 := x.Clone()
	x2.Version, x2.CurrentStep = 2, 0
	x3 := x2.Clone()
	x3.Version, x3.Status = 3, model.ExecutionRunning
	// Each view's due time, as the projector sets it (with SQS's longest
	// delay): the store indexes what it says.
	for _, v := range []*model.Execution{&x, &x2, &x3} {
		v.Due, _ = v.DueAt(15 * time.Minute)
	}
	tests := []struct {
		name        string
		call        func() error
		read, write float64
	}{
		{"append_1_event", func() error { return s.Append(ctx, step(1, 1)) }, 0, 1},
		{"append_3_events", func() error { return s.Append(ctx, step(2, 3)) }, 0, 1},
		{"append_refused", func() error { s.Append(ctx, step(2, 1)); return nil }, 0, 1},
		{"load_all", func() error { _, err := s.Load(ctx, agg, 0); return err }, 1, 0},
		{"load_nothing_new", func() error { _, err := s.Load(ctx, agg, 4); return err }, 1, 0},
		{"load_one_new_item", func() error { _, err := s.Load(ctx, agg, 1); return err }, 1, 0},
		{"put_workflow_new", func() error { return s.PutWorkflow(ctx, wf, 0) }, 0, 2},
		// A new execution: its item, its entries in its status's shard, in
		// its workflow's shard and (it is due some time) in a due shard.
		{"put_execution_new", func() error { return s.PutExecution(ctx, x, 0) }, 0, 4},
		{"put_execution_same_status", func() error { return s.PutExecution(ctx, x2, 1) }, 0, 1},
		// Its item, its status entry moved (a delete and a put), the status
		// its workflow entry projects, and it leaves byDue.
		{"put_execution_new_status", func() error { return s.PutExecution(ctx, x3, 2) }, 0, 5},
		{"put_execution_stale", func() error { s.PutExecution(ctx, x3, 2); return nil }, 0, 1},
		{"get_execution", func() error { _, err := s.GetExecution(ctx, x.WorkflowExecutionUUID); return err }, 1, 0},
		{"list_executions_of_workflow", func() error {
			_, err := s.ListExecutions(ctx, store.ExecutionQuery{ListQuery: store.ListQuery{Limit: 10}, WorkflowUUID: wf.WorkflowUUID})
			return err
		}, 1.5, 0},
		{"put_command", func() error { return s.PutCommand(ctx, cmd) }, 0, 1},
		{"put_command_again", func() error { return s.PutCommand(ctx, cmd) }, 0, 1},
		{"finish_command", func() error {
			c := cmd
			c.Status = model.CommandApplied
			return s.FinishCommand(ctx, c)
		}, 0, 1},
		{"finish_command_again", func() error {
			c := cmd
			c.Status = model.CommandRejected
			return s.FinishCommand(ctx, c)
		}, 0, 1},
		{"get_command", func() error { _, err := s.GetCommand(ctx, cmd.CommandUUID); return err }, 1, 0},
		{"claim_idempotency_key", func() error { _, err := s.ClaimIdempotencyKey(ctx, rec); return err }, 0, 1},
		{"claim_idempotency_key_again", func() error {
			_, err := s.ClaimIdempotencyKey(ctx, rec)
			if !errors.Is(err, store.ErrDuplicate) {
				return fmt.Errorf("got %v, want a duplicate", err)
			}
			return nil
		}, 0, 1},
	}
	for _, tt := range tests {
		r0, w0 := s.Consumed()
		if err := tt.call(); err != nil {
			t.Fatalf("%s: got error %v, want nil", tt.name, err)
		}
		r1, w1 := s.Consumed()
		t.Logf("%-30s read %4.1f  write %4.1f", tt.name, r1-r0, w1-w0)
		if r1-r0 != tt.read || w1-w0 != tt.write {
			t.Errorf("%s: consumed (read %v, write %v), want (%v, %v)", tt.name, r1-r0, w1-w0, tt.read, tt.write)
		}
	}
}

// TestLoadAcrossItems loads after every seq of a log of several multi-event
// appends, which takes each path of Load (the newest item alone, the items
// after a boundary, an item cut in two).
func TestLoadAcrossItems(t *testing.T) {
	s := MustNew(t)
	agg := storetest.NewAggregateID()
	all := storetest.NewEvents(agg, 1, 9)
	for _, r := range [][2]int{{0, 3}, {3, 4}, {4, 6}, {6, 9}} {
		storetest.MustAppend(t, s, all[r[0]:r[1]]...)
	}
	for after := 0; after <= 10; after++ {
		t.Run(fmt.Sprintf("after_%d", after), func(t *testing.T) {
			want := all[min(after, len(all)):]
			storetest.SameEvents(t, fmt.Sprintf("Load after %d", after), storetest.MustLoad(t, s, agg, int64(after)), want)
		})
	}
}

// TestMisplacedAppendBreaksLoad shows what NextSeqChecked not being
// declared means: an append that does not start at the aggregate's next
// seq is stored, and Load then refuses the log rather than fold it.
func TestMisplacedAppendBreaksLoad(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		first int64
	}{
		{"inside_an_earlier_batch", 2},
		{"past_the_next_seq", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := MustNew(t)
			agg := storetest.NewAggregateID()
			storetest.MustAppend(t, s, storetest.NewEvents(agg, 1, 2)...)
			storetest.MustAppend(t, s, storetest.NewEvents(agg, tt.first, 1)...)
			if _, err := s.Load(ctx, agg, 0); err == nil {
				t.Fatalf("Load of a log with an append at seq %d after 1..2: got nil error, want one", tt.first)
			}
		})
	}
}

// TestStreamRecordCarriesTheEvents reads the events table's stream and
// decodes a record's NewImage with EventsFromItem, as a projector on AWS
// does.
func TestStreamRecordCarriesTheEvents(t *testing.T) {
	ctx := context.Background()
	awsCfg := awstest.Config(t, "dynamodb")
	client := MustClient(t)
	cfg := MustCreate(t, client)
	s := table.New(client, cfg)
	agg := storetest.NewAggregateID()
	want := storetest.NewEvents(agg, 1, 3)
	want[2].CommandUUID = uuid.New() // not the item's: kept per event
	want[1].OccurredAt = want[1].OccurredAt.Add(time.Hour)
	want[0].Data = nil
	storetest.MustAppend(t, s, want...)

	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(cfg.EventsTable)})
	if err != nil {
		t.Fatalf("DescribeTable: %v", err)
	}
	streams := dynamodbstreams.NewFromConfig(awsCfg)
	sd, err := streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: desc.Table.LatestStreamArn})
	if err != nil {
		t.Fatalf("DescribeStream: %v", err)
	}
	var records []streamtypes.Record
	deadline := time.Now().Add(10 * time.Second)
	for _, shard := range sd.StreamDescription.Shards {
		it, err := streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
			StreamArn: desc.Table.LatestStreamArn, ShardId: shard.ShardId, ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatalf("GetShardIterator: %v", err)
		}
		iter := it.ShardIterator
		for iter != nil && len(records) == 0 && time.Now().Before(deadline) {
			out, err := streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatalf("GetRecords: %v", err)
			}
			records = append(records, out.Records...)
			iter = out.NextShardIterator
		}
	}
	if len(records) != 1 {
		t.Fatalf("stream: got %d records, want 1", len(records))
	}
	image, err := attributevalue.FromDynamoDBStreamsMap(records[0].Dynamodb.NewImage)
	if err != nil {
		t.Fatalf("FromDynamoDBStreamsMap: %v", err)
	}
	got, err := table.EventsFromItem(image)
	if err != nil {
		t.Fatalf("EventsFromItem(NewImage): got error %v, want nil", err)
	}
	storetest.SameEvents(t, "events of the stream record", got, want)

	var item table.EventItem
	if err := attributevalue.UnmarshalMap(image, &item); err != nil {
		t.Fatalf("UnmarshalMap(NewImage) into EventItem: %v", err)
	}
	if got, err = item.Decode(); err != nil {
		t.Fatalf("EventItem.Decode: got error %v, want nil", err)
	}
	storetest.SameEvents(t, "events of the stream record's EventItem", got, want)
	if item.LastSeq != 3 || len(item.EventUUIDs) != 3 {
		t.Fatalf("EventItem: got lastSeq %d and %d eventUUIDs, want 3 and 3", item.LastSeq, len(item.EventUUIDs))
	}
}

func TestPing(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	cfg := MustCreate(t, client)
	if err := table.New(client, cfg).Ping(ctx); err != nil {
		t.Fatalf("Ping: got error %v, want nil", err)
	}
	tests := []struct {
		name string
		cfg  table.Config
	}{
		{"missing_views_table", table.Config{EventsTable: cfg.EventsTable, ViewsTable: awstest.Name("missing")}},
		{"empty_table_name", table.Config{EventsTable: cfg.EventsTable}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := table.New(client, tt.cfg).Ping(ctx); err == nil {
				t.Fatalf("Ping(%+v): got nil error, want one", tt.cfg)
			}
		})
	}
}

// A large view (here an execution of 40 steps, about 6 KB of JSON) is
// stored deflated, round-trips unchanged, and costs the write units of its
// deflated size.
func TestLargeViewIsStoredDeflated(t *testing.T) {
	s := MustNew(t)
	ctx := context.Background()
	x := storetest.NewExecution(uuid.New(), model.ExecutionRunning, time.Now().UTC().Truncate(time.Millisecond), 1)
	for i := range 40 {
		x.Steps = append(x.Steps, model.StepState{Name: fmt.Sprintf("step-%02d-with-a-long-descriptive-name", i), Type: model.StepManual, Status: model.StepPending})
	}
	raw, _ := json.Marshal(x)
	if len(raw) < 4000 {
		t.Fatalf("test view is only %d bytes", len(raw))
	}
	if err := s.PutExecution(ctx, x, 0); err != nil {
		t.Fatal(err)
	}
	_, w0 := s.Consumed()
	x2 := x
	x2.Version = 2
	if err := s.PutExecution(ctx, x2, 1); err != nil {
		t.Fatal(err)
	}
	_, w1 := s.Consumed()
	got, err := s.GetExecution(ctx, x.WorkflowExecutionUUID)
	if err != nil {
		t.Fatal(err)
	}
	storetest.SameJSON(t, "large view", got, x2)
	// The second put keeps status and createdAt, so no index is written:
	// its cost is the item's own, under 2 KB deflated.
	if second := w1 - w0; second > 2 {
		t.Fatalf("a %d-byte view cost %.1f write units to update, want at most 2", len(raw), second)
	}
}

// A finished execution's view carries the TTL attribute (its finish plus
// the retention); a running one does not.
func TestFinishedExecutionExpiresAfterTheRetention(t *testing.T) {
	ctx := context.Background()
	client := MustClient(t)
	cfg := MustCreate(t, client)
	cfg.Retention = time.Hour
	s := table.New(client, cfg)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	x := storetest.NewExecution(uuid.New(), model.ExecutionRunning, at, 1)
	storetest.MustPutExecution(t, s, x, 0)
	expires := func() (string, bool) {
		t.Helper()
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(cfg.ViewsTable), ConsistentRead: aws.Bool(true),
			Key: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: x.WorkflowExecutionUUID.String()},
				"sk": &types.AttributeValueMemberS{Value: "execution"},
			}})
		if err != nil {
			t.Fatal(err)
		}
		n, ok := out.Item["expiresAt"].(*types.AttributeValueMemberN)
		if !ok {
			return "", false
		}
		return n.Value, true
	}
	if v, ok := expires(); ok {
		t.Fatalf("a running execution expires at %s", v)
	}
	done := x.Clone()
	done.Status, done.Version, done.UpdatedAt = model.ExecutionFailed, 2, at.Add(time.Minute)
	storetest.MustPutExecution(t, s, done, 1)
	if v, ok := expires(); !ok || v != fmt.Sprint(at.Add(time.Hour+time.Minute).Unix()) {
		t.Fatalf("the finished execution: expiresAt %q %v, want its finish plus an hour", v, ok)
	}
}

// completeBareTables creates a bare pair of tables and runs CreateTables on
// them.
func completeBareTables(t *testing.T, client *dynamodb.Client) (table.Config, error) {
	ctx := context.Background()
	cfg := table.Config{EventsTable: awstest.Name("events"), ViewsTable: awstest.Name("views")}
	bare := []struct{ name, pk, sk string }{
		{cfg.EventsTable, "aggregateId", "seq"},
		{cfg.ViewsTable, "pk", "sk"},
	}
	for _, b := range bare {
		skType := types.ScalarAttributeTypeS
		if b.sk == "seq" {
			skType = types.ScalarAttributeTypeN
		}
		_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:   aws.String(b.name),
			BillingMode: types.BillingModePayPerRequest,
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(b.pk), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(b.sk), KeyType: types.KeyTypeRange},
			},
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(b.pk), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String(b.sk), AttributeType: skType},
			},
		})
		if err != nil {
			t.Fatalf("CreateTable(%s): %v", b.name, err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return cfg, table.CreateTables(ctx, client, cfg)
}
