package ddbstream

import "context"

// LeaseCheckpoints returns the checkpoints of lease name as its holder
// under counter saves them: a test plays an instance that lost the lease.
func (l *Leases) LeaseCheckpoints(name string, counter int64) Checkpoints {
	return &leaseCheckpoints{l: l, name: name, counter: counter}
}

// LeaseOf returns lease name's owner and counter as stored.
func (l *Leases) LeaseOf(ctx context.Context, name string) (owner string, counter int64, err error) {
	le, err := l.get(ctx, name)
	return le.owner, le.counter, err
}
