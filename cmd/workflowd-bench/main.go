// Command workflowd-bench measures a real workflowd process on this machine,
// the way a client sees it, and prints figures a person can compare:
//
//   - commands accepted per second at the API (POST … 202, durable);
//   - end-to-end increments per second (POST an increment, then long-poll its
//     command until APPLIED, when the view shows it), with p50/p99 latency;
//   - unloaded latency of one client doing the same;
//   - the process's peak RSS (VmHWM) after N executions exist.
//
// With -workload http it measures instead a workload used to compare
// workflowd with Temporal's dev server: executions of a 3-step workflow
// of http steps against a trivial local endpoint, one at a time on an idle
// service, then 1,000 with 30 and with 100 in flight (workflows/s, steps/s,
// start-to-finish latency, peak RSS); see steps.go.
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
	"strconv"
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
	workload := flag.String("workload", "manual", "manual (increments through the API), http (workflows of http steps) or order (the order workflow: choice, parallel http checks, expressions)")
	flag.Parse()
	var err error
	switch *workload {
	case "manual":
		err = run(*bin, *executions, *clients, *steps, *incrTime, *keep)
	case "http":
		err = runHTTP(*bin, *keep)
	case "order":
		err = runOrder(*bin, *keep)
	default:
		err = fmt.Errorf("unknown workload %q", *workload)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "workflowd-bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	base   string
	client *http.Client
	pid    int // workflowd's
}

// startWorkflowd starts bin on a fresh data directory with extra
// arguments, waits until it is ready, and returns a client of it, the
// process, and a function that stops it and removes the directory (unless
// keep).
func startWorkflowd(bin string, keep bool, clients int, args ...string) (*bench, *exec.Cmd, func(), error) {
	dir, err := os.MkdirTemp("", "workflowd-bench-")
	if err != nil {
		return nil, nil, nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, nil, nil, err
	}
	cmd := exec.Command(bin, append([]string{"-addr", addr, "-data", filepath.Join(dir, "data"), "-log-level", "warn"}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, fmt.Errorf("start %s: %w", bin, err)
	}
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if !keep {
			os.RemoveAll(dir)
		}
	}
	b := &bench{base: "http://" + addr, pid: cmd.Process.Pid, client: &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients * 2},
	}}
	if err := b.waitReady(30 * time.Second); err != nil {
		stop()
		return nil, nil, nil, err
	}
	fmt.Printf("workflowd-bench: %s, pid %d, data in %s, %d clients\n", bin, cmd.Process.Pid, dir, clients)
	return b, cmd, stop, nil
}

