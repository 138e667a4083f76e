package table

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/workflowd/workflowd/internal/backoff"
)

// tableWait bounds how long CreateTables waits for a table or an index to
// become ACTIVE (DynamoDB Local: at once; AWS: seconds for a new table,
// longer for an index backfill on a table with data).
const tableWait = 10 * time.Minute

// CreateTables makes the two tables of cfg, on-demand (PAY_PER_REQUEST),
// and waits until they are ACTIVE. It is idempotent: an existing table is
// kept and completed (the events table's stream enabled with NEW_IMAGE, a
// missing listing GSI of the views table created, TTL on expiresAt
// enabled). It returns an error if an existing table has other keys, its
// stream another view type, a listing GSI other keys, or TTL another
// attribute: those need a person, not a retry.
func CreateTables(ctx context.Context, client *dynamodb.Client, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := createEvents(ctx, client, cfg.EventsTable); err != nil {
		return fmt.Errorf("create events table %s: %w", cfg.EventsTable, err)
	}
	if err := createViews(ctx, client, cfg.ViewsTable); err != nil {
		return fmt.Errorf("create views table %s: %w", cfg.ViewsTable, err)
	}
	return nil
}

func key(name string, t types.KeyType) types.KeySchemaElement {
	return types.KeySchemaElement{AttributeName: aws.String(name), KeyType: t}
}

func attrDef(name string, t types.ScalarAttributeType) types.AttributeDefinition {
	return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: t}
}

var newImageStream = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage}

func createEvents(ctx context.Context, client *dynamodb.Client, name string) error {
	keys := []types.KeySchemaElement{key(attrAggregateID, types.KeyTypeHash), key(attrSeq, types.KeyTypeRange)}
	desc, err := ensureTable(ctx, client, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		BillingMode:          types.BillingModePayPerRequest,
		KeySchema:            keys,
		AttributeDefinitions: []types.AttributeDefinition{attrDef(attrAggregateID, types.ScalarAttributeTypeS), attrDef(attrSeq, types.ScalarAttributeTypeN)},
		StreamSpecification:  newImageStream,
	})
	if err != nil {
		return err
	}
	if !sameKeys(desc.KeySchema, keys) {
		return fmt.Errorf("the table exists with other keys")
	}
	switch sp := desc.StreamSpecification; {
	case sp == nil || !aws.ToBool(sp.StreamEnabled):
		if _, err := client.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(name), StreamSpecification: newImageStream}); err != nil {
			return fmt.Errorf("enable stream: %w", err)
		}
		return waitActive(ctx, client, name, "")
	case sp.StreamViewType != types.StreamViewTypeNewImage:
		return fmt.Errorf("the table's stream has view type %s, want %s", sp.StreamViewType, types.StreamViewTypeNewImage)
	}
	return nil
}

func viewsAttributeDefinitions() []types.AttributeDefinition {
	defs := []types.AttributeDefinition{
		attrDef(attrPK, types.ScalarAttributeTypeS),
		attrDef(attrSK, types.ScalarAttributeTypeS),
		attrDef(attrListOrder, types.ScalarAttributeTypeB),
		attrDef(attrDueOrder, types.ScalarAttributeTypeB),
	}
	for _, ix := range listIndexes {
		defs = append(defs, attrDef(ix.attr, types.ScalarAttributeTypeS))
	}
	return defs
}

func listIndexKeys(attr, order string) []types.KeySchemaElement {
	return []types.KeySchemaElement{key(attr, types.KeyTypeHash), key(order, types.KeyTypeRange)}
}

// ViewsIndexes returns the GSIs CreateTables gives the views table; a
// deployment's template must declare the same.
func ViewsIndexes() []types.GlobalSecondaryIndex {
	var gsis []types.GlobalSecondaryIndex
	for _, ix := range listIndexes {
		gsis = append(gsis, types.GlobalSecondaryIndex{
			IndexName:  aws.String(ix.name),
			KeySchema:  listIndexKeys(ix.attr, ix.order),
			Projection: ix.projection(),
		})
	}
	return gsis
}

// projection is what ix copies from the item: its keys, and the
// attributes it includes.
func (ix gsi) projection() *types.Projection {
	if len(ix.include) == 0 {
		return &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly}
	}
	return &types.Projection{ProjectionType: types.ProjectionTypeInclude, NonKeyAttributes: ix.include}
}

// sameProjection reports whether an existing index projects what ix does.
func (ix gsi) sameProjection(p *types.Projection) bool {
	want := ix.projection()
	if p == nil || p.ProjectionType != want.ProjectionType {
		return false
	}
	got := slices.Clone(p.NonKeyAttributes)
	slices.Sort(got)
	w := slices.Clone(want.NonKeyAttributes)
	slices.Sort(w)
	return slices.Equal(got, w)
}

