package apitest

import (
	"encoding/json"
	"fmt"
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
