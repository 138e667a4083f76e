package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/workflowd/workflowd/internal/apitest"
)

// TestMain lets the test binary act as workflowd itself, so the crash test
// can kill -9 a real process without building another binary.
func TestMain(m *testing.M) {
	if os.Getenv("WORKFLOWD_TEST_SERVE") == "1" {
		if err := run(context.Background(), nil, os.Getenv); err != nil {
			fmt.Fprintln(os.Stderr, "workflowd:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type server struct {
	cmd  *exec.Cmd
	addr string
}

func startServer(t *testing.T, dir, addr string, env ...string) *server {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WORKFLOWD_TEST_SERVE=1", "WORKFLOWD_ADDR="+addr,
		"WORKFLOWD_DATA="+dir, "WORKFLOWD_LOG_LEVEL=warn", "WORKFLOWD_VISIBILITY_TIMEOUT=2s")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start workflowd: %v", err)
	}
	s := &server{cmd: cmd, addr: addr}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("workflowd at %s not ready after 30s (last error %v)", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestKill9DuringBurstLosesNothingAndAppliesNothingTwice is the durability
// promise: every command answered 202 before a kill -9 ends APPLIED or
// REJECTED after the restart, and no increment takes effect twice.
func TestKill9DuringBurstLosesNothingAndAppliesNothingTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	dir := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	srv := startServer(t, dir, addr)
	c := apitest.New("http://" + addr)
	c.HTTP.Timeout = 5 * time.Second

	const steps, executions = 6, 12
	wf := c.MustApply(t, "POST", "/v1/workflows", apitest.ManualWorkflow("crash", steps)).String("workflowUUID")
	ids := make([]string, executions)
	for i := range ids {
		ids[i] = c.MustApply(t, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf)).String("workflowExecutionUUID")
	}
	for _, id := range ids {
		c.WaitExecution(t, id, 10*time.Second, "RUNNING", func(r apitest.Response) bool { return r.String("status") == "RUNNING" })
	}

	// The burst: 16 clients send increments (each execution's steps in
	// order, several times over, so some apply and the repeats are stale)
	// and new executions, until the server dies under them.
	type sent struct{ command, execution string }
	var (
		mu       sync.Mutex
		accepted []sent
		answered atomic.Int64
	)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := 0; i < 40; i++ {
				ex := ids[(g+i)%executions]
				path, body := "/v1/workflow-executions/"+ex+"/increments", fmt.Sprintf(`{"step":%d}`, (i/3)%steps)
				if i%10 == 9 {
					ex, path, body = "", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf)
				}
				r, err := c.Try("POST", path, body)
				if err != nil {
					return // the server is gone
				}
				if r.Status != http.StatusAccepted {
					t.Errorf("POST %s: %d %s", path, r.Status, r.Raw)
					return
				}
				mu.Lock()
				accepted = append(accepted, sent{r.String("commandUUID"), ex})
				mu.Unlock()
				answered.Add(1)
			}
		})
	}
	for answered.Load() < 300 {
		time.Sleep(time.Millisecond)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Wait()
	wg.Wait()
	t.Logf("killed workflowd after %d commands were answered 202", len(accepted))

	startServer(t, dir, addr)
	c.HTTP.Timeout = 60 * time.Second
	// Every command answered 202 ends APPLIED or REJECTED.
	applied := map[string][]string{} // execution → its APPLIED increments
	for _, s := range accepted {
		st := waitFinished(t, c, s.command, 30*time.Second)
		if st.String("status") == "APPLIED" && s.execution != "" {
			applied[s.execution] = append(applied[s.execution], s.command)
		}
	}
	// Nothing applied twice: each step completed once, by one command, and
	// every APPLIED increment is in the history exactly once. (The history
	// may hold increments whose 202 the kill cut off: they were queued.)
	for _, id := range ids {
		h := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+id+"/events", "")
		byStep := map[float64]int{}
		byCommand := map[string]int{}
		for _, e := range h.Body["items"].([]any) {
			ev := e.(map[string]any)
			if ev["type"] == "StepCompleted" {
				byStep[ev["data"].(map[string]any)["step"].(float64)]++
				byCommand[ev["commandUUID"].(string)]++
			}
		}
		for step, n := range byStep {
			if n != 1 {
				t.Errorf("execution %s: step %v completed %d times", id, step, n)
			}
		}
		for cmd, n := range byCommand {
			if n != 1 {
				t.Errorf("execution %s: increment %s applied %d times", id, cmd, n)
			}
		}
		for _, cmd := range applied[id] {
			if byCommand[cmd] != 1 {
				t.Errorf("execution %s: increment %s is APPLIED but completed %d steps", id, cmd, byCommand[cmd])
			}
		}
		x := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+id, "")
		if got, want := x.Number("currentStep"), len(byStep); got != want {
			t.Errorf("execution %s: currentStep %d, want %d (steps completed)", id, got, want)
		}
	}
}

// waitFinished waits for a command to be APPLIED or REJECTED; if it is not,
// it fails the test with what the server knows of it.
func waitFinished(t *testing.T, c *apitest.Client, id string, limit time.Duration) apitest.Response {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r := c.Expect(t, http.StatusOK, "GET", "/v1/commands/"+id+"?wait=5s", "")
		if s := r.String("status"); s == "APPLIED" || s == "REJECTED" {
			return r
		}
		if time.Now().After(deadline) {
			res := r.Body["links"].(map[string]any)["resource"].(string)
			t.Logf("command: %s", r.Raw)
			t.Logf("resource: %s", c.Do(t, "GET", res, "").Raw)
			t.Logf("history: %s", c.Do(t, "GET", res+"/events", "").Raw)
			t.Logf("dead letters: %s", c.Do(t, "GET", "/v1/queues/executions/dead-letters", "").Raw)
			t.Fatalf("command %s still %s after %s", id, r.String("status"), limit)
		}
	}
}