func run(bin string, executions, clients, steps int, incrTime time.Duration, keep bool) error {
	b, cmd, stop, err := startWorkflowd(bin, keep, clients)
	if err != nil {
		return err
	}
	defer stop()

	wf, err := b.createWorkflow(steps)
	if err != nil {
		return err
	}

	// Phase 1, a store of a few thousand executions: start them, measure
	// one client's latency, then many clients' end-to-end throughput.
	first := min(executions, firstBatch)
	ids, err := b.startExecutions(wf, first, clients, "accepted")
	if err != nil {
		return err
	}
	var solo []time.Duration
	for i := 0; i < 200 && i < len(ids); i++ {
		d, err := b.incrementAndWait(ids[i], 0)
		if err != nil {
			return err
		}
		solo = append(solo, d)
	}
	p50, p99 := percentiles(solo)
	fmt.Printf("unloaded:   %d increments, 1 client: p50 %.2f ms, p99 %.2f ms (POST to APPLIED, view updated)\n",
		len(solo), ms(p50), ms(p99))
	wk := &walker{b: b, ids: ids, steps: steps}
	wk.cursor.Store(int64(len(solo))) // those are at step 1 already
	if err := wk.run(clients, incrTime, fmt.Sprintf("%d executions", len(ids))); err != nil {
		return err
	}

	// Phase 2: bring the store to the full count, then measure again.
	if rest := executions - first; rest > 0 {
		more, err := b.startExecutions(wf, rest, clients, "accepted")
		if err != nil {
			return err
		}
		wk = &walker{b: b, ids: more, steps: steps}
		if err := wk.run(clients, incrTime, fmt.Sprintf("%d executions", executions)); err != nil {
			return err
		}
	}

	rss, err := peakRSS(cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("memory:     peak RSS (VmHWM) of workflowd %.1f MiB after %d executions\n", float64(rss)/1024, executions)
	return nil
}

// firstBatch is the size of the store in phase 1.
const firstBatch = 10000

// startExecutions starts n executions of wf with many clients, prints the
// accepted rate, waits until all are RUNNING and returns their ids.
func (b *bench) startExecutions(wf string, n, clients int, label string) ([]string, error) {
	ids := make([]string, n)
	var next atomic.Int64
	start := time.Now()
	err := parallel(clients, func() error {
		for {
			i := next.Add(1) - 1
			if i >= int64(n) {
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
		return nil, err
	}
	accepted := time.Since(start)
	fmt.Printf("%-11s %d StartExecution commands in %.1fs = %.0f commands/s accepted at the API (202, durable)\n",
		label+":", n, accepted.Seconds(), float64(n)/accepted.Seconds())
	t0 := time.Now()
	if err := b.waitRunning(ids, 10*time.Minute); err != nil {
		return nil, err
	}
	fmt.Printf("settled:    all %d RUNNING %.1fs after the last 202 (%.0f executions/s created and begun, end to end)\n",
		n, time.Since(t0).Seconds(), float64(n)/time.Since(start).Seconds())
	return ids, nil
}

// walker has clients complete executions' steps in order, each waiting for
// its increment to be APPLIED before sending the next.
type walker struct {
	b      *bench
	ids    []string
	steps  int
	cursor atomic.Int64
}

func (w *walker) run(clients int, d time.Duration, label string) error {
	var (
		mu   sync.Mutex
		lats []time.Duration
		done atomic.Int64
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	cpu0, cpuErr := cpuTime(w.b.pid)
	err := parallel(clients, func() error {
		var mine []time.Duration
		defer func() { mu.Lock(); lats = append(lats, mine...); mu.Unlock() }()
		for time.Now().Before(deadline) {
			i := w.cursor.Add(1) - 1
			if i >= int64(len(w.ids)) {
				return nil
			}
			for step := 0; step < w.steps && time.Now().Before(deadline); step++ {
				lat, err := w.b.incrementAndWait(w.ids[i], step)
				if err != nil {
					return err
				}
				mine = append(mine, lat)
				done.Add(1)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	cpu1, err := cpuTime(w.b.pid)
	if cpuErr != nil || err != nil {
		return errors.Join(cpuErr, err)
	}
	p50, p99 := percentiles(lats)
	fmt.Printf("end to end: %d increments in %.1fs, %d clients, store of %s = %.0f increments/s; latency p50 %.2f ms, p99 %.2f ms\n",
		done.Load(), elapsed.Seconds(), clients, label, float64(done.Load())/elapsed.Seconds(), ms(p50), ms(p99))
	// CPU per increment varies less than throughput on a shared machine:
	// it compares builds where increments/s is within noise.
	fmt.Printf("cpu:        workflowd used %.0f µs of CPU per increment (user and system)\n",
		float64((cpu1-cpu0).Microseconds())/float64(max(done.Load(), 1)))
	return nil
}

// cpuTime reads the CPU time (user and system) a process has used so far,
// from /proc/<pid>/stat (fields 14 and 15, in clock ticks of 10 ms).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields that follow start after the last ")".
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name, want at least 13", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
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

// waitRunning waits until every execution is RUNNING, reading each one's
// view once it is due (a walk in creation order), so that waiting costs the
// server little.
func (b *bench) waitRunning(ids []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for i := 0; i < len(ids); {
		var x struct {
			Status string `json:"status"`
		}
		if err := b.get("/v1/workflow-executions/"+ids[i], &x); err != nil && !strings.Contains(err.Error(), ": 404 ") {
			return err
		}
		if x.Status == "RUNNING" {
			i++
			continue
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("execution %d of %d not RUNNING after %s", i, len(ids), limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
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
