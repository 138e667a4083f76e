package workers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestFreshReads(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	type call struct {
		since   time.Duration // the command's issue time (+ skew), from t0
		at      time.Duration // the worker's clock when it asks
		fail    bool          // the read it starts fails
		wantNew bool          // it starts a read of its own
	}
	tests := []struct {
		name  string
		calls []call
	}{
		{"first_command_reads", []call{{since: 0, at: 1, wantNew: true}}},
		{"a_read_begun_after_the_issue_serves", []call{{since: 0, at: 1, wantNew: true}, {since: 0, at: 2}}},
		{"a_read_begun_before_the_issue_does_not", []call{{since: 0, at: 1, wantNew: true}, {since: 5, at: 6, wantNew: true}}},
		{"a_read_finished_long_ago_does_not", []call{{since: 0, at: 1, wantNew: true}, {since: 0, at: 1 + freshReuse, wantNew: true}}},
		{"a_failed_read_serves_no_one_later", []call{{since: 0, at: 1, fail: true, wantNew: true}, {since: 0, at: 2, wantNew: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f freshReads
			for i, c := range tt.calls {
				now := func() time.Time { return t0.Add(c.at) }
				loaded := false
				_, err := f.get(context.Background(), "wf", t0.Add(c.since), now, func(context.Context, string) (aggregate, error) {
					loaded = true
					if c.fail {
						return aggregate{}, errors.New("boom")
					}
					return aggregate{seq: int64(i + 1)}, nil
				})
				if loaded != c.wantNew {
					t.Fatalf("call %d: read of its own %v, want %v", i, loaded, c.wantNew)
				}
				if (err != nil) != c.fail {
					t.Fatalf("call %d: error %v, want failure %v", i, err, c.fail)
				}
			}
		})
	}
	t.Run("concurrent_commands_share_one_read", func(t *testing.T) {
		var f freshReads
		var loads atomic.Int32
		release := make(chan struct{})
		now := func() time.Time { return t0.Add(time.Millisecond) }
		load := func(context.Context, string) (aggregate, error) {
			loads.Add(1)
			<-release
			return aggregate{seq: 7}, nil
		}
		var wg sync.WaitGroup
		var got [8]int64
		start := make(chan struct{})
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i > 0 {
					<-start
				}
				agg, err := f.get(context.Background(), "wf", t0, now, func(ctx context.Context, id string) (aggregate, error) {
					if i == 0 {
						close(start) // the others ask while this read is in flight
						time.Sleep(20 * time.Millisecond)
					}
					return load(ctx, id)
				})
				if err != nil {
					t.Error(err)
				}
				got[i] = agg.seq
			}()
		}
		<-start
		time.Sleep(10 * time.Millisecond)
		close(release)
		wg.Wait()
		if n := loads.Load(); n != 1 {
			t.Fatalf("%d reads for 8 commands issued before the first began, want 1", n)
		}
		for i, seq := range got {
			if seq != 7 {
				t.Fatalf("command %d got seq %d, want the shared read's 7", i, seq)
			}
		}
	})
}
