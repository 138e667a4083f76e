package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/app"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/internal/apitest"
	"github.com/workflowd/workflowd/internal/awstest"
	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/store/pebble"
	"github.com/workflowd/workflowd/table"
	"github.com/workflowd/workflowd/workers"
)

// runAWS runs the service on the local AWS stack (DynamoDB Local, fauxqs)
// with resources of its own, and returns a client of its API.
func runAWS(t *testing.T, maxReceive int) (*apitest.Client, *app.AWS) {
	t.Helper()
	return runAWSWith(t, maxReceive, app.StepsConfig{})
}

// runAWSWith is runAWS with a steps configuration.
func runAWSWith(t *testing.T, maxReceive int, steps app.StepsConfig) (*apitest.Client, *app.AWS) {
	t.Helper()
	awstestConfig(t)
	log := apitest.Logger(t)
	return startAWS(t, app.AWSConfig{
		Prefix: "t" + strings.ReplaceAll(uuid.NewString()[:8], "-", ""), VisibilityTimeout: 2 * time.Second,
		MaxReceiveCount: maxReceive, Workers: 4, Steps: steps, Logger: log,
	}, nil)
}

// startAWS creates cfg's resources, opens the AWS runtime, runs it and
// serves its API until the test ends. opened, if set, is called before it
// runs (to adjust the runtime, or to start injecting faults).
func startAWS(t *testing.T, cfg app.AWSConfig, opened func(*app.AWS)) (*apitest.Client, *app.AWS) {
	t.Helper()
	if _, err := app.InitAWS(context.Background(), cfg); err != nil {
		t.Fatalf("init AWS resources: %v", err)
	}
	a, err := app.OpenAWS(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open AWS runtime: %v", err)
	}
	if opened != nil {
		opened(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
	})
	return apitest.New(srv.URL), a
}

func TestAWSTourEndToEnd(t *testing.T) {
	c, _ := runAWS(t, 5)
	_, ex := c.StartRunning(t, 2)
	c.MustApply(t, "POST", "/v1/workflow-executions/"+ex+"/increments", `{"step":0}`)
	c.MustApply(t, "POST", "/v1/workflow-executions/"+ex+"/increments", `{"step":1}`)
	x := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+ex, "")
	if x.String("status") != "SUCCEEDED" || x.Number("currentStep") != 2 {
		t.Fatalf("after both steps: %s", x.Raw)
	}
	h := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+ex+"/events", "")
	if n := len(h.Body["items"].([]any)); n != 7 {
		t.Fatalf("history: got %d events, want 7", n)
	}
}

func TestAWSRacingIncrementsAndARedeliveredMessage(t *testing.T) {
	c, a := runAWS(t, 5)
	_, ex := c.StartRunning(t, 3)
	answers := make(chan apitest.Response, 10)
	for i := range 10 {
		go func() {
			var hdr []string
			if i < 4 {
				hdr = []string{"Idempotency-Key", "same"}
			}
			answers <- c.Expect(t, http.StatusAccepted, "POST", "/v1/workflow-executions/"+ex+"/increments", `{"step":0}`, hdr...)
		}()
	}
	applied := map[string]bool{}
	for range 10 {
		r := <-answers
		if st := c.WaitCommand(t, r.String("commandUUID"), 30*time.Second); st.String("status") == "APPLIED" {
			applied[r.String("commandUUID")] = true
		}
	}
	if len(applied) != 1 {
		t.Fatalf("distinct applied commands: got %d, want 1", len(applied))
	}
	x := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+ex, "")
	if x.Number("currentStep") != 1 {
		t.Fatalf("currentStep: got %d, want 1", x.Number("currentStep"))
	}

	// The applied command's message, sent again straight into the queue,
	// changes nothing.
	var id string
	for k := range applied {
		id = k
	}
	cmd := model.NewCommand(uuid.MustParse(id), model.IncrementExecution{WorkflowExecutionUUID: uuid.MustParse(ex), Step: 0}, time.Now())
	msg, err := bus.CommandMessage(cmd)
	if err != nil {
		t.Fatal(err)
	}
	q, err := a.Bus.Queue(bus.QueueExecutions)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Send(context.Background(), msg, 0); err != nil {
		t.Fatal(err)
	}
	before := x.Number("version")
	time.Sleep(3 * time.Second) // the message is consumed within a long poll
	after := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+ex, "")
	if after.Number("version") != before || after.Number("currentStep") != 1 {
		t.Fatalf("a redelivered command changed the execution: before %s after %s", x.Raw, after.Raw)
	}
	if st := c.Expect(t, 200, "GET", "/v1/commands/"+id, ""); st.String("status") != "APPLIED" {
		t.Fatalf("redelivered command status: %s", st.Raw)
	}
}

