package sim_test

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/workflowd/workflowd/internal/sim"
)

// seeds is how many seeds TestSeeds plays: SIM_SEEDS, or 2,000 (make test);
// make simulate plays 100,000. SIM_FIRST is the first seed (default 1).
func seeds(t *testing.T) (first, n uint64) {
	first, n = 1, 2000
	if v := os.Getenv("SIM_SEEDS"); v != "" {
		var err error
		if n, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("SIM_SEEDS=%q: %v", v, err)
		}
	}
	if v := os.Getenv("SIM_FIRST"); v != "" {
		var err error
		if first, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("SIM_FIRST=%q: %v", v, err)
		}
	}
	return first, n
}

// Every seed holds every guarantee sim checks. A failing seed prints
// itself and the command that replays it.
func TestSeeds(t *testing.T) {
	first, n := seeds(t)
	// Each seed allocates a little store and drops it: collect only when
	// the heap reaches 1 GiB.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(1 << 30))
	start := time.Now()
	var next, steps, faults, failed atomic.Uint64
	next.Store(first)
	var mu sync.Mutex
	var failures []string
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				seed := next.Add(1) - 1
				if seed >= first+n {
					return
				}
				res, err := sim.Run(sim.Config{Seed: seed})
				if err != nil {
					t.Errorf("seed %d: %v", seed, err)
					return
				}
				steps.Add(uint64(res.Steps))
				faults.Add(uint64(res.Faults))
				if len(res.Violations) > 0 {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, fmt.Sprintf("seed %d (replay: SIM_FIRST=%d SIM_SEEDS=1 go test -run TestSeeds ./internal/sim):\n  %s",
						seed, seed, strings.Join(res.Violations, "\n  ")))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d seeds in %v (%.0f seeds/s): %d scheduler steps, %d faults injected, %d seeds failed",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), steps.Load(), faults.Load(), failed.Load())
	for i, f := range failures {
		if i == 5 {
			t.Errorf("… and %d more", len(failures)-5)
			break
		}
		t.Error(f)
	}
}

// A seed replays exactly: the same steps, the same trace.
func TestASeedReplaysExactly(t *testing.T) {
	for _, seed := range []uint64{7, 42, 1234} {
		a, err := sim.Run(sim.Config{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		b, err := sim.Run(sim.Config{Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if a.Trace != b.Trace || a.Steps != b.Steps || a.Faults != b.Faults {
			t.Fatalf("seed %d: two runs differ: %d steps, %d faults, trace %x; then %d, %d, %x", seed, a.Steps, a.Faults, a.Trace, b.Steps, b.Faults, b.Trace)
		}
		if a.Steps < 20 || a.Faults == 0 {
			t.Fatalf("seed %d: %d steps, %d faults: the run did too little to test anything", seed, a.Steps, a.Faults)
		}
	}
}

// TestTrace prints the steps of the seed SIM_TRACE names.
func TestTrace(t *testing.T) {
	v := os.Getenv("SIM_TRACE")
	if v == "" {
		t.Skip("SIM_TRACE=<seed> prints that seed's steps")
	}
	seed, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	res, err := sim.Run(sim.Config{Seed: seed, Trace: os.Stdout})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d steps, %d faults, violations: %q", res.Steps, res.Faults, res.Violations)
}

// The checks are not vacuous: without the cleanup's reconciliation, the
// change-feed records the simulator loses leave executions behind, and
// seeds fail. (The first failure ends the test: a failing seed runs to the
// simulator's step limit.)
func TestWithoutTheReconciliationSeedsFail(t *testing.T) {
	wantFailure(t, "without the reconciliation", sim.Config{WithoutReconciliation: true})
}

// The check that no http attempt has two calls in flight is not vacuous:
// with a target that answers long after the attempt's timeout (a transport
// that ignores its deadline), the attempt is taken over while its first
// call is still in flight, and seeds fail.
func TestAnHTTPCallPastItsTimeoutIsFound(t *testing.T) {
	wantFailure(t, "with http calls past their timeout", sim.Config{HTTPOverrun: true})
}

// wantFailure plays seeds 1 to 100 with cfg until one fails the check it
// names.
func wantFailure(t *testing.T, what string, cfg sim.Config) {
	const n = 100
	for seed := uint64(1); seed <= n; seed++ {
		cfg.Seed = seed
		res, err := sim.Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Violations) > 0 {
			t.Logf("seed %d fails %s: %s", seed, what, res.Violations[0])
			return
		}
	}
	t.Fatalf("%d seeds %s all passed: the simulator would not see it", n, what)
}
