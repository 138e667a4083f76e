package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/uuid"

	"github.com/workflowd/workflowd/app"
	"github.com/workflowd/workflowd/app/embedded"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/bus/snssqs"
	"github.com/workflowd/workflowd/internal/awstest"
	"github.com/workflowd/workflowd/internal/ddbstream"
	"github.com/workflowd/workflowd/model"
)

// rieVersion is the Lambda Runtime Interface Emulator the tests run the
// functions under (what `sam local invoke` runs in its container).
const rieVersion = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

var (
	buildOnce sync.Once
	builtDir  string
	buildErr  error
)

// binaries builds each function's bootstrap for this machine and installs
// the emulator, once per test binary, and returns the directory holding
// <function>/bootstrap and aws-lambda-rie.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "workflowd-functions-")
		if err != nil {
			buildErr = err
			return
		}
		builtDir = dir
		for _, fn := range []string{"api", "worker", "stream", "cleanup"} {
			out, err := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", filepath.Join(dir, fn, "bootstrap"), "../cmd/"+fn+"-function").CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("build %s-function: %v\n%s", fn, err, out)
				return
			}
		}
		install := exec.Command("go", "install", rieVersion)
		install.Env = append(os.Environ(), "GOBIN="+dir)
		if out, err := install.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("install aws-lambda-rie: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtDir
}

// deployment is the resources of one test, as the SAM template makes them,
// created on the local stack by app.InitAWS.
type deployment struct {
	prefix string
	bus    snssqs.Config
	env    []string // the functions' environment (template.yaml's Globals)
}

func deploy(t *testing.T) deployment {
	t.Helper()
	return deployWith(t, 2*time.Second)
}

// deployWith is deploy with the queues' visibility timeout.
func deployWith(t *testing.T, visibility time.Duration) deployment {
	t.Helper()
	awstest.Config(t, "dynamodb")
	awstest.Config(t, "sqs")
	prefix := "fn" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	busCfg, err := app.InitAWS(context.Background(), app.AWSConfig{Prefix: prefix, VisibilityTimeout: visibility, MaxReceiveCount: 5})
	if err != nil {
		t.Fatal(err)
	}
	return deployment{prefix: prefix, bus: busCfg, env: []string{
		"EVENTS_TABLE=" + prefix + "-events", "VIEWS_TABLE=" + prefix + "-views",
		"TOPIC_ARN=" + busCfg.TopicARN,
		"WORKFLOWS_QUEUE_URL=" + busCfg.Queues[bus.QueueWorkflows], "EXECUTIONS_QUEUE_URL=" + busCfg.Queues[bus.QueueExecutions],
		"WORKFLOWS_DLQ_URL=" + busCfg.DeadLetterQueues[bus.QueueWorkflows], "EXECUTIONS_DLQ_URL=" + busCfg.DeadLetterQueues[bus.QueueExecutions],
		"MAX_RECEIVE_COUNT=5", "RETENTION=720h", "LOG_LEVEL=warn", "WORKER_TIMEOUT=120",
	}}
}

// function is one function running under the emulator.
type function struct {
	name string
	url  string
}