// TestKill9WithHTTPStepsAndWaitsInFlight: workflowd is killed while http
// steps are in flight (their target answers slowly) and wait steps are
// pending. After the restart every execution finishes with every step
// SUCCEEDED, each step completed once, and the attempts the kill cut off are
// repeated with the same Idempotency-Key.
func TestKill9WithHTTPStepsAndWaitsInFlight(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	var (
		mu       sync.Mutex
		keys     = map[string]int{} // Idempotency-Key → calls
		open     = map[string]int{} // Idempotency-Key → calls in flight
		overlaps int                // calls made while one with the same key was in flight
		inFlight atomic.Int64
	)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		defer inFlight.Add(-1)
		key := r.Header.Get("Idempotency-Key")
		mu.Lock()
		keys[key]++
		if open[key]++; open[key] > 1 {
			overlaps++
		}
		mu.Unlock()
		defer func() { mu.Lock(); open[key]--; mu.Unlock() }()
		time.Sleep(300 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	defer hook.Close()
	allow := "WORKFLOW_HTTP_ALLOW_HOSTS=" + strings.TrimPrefix(hook.URL, "http://")

	dir := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	srv := startServer(t, dir, addr, allow)
	c := apitest.New("http://" + addr)
	c.HTTP.Timeout = 5 * time.Second
	steps := fmt.Sprintf(`[{"name":"reserve","type":"http","url":%q,"retry":{"maxAttempts":3,"backoffSeconds":0.2}},`+
		`{"name":"pause","type":"wait","seconds":1},{"name":"charge","type":"http","url":%q}]`, hook.URL+"/reserve", hook.URL+"/charge")
	wf := c.MustApply(t, "POST", "/v1/workflows", `{"name":"crash-steps","steps":`+steps+`}`).String("workflowUUID")
	const executions = 20
	ids := make([]string, executions)
	for i := range ids {
		ids[i] = c.Expect(t, 202, "POST", "/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q}`, wf)).String("workflowExecutionUUID")
	}
	// Kill once the first steps are done (their executions wait) and
	// second steps are in flight.
	calls := func() int { mu.Lock(); defer mu.Unlock(); return len(keys) }
	deadline := time.Now().Add(30 * time.Second)
	for calls() < executions+2 || inFlight.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %d calls, %d in flight", calls(), inFlight.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Wait()
	t.Logf("killed workflowd with %d http calls in flight, %d made so far", inFlight.Load(), calls())

	startServer(t, dir, addr, allow)
	c.HTTP.Timeout = 60 * time.Second
	for _, id := range ids {
		x := c.WaitExecution(t, id, 60*time.Second, "SUCCEEDED", func(r apitest.Response) bool {
			s := r.String("status")
			if s != "RUNNING" && s != "PENDING" && s != "SUCCEEDED" {
				t.Fatalf("execution %s ended %s: %s", id, s, r.Raw)
			}
			return s == "SUCCEEDED"
		})
		for _, st := range x.Body["steps"].([]any) {
			if s := st.(map[string]any)["status"]; s != "SUCCEEDED" {
				t.Errorf("execution %s: step %v is %v", id, st.(map[string]any)["name"], s)
			}
		}
		h := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+id+"/events", "")
		completed := map[float64]int{}
		for _, e := range h.Body["items"].([]any) {
			ev := e.(map[string]any)
			if ev["type"] == "StepCompleted" {
				completed[ev["data"].(map[string]any)["step"].(float64)]++
			}
		}
		if len(completed) != 3 || completed[0] != 1 || completed[1] != 1 || completed[2] != 1 {
			t.Errorf("execution %s: steps completed %v, want each of 0, 1, 2 once", id, completed)
		}
	}
	// Every call named its execution, step and attempt; the calls the kill
	// cut off were made again with the same key.
	mu.Lock()
	defer mu.Unlock()
	repeated := 0
	for k, n := range keys {
		parts := strings.Split(k, ":")
		if len(parts) != 3 || !slices.Contains(ids, parts[0]) || (parts[1] != "0" && parts[1] != "2") {
			t.Errorf("Idempotency-Key %q does not name an execution, an http step and an attempt", k)
		}
		if n > 1 {
			repeated++
		}
	}
	if repeated == 0 {
		t.Fatalf("no call was repeated after the restart (%d keys): the attempts in flight at the kill were lost", len(keys))
	}
	if overlaps > 0 {
		t.Fatalf("%d calls were made while a call with the same Idempotency-Key was in flight", overlaps)
	}
	t.Logf("%d attempts were repeated after the restart, each with its key", repeated)
}

// Secure by default: on every interface without authentication workflowd
// does not start, and says how to configure it.
func TestRefusesToServeOpenBeyondLoopback(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WORKFLOWD_TEST_SERVE=1", "WORKFLOWD_ADDR=0.0.0.0:0", "WORKFLOWD_DATA="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("workflowd on 0.0.0.0 without auth: %v, want exit 1; output %s", err, out)
	}
	for _, want := range []string{"refusing to serve the API on 0.0.0.0:0 without authentication", "-api-keys", "-oidc-issuer", "-insecure-no-auth"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the message %q does not say %q", out, want)
		}
	}
}
