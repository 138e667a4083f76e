package workers

import (
	"context"
	"sync"
	"time"
)

// IssueClockSkew is how far the clock of the API that issued a command may
// be ahead of a worker's: a read that began this long after the command's
// IssuedAt (by the worker's clock) surely began after the command was
// issued.
const IssueClockSkew = 10 * time.Millisecond

// freshReads shares the reads of one aggregate between the commands that
// need its state as of a moment after they were issued: a StartExecution
// needs the workflow it names as it was when the client sent it (an update
// the client saw APPLIED before must be in it), and every start of a
// workflow would otherwise read that workflow's log, all on one DynamoDB
// partition (3,000 strongly consistent reads a second at most). A read
// that began after a command was issued serves it, so concurrent starts
// share one read, and the reads of one process follow each other back to
// back at most (docs/cost.md, "Partition heat").
type freshReads struct {
	mu    sync.Mutex
	reads map[string]*freshRead
}

type freshRead struct {
	began time.Time
	done  chan struct{}
	ended time.Time // set, under freshReads.mu, when done closes
	agg   aggregate
	err   error
}

// freshReuse is how long a finished read keeps serving: long enough to be
// shared under load, short enough that a command decided again later (a
// transient rejection retried: the workflow was not there yet) reads
// again instead of meeting the same answer.
const freshReuse = 50 * time.Millisecond

// serves reports whether r can serve a command issued before since, at
// now.
func (r *freshRead) serves(since, now time.Time) bool {
	return r.began.After(since) && (r.ended.IsZero() || now.Sub(r.ended) < freshReuse)
}

// maxFreshReads bounds the reads remembered; past it, finished ones are
// forgotten.
const maxFreshReads = 1024

// get returns the state of aggregateID from a read that began after
// since: one in flight or done if there is one, else a new one (load).
func (f *freshReads) get(ctx context.Context, aggregateID string, since time.Time, now func() time.Time, load func(context.Context, string) (aggregate, error)) (aggregate, error) {
	f.mu.Lock()
	r := f.reads[aggregateID]
	if r == nil || !r.serves(since, now()) {
		r = &freshRead{began: now(), done: make(chan struct{})}
		if f.reads == nil {
			f.reads = make(map[string]*freshRead)
		}
		if len(f.reads) >= maxFreshReads {
			f.forgetFinished()
		}
		f.reads[aggregateID] = r
		f.mu.Unlock()
		r.agg, r.err = load(ctx, aggregateID)
		f.mu.Lock()
		r.ended = now()
		if r.err != nil && f.reads[aggregateID] == r {
			delete(f.reads, aggregateID) // no later command may take the failure
		}
		f.mu.Unlock()
		close(r.done)
		return r.agg, r.err
	}
	f.mu.Unlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		return aggregate{}, ctx.Err()
	}
	if r.err != nil {
		return load(ctx, aggregateID) // its read failed: try one of our own
	}
	return r.agg, nil
}

func (f *freshReads) forgetFinished() {
	for id, r := range f.reads {
		select {
		case <-r.done:
			delete(f.reads, id)
		default:
		}
	}
}