// start runs fn's bootstrap under aws-lambda-rie on free ports, with the
// deployment's environment; it stops with the test.
func (d deployment) start(t *testing.T, fn string) *function {
	t.Helper()
	dir := binaries(t)
	api, runtime := freePort(t), freePort(t)
	cmd := exec.Command(filepath.Join(dir, "aws-lambda-rie"),
		"--runtime-interface-emulator-address", api, "--runtime-api-address", runtime, filepath.Join(dir, fn, "bootstrap"))
	cmd.Env = append(append(os.Environ(), d.env...),
		"AWS_LAMBDA_FUNCTION_NAME="+d.prefix+"-"+fn, "AWS_LAMBDA_FUNCTION_TIMEOUT=60")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start aws-lambda-rie: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s logs:\n%s", fn, logs.String())
		}
	})
	f := &function{name: fn, url: "http://" + api + "/2015-03-31/functions/function/invocations"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.Dial("tcp", api)
		if err == nil {
			conn.Close()
			return f
		}
		if time.Now().After(deadline) {
			t.Fatalf("aws-lambda-rie for %s not listening: %v", fn, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// invoke sends event to the function and decodes its answer into out (if
// not nil). The emulator answers an error as a 200 with errorMessage.
func (f *function) invoke(t *testing.T, event any, out any) []byte {
	t.Helper()
	body, ok := event.([]byte)
	if !ok {
		var err error
		if body, err = json.Marshal(event); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post(f.url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("invoke %s: %v", f.name, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || bytes.Contains(raw, []byte(`"errorMessage"`)) {
		t.Fatalf("invoke %s: %d %s", f.name, resp.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("invoke %s: answer %s: %v", f.name, raw, err)
		}
	}
	return raw
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../events/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Acceptance: each function's bootstrap, invoked through aws-lambda-rie
// with its events/ file, succeeds against the local stack.
func TestEachFunctionWithItsSampleEvent(t *testing.T) {
	d := deploy(t)
	ctx := context.Background()
	db := dynamodb.NewFromConfig(awstest.Config(t, "dynamodb"), func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })

	var sqsResp events.SQSEventResponse
	d.start(t, "worker").invoke(t, sample(t, "worker.json"), &sqsResp)
	if len(sqsResp.BatchItemFailures) != 0 {
		t.Fatalf("worker: failures %v", sqsResp.BatchItemFailures)
	}
	items, err := db.Query(ctx, &dynamodb.QueryInput{
		TableName: aws.String(d.prefix + "-events"), KeyConditionExpression: aws.String("aggregateId = :a"),
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":a": &dbtypes.AttributeValueMemberS{Value: "workflow:7d2f4b1a-9c3e-4f5d-8a6b-1e2c3d4f5a6b"}},
	})
	if err != nil || items.Count != 1 {
		t.Fatalf("the worker sample's event in the log: %v %v", items, err)
	}

	var streamResp events.DynamoDBEventResponse
	d.start(t, "stream").invoke(t, sample(t, "stream.json"), &streamResp)
	if len(streamResp.BatchItemFailures) != 0 {
		t.Fatalf("stream: failures %v", streamResp.BatchItemFailures)
	}
	view, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.prefix + "-views"), ConsistentRead: aws.Bool(true),
		Key: map[string]dbtypes.AttributeValue{"pk": &dbtypes.AttributeValueMemberS{Value: "7d2f4b1a-9c3e-4f5d-8a6b-1e2c3d4f5a6b"}, "sk": &dbtypes.AttributeValueMemberS{Value: "workflow"}}})
	if err != nil || len(view.Item) == 0 {
		t.Fatalf("the stream sample's view: %v %v", view, err)
	}

	var apiResp events.APIGatewayV2HTTPResponse
	d.start(t, "api").invoke(t, sample(t, "api.json"), &apiResp)
	if apiResp.StatusCode != http.StatusAccepted || !strings.Contains(apiResp.Body, `"commandUUID"`) {
		t.Fatalf("api: %d %s", apiResp.StatusCode, apiResp.Body)
	}

	if out := d.start(t, "cleanup").invoke(t, sample(t, "cleanup.json"), nil); string(out) != "null" {
		t.Fatalf("cleanup: answered %s", out)
	}
}

// Acceptance: the SQS worker invoked with a batch of one malformed message
// and one valid command applies the command and returns batchItemFailures
// naming only the malformed message.
func TestWorkerReportsOnlyTheMalformedMessage(t *testing.T) {
	d := deploy(t)
	wf := uuid.New()
	valid, err := json.Marshal(model.NewCommand(uuid.New(), model.CreateWorkflow{WorkflowUUID: wf,
		Definition: model.Definition{Name: "w", Steps: []model.StepDefinition{{Name: "a", Type: model.StepManual}}}}, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	batch := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m-malformed", Body: `{"this":"is not a command"}`, Attributes: map[string]string{"ApproximateReceiveCount": "1"}},
		{MessageId: "m-valid", Body: string(valid), Attributes: map[string]string{"ApproximateReceiveCount": "1"}},
	}}
	var resp events.SQSEventResponse
	d.start(t, "worker").invoke(t, batch, &resp)
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "m-malformed" {
		t.Fatalf("batchItemFailures %+v, want only m-malformed", resp.BatchItemFailures)
	}
	db := dynamodb.NewFromConfig(awstest.Config(t, "dynamodb"), func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	items, err := db.Query(context.Background(), &dynamodb.QueryInput{
		TableName: aws.String(d.prefix + "-events"), KeyConditionExpression: aws.String("aggregateId = :a"), ConsistentRead: aws.Bool(true),
		ExpressionAttributeValues: map[string]dbtypes.AttributeValue{":a": &dbtypes.AttributeValueMemberS{Value: model.WorkflowAggregateID(wf)}},
	})
	if err != nil || items.Count != 1 {
		t.Fatalf("the valid command's event: %d items, %v", items.Count, err)
	}
}

// harness plays what AWS does around the functions: the API Gateway (a
// request becomes an API function invocation), the SQS event source
// mappings (receive, invoke the worker, delete but the failures), the
// stream's (read the stream, invoke the stream function), and the schedule
// (invoke the cleanup).
type harness struct {
	t                            *testing.T
	api, worker, stream, cleanup *function
	sqs                          *sqs.Client
	queues                       []string
}

func (d deployment) harness(t *testing.T) *harness {
	h := &harness{t: t, api: d.start(t, "api"), worker: d.start(t, "worker"), stream: d.start(t, "stream"), cleanup: d.start(t, "cleanup"),
		sqs: sqs.NewFromConfig(awstest.Config(t, "sqs")), queues: []string{d.bus.Queues[bus.QueueWorkflows], d.bus.Queues[bus.QueueExecutions]}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, q := range h.queues {
		wg.Go(func() { h.pollQueue(ctx, q) })
	}
	cfg := awstest.Config(t, "dynamodb")
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(d.prefix + "-events")})
	if err != nil {
		t.Fatal(err)
	}
	reader := &ddbstream.Reader{
		Client: dynamodbstreams.NewFromConfig(cfg), StreamARN: aws.ToString(desc.Table.LatestStreamArn),
		Checkpoints:  &ddbstream.TableCheckpoints{Client: db, Table: d.prefix + "-checkpoints", Consumer: "stream-function"},
		PollInterval: 50 * time.Millisecond, BatchSize: 100,
		Handle: func(ctx context.Context, ev events.DynamoDBEvent) events.DynamoDBEventResponse {
			var resp events.DynamoDBEventResponse
			h.stream.invoke(t, ev, &resp)
			return resp
		},
	}
	wg.Go(func() { reader.Run(ctx) })
	return h
}

func (h *harness) pollQueue(ctx context.Context, url string) {
	pollSQS(ctx, h.sqs, url, func(ev events.SQSEvent) events.SQSEventResponse {
		var resp events.SQSEventResponse
		h.worker.invoke(h.t, ev, &resp)
		return resp
	})
}

// pollSQS plays an SQS event source mapping: it receives batches from url,
// hands each to invoke, and deletes the messages it did not report
// failed, until ctx is done.
func pollSQS(ctx context.Context, client *sqs.Client, url string, invoke func(events.SQSEvent) events.SQSEventResponse) {
	for ctx.Err() == nil {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
			MessageAttributeNames:       []string{"All"},
		})
		if err != nil || len(out.Messages) == 0 {
			continue
		}
		ev := events.SQSEvent{}
		for _, m := range out.Messages {
			ev.Records = append(ev.Records, events.SQSMessage{
				MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
				Attributes: map[string]string{"ApproximateReceiveCount": m.Attributes["ApproximateReceiveCount"]},
			})
		}
		resp := invoke(ev)
		failed := map[string]bool{}
		for _, f := range resp.BatchItemFailures {
			failed[f.ItemIdentifier] = true
		}
		for _, m := range out.Messages {
			if !failed[aws.ToString(m.MessageId)] {
				client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
			}
		}
	}
}

