package app_test

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/intrinsics"

	"github.com/workflowd/workflowd/table"
)

// references resolves !Ref, !GetAtt and !Sub to readable placeholders
// ("ref:X", "getatt:X.Arn"), so that the test sees what points where
// (goformation's own handlers resolve a resource reference to nothing).
func references(params map[string]any) *intrinsics.ProcessorOptions {
	ref := func(_ string, in, template any) any {
		if s, ok := in.(string); ok {
			if v, ok := params[s]; ok {
				return v
			}
			if d := at(template, "Parameters", s, "Default"); d != nil {
				return fmt.Sprint(d) // a parameter left at its default (Ref gives a string)
			}
		}
		return fmt.Sprintf("ref:%v", in)
	}
	getatt := func(_ string, in, _ any) any {
		if l, ok := in.([]any); ok {
			parts := make([]string, len(l))
			for i, p := range l {
				parts[i] = fmt.Sprint(p)
			}
			return "getatt:" + strings.Join(parts, ".")
		}
		return fmt.Sprintf("getatt:%v", in)
	}
	sub := func(_ string, in, _ any) any {
		s, _ := in.(string)
		return "sub:" + s
	}
	return &intrinsics.ProcessorOptions{
		IntrinsicHandlerOverrides: map[string]intrinsics.IntrinsicHandler{"Ref": ref, "Fn::GetAtt": getatt, "Fn::Sub": sub},
		ParameterOverrides:        params,
	}
}

// loadTemplate parses template.yaml with goformation, typed and as the
// processed JSON (goformation's typed SAM events miss properties newer than
// its schema, such as FunctionResponseTypes).
func loadTemplate(t *testing.T, params map[string]any) (*cloudformation.Template, map[string]any) {
	t.Helper()
	raw, err := os.ReadFile("../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	processed, err := intrinsics.ProcessYAML(raw, references(params))
	if err != nil {
		t.Fatal(err)
	}
	var doc, forTyped map[string]any
	if err := json.Unmarshal(processed, &doc); err != nil {
		t.Fatal(err)
	}
	// goformation's schema predates the HTTP API's EnableIamAuthorizer and
	// refuses unknown fields: the APIs' Auth is checked on doc instead.
	json.Unmarshal(processed, &forTyped)
	for _, r := range forTyped["Resources"].(map[string]any) {
		if r := r.(map[string]any); r["Type"] == "AWS::Serverless::HttpApi" {
			delete(r["Properties"].(map[string]any), "Auth")
		}
	}
	b, _ := json.Marshal(forTyped)
	typed, err := goformation.ParseJSON(b)
	if err != nil {
		t.Fatalf("goformation: %v", err)
	}
	return typed, doc
}

// at walks a processed document: at(doc, "Resources", "X", "Properties").
func at(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any) string { s, _ := v.(string); return s }

func num(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case string:
		var f float64
		fmt.Sscan(n, &f)
		return f
	}
	return -1
}

