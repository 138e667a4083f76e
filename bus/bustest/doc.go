// Package bustest is the conformance suite every bus backend runs, in the
// manner of watermill's TestPubSub: Run checks the bus contract (package bus)
// against a backend, and a backend declares in Features which of the
// guarantees it gives, so the suite tests what is promised and skips what is
// not. Bench measures a backend with the same setup, so `make bench` prints
// backends side by side.
//
// A backend's test calls it like this:
//
//	func TestBus(t *testing.T) {
//		bustest.Run(t, bustest.Features{Redelivery: true, ...},
//			func(t *testing.T, cfg bustest.Config) bustest.Backend {
//				b := open(cfg) // a fresh, empty backend
//				t.Cleanup(func() { b.Close() })
//				return b
//			})
//	}
//
// It is an ordinary package (not a _test file) so that every backend's tests
// can import it. It imports bus and the standard library only.
package bustest
