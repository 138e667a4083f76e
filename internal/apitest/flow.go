package apitest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/workflowd/workflowd/model"
)

// OrderFlow is the workflow language's control flow run end to end through
// a runtime's API, the same on both backends: a choice on input.amount
// sends a large order to a manual approval and a small one straight to an
// http step (hook, which must be allowed); a rejected approval ends in a
// fail step; a loop through a wait step runs the wait again, with a timer
// of its own.
func OrderFlow(t *testing.T, c *Client, hook *HookServer) {
	t.Helper()
	def := fmt.Sprintf(`{"name":"order","steps":[
		{"name":"route","type":"choice","rules":[{"when":"input.amount >= 1000","next":"approve"}],"default":"ship"},
		{"name":"approve","type":"manual"},
		{"name":"approved?","type":"choice","rules":[{"when":"steps.approve.ok","next":"ship"}],"default":"rejected"},
		{"name":"rejected","type":"fail","error":"order.rejected","cause":"the approver said no"},
		{"name":"ship","type":"http","url":%q,"end":true}]}`, hook.URL+"/ship")
	wf := c.MustApply(t, "POST", "/v1/workflows", def).String("workflowUUID")
	start := func(amount string) string {
		return c.MustApply(t, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q,"input":{"amount":%s}}`, wf, amount)).String("workflowExecutionUUID")
	}
	steps := func(x model.Execution) string {
		var b []string
		for _, st := range x.Steps {
			b = append(b, st.Name+"="+st.Status)
		}
		return strings.Join(b, " ")
	}

	// A small order goes straight to the http step.
	small := start("20")
	x := c.WaitStatus(t, small, 20*time.Second, model.ExecutionSucceeded, model.ExecutionFailed)
	if x.Status != model.ExecutionSucceeded || string(x.Output) != `{"charged":true}` {
		t.Fatalf("small order: %s (%s), output %s; want SUCCEEDED with the http step's answer", x.Status, x.Error, x.Output)
	}
	if got, want := steps(x), "route=SUCCEEDED approve=SKIPPED approved?=SKIPPED rejected=SKIPPED ship=SUCCEEDED"; got != want {
		t.Fatalf("small order's steps: got %s, want %s", got, want)
	}

	// A large one waits for the approval; a rejection ends it in the
	// fail step, and the http step is never called.
	calls := len(hook.Recorded())
	large := start("2500.5")
	c.WaitExecution(t, large, 20*time.Second, "the approval current", func(r Response) bool { return r.Number("currentStep") == 1 })
	c.MustApply(t, "POST", "/v1/workflow-executions/"+large+"/increments", `{"step":1,"output":{"ok":false}}`)
	x = c.WaitStatus(t, large, 20*time.Second, model.ExecutionFailed, model.ExecutionSucceeded)
	if x.Status != model.ExecutionFailed || x.ErrorName != "order.rejected" || x.Error != "order.rejected: the approver said no" {
		t.Fatalf("rejected order: %s %q %q, want FAILED order.rejected with its cause", x.Status, x.ErrorName, x.Error)
	}
	if got, want := steps(x), "route=SUCCEEDED approve=SUCCEEDED approved?=SUCCEEDED rejected=FAILED ship=SKIPPED"; got != want {
		t.Fatalf("rejected order's steps: got %s, want %s", got, want)
	}
	if n := len(hook.Recorded()); n != calls {
		t.Fatalf("the rejected order called the http step %d times", n-calls)
	}
	// The choice and the fail step were decided in the increment's write.
	var page struct{ Items []model.Event }
	if err := json.Unmarshal(c.Expect(t, 200, "GET", "/v1/workflow-executions/"+large+"/events", "").Raw, &page); err != nil {
		t.Fatal(err)
	}
	last := page.Items[len(page.Items)-5:]
	for _, e := range last {
		if e.CommandUUID != last[0].CommandUUID {
			t.Fatalf("the approval's events: %s by %s, %s by %s: want one command's append", last[0].Type, last[0].CommandUUID, e.Type, e.CommandUUID)
		}
	}

	// A loop through a wait step: the second run's timer fires too.
	loop := c.MustApply(t, "POST", "/v1/workflows", `{"name":"loop","steps":[
		{"name":"pause","type":"wait","seconds":1},
		{"name":"ask","type":"manual"},
		{"name":"again?","type":"choice","rules":[{"when":"steps.ask.more","next":"pause"}],"default":"done"},
		{"name":"done","type":"succeed"}]}`).String("workflowUUID")
	id := c.MustApply(t, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, loop)).String("workflowExecutionUUID")
	for round, more := range []bool{true, false} {
		c.WaitExecution(t, id, 20*time.Second, fmt.Sprintf("round %d at ask", round+1), func(r Response) bool { return r.Number("currentStep") == 1 })
		c.MustApply(t, "POST", "/v1/workflow-executions/"+id+"/increments", fmt.Sprintf(`{"step":1,"output":{"more":%t}}`, more))
	}
	x = c.WaitStatus(t, id, 20*time.Second, model.ExecutionSucceeded, model.ExecutionFailed)
	if x.Status != model.ExecutionSucceeded || x.Steps[0].Runs != 2 || x.Steps[1].Runs != 2 {
		t.Fatalf("the loop: %s (%s), runs %d and %d; want SUCCEEDED after two runs of each", x.Status, x.Error, x.Steps[0].Runs, x.Steps[1].Runs)
	}
}

// ErrorsFlow is the workflow language's errors run end to end through a
// runtime's API, the same on both backends: an http step (failing, which
// answers 503 to every call and must be allowed) retried by a rule and
// then caught into a manual review; the reviewer's failure retried (the
// step offered again after two seconds, an increment before then refused)
// and then caught into a choice over the caught error; each failure
// named in the view and the history.
func ErrorsFlow(t *testing.T, c *Client, failing *HookServer) {
	t.Helper()
	def := fmt.Sprintf(`{"name":"pay","steps":[
		{"name":"charge","type":"http","url":%q,
		 "retry":[{"errors":["http.status.5xx"],"maxAttempts":1,"intervalSeconds":1}],
		 "catch":[{"errors":["http.*"],"next":"review"}]},
		{"name":"ship","type":"manual","end":true},
		{"name":"review","type":"manual","end":true,
		 "retry":[{"errors":["review.later"],"maxAttempts":1,"intervalSeconds":2}],
		 "catch":[{"errors":["*"],"next":"refund?"}]},
		{"name":"refund?","type":"choice","rules":[{"when":"error.name == 'order.rejected' && error.step == 'review' && error.cause == 'no stock'","next":"refunded"}],"default":"broken"},
		{"name":"refunded","type":"succeed"},
		{"name":"broken","type":"fail","error":"test.unexpected"}]}`, failing.URL+"/charge")
	wf := c.MustApply(t, "POST", "/v1/workflows", def).String("workflowUUID")
	calls := len(failing.Recorded())
	id := c.MustApply(t, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf)).String("workflowExecutionUUID")
	inc := "/v1/workflow-executions/" + id + "/increments"

	// The 503 is retried once, then caught: the review waits.
	c.WaitExecution(t, id, 20*time.Second, "at the review", func(r Response) bool { return r.Number("currentStep") == 2 })
	x := c.WaitStatus(t, id, time.Second, model.ExecutionRunning)
	if st := x.Steps[0]; st.Status != model.StepFailed || st.ErrorName != model.ErrHTTPStatus5xx || st.Attempts != 2 || !strings.Contains(st.Error, "503") {
		t.Fatalf("the caught http step: %+v, want FAILED http.status.5xx after 2 attempts", st)
	}
	if n := len(failing.Recorded()) - calls; n != 2 {
		t.Fatalf("the http step was called %d times, want 2 (one retry)", n)
	}
	if f := x.Steps[0].Failures; len(f) != 2 || f[0].Attempt != 1 || f[1].Attempt != 2 || f[0].Name != model.ErrHTTPStatus5xx || f[1].Name != model.ErrHTTPStatus5xx {
		t.Fatalf("the http step's failures in its view: %+v, want attempts 1 and 2, both http.status.5xx", f)
	}

	// An increment that fails and completes at once is refused.
	c.Expect(t, 400, "POST", inc, `{"step":2,"error":"x","output":{"ok":true}}`)
	c.Expect(t, 400, "POST", inc, `{"step":2,"error":"not a name"}`)
	// The reviewer asks for later: retried, offered again in a second.
	c.MustApply(t, "POST", inc, `{"step":2,"error":"review.later","cause":"out to lunch"}`)
	x = c.WaitStatus(t, id, time.Second, model.ExecutionRunning)
	if st := x.Steps[2]; st.Status != model.StepWaiting || st.ErrorName != "review.later" || st.DueAt == nil {
		t.Fatalf("the review after its failure: %+v, want WAITING, offered again", st)
	}
	early := c.Expect(t, 202, "POST", inc, `{"step":2,"output":{}}`)
	if st := c.WaitCommand(t, early.String("commandUUID"), 10*time.Second); st.String("status") != "REJECTED" || !strings.Contains(string(st.Raw), "offered again") {
		t.Fatalf("an increment before the retry is due (at %s, now %s): %s", x.Steps[2].DueAt, time.Now().UTC(), st.Raw)
	}
	time.Sleep(time.Until(*x.Steps[2].DueAt) + 50*time.Millisecond)
	// Rejected this time: caught, and the choice reads the caught error.
	c.MustApply(t, "POST", inc, `{"step":2,"error":"order.rejected","cause":"no stock"}`)
	x = c.WaitStatus(t, id, 20*time.Second, model.ExecutionSucceeded, model.ExecutionFailed)
	if x.Status != model.ExecutionSucceeded {
		t.Fatalf("after the rejection: %s %q %q, want SUCCEEDED through refunded", x.Status, x.ErrorName, x.Error)
	}
	var b []string
	for _, st := range x.Steps {
		b = append(b, st.Name+"="+st.Status)
	}
	if got, want := strings.Join(b, " "), "charge=FAILED ship=SKIPPED review=FAILED refund?=SUCCEEDED refunded=SUCCEEDED broken=SKIPPED"; got != want {
		t.Fatalf("steps: got %s, want %s", got, want)
	}
	if st := x.Steps[2]; st.ErrorName != "order.rejected" || st.Attempts != 2 {
		t.Fatalf("the review: %+v, want order.rejected on attempt 2", st)
	}
	var page struct{ Items []model.Event }
	if err := json.Unmarshal(c.Expect(t, 200, "GET", "/v1/workflow-executions/"+id+"/events", "").Raw, &page); err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, e := range page.Items {
		if e.Type == model.EventStepFailed || e.Type == model.EventStepAttemptFailed {
			var d struct{ Name string }
			json.Unmarshal(e.Data, &d)
			failed = append(failed, e.Type+":"+d.Name)
		}
	}
	if got, want := strings.Join(failed, " "), "StepAttemptFailed:http.status.5xx StepFailed:http.status.5xx StepAttemptFailed:review.later StepFailed:order.rejected"; got != want {
		t.Fatalf("the failures in the history: %s, want %s", got, want)
	}
}

// DataFlow is data between steps run end to end through a runtime's API,
// the same on both backends: an http step (hook, which must be allowed)
// whose url, header and body are built from the input and an earlier
// step's output, an output expression over its answer, and the
// execution's output expression.
func DataFlow(t *testing.T, c *Client, hook *HookServer) {
	t.Helper()
	def := fmt.Sprintf(`{"name":"data","output":"{'order': input.id, 'charged': steps.charge.ok, 'total': steps.quote.total}","steps":[
		{"name":"quote","type":"manual","output":"{'total': result.amount * 2}"},
		{"name":"charge","type":"http","url":%q,
		 "headers":{"X-Order":"{{ input.id }}"},
		 "body":"{'order': input.id, 'amount': steps.quote.total}",
		 "output":"{'ok': result.charged}"}]}`, hook.URL+"/orders/{{ input.id }}/charge")
	wf := c.MustApply(t, "POST", "/v1/workflows", def).String("workflowUUID")
	calls := len(hook.Recorded())
	id := c.MustApply(t, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q,"input":{"id":"A 7/1"}}`, wf)).String("workflowExecutionUUID")
	c.MustApply(t, "POST", "/v1/workflow-executions/"+id+"/increments", `{"step":0,"output":{"amount":21}}`)
	x := c.WaitStatus(t, id, 20*time.Second, model.ExecutionSucceeded, model.ExecutionFailed)
	if x.Status != model.ExecutionSucceeded || string(x.Output) != `{"charged":true,"order":"A 7/1","total":42}` {
		t.Fatalf("the execution: %s (%s) output %s", x.Status, x.Error, x.Output)
	}
	if got := string(x.Steps[0].Output); got != `{"total":42}` {
		t.Errorf("the quote's shaped output: %s", got)
	}
	rec := hook.Recorded()[calls:]
	if len(rec) != 1 {
		t.Fatalf("the hook got %d calls, want 1", len(rec))
	}
	call := rec[0]
	if call.URI != "/orders/A%207%2F1/charge" || call.Header.Get("X-Order") != "A 7/1" {
		t.Errorf("the call: %s, X-Order %q", call.URI, call.Header.Get("X-Order"))
	}
	if b, _ := json.Marshal(call.Body); string(b) != `{"amount":42,"order":"A 7/1"}` {
		t.Errorf("the body: %s", b)
	}
	// A mistake in an expression is a 400 naming the field.
	r := c.Expect(t, 400, "POST", "/v1/workflows", `{"name":"bad","steps":[{"name":"h","type":"http","url":"http://a.example/{{ input. }}"}]}`)
	if !strings.Contains(string(r.Raw), `"field":"steps[0].url"`) {
		t.Errorf("a bad url expression: %s", r.Raw)
	}
}

