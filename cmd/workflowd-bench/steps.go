package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The http workload: 3 http steps an execution, 1,000 executions, 50 idle
// runs (see the package comment).
const (
	httpSteps      = 3
	httpExecutions = 1000
	idleRuns       = 50
)

// runHTTP measures executions of a 3-step http workflow against a trivial
// endpoint this process serves: one at a time on an idle service (start to
// finish: the POST that starts it to the end of its live stream, which the
// service closes after SUCCEEDED), then 1,000 executions with 30 and with
// 100 in flight.
func runHTTP(bin string, keep bool) error {
	host, calls, closeTarget, err := serveTarget(`{"ok":true}`)
	if err != nil {
		return err
	}
	defer closeTarget()
	b, cmd, stop, err := startWorkflowd(bin, keep, 100, "-http-allow-hosts", host)
	if err != nil {
		return err
	}
	defer stop()
	var steps []string
	for i := range httpSteps {
		steps = append(steps, fmt.Sprintf(`{"name":"call-%d","type":"http","url":"http://%s/step/%d"}`, i, host, i))
	}
	wf, err := b.define(`{"name":"bench-http","steps":[` + strings.Join(steps, ",") + `]}`)
	if err != nil {
		return err
	}

	var idle []time.Duration
	for range idleRuns {
		d, err := b.runToEnd(wf)
		if err != nil {
			return err
		}
		idle = append(idle, d)
	}
	p := pct(idle)
	fmt.Printf("http idle:  %d executions of %d http steps, one at a time: start to finish p50 %.1f ms, p95 %.1f ms, p99 %.1f ms\n",
		len(idle), httpSteps, ms(p[0]), ms(p[1]), ms(p[2]))

	for _, inFlight := range []int{30, 100} {
		var (
			mu        sync.Mutex
			latencies []time.Duration
			next      atomic.Int64
		)
		start := time.Now()
		err := parallel(inFlight, func() error {
			for next.Add(1) <= httpExecutions {
				d, err := b.runToEnd(wf)
				if err != nil {
					return err
				}
				mu.Lock()
				latencies = append(latencies, d)
				mu.Unlock()
			}
			return nil
		})
		if err != nil {
			return err
		}
		took := time.Since(start)
		p := pct(latencies)
		fmt.Printf("http load:  %d executions, %d in flight, in %.1fs: %.0f workflows/s, %.0f steps/s; start to finish p50 %.1f ms, p95 %.1f ms, p99 %.1f ms\n",
			httpExecutions, inFlight, took.Seconds(), httpExecutions/took.Seconds(), httpExecutions*httpSteps/took.Seconds(),
			ms(p[0]), ms(p[1]), ms(p[2]))
	}
	rss, err := peakRSS(cmd.Process.Pid)
	if err != nil {
		return err
	}
	want := int64((idleRuns + 2*httpExecutions) * httpSteps)
	fmt.Printf("http memory: peak RSS (VmHWM) of workflowd %.1f MiB; the target saw %d calls for %d steps run\n", float64(rss)/1024, calls.Load(), want)
	if calls.Load() != want {
		return fmt.Errorf("the target saw %d calls, want %d: an attempt was made twice or not at all", calls.Load(), want)
	}
	return nil
}

// serveTarget serves the endpoint of http steps on a free local port: it
// answers every call with answer (JSON) and counts the calls.
func serveTarget(answer string) (host string, calls *atomic.Int64, stop func(), err error) {
	calls = new(atomic.Int64)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	target := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	})}
	go target.Serve(ln)
	return ln.Addr().String(), calls, func() { target.Close() }, nil
}

// define creates a workflow of definition def and waits until it is
// applied; it returns its UUID.
func (b *bench) define(def string) (string, error) {
	ans, err := b.post("/v1/workflows", def)
	if err != nil {
		return "", err
	}
	if err := b.waitApplied(ans["commandUUID"].(string)); err != nil {
		return "", err
	}
	return ans["workflowUUID"].(string), nil
}

// runToEnd starts an execution of wf and follows its live stream until the
// service ends it; it returns the time from the POST to the end, and an
// error unless the execution SUCCEEDED.
func (b *bench) runToEnd(wf string) (time.Duration, error) { return b.runToEndWith(wf, "") }

// runToEndWith is runToEnd of an execution with input (JSON; "": none).
func (b *bench) runToEndWith(wf, input string) (time.Duration, error) {
	t := time.Now()
	body := fmt.Sprintf(`{"workflowUUID":%q}`, wf)
	if input != "" {
		body = fmt.Sprintf(`{"workflowUUID":%q,"input":%s}`, wf, input)
	}
	ans, err := b.post("/v1/workflow-executions", body)
	if err != nil {
		return 0, err
	}
	id := ans["workflowExecutionUUID"].(string)
	for {
		status, found, err := b.follow(id)
		if err != nil {
			return 0, err
		}
		if !found { // not created yet: the stream answers 404 until then
			time.Sleep(time.Millisecond)
			continue
		}
		if status != "SUCCEEDED" {
			return 0, fmt.Errorf("execution %s ended %s", id, status)
		}
		return time.Since(t), nil
	}
}

// follow reads an execution's stream to its end event and returns the final
// status, or found false on a 404.
func (b *bench) follow(id string) (status string, found bool, err error) {
	resp, err := b.client.Get(b.base + "/v1/workflow-executions/" + id + "/stream")
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		io.Copy(io.Discard, resp.Body)
		return "", false, nil
	}
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(resp.Body)
		return "", false, fmt.Errorf("stream %s: %d %s", id, resp.StatusCode, raw)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	end := false
	for sc.Scan() {
		line := sc.Text()
		if line == "event: end" {
			end = true
			continue
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && end {
			return strings.Trim(strings.TrimPrefix(v, `{"status":`), `"}`), true, nil
		}
	}
	return "", true, fmt.Errorf("stream %s ended without its end event: %v", id, sc.Err())
}

// pct returns the p50, p95 and p99 of d.
func pct(d []time.Duration) [3]time.Duration {
	if len(d) == 0 {
		return [3]time.Duration{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q int) time.Duration { return s[min(len(s)-1, len(s)*q/100)] }
	return [3]time.Duration{at(50), at(95), at(99)}
}
