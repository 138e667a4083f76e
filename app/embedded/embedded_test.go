package embedded_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/workflowd/workflowd/app/embedded"
	"github.com/workflowd/workflowd/bus"
	"github.com/workflowd/workflowd/internal/apitest"
)

// runEmbedded runs the whole service on a file-backed data dir and returns
// a client of its API. Everything stops at the end of the test.
func runEmbedded(t *testing.T, dir string) *apitest.Client {
	t.Helper()
	c, _ := runEmbeddedWith(t, embedded.Config{DataDir: dir})
	return c
}

// runEmbeddedWith is runEmbedded with a configuration; it also returns the
// runtime, for tests that reach behind the API.
func runEmbeddedWith(t *testing.T, cfg embedded.Config) (*apitest.Client, *embedded.Runtime) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = apitest.Logger(t)
	}
	if cfg.VisibilityTimeout == 0 {
		cfg.VisibilityTimeout = 2 * time.Second
	}
	e, err := embedded.Open(cfg)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if err := e.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return apitest.New(srv.URL), e
}

func TestTourEndToEnd(t *testing.T) {
	c := runEmbedded(t, t.TempDir())
	wf, ex := c.StartRunning(t, 2)

	got := c.Expect(t, 200, "GET", "/v1/workflows/"+wf, "")
	if got.String("name") != "wf" || got.Number("version") != 1 {
		t.Fatalf("workflow view: %s", got.Raw)
	}
	c.MustApply(t, "POST", "/v1/workflow-executions/"+ex+"/increments", `{"step":0,"output":{"ok":true}}`)
	x := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+ex, "")
	if x.Number("currentStep") != 1 || x.String("status") != "RUNNING" {
		t.Fatalf("after step 0: %s", x.Raw)
	}
	c.MustApply(t, "POST", "/v1/workflow-executions/"+ex+"/increments", `{"step":1}`)
	x = c.Expect(t, 200, "GET", "/v1/workflow-executions/"+ex, "")
	if x.String("status") != "SUCCEEDED" || x.Number("currentStep") != 2 {
		t.Fatalf("after step 1: %s", x.Raw)
	}
	h := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+ex+"/events", "")
	var types []string
	for _, e := range h.Body["items"].([]any) {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	want := "[ExecutionCreated ExecutionStarted StepStarted StepCompleted StepStarted StepCompleted ExecutionSucceeded]"
	if fmt.Sprint(types) != want {
		t.Fatalf("history: got %v, want %s", types, want)
	}
	list := c.Expect(t, 200, "GET", "/v1/workflow-executions?workflowUUID="+wf+"&status=SUCCEEDED", "")
	if n := len(list.Body["items"].([]any)); n != 1 {
		t.Fatalf("listing SUCCEEDED executions of the workflow: got %d items, want 1", n)
	}
}

func TestTenRacingIncrementsMoveCurrentStepOnce(t *testing.T) {
	c := runEmbedded(t, t.TempDir())
	_, ex := c.StartRunning(t, 3)
	before := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+ex, "").Number("version")

	// Ten increments of step 0 at once; four of them share one key.
	answers := make([]apitest.Response, 10)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			var hdr []string
			if i < 4 {
				hdr = []string{"Idempotency-Key", "same-key"}
			}
			answers[i] = c.Expect(t, http.StatusAccepted, "POST", "/v1/workflow-executions/"+ex+"/increments", `{"step":0}`, hdr...)
		})
	}
	wg.Wait()

	applied := map[string]bool{}
	rejected := 0
	for i, a := range answers {
		id := a.String("commandUUID")
		if i < 4 && id != answers[0].String("commandUUID") {
			t.Fatalf("requests sharing an Idempotency-Key got different commands: %s and %s", id, answers[0].String("commandUUID"))
		}
		st := c.WaitCommand(t, id, 20*time.Second)
		switch st.String("status") {
		case "APPLIED":
			applied[id] = true
		case "REJECTED":
			rejected++
			if st.String("error") == "" {
				t.Errorf("rejected command %s has no reason: %s", id, st.Raw)
			}
		}
	}
	if len(applied) != 1 {
		t.Fatalf("distinct applied commands: got %d, want exactly 1", len(applied))
	}
	x := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+ex, "")
	if got := x.Number("currentStep"); got != 1 {
		t.Fatalf("currentStep: got %d, want 1", got)
	}
	if got := x.Number("version"); got != before+2 { // StepCompleted + StepStarted
		t.Fatalf("version: got %d, want %d (one increment's two events)", got, before+2)
	}
	if rejected == 0 {
		t.Fatalf("no increment was rejected, yet only one applied")
	}

	// A stale increment is rejected with a reason and changes no view.
	r := c.Expect(t, http.StatusAccepted, "POST", "/v1/workflow-executions/"+ex+"/increments", `{"step":0}`)
	st := c.WaitCommand(t, r.String("commandUUID"), 20*time.Second)
	if st.String("status") != "REJECTED" || st.String("error") == "" {
		t.Fatalf("stale increment: %s", st.Raw)
	}
	after := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+ex, "")
	if after.Number("version") != x.Number("version") || after.Number("currentStep") != 1 {
		t.Fatalf("stale increment changed the view: before %s after %s", x.Raw, after.Raw)
	}
}

