package app_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/workflowd/workflowd/app"
	"github.com/workflowd/workflowd/internal/apitest"
	"github.com/workflowd/workflowd/internal/awstest"
	"github.com/workflowd/workflowd/model"
)

// keyedTarget is an http step's target that records the calls of each
// Idempotency-Key and whether two of them were ever in flight at once.
type keyedTarget struct {
	*httptest.Server
	mu       sync.Mutex
	calls    map[string]int
	inFlight map[string]int
	overlaps int
}

func newKeyedTarget(t *testing.T) *keyedTarget {
	k := &keyedTarget{calls: map[string]int{}, inFlight: map[string]int{}}
	k.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		k.mu.Lock()
		k.calls[key]++
		k.inFlight[key]++
		if k.inFlight[key] > 1 {
			k.overlaps++
		}
		k.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		k.mu.Lock()
		k.inFlight[key]--
		k.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"charged":true}`)
	}))
	t.Cleanup(k.Close)
	return k
}

// faultyClient sends the requests of a well-behaved client: each command
// with an Idempotency-Key, retried with the same key after a transport
// error or a 5xx (as docs/api.md tells clients to).
type faultyClient struct {
	c       *apitest.Client
	mu      sync.Mutex
	retries int
	fives   map[int]int // 5xx answers by status
}

// command sends a command until it is answered 202 and returns the answer.
func (f *faultyClient) command(method, path, body, key string) (apitest.Response, error) {
	return f.until(http.StatusAccepted, method, path, body, "Idempotency-Key", key)
}

// get reads path until it answers 200 and returns the answer.
func (f *faultyClient) get(path string) (apitest.Response, error) {
	return f.until(http.StatusOK, "GET", path, "")
}

// until sends a request until it is answered want, retrying transport
// errors and 5xx (a command keeps its Idempotency-Key), and fails on any
// other answer.
func (f *faultyClient) until(want int, method, path, body string, header ...string) (apitest.Response, error) {
	var last string
	for range 50 {
		r, err := f.c.Try(method, path, body, header...)
		switch {
		case err == nil && r.Status == want:
			return r, nil
		case err == nil && r.Status < 500:
			return r, fmt.Errorf("%s %s: %d %s", method, path, r.Status, r.Raw)
		case err == nil:
			f.count(r.Status)
			last = fmt.Sprintf("%d %s", r.Status, r.Raw)
		default:
			f.count(0)
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return apitest.Response{}, fmt.Errorf("%s %s: still failing after 50 tries: %s", method, path, last)
}

func (f *faultyClient) count(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retries++
	f.fives[status]++
}

// waitFor polls an execution until its view satisfies cond.
func (f *faultyClient) waitFor(id string, limit time.Duration, cond func(model.Execution) bool) (model.Execution, error) {
	deadline := time.Now().Add(limit)
	var x model.Execution
	for time.Now().Before(deadline) {
		r, err := f.c.Try("GET", "/v1/workflow-executions/"+id, "")
		if err == nil && r.Status == http.StatusOK {
			x = model.Execution{}
			if err := json.Unmarshal(r.Raw, &x); err != nil {
				return x, err
			}
			if cond(x) {
				return x, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return x, fmt.Errorf("execution %s: not there after %s (status %s, step %d)", id, limit, x.Status, x.CurrentStep)
}

// A load run on the local stack with faults injected into 6% of every
// DynamoDB, SNS and SQS call attempt (throttling the SDK retries, answers
// lost after the call took effect and sent again, timeouts after the call
// took effect that the caller sees): 120 clients' executions of an http
// step then a manual one, each started and incremented with an
// Idempotency-Key and retried on 5xx, a tenth with a racing second
// increment. When the faults stop, every execution has SUCCEEDED, exactly
// once each: one execution per start key, one completion per step, every
// command APPLIED or (the racing duplicate) REJECTED, and the http
// target saw each attempt's key with no two calls in flight at once.
func TestAWSLoadWithInjectedFaultsLosesNothingAndAppliesNothingTwice(t *testing.T) {
	const executions, clients, rate = 120, 12, 0.06
	awstestConfig(t)
	clean := awstest.Config(t, "dynamodb")
	sdk, faults := awstest.WithFaults(clean, rate, uint64(time.Now().UnixNano()))
	faults.Off.Store(true) // while the resources are set up
	target := newKeyedTarget(t)
	c, _ := startAWS(t, app.AWSConfig{
		Prefix: "f" + strings.ReplaceAll(uuid.NewString()[:8], "-", ""), VisibilityTimeout: 2 * time.Second,
		MaxReceiveCount: 20, Workers: 8, Logger: apitest.Logger(t), SDK: &sdk, LeasePeriod: 2 * time.Second,
		Steps: app.StepsConfig{HTTPAllowHosts: []string{strings.TrimPrefix(target.URL, "http://")}, CleanupInterval: 2 * time.Second},
	}, nil)
	fc := &faultyClient{c: c, fives: map[int]int{}}
	wf := fc.c.MustApply(t, "POST", "/v1/workflows", fmt.Sprintf(`{"name":"charge-then-approve","steps":[`+
		`{"name":"charge","type":"http","url":"%s/charge","method":"POST","timeoutSeconds":2,"retry":{"maxAttempts":5,"backoffSeconds":0.2}},`+
		`{"name":"approve","type":"manual"}]}`, target.URL)).String("workflowUUID")

	faults.Off.Store(false)
	began := time.Now()
	type outcome struct {
		id, start, increment, racer string
	}
	outcomes := make([]outcome, executions)
	errs := make(chan error, executions)
	var wg sync.WaitGroup
	next := make(chan int)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs <- func() error {
					o := &outcomes[i]
					r, err := fc.command("POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q,"input":{"order":%d}}`, wf, i), fmt.Sprint("start-", i))
					if err != nil {
						return err
					}
					o.id, o.start = r.String("workflowExecutionUUID"), r.String("commandUUID")
					if _, err := fc.waitFor(o.id, 2*time.Minute, func(x model.Execution) bool { return x.CurrentStep == 1 }); err != nil {
						h, _ := fc.get("/v1/workflow-executions/" + o.id + "/events")
						return fmt.Errorf("%w\nhistory: %s", err, h.Raw)
					}
					inc := fmt.Sprintf(`{"step":1,"output":{"approved":%d}}`, i)
					if i%10 == 0 { // a second client approves at the same time
						racer := make(chan error, 1)
						go func() {
							r, err := fc.command("POST", "/v1/workflow-executions/"+o.id+"/increments", inc, fmt.Sprint("racer-", i))
							o.racer = r.String("commandUUID")
							racer <- err
						}()
						defer func() { <-racer }()
					}
					r, err = fc.command("POST", "/v1/workflow-executions/"+o.id+"/increments", inc, fmt.Sprint("approve-", i))
					o.increment = r.String("commandUUID")
					return err
				}()
			}
		}()
	}
	for i := range executions {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range outcomes {
		if _, err := fc.waitFor(o.id, 2*time.Minute, func(x model.Execution) bool { return x.Status == model.ExecutionSucceeded }); err != nil {
			faults.Off.Store(true)
			h, _ := fc.get("/v1/workflow-executions/" + o.id + "/events")
			v, _ := fc.get("/v1/workflow-executions/" + o.id)
			t.Fatalf("%v\nhistory: %s\nview: %s", err, h.Raw, v.Raw)
		}
	}
	elapsed := time.Since(began)
	faults.Off.Store(true)
	t.Logf("faults: %s (by operation: %v); %d executions SUCCEEDED in %v; the clients retried %d requests (5xx by status, 0 a transport error: %v)",
		faults, faults.ByOperation(), executions, elapsed.Round(time.Millisecond), fc.retries, fc.fives)
	if faults.Throttled.Load() == 0 || faults.Reset.Load() == 0 || faults.TimedOut.Load() == 0 {
		t.Fatalf("not every kind of fault was injected: %s", faults)
	}

	// Nothing applied twice: one execution per start key, one completion
	// per step; every command has its final status.
	listed := map[string]bool{}
	for cursor := ""; ; {
		path := "/v1/workflow-executions?limit=100&workflowUUID=" + wf
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		page, err := fc.get(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Body["items"].([]any) {
			listed[it.(map[string]any)["workflowExecutionUUID"].(string)] = true
		}
		if cursor = page.String("nextCursor"); cursor == "" {
			break
		}
	}
	if len(listed) != executions {
		t.Fatalf("executions of the workflow: %d, want %d (one per start key)", len(listed), executions)
	}
	applied, rejected := 0, 0
	for _, o := range outcomes {
		h, err := fc.get("/v1/workflow-executions/" + o.id + "/events")
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for _, it := range h.Body["items"].([]any) {
			e := it.(map[string]any)
			typ := e["type"].(string)
			if typ == model.EventStepCompleted {
				typ = fmt.Sprint(typ, e["data"].(map[string]any)["step"])
			}
			counts[typ]++
		}
		for _, want := range []string{model.EventExecutionCreated, model.EventStepCompleted + "0", model.EventStepCompleted + "1", model.EventExecutionSucceeded} {
			if counts[want] != 1 {
				t.Fatalf("execution %s: %d %s events, want 1 (history %v)", o.id, counts[want], want, counts)
			}
		}
		for _, id := range []string{o.start, o.increment, o.racer} {
			if id == "" {
				continue
			}
			st, err := fc.get("/v1/commands/" + id + "?wait=10s")
			if err != nil {
				t.Fatal(err)
			}
			switch st.String("status") {
			case model.CommandApplied:
				applied++
			case model.CommandRejected:
				rejected++
			default:
				t.Fatalf("command %s: %s after its execution SUCCEEDED", id, st.Raw)
			}
		}
	}
	target.mu.Lock()
	defer target.mu.Unlock()
	calls := 0
	for _, n := range target.calls {
		calls += n
	}
	t.Logf("commands: %d APPLIED, %d REJECTED (racing increments); http: %d calls of %d keys, %d overlapping", applied, rejected, calls, len(target.calls), target.overlaps)
	if want := 2*executions + executions/10; applied+rejected != want || rejected > executions/10 {
		t.Fatalf("commands: %d APPLIED and %d REJECTED, want %d in all, at most %d REJECTED", applied, rejected, want, executions/10)
	}
	if len(target.calls) != executions || target.overlaps != 0 {
		t.Fatalf("http target: %d keys, %d overlapping calls; want one key per execution (no retry was needed), none overlapping", len(target.calls), target.overlaps)
	}
}
