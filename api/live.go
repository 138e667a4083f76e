package api

import (
	"sync"
	"time"

	"github.com/google/uuid"
)

// liveRecheck is how long the API takes a workflow it read as live (known
// and not deleted) to be live still, without reading it again. Every start
// of a workflow read its view, all on one DynamoDB partition key (3,000
// strongly consistent reads a second); the check is a courtesy (the worker
// refuses an execution of a deleted workflow in any case), so a start
// within this long of a deletion accepted by another API instance is
// answered 202 and then REJECTED instead of 409. A deletion accepted by
// this instance forgets the workflow at once.
const liveRecheck = time.Second

// maxLive bounds the workflows remembered; past it, all are forgotten.
const maxLive = 4096

// liveWorkflows remembers when each workflow was last read as live, and
// the size of its definition then.
type liveWorkflows struct {
	mu   sync.Mutex
	seen map[uuid.UUID]liveWorkflow
}

type liveWorkflow struct {
	at       time.Time
	defBytes int // the encoded size of its steps
}

// fresh returns the workflow's definition size if it was read as live
// less than liveRecheck ago.
func (l *liveWorkflows) fresh(id uuid.UUID, now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.seen[id]
	return w.defBytes, ok && now.Sub(w.at) >= 0 && now.Sub(w.at) < liveRecheck
}

func (l *liveWorkflows) remember(id uuid.UUID, at time.Time, defBytes int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil || len(l.seen) >= maxLive {
		l.seen = make(map[uuid.UUID]liveWorkflow)
	}
	l.seen[id] = liveWorkflow{at: at, defBytes: defBytes}
}

func (l *liveWorkflows) forget(id uuid.UUID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.seen, id)
}
