package heat

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestAttribution(t *testing.T) {
	schemas := map[string]Schema{"views": {PK: "pk", Indexes: map[string]Index{
		"byStatus": {PK: "listStatus"},
		"byWf":     {PK: "listWf", Include: []string{"listStatus"}},
	}}}
	s := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	put := func(status string) *dynamodb.PutItemInput {
		item := map[string]types.AttributeValue{"pk": s("x1"), "sk": s("execution"), "listWf": s("wf#3")}
		if status != "" {
			item["listStatus"] = s(status + "#3")
		}
		return &dynamodb.PutItemInput{TableName: aws.String("views"), Item: item}
	}
	type want struct {
		where, key string
		units      float64
	}
	tests := []struct {
		name   string
		params any
		result any
		err    error
		want   []want // the units each step adds
	}{
		{"new_item", put("RUNNING"), &dynamodb.PutItemOutput{}, nil,
			[]want{{"views", "x1", 1}, {"views/byStatus", "RUNNING#3", 1}, {"views/byWf", "wf#3", 1}}},
		{"same_keys", put("RUNNING"), &dynamodb.PutItemOutput{}, nil,
			[]want{{"views", "x1", 2}, {"views/byStatus", "RUNNING#3", 1}, {"views/byWf", "wf#3", 1}}},
		{"key_and_projection_change", put("SUCCEEDED"), &dynamodb.PutItemOutput{}, nil,
			[]want{{"views", "x1", 3}, {"views/byStatus", "RUNNING#3", 2}, {"views/byStatus", "SUCCEEDED#3", 1}, {"views/byWf", "wf#3", 2}}},
		{"refused", put("FAILED"), nil, &types.ConditionalCheckFailedException{}, // charged on the table, no index change
			[]want{{"views", "x1", 4}, {"views/byStatus", "SUCCEEDED#3", 1}, {"views/byWf", "wf#3", 2}}},
		{"key_removed", put(""), &dynamodb.PutItemOutput{}, nil,
			[]want{{"views", "x1", 5}, {"views/byStatus", "SUCCEEDED#3", 2}, {"views/byWf", "wf#3", 3}}},
		{"empty_query_costs_half_a_unit", &dynamodb.QueryInput{TableName: aws.String("views"), IndexName: aws.String("byStatus"),
			KeyConditionExpression: aws.String("#k = :k AND #o <= :o"), ExpressionAttributeNames: map[string]string{"#k": "listStatus", "#o": "listOrder"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":k": s("RUNNING#1"), ":o": s("x")}}, &dynamodb.QueryOutput{}, nil, nil},
	}
	r := NewRecorder(schemas)
	for _, tt := range tests {
		r.observe(tt.params, tt.result, tt.err)
		for _, w := range tt.want {
			if got := r.writes[w.where][w.key]; got != w.units {
				t.Fatalf("%s: %s %s has %v write units, want %v", tt.name, w.where, w.key, got, w.units)
			}
		}
	}
	if got := r.reads["views/byStatus"]["RUNNING#1"]; got != 0.5 {
		t.Fatalf("empty query: %v read units, want 0.5", got)
	}
	lines := r.Writes()
	if len(lines) != 3 || lines[0].Where != "views" || lines[0].Units != 5 {
		t.Fatalf("report: %+v", lines)
	}
}
