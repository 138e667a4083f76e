package embedded_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/workflowd/workflowd/app"
	"github.com/workflowd/workflowd/app/embedded"
	"github.com/workflowd/workflowd/internal/apitest"
	"github.com/workflowd/workflowd/metrics"
	"github.com/workflowd/workflowd/model"
)

// Acceptance: a 2-second wait step completes by itself between 2 and 3
// seconds after it starts.
func TestWaitStepCompletesByItself(t *testing.T) {
	c, _ := runEmbeddedWith(t, embedded.Config{})
	id := c.StartWorkflow(t, `[{"name":"pause","type":"wait","seconds":2},{"name":"after","type":"manual"}]`, "")
	x := c.WaitStatus(t, id, 10*time.Second, "RUNNING")
	if st := x.Steps[0]; st.Status != model.StepWaiting || st.DueAt == nil {
		t.Fatalf("wait step once running: %+v, want WAITING with a due time", st)
	}
	r := c.WaitExecution(t, id, 10*time.Second, "step 1 current", func(r apitest.Response) bool { return r.Number("currentStep") == 1 })
	if err := json.Unmarshal(r.Raw, &x); err != nil {
		t.Fatal(err)
	}
	st := x.Steps[0]
	took := st.FinishedAt.Sub(*st.StartedAt)
	t.Logf("the wait step took %s", took)
	if st.Status != model.StepSucceeded || took < 2*time.Second || took > 3*time.Second {
		t.Fatalf("wait step: %s after %s, want SUCCEEDED between 2s and 3s after it started", st.Status, took)
	}
}

// Acceptance: an http step whose target fails twice and then succeeds
// completes on attempt 3, with attempts = 3 recorded; the target saw an
// Idempotency-Key naming the execution on every call.
func TestHTTPStepRetriesUntilItSucceeds(t *testing.T) {
	hook := apitest.NewHookServer(t, 2)
	c, _ := runEmbeddedWith(t, embedded.Config{Steps: app.StepsConfig{HTTPAllowHosts: []string{hook.Host()}}})
	id := c.StartWorkflow(t, fmt.Sprintf(`[{"name":"charge","type":"http","url":%q,"retry":{"maxAttempts":3,"backoffSeconds":0.2}},{"name":"ship","type":"manual"}]`, hook.URL+"/charge"), "")
	x := c.WaitExecution(t, id, 20*time.Second, "step 1 current", func(r apitest.Response) bool { return r.Number("currentStep") == 1 })
	var view model.Execution
	if err := json.Unmarshal(x.Raw, &view); err != nil {
		t.Fatal(err)
	}
	st := view.Steps[0]
	if st.Status != model.StepSucceeded || st.Attempts != 3 || string(st.Output) != `{"charged":true}` {
		t.Fatalf("http step: %+v, want SUCCEEDED on attempt 3 with the target's answer", st)
	}
	calls := hook.Recorded()
	if len(calls) != 3 {
		t.Fatalf("the target saw %d calls, want 3", len(calls))
	}
	for i, call := range calls {
		if want := fmt.Sprintf("%s:0:%d", id, i+1); call.Key != want {
			t.Errorf("call %d: Idempotency-Key %q, want %q", i+1, call.Key, want)
		}
		if call.Body["workflowExecutionUUID"] != id || fmt.Sprint(call.Body["input"]) != "map[order:7]" {
			t.Errorf("call %d: body %v, want the execution and its input", i+1, call.Body)
		}
	}
	// The view of the execution's history shows each failed attempt.
	events := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+id+"/events", "")
	if n := strings.Count(string(events.Raw), model.EventStepAttemptFailed); n != 2 {
		t.Errorf("history holds %d %s events, want 2", n, model.EventStepAttemptFailed)
	}
}

// Acceptance: a host not on the allowlist is never contacted and its
// execution fails with a reason.
func TestHTTPStepToAHostNotAllowedFails(t *testing.T) {
	hook := apitest.NewHookServer(t, 0)
	c, _ := runEmbeddedWith(t, embedded.Config{Steps: app.StepsConfig{HTTPAllowHosts: []string{"127.0.0.1:1"}}})
	id := c.StartWorkflow(t, fmt.Sprintf(`[{"name":"charge","type":"http","url":%q,"retry":{"maxAttempts":5,"backoffSeconds":0.1}}]`, hook.URL), "")
	x := c.WaitStatus(t, id, 10*time.Second, "FAILED")
	if !strings.Contains(x.Error, hook.Host()) || !strings.Contains(x.Error, "WORKFLOW_HTTP_ALLOW_HOSTS") {
		t.Fatalf("execution error %q, want it to name the host and the allowlist", x.Error)
	}
	if st := x.Steps[0]; st.Status != model.StepFailed || st.Attempts != 1 {
		t.Fatalf("step: %+v, want FAILED after one attempt (retrying cannot help)", st)
	}
	if n := len(hook.Recorded()); n != 0 {
		t.Fatalf("the host not allowed saw %d calls, want none", n)
	}
}

