package workers

import "sync"

// sendLimit bounds the messages the dispatcher and the cleanup send at
// once: enough for the bus to fill its batches, few enough to be polite.
const sendLimit = 16

// atOnce runs f(0) … f(n-1), at most sendLimit at a time, and returns
// their errors by index.
func atOnce(n int, f func(i int) error) []error {
	errs := make([]error, n)
	limit := make(chan struct{}, sendLimit)
	var wg sync.WaitGroup
	for i := range n {
		limit <- struct{}{}
		wg.Go(func() {
			defer func() { <-limit }()
			errs[i] = f(i)
		})
	}
	wg.Wait()
	return errs
}