func TestAppliedMeansTheViewShowsIt(t *testing.T) {
	c := runEmbedded(t, t.TempDir())
	const steps = 25
	_, ex := c.StartRunning(t, steps)
	for step := range steps {
		c.MustApply(t, "POST", "/v1/workflow-executions/"+ex+"/increments", fmt.Sprintf(`{"step":%d}`, step))
		// No waiting: the APPLIED status promises the view already shows it.
		x := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+ex, "")
		if got := x.Number("currentStep"); got != step+1 {
			t.Fatalf("after APPLIED increment of step %d: currentStep %d, want %d", step, got, step+1)
		}
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	var wf, ex string
	t.Run("first_run", func(t *testing.T) {
		c := runEmbedded(t, dir)
		wf, ex = c.StartRunning(t, 2)
		c.MustApply(t, "POST", "/v1/workflow-executions/"+ex+"/increments", `{"step":0}`)
	})
	t.Run("second_run", func(t *testing.T) {
		c := runEmbedded(t, dir)
		c.Expect(t, 200, "GET", "/v1/workflows/"+wf, "")
		x := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+ex, "")
		if x.Number("currentStep") != 1 {
			t.Fatalf("after restart: %s", x.Raw)
		}
		c.MustApply(t, "POST", "/v1/workflow-executions/"+ex+"/increments", `{"step":1}`)
		c.WaitExecution(t, ex, 5*time.Second, "SUCCEEDED", func(r apitest.Response) bool { return r.String("status") == "SUCCEEDED" })
	})
}

// A poison message ends in the dead-letter queue with its reason; the
// operator lists it and redrives it through the API.
func TestPoisonMessageIsListedAndRedrivenThroughTheAPI(t *testing.T) {
	c, e := runEmbeddedWith(t, embedded.Config{DataDir: t.TempDir(), MaxReceiveCount: 2, VisibilityTimeout: time.Second})
	poison := bus.Message{Body: []byte(`{"commandUUID":"not-a-uuid"}`), Attributes: map[string]string{bus.TargetAttribute: "executions"}}
	if err := e.Bus.Publish(context.Background(), poison); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var items []any
	for len(items) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the poison message did not reach the dead-letter queue in 30s")
		}
		time.Sleep(100 * time.Millisecond)
		items, _ = c.Expect(t, 200, "GET", "/v1/queues/executions/dead-letters", "").Body["items"].([]any)
	}
	dl := items[0].(map[string]any)
	if dl["body"] != string(poison.Body) {
		t.Fatalf("dead letter body: got %v, want %s", dl["body"], poison.Body)
	}
	if reason, _ := dl["attributes"].(map[string]any)["lastError"].(string); reason == "" {
		t.Errorf("dead letter has no lastError: %v", dl)
	}
	r := c.Expect(t, 200, "POST", "/v1/queues/executions/redrive", `{"max":10}`)
	if r.Number("moved") != 1 {
		t.Fatalf("redrive: %s", r.Raw)
	}
	c.Expect(t, 404, "GET", "/v1/queues/nope/dead-letters", "")
}
