package local

import (
	"container/heap"

	"github.com/google/uuid"
)

// entry is the in-memory index record of one undeleted message: about a
// hundred bytes, no body (Receive reads the body from pebble).
type entry struct {
	id           uuid.UUID
	sentAt       int64  // Unix nanoseconds; with id, the suffix of its keys
	visibleAt    int64  // Unix nanoseconds
	seq          uint64 // enqueue order, breaks visibleAt ties
	receiveCount int
	leased       bool   // see record.Leased
	receipt      string // current receipt handle; "" if never received since (re)load
	lastError    string // the reason given by the last Nack
	index        int    // position in the heap
	// recovered: the message was in the queue when the bus opened, so it
	// may be one whose handling killed the previous process; its
	// receives are synced (see Receive).
	recovered bool
}

// index orders a queue's undeleted messages by (visibleAt, seq): the visible
// ones, the in-flight ones (visibleAt = end of their lease) and the delayed
// ones all live in one heap, so the next message to become visible is always
// at the top.
type index []*entry

func (h index) Len() int { return len(h) }
func (h index) Less(i, j int) bool {
	if h[i].visibleAt != h[j].visibleAt {
		return h[i].visibleAt < h[j].visibleAt
	}
	return h[i].seq < h[j].seq
}
func (h index) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *index) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *index) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	e.index = -1
	*h = old[:n-1]
	return e
}

// remove takes e out of the heap.
func (h *index) remove(e *entry) {
	heap.Remove(h, e.index)
	h.shrink()
}

// shrink lets the backing array shrink once the heap has emptied well below
// its capacity (a drained backlog of a million messages should not keep 8 MB
// of pointers). Positions, and so entry.index, do not change.
func (h *index) shrink() {
	if c := cap(*h); c > 1024 && len(*h) < c/4 {
		*h = append(make(index, 0, c/2), *h...)
	}
}