func TestAWSPoisonMessageIsDeadLetteredAndRedriven(t *testing.T) {
	c, a := runAWS(t, 2)
	poison := bus.Message{Body: []byte(`{"commandUUID":"not-a-uuid"}`), Attributes: map[string]string{bus.TargetAttribute: bus.QueueExecutions}}
	if err := a.Bus.Publish(context.Background(), poison); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	var items []any
	for len(items) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the poison message did not reach the dead-letter queue in 60s")
		}
		time.Sleep(time.Second)
		items, _ = c.Expect(t, 200, "GET", "/v1/queues/executions/dead-letters", "").Body["items"].([]any)
	}
	if body := items[0].(map[string]any)["body"]; body != string(poison.Body) {
		t.Fatalf("dead letter body: %v", body)
	}
	if r := c.Expect(t, 200, "POST", "/v1/queues/executions/redrive", ""); r.Number("moved") != 1 {
		t.Fatalf("redrive: %s", r.Raw)
	}
}

// The stream adapter, given real records of the events table with one it
// cannot process, reports that record and the ones after it, and the views
// converge when the batch is retried.
func TestAWSStreamBatchWithABadRecordConverges(t *testing.T) {
	c, a := runAWS(t, 5)
	_, ex := c.StartRunning(t, 4)
	for step := range 3 {
		c.MustApply(t, "POST", "/v1/workflow-executions/"+ex+"/increments", fmt.Sprintf(`{"step":%d}`, step))
	}
	want := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+ex, "")
	history, err := a.Store.Load(context.Background(), model.ExecutionAggregateID(uuid.MustParse(ex)), 0)
	if err != nil {
		t.Fatal(err)
	}
	// Records as the stream carries them: one per append (command).
	var recs []events.DynamoDBEventRecord
	for i := 0; i < len(history); {
		j := i
		for j < len(history) && history[j].CommandUUID == history[i].CommandUUID {
			j++
		}
		recs = append(recs, streamRecordOf(t, history[i:j], fmt.Sprint(100+len(recs))))
		i = j
	}
	bad := recs[2]
	bad.Change.NewImage = map[string]events.DynamoDBAttributeValue{"aggregateId": events.NewStringAttribute("execution:" + ex)}
	batch := append(append(append([]events.DynamoDBEventRecord{}, recs[:2]...), bad), recs[3:]...)

	// A fresh projector, writing into views of its own (an in-memory
	// store), reading gaps from the real event log.
	views, err := pebble.Open(pebble.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer views.Close()
	p := &workers.Projector{Log: a.Store, Views: views}
	resp := workers.HandleDynamoDBEvent(context.Background(), p, table.StreamEvents, events.DynamoDBEvent{Records: batch}, nil)
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	var wantFailed []string
	for _, r := range batch[2:] {
		wantFailed = append(wantFailed, r.Change.SequenceNumber)
	}
	if fmt.Sprint(failed) != fmt.Sprint(wantFailed) {
		t.Fatalf("failures: got %v, want %v", failed, wantFailed)
	}
	resp = workers.HandleDynamoDBEvent(context.Background(), p, table.StreamEvents, events.DynamoDBEvent{Records: recs[2:]}, nil)
	if len(resp.BatchItemFailures) != 0 {
		t.Fatalf("retry failed: %v", resp.BatchItemFailures)
	}
	got, err := views.GetExecution(context.Background(), uuid.MustParse(ex))
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	var gotMap, wantMap map[string]any
	json.Unmarshal(gotJSON, &gotMap)
	json.Unmarshal(want.Raw, &wantMap)
	if fmt.Sprint(gotMap) != fmt.Sprint(wantMap) {
		t.Fatalf("view after the retry differs from the service's:\n got %s\nwant %s", gotJSON, want.Raw)
	}
}

// streamRecordOf builds the stream record of one append, as DynamoDB
// Streams carries it (NewImage in the events table's item format).
func streamRecordOf(t *testing.T, evs []model.Event, seq string) events.DynamoDBEventRecord {
	t.Helper()
	type wire struct {
		EventUUID uuid.UUID       `json:"eventUUID"`
		Type      string          `json:"type"`
		Data      json.RawMessage `json:"data,omitempty"`
	}
	var ws []wire
	for _, e := range evs {
		ws = append(ws, wire{e.EventUUID, e.Type, e.Data})
	}
	b, err := json.Marshal(ws)
	if err != nil {
		t.Fatal(err)
	}
	at, _ := evs[0].OccurredAt.MarshalText()
	return events.DynamoDBEventRecord{EventName: "INSERT", Change: events.DynamoDBStreamRecord{
		SequenceNumber: seq,
		NewImage: map[string]events.DynamoDBAttributeValue{
			"aggregateId": events.NewStringAttribute(evs[0].AggregateID),
			"seq":         events.NewNumberAttribute(fmt.Sprint(evs[0].Seq)),
			"lastSeq":     events.NewNumberAttribute(fmt.Sprint(evs[len(evs)-1].Seq)),
			"commandUUID": events.NewStringAttribute(evs[0].CommandUUID.String()),
			"occurredAt":  events.NewStringAttribute(string(at)),
			"events":      events.NewBinaryAttribute(b),
		},
	}}
}