// The template holds every part of the SAM deployment (docs/deploy.md lists them).
func TestTemplate(t *testing.T) {
	typed, doc := loadTemplate(t, nil)
	res := func(id string) map[string]any {
		t.Helper()
		r, ok := at(doc, "Resources", id).(map[string]any)
		if !ok {
			t.Fatalf("no resource %s", id)
		}
		return r
	}
	prop := func(id string, path ...string) any { return at(res(id), append([]string{"Properties"}, path...)...) }

	t.Run("sam_and_globals", func(t *testing.T) {
		if str(doc["Transform"]) != "AWS::Serverless-2016-10-31" {
			t.Fatalf("Transform: %v", doc["Transform"])
		}
		g := at(doc, "Globals", "Function")
		if str(at(g, "Runtime")) != "provided.al2023" || str(at(g, "Handler")) != "bootstrap" || fmt.Sprint(at(g, "Architectures")) != "[arm64]" {
			t.Fatalf("Globals.Function: %v", g)
		}
		// The API caps http attempts by the worker's timeout: they must agree.
		if w, f := fmt.Sprint(at(g, "Environment", "Variables", "WORKER_TIMEOUT")), fmt.Sprint(prop("WorkerFunction", "Timeout")); w != f {
			t.Errorf("WORKER_TIMEOUT %s, WorkerFunction's Timeout %s: want them equal", w, f)
		}
	})

	functions := []string{"IamApiFunction", "JwtApiFunction", "WorkerFunction", "StreamFunction", "CleanupFunction"}
	t.Run("functions_build_with_make", func(t *testing.T) {
		makefile, err := os.ReadFile("../Makefile")
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range functions {
			if res(id)["Type"] != "AWS::Serverless::Function" || str(at(res(id), "Metadata", "BuildMethod")) != "makefile" {
				t.Errorf("%s: %v, want a function built by the makefile method", id, res(id)["Type"])
			}
			if !regexp.MustCompile(`(?m)^(build-\w+ )*build-` + id + `( build-\w+)*:`).Match(makefile) {
				t.Errorf("the Makefile has no build-%s target", id)
			}
		}
	})

	t.Run("api_with_iam_or_jwt", func(t *testing.T) {
		p := at(doc, "Parameters", "AuthType")
		if fmt.Sprint(at(p, "AllowedValues")) != "[IAM JWT]" {
			t.Fatalf("AuthType parameter: %v", p)
		}
		if res("IamHttpApi")["Type"] != "AWS::Serverless::HttpApi" || res("IamHttpApi")["Condition"] != "UseIam" ||
			str(prop("IamHttpApi", "Auth", "DefaultAuthorizer")) != "AWS_IAM" {
			t.Errorf("IamHttpApi: %v", res("IamHttpApi"))
		}
		jwt := prop("JwtHttpApi", "Auth")
		if res("JwtHttpApi")["Condition"] != "UseJwt" || str(at(jwt, "DefaultAuthorizer")) != "JwtAuthorizer" ||
			at(jwt, "Authorizers", "JwtAuthorizer", "JwtConfiguration", "issuer") == nil {
			t.Errorf("JwtHttpApi: %v", res("JwtHttpApi"))
		}
		for fn, api := range map[string]string{"IamApiFunction": "IamHttpApi", "JwtApiFunction": "JwtHttpApi"} {
			ev := prop(fn, "Events", "Api")
			if str(at(ev, "Type")) != "HttpApi" || str(at(ev, "Properties", "ApiId")) != "ref:"+api || str(at(ev, "Properties", "Path")) != "/{proxy+}" {
				t.Errorf("%s's event: %v", fn, ev)
			}
		}
	})

	t.Run("topic_queues_dead_letters_subscriptions", func(t *testing.T) {
		if len(typed.GetAllSNSTopicResources()) != 1 {
			t.Errorf("SNS topics: %d, want 1", len(typed.GetAllSNSTopicResources()))
		}
		if min := at(doc, "Parameters", "MaxReceiveCount", "MinValue"); num(min) < 5 {
			t.Errorf("MaxReceiveCount's MinValue %v, want at least 5", min)
		}
		workerTimeout := num(prop("WorkerFunction", "Timeout"))
		for queue, target := range map[string]string{"WorkflowsQueue": "workflows", "ExecutionsQueue": "executions"} {
			rp := prop(queue, "RedrivePolicy")
			dlq := strings.TrimSuffix(strings.TrimPrefix(str(at(rp, "deadLetterTargetArn")), "getatt:"), ".Arn")
			if res(dlq)["Type"] != "AWS::SQS::Queue" || at(rp, "maxReceiveCount") == nil || num(at(rp, "maxReceiveCount")) < 5 {
				t.Errorf("%s's RedrivePolicy: %v", queue, rp)
			}
			if vt := num(prop(queue, "VisibilityTimeout")); vt < 6*workerTimeout {
				t.Errorf("%s's visibility timeout %v, want at least 6 × the worker's %v", queue, vt, workerTimeout)
			}
			found := false
			for id, sub := range typed.GetAllSNSSubscriptionResources() {
				if sub.Endpoint == nil || *sub.Endpoint != "getatt:"+queue+".Arn" {
					continue
				}
				found = true
				if sub.Protocol != "sqs" || sub.RawMessageDelivery == nil || !*sub.RawMessageDelivery ||
					fmt.Sprint(sub.FilterPolicy) != fmt.Sprintf("map[target:[%s]]", target) || sub.TopicArn != "ref:CommandsTopic" {
					t.Errorf("subscription %s: %+v", id, sub)
				}
			}
			if !found {
				t.Errorf("no subscription delivers to %s", queue)
			}
		}
		pol := prop("CommandQueuesPolicy", "PolicyDocument", "Statement")
		stmts, _ := pol.([]any)
		if len(stmts) != 1 || str(at(stmts[0], "Principal", "Service")) != "sns.amazonaws.com" || str(at(stmts[0], "Action")) != "sqs:SendMessage" ||
			str(at(stmts[0], "Condition", "ArnEquals", "aws:SourceArn")) != "ref:CommandsTopic" {
			t.Errorf("queue policy: %v", pol)
		}
	})

	t.Run("tables", func(t *testing.T) {
		tables := typed.GetAllDynamoDBTableResources()
		events, views := tables["EventsTable"], tables["ViewsTable"]
		if events == nil || views == nil {
			t.Fatalf("tables: %v", tables)
		}
		for name, tb := range tables {
			if tb.BillingMode == nil || *tb.BillingMode != "PAY_PER_REQUEST" {
				t.Errorf("%s: billing mode %v, want on demand", name, tb.BillingMode)
			}
		}
		if events.StreamSpecification == nil || events.StreamSpecification.StreamViewType != "NEW_IMAGE" {
			t.Errorf("events table stream: %+v", events.StreamSpecification)
		}
		if ttl := views.TimeToLiveSpecification; ttl == nil || ttl.AttributeName == nil || *ttl.AttributeName != "expiresAt" || !ttl.Enabled {
			t.Errorf("views table TTL: %+v", ttl)
		}
		// The indexes, their keys and projections are what
		// table.CreateTables makes.
		describe := func(name string, keys []string, projection string, include []string) string {
			slices.Sort(include)
			return fmt.Sprintf("%s keys %v projects %s %v", name, keys, projection, include)
		}
		var got, want []string
		for _, g := range views.GlobalSecondaryIndexes {
			var keys []string
			for _, k := range g.KeySchema {
				keys = append(keys, k.AttributeName+" "+k.KeyType)
			}
			var projection string
			if g.Projection.ProjectionType != nil {
				projection = *g.Projection.ProjectionType
			}
			got = append(got, describe(g.IndexName, keys, projection, slices.Clone(g.Projection.NonKeyAttributes)))
		}
		for _, g := range table.ViewsIndexes() {
			var keys []string
			for _, k := range g.KeySchema {
				keys = append(keys, *k.AttributeName+" "+string(k.KeyType))
			}
			want = append(want, describe(*g.IndexName, keys, string(g.Projection.ProjectionType), slices.Clone(g.Projection.NonKeyAttributes)))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("views indexes:\n got %q\nwant %q", got, want)
		}
	})

	t.Run("event_sources", func(t *testing.T) {
		for _, name := range []string{"Workflows", "Executions"} {
			ev := prop("WorkerFunction", "Events", name)
			p := at(ev, "Properties")
			if str(at(ev, "Type")) != "SQS" || fmt.Sprint(at(p, "FunctionResponseTypes")) != "[ReportBatchItemFailures]" ||
				num(at(p, "BatchSize")) < 1 || at(p, "MaximumBatchingWindowInSeconds") == nil || num(at(p, "ScalingConfig", "MaximumConcurrency")) < 2 {
				t.Errorf("worker's %s event: %v", name, ev)
			}
		}
		ev := prop("StreamFunction", "Events", "Events")
		p := at(ev, "Properties")
		if str(at(ev, "Type")) != "DynamoDB" || str(at(p, "Stream")) != "getatt:EventsTable.StreamArn" ||
			at(p, "BisectBatchOnFunctionError") != true || num(at(p, "MaximumRetryAttempts")) < 0 || num(at(p, "MaximumRecordAgeInSeconds")) < 60 ||
			str(at(p, "DestinationConfig", "OnFailure", "Type")) != "SQS" || at(p, "FilterCriteria", "Filters") == nil ||
			fmt.Sprint(at(p, "FunctionResponseTypes")) != "[ReportBatchItemFailures]" || num(at(p, "ParallelizationFactor")) != 1 {
			t.Errorf("stream function's event: %v", ev)
		}
		sched := prop("CleanupFunction", "Events", "EveryMinute")
		if str(at(sched, "Type")) != "Schedule" || str(at(sched, "Properties", "Schedule")) != "rate(1 minute)" {
			t.Errorf("cleanup schedule: %v", sched)
		}
		if v := str(prop("CleanupFunction", "Environment", "Variables", "CLEANUP_INTERVAL")); v != "1m" {
			t.Errorf("cleanup's CLEANUP_INTERVAL: got %q, want 1m, its schedule", v)
		}
		// The reconciliation re-projects and re-dispatches: the cleanup
		// reads the log and writes views like the stream function.
		// The projector marks APPLIED the commands its views forget
		// (UpdateItem of a status), in the stream function and in the
		// cleanup's reconciliation.
		for fn, wants := range map[string][]string{
			"CleanupFunction": {"dynamodb:Query getatt:EventsTable.Arn", "dynamodb:PutItem getatt:ViewsTable.Arn",
				"dynamodb:GetItem getatt:ViewsTable.Arn", "dynamodb:UpdateItem getatt:ViewsTable.Arn",
				"sqs:SendMessage getatt:ExecutionsQueue.Arn", "sns:Publish ref:CommandsTopic"},
			"StreamFunction": {"dynamodb:UpdateItem getatt:ViewsTable.Arn", "dynamodb:PutItem getatt:ViewsTable.Arn"},
		} {
			granted := map[string]bool{}
			for _, p := range asList(prop(fn, "Policies")) {
				for _, s := range asList(at(p, "Statement")) {
					for _, a := range asList(at(s, "Action")) {
						for _, r := range asList(at(s, "Resource")) {
							granted[str(a)+" "+str(r)] = true
						}
					}
				}
			}
			for _, want := range wants {
				if !granted[want] {
					t.Errorf("%s: %s not granted (grants %v)", fn, want, granted)
				}
			}
		}
	})

	t.Run("least_privilege", func(t *testing.T) {
		var statements []any
		for _, id := range functions {
			for _, p := range asList(prop(id, "Policies")) {
				if s, ok := p.(string); ok {
					if s != "ref:ApiPolicy" {
						t.Errorf("%s: policy %s, want statements of our own", id, s)
					}
					continue
				}
				statements = append(statements, asList(at(p, "Statement"))...)
			}
		}
		statements = append(statements, asList(prop("ApiPolicy", "PolicyDocument", "Statement"))...)
		if len(statements) < 10 {
			t.Fatalf("%d policy statements", len(statements))
		}
		for _, s := range statements {
			for _, a := range asList(at(s, "Action")) {
				if strings.Contains(str(a), "*") {
					t.Errorf("a wildcard action %q in %v", a, s)
				}
			}
			for _, r := range asList(at(s, "Resource")) {
				if str(r) == "*" {
					t.Errorf("a wildcard resource in %v", s)
				}
			}
		}
	})

	t.Run("alarms_and_outputs", func(t *testing.T) {
		watched := map[string]bool{}
		for _, a := range typed.GetAllCloudWatchAlarmResources() {
			for _, d := range a.Dimensions {
				watched[*a.MetricName+" "+d.Value] = true
			}
		}
		for _, want := range []string{
			"ApproximateNumberOfMessagesVisible getatt:WorkflowsDeadLetterQueue.QueueName",
			"ApproximateNumberOfMessagesVisible getatt:ExecutionsDeadLetterQueue.QueueName",
			"IteratorAge ref:StreamFunction",
		} {
			if !watched[want] {
				t.Errorf("no alarm on %s (alarms watch %v)", want, watched)
			}
		}
		for _, out := range []string{"ApiUrl", "EventsTableName", "ViewsTableName"} {
			if _, ok := typed.Outputs[out]; !ok {
				t.Errorf("no output %s", out)
			}
		}
	})
}

func asList(v any) []any {
	switch l := v.(type) {
	case []any:
		return l
	case nil:
		return nil
	}
	return []any{v}
}