// request is an API request through the API function, as API Gateway's
// HTTP API sends it; it returns the status and the decoded JSON body.
func (h *harness) request(method, path, body string) (int, map[string]any) {
	h.t.Helper()
	rawPath, query, _ := strings.Cut(path, "?")
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "ANY /{proxy+}", RawPath: rawPath, RawQueryString: query, Body: body,
		Headers: map[string]string{"content-type": "application/json"},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: rawPath, Protocol: "HTTP/1.1", SourceIP: "192.0.2.1"},
		},
	}
	var resp events.APIGatewayV2HTTPResponse
	h.api.invoke(h.t, ev, &resp)
	var out map[string]any
	json.Unmarshal([]byte(resp.Body), &out)
	return resp.StatusCode, out
}

// The same flow on the functions and on the embedded default, and the
// views they end with.
type flowResult struct {
	workflow   map[string]any
	executions []map[string]any
}

// client is the API surface the flow needs (the functions or workflowd).
type client interface {
	request(method, path, body string) (int, map[string]any)
	runCleanup()
}

func (h *harness) runCleanup() { h.cleanup.invoke(h.t, sample(h.t, "cleanup.json"), nil) }

// runFlow creates a workflow (a manual step, a 1-second wait, a manual
// step), runs one execution to the end, one with a 1-second timeout into
// the cleanup, redriven and timed out again, and one of the workflow
// language (a parallel step of an approval and a wait, paused and
// resumed, a client's failure caught); it returns the views.
func runFlow(t *testing.T, c client) flowResult {
	t.Helper()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waited a minute for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	apply := func(method, path, body string) map[string]any {
		t.Helper()
		code, ans := c.request(method, path, body)
		if code != http.StatusAccepted {
			t.Fatalf("%s %s: %d %v", method, path, code, ans)
		}
		cmd := fmt.Sprint(ans["commandUUID"])
		waitFor("command "+cmd, func() bool {
			_, st := c.request("GET", "/v1/commands/"+cmd, "")
			if st["status"] == "REJECTED" {
				t.Fatalf("%s %s rejected: %v", method, path, st)
			}
			return st["status"] == "APPLIED"
		})
		return ans
	}
	view := func(path string) map[string]any {
		_, v := c.request("GET", path, "")
		return v
	}
	wf := apply("POST", "/v1/workflows", `{"name":"flow","steps":[{"name":"sign","type":"manual"},{"name":"pause","type":"wait","seconds":1},{"name":"approve","type":"manual"}]}`)
	wfID := fmt.Sprint(wf["workflowUUID"])
	x := apply("POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q,"input":{"n":1}}`, wfID))
	xPath := "/v1/workflow-executions/" + fmt.Sprint(x["workflowExecutionUUID"])
	waitFor("RUNNING", func() bool { return view(xPath)["status"] == "RUNNING" })
	apply("POST", xPath+"/increments", `{"step":0,"output":{"signed":true}}`)
	waitFor("the wait step to end", func() bool { return view(xPath)["currentStep"] == float64(2) })
	apply("POST", xPath+"/increments", `{"step":2}`)
	waitFor("SUCCEEDED", func() bool { return view(xPath)["status"] == "SUCCEEDED" })

	wf2 := apply("POST", "/v1/workflows", `{"name":"late","timeoutSeconds":1,"steps":[{"name":"never","type":"manual"}]}`)
	y := apply("POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf2["workflowUUID"]))
	yPath := "/v1/workflow-executions/" + fmt.Sprint(y["workflowExecutionUUID"])
	waitFor("RUNNING", func() bool { return view(yPath)["status"] == "RUNNING" })
	time.Sleep(1100 * time.Millisecond)
	c.runCleanup()
	waitFor("TIMED_OUT", func() bool { return view(yPath)["status"] == "TIMED_OUT" })
	apply("POST", yPath+"/redrives", "")
	waitFor("RUNNING after the redrive", func() bool { return view(yPath)["status"] == "RUNNING" })
	time.Sleep(1100 * time.Millisecond)
	c.runCleanup()
	waitFor("TIMED_OUT after the redrive", func() bool { return view(yPath)["status"] == "TIMED_OUT" && view(yPath)["redrives"] == float64(1) })

	wf3 := apply("POST", "/v1/workflows", `{"name":"language","steps":[
		{"name":"both","type":"parallel","branches":[{"steps":[{"name":"a","type":"manual"}]},{"steps":[{"name":"w","type":"wait","seconds":1}]}]},
		{"name":"check","type":"manual","catch":[{"errors":["check.*"],"next":"fix"}]},
		{"name":"done","type":"succeed"},
		{"name":"fix","type":"manual","end":true}]}`)
	z := apply("POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf3["workflowUUID"]))
	zPath := "/v1/workflow-executions/" + fmt.Sprint(z["workflowExecutionUUID"])
	apply("POST", zPath+"/pauses", "")
	apply("POST", zPath+"/increments", `{"step":4,"output":{"ok":true}}`) // a, in branch 0
	time.Sleep(1100 * time.Millisecond)
	if v := view(zPath); v["currentStep"] != float64(0) || v["paused"] != true {
		t.Fatalf("the paused execution moved on: %v", v)
	}
	apply("POST", zPath+"/resumes", "")
	waitFor("the parallel step to complete", func() bool { return view(zPath)["currentStep"] == float64(1) })
	apply("POST", zPath+"/increments", `{"step":1,"error":"check.failed","cause":"no"}`)
	waitFor("the catch", func() bool { return view(zPath)["currentStep"] == float64(3) })
	apply("POST", zPath+"/increments", `{"step":3,"output":{"fixed":true}}`)
	waitFor("SUCCEEDED", func() bool { return view(zPath)["status"] == "SUCCEEDED" })
	return flowResult{workflow: view("/v1/workflows/" + wfID), executions: []map[string]any{view(xPath), view(yPath), view(zPath)}}
}

// comparable drops what differs between two runs of one flow: UUIDs and
// times.
func comparable(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if strings.HasSuffix(k, "UUID") || strings.HasSuffix(k, "At") {
				continue
			}
			out[k] = comparable(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = comparable(x)
		}
		return out
	}
	return v
}

// Acceptance: the full flow through the emulated functions (create a
// workflow, start an execution, increments, a wait step, the cleanup) ends
// with the same views as the embedded default.
func TestFullFlowThroughTheFunctionsMatchesTheEmbeddedDefault(t *testing.T) {
	d := deploy(t)
	functions := runFlow(t, d.harness(t))
	byDefault := runFlow(t, startEmbedded(t))
	for i, name := range []string{"workflow", "execution", "timed out execution", "workflow language execution"} {
		f, e := any(functions.workflow), any(byDefault.workflow)
		if i > 0 {
			f, e = functions.executions[i-1], byDefault.executions[i-1]
		}
		fj, _ := json.Marshal(comparable(f))
		ej, _ := json.Marshal(comparable(e))
		if string(fj) != string(ej) {
			t.Errorf("%s view differs:\nfunctions %s\nembedded  %s", name, fj, ej)
		}
	}
	t.Logf("execution through the functions: %v", functions.executions[0])
}

// embeddedClient is workflowd's embedded runtime behind the same client.
type embeddedClient struct {
	t    *testing.T
	base string
	e    *embedded.Runtime
}

func startEmbedded(t *testing.T) *embeddedClient {
	e, err := embedded.Open(embedded.Config{Steps: app.StepsConfig{CleanupInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e.Handler()}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close(); cancel(); <-done; e.Close() })
	return &embeddedClient{t: t, base: "http://" + l.Addr().String(), e: e}
}

func (c *embeddedClient) request(method, path, body string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (c *embeddedClient) runCleanup() {
	if _, err := c.e.Cleanup.Run(context.Background()); err != nil {
		c.t.Fatal(err)
	}
}

// A command the worker asks to see again soon (a start of a workflow not
// projected yet: a transient rejection) comes back after that delay, not
// after the queue's visibility timeout: the worker function changes the
// message's visibility on the queue its record names.
func TestWorkerMakesARetriedMessageVisibleSooner(t *testing.T) {
	d := deployWith(t, 60*time.Second)
	ctx := context.Background()
	env := map[string]string{}
	for _, kv := range d.env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	f, err := app.FunctionsFromEnv(ctx, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	client := sqs.NewFromConfig(awstest.Config(t, "sqs"))
	url := d.bus.Queues[bus.QueueExecutions]
	attrs, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(model.NewCommand(uuid.New(), model.StartExecution{WorkflowExecutionUUID: uuid.New(), WorkflowUUID: uuid.New()}, time.Now()))
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(string(body))}); err != nil {
		t.Fatal(err)
	}
	receive := func(wait int32) []sqstypes.Message {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 1, WaitTimeSeconds: wait,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Messages
	}
	got := receive(5)
	if len(got) != 1 {
		t.Fatal("the message did not arrive")
	}
	m := got[0]
	resp, err := f.Worker(ctx, events.SQSEvent{Records: []events.SQSMessage{{
		MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
		Attributes: map[string]string{"ApproximateReceiveCount": "1"}, EventSourceARN: attrs.Attributes["QueueArn"],
	}}})
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("worker: %+v %v, want the record reported for a retry", resp, err)
	}
	start := time.Now()
	again := receive(10)
	if len(again) != 1 || aws.ToString(again[0].MessageId) != aws.ToString(m.MessageId) {
		t.Fatalf("the retried message did not come back within 10s (the queue's visibility timeout is 60s)")
	}
	t.Logf("back after %s", time.Since(start))
}

// WORKER_TIMEOUT, the worker function's timeout, caps http attempts at it
// less LambdaTimeoutMargin; a value that leaves no room is refused.
func TestWorkerTimeoutCapsHTTPAttempts(t *testing.T) {
	env := map[string]string{"EVENTS_TABLE": "e", "VIEWS_TABLE": "v", "TOPIC_ARN": "arn", "WORKFLOWS_QUEUE_URL": "w", "EXECUTIONS_QUEUE_URL": "x"}
	getenv := func(name string) string { return env[name] }
	env["WORKER_TIMEOUT"] = "120"
	cfg, err := app.FunctionsConfigFromEnv(getenv)
	if err != nil || cfg.MaxHTTPTimeout != 120*time.Second-app.LambdaTimeoutMargin {
		t.Fatalf("WORKER_TIMEOUT=120: cap %s (%v), want %s", cfg.MaxHTTPTimeout, err, 120*time.Second-app.LambdaTimeoutMargin)
	}
	for _, bad := range []string{"10", "two", "-1"} {
		env["WORKER_TIMEOUT"] = bad
		if _, err := app.FunctionsConfigFromEnv(getenv); err == nil || !strings.Contains(err.Error(), "WORKER_TIMEOUT") {
			t.Errorf("WORKER_TIMEOUT=%s: %v, want an error naming it", bad, err)
		}
	}
}