func createViews(ctx context.Context, client *dynamodb.Client, name string) error {
	keys := []types.KeySchemaElement{key(attrPK, types.KeyTypeHash), key(attrSK, types.KeyTypeRange)}
	gsis := ViewsIndexes()
	desc, err := ensureTable(ctx, client, &dynamodb.CreateTableInput{
		TableName:              aws.String(name),
		BillingMode:            types.BillingModePayPerRequest,
		KeySchema:              keys,
		AttributeDefinitions:   viewsAttributeDefinitions(),
		GlobalSecondaryIndexes: gsis,
	})
	if err != nil {
		return err
	}
	if !sameKeys(desc.KeySchema, keys) {
		return fmt.Errorf("the table exists with other keys")
	}
	// Complete an older table: one index at a time, as DynamoDB requires.
	// (The indexes of earlier builds that no view is written to any more,
	// byWorkflow and byWorkflowStatus, are left to the operator to delete.)
	for _, ix := range listIndexes {
		i := slices.IndexFunc(desc.GlobalSecondaryIndexes, func(g types.GlobalSecondaryIndexDescription) bool {
			return aws.ToString(g.IndexName) == ix.name
		})
		if i >= 0 {
			g := desc.GlobalSecondaryIndexes[i]
			if !sameKeys(g.KeySchema, listIndexKeys(ix.attr, ix.order)) {
				return fmt.Errorf("index %s exists with other keys", ix.name)
			}
			if !ix.sameProjection(g.Projection) {
				return fmt.Errorf("index %s exists with another projection", ix.name)
			}
			continue
		}
		_, err := client.UpdateTable(ctx, &dynamodb.UpdateTableInput{
			TableName:            aws.String(name),
			AttributeDefinitions: viewsAttributeDefinitions(),
			GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
				IndexName:  aws.String(ix.name),
				KeySchema:  listIndexKeys(ix.attr, ix.order),
				Projection: ix.projection(),
			}}},
		})
		if err != nil {
			return fmt.Errorf("create index %s: %w", ix.name, err)
		}
		if err := waitActive(ctx, client, name, ix.name); err != nil {
			return err
		}
	}
	return ensureTTL(ctx, client, name)
}

func ensureTTL(ctx context.Context, client *dynamodb.Client, name string) error {
	d, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("describe TTL: %w", err)
	}
	if t := d.TimeToLiveDescription; t != nil {
		switch t.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			if a := aws.ToString(t.AttributeName); a != attrExpiresAt {
				return fmt.Errorf("TTL is on attribute %s, want %s", a, attrExpiresAt)
			}
			return nil
		case types.TimeToLiveStatusDisabling:
			return fmt.Errorf("TTL is being disabled; try again once it is")
		}
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(attrExpiresAt), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable TTL: %w", err)
	}
	return nil
}

// ensureTable creates the table unless it exists, waits until it is
// ACTIVE, and describes it.
func ensureTable(ctx context.Context, client *dynamodb.Client, in *dynamodb.CreateTableInput) (*types.TableDescription, error) {
	_, err := client.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return nil, err
	}
	name := aws.ToString(in.TableName)
	if err := waitActive(ctx, client, name, ""); err != nil {
		return nil, err
	}
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: in.TableName})
	if err != nil {
		return nil, err
	}
	return out.Table, nil
}

// waitActive polls until the table (and the named index, if any) is ACTIVE.
func waitActive(ctx context.Context, client *dynamodb.Client, name, index string) error {
	ctx, cancel := context.WithTimeout(ctx, tableWait)
	defer cancel()
	for attempt := 1; ; attempt++ {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		var missing *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &missing) { // a table being created may not be found yet
			return err
		}
		if err == nil && active(out.Table, index) {
			return nil
		}
		if err := backoff.Sleep(ctx, backoff.Exponential(attempt, 50*time.Millisecond, 5*time.Second)); err != nil {
			what := "table " + name
			if index != "" {
				what = "index " + index + " of " + what
			}
			return fmt.Errorf("%s is not ACTIVE after %v: %w", what, tableWait, err)
		}
	}
}

func active(t *types.TableDescription, index string) bool {
	if t.TableStatus != types.TableStatusActive {
		return false
	}
	for _, g := range t.GlobalSecondaryIndexes {
		if (index == "" || aws.ToString(g.IndexName) == index) && g.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	if index == "" {
		return true
	}
	return slices.ContainsFunc(t.GlobalSecondaryIndexes, func(g types.GlobalSecondaryIndexDescription) bool {
		return aws.ToString(g.IndexName) == index
	})
}

func sameKeys(a, b []types.KeySchemaElement) bool {
	return slices.EqualFunc(a, b, func(x, y types.KeySchemaElement) bool {
		return aws.ToString(x.AttributeName) == aws.ToString(y.AttributeName) && x.KeyType == y.KeyType
	})
}
