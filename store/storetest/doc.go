// Package storetest is the conformance suite of the store contract: every
// backend's tests call Run (and RunFeed when the backend offers the change
// feed) with a constructor, and its benchmarks call Bench, so one set of
// behaviours is proven everywhere and `make bench` prints backends side by
// side. It is an ordinary package (like testing/fstest) so backends in other
// packages and repositories can import it.
//
// It imports model and store of this project and nothing else of it.
//
// Run and RunFeed are each one table of named tests: every entry is a
// subtest name, the Features field it needs ("" for the common contract)
// and the method that proves the behaviour, one small method per
// behaviour. A slash in a name groups the subtests of one part of the
// contract (event_log/..., views/workflow/..., listing/...), so a failure
// such as event_log/taken_seq_is_conflict/last_seq names the behaviour, and
// the name leads to its table entry and method. Cases of one behaviour
// (seqs, filters, page sizes) are subtests of its method.
//
// A backend declares with WithFeatures the guarantees it gives beyond the
// common contract (Features); Run skips, with the reason, the subtests of
// those it does not declare. The embedded store declares them all; the
// DynamoDB store (table), which appends with one conditional write and no
// read, declares none.
//
// The suite never assumes an empty store: every test works on aggregates,
// views and keys it creates with fresh UUIDs, and listings are checked for
// order over everything returned and for exactly-once over the test's own
// items. So a constructor may hand back a store that already holds data (for
// example one that was written, closed and reopened).
package storetest
