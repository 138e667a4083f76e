package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

func startServer(t *testing.T, dir, addr string) *server {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WORKFLOWD_TEST_SERVE=1", "WORKFLOWD_ADDR="+addr,
		"WORKFLOWD_DATA="+dir, "WORKFLOWD_LOG_LEVEL=warn", "WORKFLOWD_VISIBILITY_TIMEOUT=2s")
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
				r, err := post(c, path, body)
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
	appliedIncrements := map[string]int{}
	for _, s := range accepted {
		st := c.WaitCommand(t, s.command, 60*time.Second)
		if st.String("status") == "APPLIED" && s.execution != "" {
			appliedIncrements[s.execution]++
		}
	}
	for _, id := range ids {
		h := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+id+"/events", "")
		completed := map[float64]int{}
		for _, e := range h.Body["items"].([]any) {
			ev := e.(map[string]any)
			if ev["type"] == "StepCompleted" {
				completed[ev["data"].(map[string]any)["step"].(float64)]++
			}
		}
		total := 0
		for step, n := range completed {
			if n != 1 {
				t.Errorf("execution %s: step %v completed %d times", id, step, n)
			}
			total += n
		}
		if total != appliedIncrements[id] {
			t.Errorf("execution %s: %d StepCompleted events, but %d increments APPLIED", id, total, appliedIncrements[id])
		}
		x := c.Expect(t, 200, "GET", "/v1/workflow-executions/"+id, "")
		if x.Number("currentStep") != total {
			t.Errorf("execution %s: currentStep %d, want %d", id, x.Number("currentStep"), total)
		}
	}
}

// post is a POST that reports transport errors instead of failing the test.
func post(c *apitest.Client, path, body string) (apitest.Response, error) {
	resp, err := c.HTTP.Post(c.Base+path, "application/json", stringsReader(body))
	if err != nil {
		return apitest.Response{}, err
	}
	defer resp.Body.Close()
	return decodeResponse(resp)
}