// Acceptance: an execution with timeoutSeconds 2 waiting at a manual step
// is TIMED_OUT by the next cleanup run; overlapping cleanup runs change
// nothing twice.
func TestCleanupTimesOutAnOverdueExecutionOnce(t *testing.T) {
	c, e := runEmbeddedWith(t, embedded.Config{Steps: app.StepsConfig{CleanupInterval: -1}}) // the test runs the cleanup
	id := c.StartWorkflow(t, `[{"name":"approve","type":"manual"}]`, `,"timeoutSeconds":2`)
	c.WaitStatus(t, id, 10*time.Second, "RUNNING")
	if n, err := e.Cleanup.Run(context.Background()); err != nil || n != 0 {
		t.Fatalf("cleanup before the deadline: published %d, %v; want nothing", n, err)
	}
	time.Sleep(2100 * time.Millisecond)
	var wg sync.WaitGroup
	published := make([]int, 4)
	for i := range published {
		wg.Go(func() {
			n, err := e.Cleanup.Run(context.Background())
			if err != nil {
				t.Errorf("cleanup run %d: %v", i, err)
			}
			published[i] = n
		})
	}
	wg.Wait()
	x := c.WaitStatus(t, id, 10*time.Second, "TIMED_OUT")
	if x.Steps[0].Status != model.StepFailed || !strings.Contains(x.Error, "timed out after 2 seconds") {
		t.Fatalf("timed out execution: %s %q, step %s", x.Status, x.Error, x.Steps[0].Status)
	}
	events := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+id+"/events", "")
	if n := strings.Count(string(events.Raw), `"type":"`+model.EventExecutionTimedOut+`"`); n != 1 {
		t.Fatalf("history holds %d %s events after %v commands from overlapping runs, want 1", n, model.EventExecutionTimedOut, published)
	}
	// A later run finds nothing more to do.
	if n, err := e.Cleanup.Run(context.Background()); err != nil || n != 0 {
		t.Fatalf("cleanup after the timeout: published %d, %v; want nothing", n, err)
	}
}

// Acceptance: a client on an execution's stream receives a view for each
// change, and the stream ends after SUCCEEDED.
func TestStreamSendsEveryChangeAndEndsAfterSucceeded(t *testing.T) {
	c, _ := runEmbeddedWith(t, embedded.Config{})
	_, id := c.StartRunning(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.Base+"/v1/workflow-executions/"+id+"/stream", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	type sse struct{ event, data string }
	events := make(chan sse, 100)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var cur sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				cur.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				cur.data = strings.TrimPrefix(line, "data: ")
			case line == "" && cur.event != "":
				events <- cur
				cur = sse{}
			}
		}
	}()
	next := func() sse {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the stream ended early")
			}
			return ev
		case <-ctx.Done():
			t.Fatal("no event in time")
		}
		return sse{}
	}
	var versions []int64
	view := func(want func(model.Execution) bool) model.Execution {
		t.Helper()
		ev := next()
		var x model.Execution
		if ev.event != "execution" || json.Unmarshal([]byte(ev.data), &x) != nil || !want(x) {
			t.Fatalf("got event %s %s", ev.event, ev.data)
		}
		versions = append(versions, x.Version)
		return x
	}
	view(func(x model.Execution) bool { return x.CurrentStep == 0 && x.Status == "RUNNING" })
	for step := range 3 {
		r := c.Expect(t, 202, "POST", "/v1/workflow-executions/"+id+"/increments", fmt.Sprintf(`{"step":%d}`, step))
		if st := c.WaitCommand(t, r.String("commandUUID"), 10*time.Second); st.String("status") != "APPLIED" {
			t.Fatalf("increment %d: %s", step, st.Raw)
		}
		view(func(x model.Execution) bool { return x.Steps[step].Status == model.StepSucceeded })
	}
	if end := next(); end.event != "end" || !strings.Contains(end.data, "SUCCEEDED") {
		t.Fatalf("after the last step: event %s %s, want end with SUCCEEDED", end.event, end.data)
	}
	if _, ok := <-events; ok {
		t.Fatal("the stream went on after its end event")
	}
	for i := 1; i < len(versions); i++ {
		if versions[i] <= versions[i-1] {
			t.Fatalf("versions %v: want each view newer than the last", versions)
		}
	}
}