// OperateFlow is redrive, pause and resume run end to end through a
// runtime's API, the same on both backends. flaky must answer 503 to its
// first call only, and hook 2xx to all, both allowed: the http step on
// flaky fails the execution once, and the redrive goes on from it, with
// the approval's output kept and the http step before it not called
// again. A pause holds a 2-second wait step's timer and the step after an
// increment until the resume.
func OperateFlow(t *testing.T, c *Client, flaky, hook *HookServer) {
	t.Helper()
	history := func(id string) []model.Event {
		var page struct{ Items []model.Event }
		if err := json.Unmarshal(c.Expect(t, 200, "GET", "/v1/workflow-executions/"+id+"/events", "").Raw, &page); err != nil {
			t.Fatal(err)
		}
		return page.Items
	}
	count := func(events []model.Event, typ string) int {
		n := 0
		for _, e := range events {
			if e.Type == typ {
				n++
			}
		}
		return n
	}

	// Redrive.
	wf := c.MustApply(t, "POST", "/v1/workflows", fmt.Sprintf(`{"name":"redrive","steps":[
		{"name":"approve","type":"manual"},
		{"name":"reserve","type":"http","url":%q},
		{"name":"charge","type":"http","url":%q},
		{"name":"ship","type":"manual"}]}`, hook.URL+"/reserve", flaky.URL+"/charge")).String("workflowUUID")
	hookCalls, flakyCalls := len(hook.Recorded()), len(flaky.Recorded())
	id := c.MustApply(t, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf)).String("workflowExecutionUUID")
	path := "/v1/workflow-executions/" + id
	c.MustApply(t, "POST", path+"/increments", `{"step":0,"output":{"ok":true}}`)
	x := c.WaitStatus(t, id, 20*time.Second, model.ExecutionFailed, model.ExecutionSucceeded)
	if x.Status != model.ExecutionFailed || x.ErrorName != model.ErrHTTPStatus5xx || x.CurrentStep != 2 {
		t.Fatalf("before the redrive: %s %q at %d", x.Status, x.ErrorName, x.CurrentStep)
	}
	first := c.Expect(t, 202, "POST", path+"/redrives", `{"reason":"the shop is back"}`, "Idempotency-Key", "redrive-"+id)
	again := c.Expect(t, 202, "POST", path+"/redrives", `{"reason":"the shop is back"}`, "Idempotency-Key", "redrive-"+id)
	if first.String("commandUUID") != again.String("commandUUID") {
		t.Fatalf("the same key made two redrives: %s, %s", first.String("commandUUID"), again.String("commandUUID"))
	}
	if st := c.WaitCommand(t, first.String("commandUUID"), 20*time.Second); st.String("status") != "APPLIED" {
		t.Fatalf("the redrive: %s", st.Raw)
	}
	r := c.WaitExecution(t, id, 20*time.Second, "at ship after the redrive", func(r Response) bool { return r.Number("currentStep") == 3 })
	x = c.WaitStatus(t, id, time.Second, model.ExecutionRunning)
	if x.Redrives != 1 || x.RedrivenAt == nil || string(x.Steps[0].Output) != `{"ok":true}` || x.Steps[1].Runs != 1 || x.Steps[2].Status != model.StepSucceeded || x.Steps[2].Runs != 2 || x.ErrorName != "" {
		t.Fatalf("after the redrive: %s", r.Raw)
	}
	if h, f := len(hook.Recorded())-hookCalls, len(flaky.Recorded())-flakyCalls; h != 1 || f != 2 {
		t.Fatalf("calls: the completed step %d (want 1: not called again), the failed one %d (want 2)", h, f)
	}
	c.MustApply(t, "POST", path+"/increments", `{"step":3,"output":{}}`)
	c.WaitStatus(t, id, 20*time.Second, model.ExecutionSucceeded)
	late := c.Expect(t, 202, "POST", path+"/redrives", "")
	if st := c.WaitCommand(t, late.String("commandUUID"), 20*time.Second); st.String("status") != "REJECTED" || !strings.Contains(string(st.Raw), "only a FAILED or TIMED_OUT") {
		t.Fatalf("a redrive of a SUCCEEDED execution: %s", st.Raw)
	}
	if n := count(history(id), model.EventExecutionRedriven); n != 1 {
		t.Fatalf("%d ExecutionRedriven events, want 1", n)
	}

	// Pause and resume.
	wf = c.MustApply(t, "POST", "/v1/workflows", `{"name":"pause","steps":[
		{"name":"cool","type":"wait","seconds":2},
		{"name":"approve","type":"manual"},
		{"name":"settle","type":"wait","seconds":1},
		{"name":"ship","type":"manual"}]}`).String("workflowUUID")
	id = c.MustApply(t, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf)).String("workflowExecutionUUID")
	path = "/v1/workflow-executions/" + id
	c.MustApply(t, "POST", path+"/pauses", `{"reason":"incident"}`)
	x = c.WaitStatus(t, id, time.Second, model.ExecutionRunning)
	if !x.Paused || x.Steps[0].DueAt == nil {
		t.Fatalf("after the pause: paused %v, %+v", x.Paused, x.Steps[0])
	}
	time.Sleep(time.Until(*x.Steps[0].DueAt) + 1500*time.Millisecond)
	x = c.WaitStatus(t, id, time.Second, model.ExecutionRunning)
	if x.CurrentStep != 0 || x.Steps[0].Status != model.StepWaiting {
		t.Fatalf("the paused wait step ended: at %d, %s", x.CurrentStep, x.Steps[0].Status)
	}
	c.MustApply(t, "POST", path+"/resumes", "")
	x = c.WaitStatus(t, id, time.Second, model.ExecutionRunning)
	if x.Paused || x.CurrentStep != 1 || x.Steps[1].Status != model.StepWaiting {
		t.Fatalf("after the resume: paused %v at %d (%s)", x.Paused, x.CurrentStep, x.Steps[1].Status)
	}
	// An increment while paused is recorded; the step after it waits.
	c.MustApply(t, "POST", path+"/pauses", "")
	c.MustApply(t, "POST", path+"/increments", `{"step":1,"output":{}}`)
	x = c.WaitStatus(t, id, time.Second, model.ExecutionRunning)
	if x.CurrentStep != 2 || x.Steps[1].Status != model.StepSucceeded || x.Steps[2].Status != model.StepPending {
		t.Fatalf("an increment while paused: at %d, %s then %s", x.CurrentStep, x.Steps[1].Status, x.Steps[2].Status)
	}
	c.MustApply(t, "POST", path+"/resumes", "")
	c.WaitExecution(t, id, 20*time.Second, "at ship", func(r Response) bool { return r.Number("currentStep") == 3 })
	// Cancellation works while paused.
	c.MustApply(t, "POST", path+"/pauses", "")
	c.MustApply(t, "POST", path+"/cancellations", "")
	if x = c.WaitStatus(t, id, 10*time.Second, model.ExecutionCancelled); x.Paused {
		t.Fatal("a cancelled execution is still paused")
	}
	events := history(id)
	if p, r := count(events, model.EventExecutionPaused), count(events, model.EventExecutionResumed); p != 3 || r != 2 {
		t.Fatalf("the history has %d pauses and %d resumes, want 3 and 2", p, r)
	}
}