// The step types on AWS: an http step that fails once and then succeeds,
// a wait step fired by SQS's delayed delivery, and a deadline enforced by
// the cleanup through the byDue index.
func TestAWSStepsRunByThemselves(t *testing.T) {
	hook := apitest.NewHookServer(t, 1)
	c, a := runAWSWith(t, 5, app.StepsConfig{HTTPAllowHosts: []string{hook.Host()}, CleanupInterval: -1})
	id := c.StartWorkflow(t, fmt.Sprintf(`[{"name":"charge","type":"http","url":%q,"retry":{"maxAttempts":3,"backoffSeconds":0.5}},`+
		`{"name":"pause","type":"wait","seconds":2}]`, hook.URL), "")
	x := c.WaitStatus(t, id, 60*time.Second, "SUCCEEDED")
	if st := x.Steps[0]; st.Attempts != 2 || string(st.Output) != `{"charged":true}` {
		t.Fatalf("http step: %+v, want SUCCEEDED on attempt 2", st)
	}
	if st := x.Steps[1]; st.FinishedAt.Sub(*st.StartedAt) < 2*time.Second {
		t.Fatalf("wait step took %s, want at least 2s", st.FinishedAt.Sub(*st.StartedAt))
	}
	if calls := hook.Recorded(); len(calls) != 2 || calls[1].Key != id+":0:2" {
		t.Fatalf("target calls %+v, want 2, the second with key %s:0:2", calls, id)
	}

	overdue := c.StartWorkflow(t, `[{"name":"approve","type":"manual"}]`, `,"timeoutSeconds":1`)
	c.WaitStatus(t, overdue, 30*time.Second, "RUNNING")
	time.Sleep(1100 * time.Millisecond)
	if n, err := a.Cleanup.Run(context.Background()); err != nil || n != 1 {
		t.Fatalf("cleanup after the deadline: published %d, %v; want 1 command", n, err)
	}
	if x := c.WaitStatus(t, overdue, 30*time.Second, "TIMED_OUT"); !strings.Contains(x.Error, "timed out") {
		t.Fatalf("timed out execution: %q", x.Error)
	}
}

// awstestConfig checks the local AWS stack is there (skipping, or failing
// under CI=true, when it is not).
func awstestConfig(t *testing.T) {
	t.Helper()
	awstest.Config(t, "dynamodb")
	awstest.Config(t, "sqs")
}

// Serving finds the deployment's resources and changes none of them (every
// instance shares them; workflowd init sets them): a deployment not set up
// is refused with ErrNotInitialized, and an instance started with other
// queue settings leaves the queues as init made them.
func TestServingDoesNotReconfigureTheDeployment(t *testing.T) {
	awstestConfig(t)
	ctx := context.Background()
	prefix := "s" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	if _, err := app.OpenAWS(ctx, app.AWSConfig{Prefix: prefix}); !errors.Is(err, app.ErrNotInitialized) {
		t.Fatalf("open a deployment not set up: %v, want ErrNotInitialized", err)
	}
	busCfg, err := app.InitAWS(ctx, app.AWSConfig{Prefix: prefix, VisibilityTimeout: 7 * time.Second, MaxReceiveCount: 6})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.OpenAWS(ctx, app.AWSConfig{Prefix: prefix, VisibilityTimeout: 40 * time.Second, MaxReceiveCount: 9})
	if err != nil {
		t.Fatalf("open after init: %v", err)
	}
	if got := a.Bus.MaxReceiveCount(); got != 6 {
		t.Errorf("the instance's maxReceiveCount is %d, want the queues' 6", got)
	}
	q := sqs.NewFromConfig(awstest.Config(t, "sqs"))
	out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(busCfg.Queues[bus.QueueExecutions]),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameVisibilityTimeout, sqstypes.QueueAttributeNameRedrivePolicy}})
	if err != nil {
		t.Fatal(err)
	}
	if v := out.Attributes[string(sqstypes.QueueAttributeNameVisibilityTimeout)]; v != "7" {
		t.Errorf("visibility timeout after an instance started with 40s: %s, want init's 7", v)
	}
	if r := out.Attributes[string(sqstypes.QueueAttributeNameRedrivePolicy)]; !strings.Contains(r, `"maxReceiveCount":6`) {
		t.Errorf("redrive policy after an instance started with 9: %s, want init's 6", r)
	}
}