var _ = uuid.Nil

// Cancelling an execution while its http step's request is in flight: the
// execution is CANCELLED at once, and the answer that comes back later is
// ignored (no step completes after the cancellation).
func TestCancellationIgnoresALateHTTPAnswer(t *testing.T) {
	inFlight := make(chan struct{}, 1)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case inFlight <- struct{}{}:
		default:
		}
		<-release
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"late":true}`)
	}))
	defer slow.Close()
	defer close(release)
	host := strings.TrimPrefix(slow.URL, "http://")
	c, _ := runEmbeddedWith(t, embedded.Config{Steps: app.StepsConfig{HTTPAllowHosts: []string{host}}})
	id := c.StartWorkflow(t, fmt.Sprintf(`[{"name":"charge","type":"http","url":%q,"timeoutSeconds":30},{"name":"ship","type":"manual"}]`, slow.URL), "")
	select {
	case <-inFlight:
	case <-time.After(10 * time.Second):
		t.Fatal("the http step's request never came")
	}
	c.MustApply(t, "POST", "/v1/workflow-executions/"+id+"/cancellations", `{"reason":"customer left"}`)
	x := c.WaitStatus(t, id, 10*time.Second, "CANCELLED")
	if x.Error != "customer left" || x.Steps[0].Status != model.StepFailed || x.Steps[1].Status != model.StepSkipped {
		t.Fatalf("cancelled execution: %q, steps %s %s", x.Error, x.Steps[0].Status, x.Steps[1].Status)
	}
	release <- struct{}{} // the answer comes back now
	time.Sleep(500 * time.Millisecond)
	events := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+id+"/events", "")
	if strings.Contains(string(events.Raw), model.EventStepCompleted) {
		t.Fatalf("a step completed after the cancellation: %s", events.Raw)
	}
	if got := c.WaitStatus(t, id, time.Second, "CANCELLED"); got.Version != x.Version {
		t.Fatalf("the view moved on after the cancellation: version %d, then %d", x.Version, got.Version)
	}
}

// The workflow language's control flow on the embedded runtime
// (apitest.OrderFlow): a choice, an http step, a fail step and a loop
// through a wait step.
func TestControlFlow(t *testing.T) {
	hook := apitest.NewHookServer(t, 0)
	c, _ := runEmbeddedWith(t, embedded.Config{Steps: app.StepsConfig{HTTPAllowHosts: []string{hook.Host()}}})
	apitest.OrderFlow(t, c, hook)
}

// The workflow language's errors on the embedded runtime
// (apitest.ErrorsFlow): retry rules, catch, a client's failure of a
// manual step.
func TestErrorsRetryAndCatch(t *testing.T) {
	failing := apitest.NewHookServer(t, 1<<30)
	c, _ := runEmbeddedWith(t, embedded.Config{Steps: app.StepsConfig{HTTPAllowHosts: []string{failing.Host()}}})
	apitest.ErrorsFlow(t, c, failing)
}

// Data between steps on the embedded runtime (apitest.DataFlow).
func TestDataBetweenSteps(t *testing.T) {
	hook := apitest.NewHookServer(t, 0)
	c, _ := runEmbeddedWith(t, embedded.Config{Steps: app.StepsConfig{HTTPAllowHosts: []string{hook.Host()}}})
	apitest.DataFlow(t, c, hook)
}

// Redrive, pause and resume on the embedded runtime
// (apitest.OperateFlow).
func TestRedrivePauseAndResume(t *testing.T) {
	flaky, hook := apitest.NewHookServer(t, 1), apitest.NewHookServer(t, 0)
	c, _ := runEmbeddedWith(t, embedded.Config{Steps: app.StepsConfig{HTTPAllowHosts: []string{flaky.Host(), hook.Host()}}})
	apitest.OperateFlow(t, c, flaky, hook)
}

// Issue 12's order workflow on the embedded runtime
// (apitest.OrderWorkflow).
func TestOrderWorkflow(t *testing.T) {
	ok, failing := apitest.NewHookServer(t, 0), apitest.NewHookServer(t, 1<<30)
	c, _ := runEmbeddedWith(t, embedded.Config{Steps: app.StepsConfig{HTTPAllowHosts: []string{ok.Host(), failing.Host()}}})
	apitest.OrderWorkflow(t, c, ok, failing)
}

// Secret references on the embedded runtime (apitest.SecretFlow), every
// log line of the runtime captured.
func TestSecretReferences(t *testing.T) {
	hook, echo := apitest.NewHookServer(t, 0), apitest.NewEchoServer(t)
	logs := &apitest.SyncBuffer{}
	c, _ := runEmbeddedWith(t, embedded.Config{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Steps: app.StepsConfig{HTTPAllowHosts: []string{hook.Host(), strings.TrimPrefix(echo.URL, "http://")}, Secrets: apitest.Secrets()}})
	apitest.SecretFlow(t, c, hook, echo, logs.String)
}

// The dial-time egress check on the embedded runtime (apitest.EgressFlow).
func TestEgressRefusedAtDialTime(t *testing.T) {
	hook := apitest.NewHookServer(t, 0)
	c, _ := runEmbeddedWith(t, embedded.Config{Steps: app.StepsConfig{HTTPAllowHosts: apitest.EgressAllow(hook), HTTPResolver: apitest.EgressResolver}})
	apitest.EgressFlow(t, c, hook)
}

// Authentication on the embedded runtime (apitest.AuthFlow).
func TestAuthentication(t *testing.T) {
	is := apitest.NewIssuer(t)
	c, _ := runEmbeddedWith(t, embedded.Config{Auth: is.Authenticator(t)})
	apitest.AuthFlow(t, c, is)
}

// Parallel steps on the embedded runtime (apitest.ParallelFlow).
func TestParallelSteps(t *testing.T) {
	hook := apitest.NewHookServer(t, 0)
	c, _ := runEmbeddedWith(t, embedded.Config{Steps: app.StepsConfig{HTTPAllowHosts: []string{hook.Host()}}})
	apitest.ParallelFlow(t, c, hook)
}

// /metrics shows what the service did: requests by route and status,
// commands by outcome, http attempts by error name, the feed's lag and
// the cleanup's runs.
func TestMetrics(t *testing.T) {
	hook := apitest.NewHookServer(t, 1)
	m := metrics.New()
	c, e := runEmbeddedWith(t, embedded.Config{Metrics: m, Steps: app.StepsConfig{HTTPAllowHosts: []string{hook.Host()}, CleanupInterval: -1}})
	wf := c.MustApply(t, "POST", "/v1/workflows", fmt.Sprintf(`{"name":"m","steps":[{"name":"a","type":"manual"},
		{"name":"h","type":"http","url":%q,"retry":[{"errors":["*"],"maxAttempts":1,"intervalSeconds":1}]}]}`, hook.URL)).String("workflowUUID")
	id := c.MustApply(t, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf)).String("workflowExecutionUUID")
	c.MustApply(t, "POST", "/v1/workflow-executions/"+id+"/increments", `{"step":0}`)
	stale := c.Expect(t, 202, "POST", "/v1/workflow-executions/"+id+"/increments", `{"step":0}`)
	c.WaitCommand(t, stale.String("commandUUID"), 10*time.Second)
	c.WaitStatus(t, id, 20*time.Second, model.ExecutionSucceeded)
	if _, err := e.Cleanup.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(c.Base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(raw)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`workflowd_http_requests_total{method="POST",route="/v1/workflows",status="Accepted"} 1`,
		`workflowd_commands_total{outcome="accepted",type="IncrementExecution"} 2`,
		`workflowd_commands_total{outcome="applied",type="IncrementExecution"} 1`,
		`workflowd_commands_total{outcome="rejected",type="IncrementExecution"} 1`,
		`workflowd_step_attempts_total{error="http.status.5xx",outcome="failed",step_type="http"} 1`,
		`workflowd_step_attempts_total{error="",outcome="succeeded",step_type="http"} 1`,
		`workflowd_cleanup_runs_total{result="ok"} 1`,
		`workflowd_change_feed_lag_seconds_count`,
		`workflowd_http_request_duration_seconds_bucket{method="GET",route="/v1/commands/{commandUUID}"`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}