// ParallelFlow is parallel steps run end to end through a runtime's API,
// the same on both backends (hook must answer 2xx, and be allowed): an
// approval beside an http call and a wait, the parallel step completing
// with the branches' outputs; two http branches at once (one attempt held
// by the worker that started them, the other issued by the dispatcher),
// each called once; a branch's fail step caught by the parallel step,
// the other branch cancelled.
func ParallelFlow(t *testing.T, c *Client, hook *HookServer) {
	t.Helper()
	wf := c.MustApply(t, "POST", "/v1/workflows", fmt.Sprintf(`{"name":"checks","steps":[
		{"name":"checks","type":"parallel","branches":[
			{"steps":[{"name":"ask","type":"manual"}]},
			{"steps":[{"name":"call","type":"http","url":%q},{"name":"cool","type":"wait","seconds":1}]}]},
		{"name":"done","type":"manual"}]}`, hook.URL+"/check")).String("workflowUUID")
	id := c.MustApply(t, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf)).String("workflowExecutionUUID")
	x := c.WaitStatus(t, id, time.Second, model.ExecutionRunning)
	names := func(x model.Execution) string {
		var b []string
		for _, st := range x.Steps {
			b = append(b, fmt.Sprintf("%s(%s/%d)=%s", st.Name, st.Parallel, st.Branch, st.Status))
		}
		return strings.Join(b, " ")
	}
	if len(x.Steps) != 5 || x.Steps[2].Name != "ask" || x.Steps[2].Parallel != "checks" || x.Steps[4].Branch != 1 || len(x.Steps[0].Branches) != 2 {
		t.Fatalf("the steps laid out: %s", names(x))
	}
	c.MustApply(t, "POST", "/v1/workflow-executions/"+id+"/increments", `{"step":2,"output":{"approved":true}}`)
	c.WaitExecution(t, id, 20*time.Second, "at done", func(r Response) bool { return r.Number("currentStep") == 1 })
	x = c.WaitStatus(t, id, time.Second, model.ExecutionRunning)
	if st := x.Steps[0]; st.Status != model.StepSucceeded || string(st.Output) != `[{"approved":true},null]` || st.Branches[0].Status != model.BranchSucceeded || st.Branches[1].Status != model.BranchSucceeded {
		t.Fatalf("the parallel step: %s %s %+v", st.Status, st.Output, st.Branches)
	}
	c.MustApply(t, "POST", "/v1/workflow-executions/"+id+"/increments", `{"step":1,"output":{}}`)
	c.WaitStatus(t, id, 20*time.Second, model.ExecutionSucceeded)

	// Two calls at once.
	calls := len(hook.Recorded())
	wf = c.MustApply(t, "POST", "/v1/workflows", fmt.Sprintf(`{"name":"both","steps":[
		{"name":"both","type":"parallel","branches":[
			{"steps":[{"name":"a","type":"http","url":%q}]},
			{"steps":[{"name":"b","type":"http","url":%q}]}]}]}`, hook.URL+"/a", hook.URL+"/b")).String("workflowUUID")
	id = c.MustApply(t, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf)).String("workflowExecutionUUID")
	x = c.WaitStatus(t, id, 20*time.Second, model.ExecutionSucceeded, model.ExecutionFailed)
	if x.Status != model.ExecutionSucceeded || string(x.Output) != `[{"charged":true},{"charged":true}]` {
		t.Fatalf("two calls at once: %s (%s) %s", x.Status, x.Error, x.Output)
	}
	keys := map[string]int{}
	for _, call := range hook.Recorded()[calls:] {
		keys[call.URI]++
	}
	if len(keys) != 2 || keys["/a"] != 1 || keys["/b"] != 1 {
		t.Fatalf("the calls: %v, want /a and /b once each", keys)
	}

	// A branch fails: caught, the other cancelled.
	wf = c.MustApply(t, "POST", "/v1/workflows", `{"name":"fails","steps":[
		{"name":"try","type":"parallel","catch":[{"errors":["stock.*"],"next":"recover"}],"branches":[
			{"steps":[{"name":"wait","type":"manual"}]},
			{"steps":[{"name":"stock?","type":"choice","rules":[{"when":"input.stock > 0","next":"ok"}],"default":"none"},
			          {"name":"ok","type":"succeed"},{"name":"none","type":"fail","error":"stock.none"}]}]},
		{"name":"after","type":"manual","end":true},
		{"name":"recover","type":"manual"}]}`).String("workflowUUID")
	id = c.MustApply(t, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q,"input":{"stock":0}}`, wf)).String("workflowExecutionUUID")
	x = c.WaitStatus(t, id, time.Second, model.ExecutionRunning)
	if x.CurrentStep != 2 || x.Steps[0].Status != model.StepFailed || x.Steps[0].ErrorName != "stock.none" || x.Steps[0].Branches[0].Status != model.BranchCancelled {
		t.Fatalf("a failed branch: at %d, %s", x.CurrentStep, names(x))
	}
	stale := c.Expect(t, 202, "POST", "/v1/workflow-executions/"+id+"/increments", `{"step":3,"output":{}}`)
	if st := c.WaitCommand(t, stale.String("commandUUID"), 20*time.Second); st.String("status") != "REJECTED" || !strings.Contains(string(st.Raw), "not in progress in its branch") {
		t.Fatalf("an increment of a cancelled branch's step: %s", st.Raw)
	}
}

// OrderWorkflow is issue 12's order workflow run end to end through a
// runtime's API, the same on both backends (ok answers 2xx to every call,
// failing 503; both allowed): a choice on input.amount sends a large
// order to a manual approval and a small one straight on; a parallel step
// calls two http endpoints; the charge's failure, after its retries, is
// caught and routed to a compensation http step whose body is built from
// the caught error; a fail step ends a rejected approval with its error.
func OrderWorkflow(t *testing.T, c *Client, ok, failing *HookServer) {
	t.Helper()
	def := fmt.Sprintf(`{"name":"order","steps":[
		{"name":"route","type":"choice","rules":[{"when":"input.amount >= 1000","next":"approve"}],"default":"checks"},
		{"name":"approve","type":"manual"},
		{"name":"approved?","type":"choice","rules":[{"when":"steps.approve.ok","next":"checks"}],"default":"rejected"},
		{"name":"rejected","type":"fail","error":"order.rejected","cause":"the approver said no"},
		{"name":"checks","type":"parallel","branches":[
			{"steps":[{"name":"stock","type":"http","url":%q}]},
			{"steps":[{"name":"fraud","type":"http","url":%q}]}]},
		{"name":"charge","type":"http","url":%q,
		 "retry":[{"errors":["http.status.5xx"],"maxAttempts":2,"intervalSeconds":1}],
		 "catch":[{"errors":["http.*"],"next":"refund"}]},
		{"name":"ship","type":"http","url":%q,"end":true},
		{"name":"refund","type":"http","url":%q,"body":"{'order': input.id, 'error': error.name, 'step': error.step, 'cause': error.cause}"},
		{"name":"refunded","type":"fail","error":"payment.failed"}]}`,
		ok.URL+"/stock", ok.URL+"/fraud", failing.URL+"/charge", ok.URL+"/ship", ok.URL+"/refund")
	wf := c.MustApply(t, "POST", "/v1/workflows", def).String("workflowUUID")
	start := func(id string, amount int) string {
		return c.MustApply(t, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q,"input":{"id":%q,"amount":%d}}`, wf, id, amount)).String("workflowExecutionUUID")
	}
	status := func(x model.Execution) map[string]string {
		m := map[string]string{}
		for _, st := range x.Steps {
			m[st.Name] = st.Status
		}
		return m
	}
	byPath := func(from int) map[string][]HookCall {
		m := map[string][]HookCall{}
		for _, call := range ok.Recorded()[from:] {
			m[call.URI] = append(m[call.URI], call)
		}
		return m
	}

	// A small order goes straight on: both checks at once, the charge
	// retried twice and caught, the refund's body built from the error.
	okCalls, failCalls := len(ok.Recorded()), len(failing.Recorded())
	small := start("o-1", 20)
	x := c.WaitStatus(t, small, 30*time.Second, model.ExecutionFailed, model.ExecutionSucceeded)
	st := status(x)
	if x.Status != model.ExecutionFailed || x.ErrorName != "payment.failed" {
		t.Fatalf("the small order: %s %q (%s), want FAILED payment.failed after the refund", x.Status, x.ErrorName, x.Error)
	}
	if st["route"] != model.StepSucceeded || st["approve"] != model.StepSkipped {
		t.Fatalf("the small order went through the approval: %v", st)
	}
	calls := byPath(okCalls)
	if len(calls["/stock"]) != 1 || len(calls["/fraud"]) != 1 || st["checks"] != model.StepSucceeded {
		t.Fatalf("the parallel checks: %d stock and %d fraud calls, checks %s", len(calls["/stock"]), len(calls["/fraud"]), st["checks"])
	}
	if n := len(failing.Recorded()) - failCalls; n != 3 || st["charge"] != model.StepFailed {
		t.Fatalf("the charge: %d calls (want 3: two retries), %s", n, st["charge"])
	}
	if len(calls["/refund"]) != 1 || len(calls["/ship"]) != 0 {
		t.Fatalf("the compensation: %d refunds, %d ships", len(calls["/refund"]), len(calls["/ship"]))
	}
	body := calls["/refund"][0].Body
	if body["order"] != "o-1" || body["error"] != model.ErrHTTPStatus5xx || body["step"] != "charge" || !strings.Contains(fmt.Sprint(body["cause"]), "503") {
		t.Fatalf("the refund's body: %v", body)
	}

	// A large order waits for the approval; a rejection ends it in the
	// fail step, and no endpoint is called.
	okCalls, failCalls = len(ok.Recorded()), len(failing.Recorded())
	large := start("o-2", 2500)
	c.WaitExecution(t, large, 20*time.Second, "at the approval", func(r Response) bool { return r.Number("currentStep") == 1 })
	c.MustApply(t, "POST", "/v1/workflow-executions/"+large+"/increments", `{"step":1,"output":{"ok":false}}`)
	x = c.WaitStatus(t, large, 20*time.Second, model.ExecutionFailed, model.ExecutionSucceeded)
	if x.Status != model.ExecutionFailed || x.ErrorName != "order.rejected" || x.Error != "order.rejected: the approver said no" {
		t.Fatalf("the rejected order: %s %q %q", x.Status, x.ErrorName, x.Error)
	}
	if st := status(x); st["rejected"] != model.StepFailed || st["checks"] != model.StepSkipped {
		t.Fatalf("the rejected order's steps: %v", st)
	}
	if n, f := len(ok.Recorded())-okCalls, len(failing.Recorded())-failCalls; n != 0 || f != 0 {
		t.Fatalf("the rejected order called %d and %d endpoints", n, f)
	}
}

