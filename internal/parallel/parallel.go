// Package parallel runs a bounded number of calls at once.
package parallel

import "sync"

// Each runs f(0) … f(n-1), at most limit at a time, and returns their
// errors by index.
func Each(n, limit int, f func(i int) error) []error {
	errs := make([]error, n)
	slots := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i := range n {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			errs[i] = f(i)
		})
	}
	wg.Wait()
	return errs
}
