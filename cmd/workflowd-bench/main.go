// Command workflowd-bench measures a real workflowd process on this machine,
// the way a client sees it, and prints figures a person can compare:
//
//   - commands accepted per second at the API (POST … 202, durable);
//   - end-to-end increments per second (POST an increment, then long-poll its
//     command until APPLIED, when the view shows it), with p50/p99 latency;
//   - unloaded latency of one client doing the same;
//   - the process's peak RSS (VmHWM) after N executions exist.
//
// It starts workflowd itself (-bin) on a fresh data directory, so the store
// commits durably (fsync) exactly as `make run` does.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	bin := flag.String("bin", "bin/workflowd", "workflowd binary to start")
	executions := flag.Int("executions", 100000, "executions to create (the peak RSS is read after they exist)")
	clients := flag.Int("clients", 64, "concurrent HTTP clients")
	steps := flag.Int("steps", 10, "manual steps per workflow (increments per execution)")
	incrTime := flag.Duration("increments-for", 20*time.Second, "how long the loaded end-to-end phase runs")
	keep := flag.Bool("keep", false, "keep the data directory")
	flag.Parse()
	if err := run(*bin, *executions, *clients, *steps, *incrTime, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "workflowd-bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	base   string
	client *http.Client
}

func run(bin string, executions, clients, steps int, incrTime time.Duration, keep bool) error {
	dir, err := os.MkdirTemp("", "workflowd-bench-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "-addr", addr, "-data", filepath.Join(dir, "data"), "-log-level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	b := &bench{base: "http://" + addr, client: &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2},
	}}
	if err := b.waitReady(30 * time.Second); err != nil {
		return err
	}
	fmt.Printf("workflowd-bench: %s, pid %d, data in %s, %d clients\n", bin, cmd.Process.Pid, dir, clients)

	wf, err := b.createWorkflow(steps)
	if err != nil {
		return err
	}

	// 1. Commands accepted per second: start executions as fast as clients can.
	ids := make([]string, executions)
	var next atomic.Int64
	start := time.Now()
	err = parallel(clients, func() error {
		for {
			i := next.Add(1) - 1
			if i >= int64(executions) {
				return nil
			}
			ans, err := b.post("/v1/workflow-executions", fmt.Sprintf(`{"workflowUUID":%q,"input":{"n":%d}}`, wf, i))
			if err != nil {
				return err
			}
			ids[i] = ans["workflowExecutionUUID"].(string)
		}
	})
	if err != nil {
		return err
	}
	acceptElapsed := time.Since(start)
	fmt.Printf("accepted:   %d StartExecution commands in %.1fs = %.0f commands/s accepted at the API (202, durable)\n",
		executions, acceptElapsed.Seconds(), float64(executions)/acceptElapsed.Seconds())

	// Wait until every execution is RUNNING (created, begun by the dispatcher).
	t0 := time.Now()
	if err := b.waitRunning(executions, 10*time.Minute); err != nil {
		return err
	}
	fmt.Printf("settled:    all %d executions RUNNING %.1fs after the last 202 (%.0f executions/s end to end incl. accept)\n",
		executions, time.Since(t0).Seconds(), float64(executions)/time.Since(start).Seconds())

	// 2. Unloaded latency: one client, one increment at a time.
	var solo []time.Duration
	for i := 0; i < 200 && i < executions; i++ {
		d, err := b.incrementAndWait(ids[i], 0)
		if err != nil {
			return err
		}
		solo = append(solo, d)
	}
	p50, p99 := percentiles(solo)
	fmt.Printf("unloaded:   %d increments, 1 client: p50 %.2f ms, p99 %.2f ms (POST to APPLIED, view updated)\n",
		len(solo), ms(p50), ms(p99))

	// 3. Loaded end to end: each client walks its own executions step by step.
	var (
		mu   sync.Mutex
		lats []time.Duration
		done atomic.Int64
	)
	deadline := time.Now().Add(incrTime)
	start = time.Now()
	var cursor atomic.Int64
	cursor.Store(200) // the first 200 are at step 1 already
	err = parallel(clients, func() error {
		var mine []time.Duration
		defer func() { mu.Lock(); lats = append(lats, mine...); mu.Unlock() }()
		for time.Now().Before(deadline) {
			i := cursor.Add(1) - 1
			if i >= int64(executions) {
				return nil
			}
			for step := 0; step < steps && time.Now().Before(deadline); step++ {
				d, err := b.incrementAndWait(ids[i], step)
				if err != nil {
					return err
				}
				mine = append(mine, d)
				done.Add(1)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	p50, p99 = percentiles(lats)
	fmt.Printf("end to end: %d increments in %.1fs with %d clients = %.0f increments/s; latency p50 %.2f ms, p99 %.2f ms\n",
		done.Load(), elapsed.Seconds(), clients, float64(done.Load())/elapsed.Seconds(), ms(p50), ms(p99))

	rss, err := peakRSS(cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("memory:     peak RSS (VmHWM) of workflowd %.1f MiB after %d executions\n", float64(rss)/1024, executions)
	return nil
}

func (b *bench) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := b.client.Get(b.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("workflowd did not become ready")
}

func (b *bench) createWorkflow(steps int) (string, error) {
	var sb strings.Builder
	for i := range steps {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `{"name":"step-%d","type":"manual"}`, i)
	}
	ans, err := b.post("/v1/workflows", `{"name":"bench","steps":[`+sb.String()+`]}`)
	if err != nil {
		return "", err
	}
	if err := b.waitApplied(ans["commandUUID"].(string)); err != nil {
		return "", err
	}
	return ans["workflowUUID"].(string), nil
}

func (b *bench) incrementAndWait(id string, step int) (time.Duration, error) {
	t := time.Now()
	ans, err := b.post("/v1/workflow-executions/"+id+"/increments", fmt.Sprintf(`{"step":%d}`, step))
	if err != nil {
		return 0, err
	}
	if err := b.waitApplied(ans["commandUUID"].(string)); err != nil {
		return 0, fmt.Errorf("execution %s step %d: %w", id, step, err)
	}
	return time.Since(t), nil
}

func (b *bench) waitApplied(commandUUID string) error {
	for range 10 {
		var st map[string]any
		if err := b.get("/v1/commands/"+commandUUID+"?wait=10s", &st); err != nil {
			return err
		}
		switch st["status"] {
		case "APPLIED":
			return nil
		case "REJECTED":
			return fmt.Errorf("command %s rejected: %v", commandUUID, st["error"])
		}
	}
	return fmt.Errorf("command %s not applied after 100s", commandUUID)
}

func (b *bench) waitRunning(n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		count := 0
		cursor := ""
		for {
			var page struct {
				Items      []json.RawMessage `json:"items"`
				NextCursor string            `json:"nextCursor"`
			}
			path := "/v1/workflow-executions?status=RUNNING&limit=1000"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			if err := b.get(path, &page); err != nil {
				return err
			}
			count += len(page.Items)
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if count >= n {
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("executions not all RUNNING after %s", limit)
}

func (b *bench) post(path, body string) (map[string]any, error) {
	resp, err := b.client.Post(b.base+path, "application/json", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, raw)
	}
	var ans map[string]any
	return ans, json.Unmarshal(raw, &ans)
}

func (b *bench) get(path string, v any) error {
	resp, err := b.client.Get(b.base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, raw)
	}
	return json.NewDecoder(bytes.NewReader(raw)).Decode(v)
}

func parallel(n int, f func() error) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = f() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// peakRSS reads VmHWM (kB) of a process.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			var kb int64
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