// The workflow language's control flow on AWS (apitest.OrderFlow): a
// choice, an http step, a fail step and a loop through a wait step.
func TestAWSControlFlow(t *testing.T) {
	hook := apitest.NewHookServer(t, 0)
	c, _ := runAWSWith(t, 5, app.StepsConfig{HTTPAllowHosts: []string{hook.Host()}, CleanupInterval: -1})
	apitest.OrderFlow(t, c, hook)
}

// The workflow language's errors on AWS (apitest.ErrorsFlow): retry
// rules, catch, a client's failure of a manual step.
func TestAWSErrorsRetryAndCatch(t *testing.T) {
	failing := apitest.NewHookServer(t, 1<<30)
	c, _ := runAWSWith(t, 5, app.StepsConfig{HTTPAllowHosts: []string{failing.Host()}, CleanupInterval: -1})
	apitest.ErrorsFlow(t, c, failing)
}

// Data between steps on AWS (apitest.DataFlow).
func TestAWSDataBetweenSteps(t *testing.T) {
	hook := apitest.NewHookServer(t, 0)
	c, _ := runAWSWith(t, 5, app.StepsConfig{HTTPAllowHosts: []string{hook.Host()}, CleanupInterval: -1})
	apitest.DataFlow(t, c, hook)
}

// Redrive, pause and resume on AWS (apitest.OperateFlow).
func TestAWSRedrivePauseAndResume(t *testing.T) {
	flaky, hook := apitest.NewHookServer(t, 1), apitest.NewHookServer(t, 0)
	c, _ := runAWSWith(t, 5, app.StepsConfig{HTTPAllowHosts: []string{flaky.Host(), hook.Host()}, CleanupInterval: -1})
	apitest.OperateFlow(t, c, flaky, hook)
}

// Issue 12's order workflow on AWS (apitest.OrderWorkflow).
func TestAWSOrderWorkflow(t *testing.T) {
	ok, failing := apitest.NewHookServer(t, 0), apitest.NewHookServer(t, 1<<30)
	c, _ := runAWSWith(t, 5, app.StepsConfig{HTTPAllowHosts: []string{ok.Host(), failing.Host()}, CleanupInterval: -1})
	apitest.OrderWorkflow(t, c, ok, failing)
}

// Secret references on AWS (apitest.SecretFlow), every log line of the
// runtime captured.
func TestAWSSecretReferences(t *testing.T) {
	hook, echo := apitest.NewHookServer(t, 0), apitest.NewEchoServer(t)
	logs := &apitest.SyncBuffer{}
	awstestConfig(t)
	c, _ := startAWS(t, app.AWSConfig{
		Prefix: "t" + strings.ReplaceAll(uuid.NewString()[:8], "-", ""), VisibilityTimeout: 2 * time.Second, MaxReceiveCount: 5, Workers: 4,
		Steps:  app.StepsConfig{CleanupInterval: -1, HTTPAllowHosts: []string{hook.Host(), strings.TrimPrefix(echo.URL, "http://")}, Secrets: apitest.Secrets()},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, nil)
	apitest.SecretFlow(t, c, hook, echo, logs.String)
}

// The dial-time egress check on AWS (apitest.EgressFlow).
func TestAWSEgressRefusedAtDialTime(t *testing.T) {
	hook := apitest.NewHookServer(t, 0)
	c, _ := runAWSWith(t, 5, app.StepsConfig{HTTPAllowHosts: apitest.EgressAllow(hook), HTTPResolver: apitest.EgressResolver, CleanupInterval: -1})
	apitest.EgressFlow(t, c, hook)
}

// Authentication on AWS (apitest.AuthFlow).
func TestAWSAuthentication(t *testing.T) {
	is := apitest.NewIssuer(t)
	awstestConfig(t)
	c, _ := startAWS(t, app.AWSConfig{
		Prefix: "t" + strings.ReplaceAll(uuid.NewString()[:8], "-", ""), VisibilityTimeout: 2 * time.Second,
		MaxReceiveCount: 5, Workers: 4, Steps: app.StepsConfig{CleanupInterval: -1}, Logger: apitest.Logger(t), Auth: is.Authenticator(t),
	}, nil)
	apitest.AuthFlow(t, c, is)
}

// Parallel steps on AWS (apitest.ParallelFlow).
func TestAWSParallelSteps(t *testing.T) {
	hook := apitest.NewHookServer(t, 0)
	c, _ := runAWSWith(t, 5, app.StepsConfig{HTTPAllowHosts: []string{hook.Host()}, CleanupInterval: -1})
	apitest.ParallelFlow(t, c, hook)
}
