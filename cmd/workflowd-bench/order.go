package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The order workload: issue 12's order workflow, every step automatic, at
// load. A choice on input.amount sends half the orders to an http review
// first; a parallel step calls the stock and fraud endpoints at once; the
// charge's body is built from the input and the checks' outputs, the
// ship's output shaped by an expression, the execution's output too.
const (
	orderExecutions = 1000
	orderInFlight   = 30
)

func runOrder(bin string, keep bool) error {
	host, calls, closeTarget, err := serveTarget(`{"ok":true,"id":"t-1"}`)
	if err != nil {
		return err
	}
	defer closeTarget()
	b, cmd, stop, err := startWorkflowd(bin, keep, 100, "-http-allow-hosts", host)
	if err != nil {
		return err
	}
	defer stop()
	url := func(path string) string { return fmt.Sprintf("http://%s/%s", host, path) }
	def := fmt.Sprintf(`{"name":"bench-order","output":"{'order': input.id, 'tracking': steps.ship.tracking}","steps":[
		{"name":"route","type":"choice","rules":[{"when":"input.amount >= 1000","next":"review"}],"default":"checks"},
		{"name":"review","type":"http","url":%q},
		{"name":"checks","type":"parallel","branches":[
			{"steps":[{"name":"stock","type":"http","url":%q}]},
			{"steps":[{"name":"fraud","type":"http","url":%q}]}]},
		{"name":"charge","type":"http","url":%q,"body":"{'order': input.id, 'amount': input.amount, 'checked': steps.checks.size()}",
		 "retry":[{"errors":["http.*"],"maxAttempts":2,"intervalSeconds":1}]},
		{"name":"ship","type":"http","url":%q,"output":"{'tracking': result.id}"}]}`,
		url("review"), url("stock"), url("fraud"), url("charge/{{ input.id }}"), url("ship"))
	wf, err := b.define(def)
	if err != nil {
		return err
	}

	var (
		mu        sync.Mutex
		latencies []time.Duration
		next      atomic.Int64
		large     atomic.Int64
	)
	start := time.Now()
	err = parallel(orderInFlight, func() error {
		for {
			n := next.Add(1)
			if n > orderExecutions {
				return nil
			}
			amount := 20
			if n%2 == 0 {
				amount = 2500
				large.Add(1)
			}
			d, err := b.runToEndWith(wf, fmt.Sprintf(`{"id":"o-%d","amount":%d}`, n, amount))
			if err != nil {
				return err
			}
			mu.Lock()
			latencies = append(latencies, d)
			mu.Unlock()
		}
	})
	if err != nil {
		return err
	}
	took := time.Since(start)
	want := int64(orderExecutions*4) + large.Load()
	p := pct(latencies)
	fmt.Printf("order load: %d executions of the order workflow (choice, parallel checks, %d http calls in all), %d in flight, in %.1fs: %.0f workflows/s, %.0f http steps/s; start to finish p50 %.1f ms, p95 %.1f ms, p99 %.1f ms\n",
		orderExecutions, want, orderInFlight, took.Seconds(), orderExecutions/took.Seconds(), float64(want)/took.Seconds(), ms(p[0]), ms(p[1]), ms(p[2]))
	rss, err := peakRSS(cmd.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("order memory: peak RSS (VmHWM) of workflowd %.1f MiB; the target saw %d calls for %d http steps run\n", float64(rss)/1024, calls.Load(), want)
	if calls.Load() != want {
		return fmt.Errorf("the target saw %d calls, want %d: an attempt was made twice or not at all", calls.Load(), want)
	}
	return nil
}