// EgressFlow is the dial-time egress check through a runtime's API, the
// same on both backends, whose http resolver is EgressResolver and whose
// allowlist holds rebind.example, meta.example and ten.example at hook's
// port: a step to each is refused when it dials (the name resolves to
// loopback, the metadata service, a private address) and the execution
// FAILS saying so; nothing reaches hook.
func EgressFlow(t *testing.T, c *Client, hook *HookServer) {
	t.Helper()
	port := hook.Host()[strings.LastIndex(hook.Host(), ":")+1:]
	calls := len(hook.Recorded())
	for host, want := range map[string]string{
		"rebind.example": "resolves to 127.0.0.1, a loopback address",
		"meta.example":   "resolves to 169.254.169.254, the cloud metadata service",
		"ten.example":    "resolves to 10.0.0.1, a private address",
	} {
		wf := c.MustApply(t, "POST", "/v1/workflows", fmt.Sprintf(`{"name":"egress","steps":[{"name":"call","type":"http","url":"http://%s:%s/x"}]}`, host, port)).String("workflowUUID")
		id := c.MustApply(t, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf)).String("workflowExecutionUUID")
		x := c.WaitStatus(t, id, 20*time.Second, model.ExecutionFailed, model.ExecutionSucceeded)
		if x.Status != model.ExecutionFailed || x.ErrorName != model.ErrHTTPHostNotAllowed || !strings.Contains(x.Error, want) {
			t.Fatalf("%s: %s %q %q, want FAILED saying %q", host, x.Status, x.ErrorName, x.Error, want)
		}
	}
	if n := len(hook.Recorded()) - calls; n != 0 {
		t.Fatalf("the hook got %d calls", n)
	}
}

// EgressResolver resolves EgressFlow's names.
func EgressResolver(_ context.Context, host string) ([]netip.Addr, error) {
	a, ok := map[string]string{"rebind.example": "127.0.0.1", "meta.example": "169.254.169.254", "ten.example": "10.0.0.1"}[host]
	if !ok {
		return nil, fmt.Errorf("no such host %s", host)
	}
	return []netip.Addr{netip.MustParseAddr(a)}, nil
}

// EgressAllow is EgressFlow's allowlist for hook.
func EgressAllow(hook *HookServer) []string {
	port := hook.Host()[strings.LastIndex(hook.Host(), ":")+1:]
	return []string{"rebind.example:" + port, "meta.example:" + port, "ten.example:" + port}
}
