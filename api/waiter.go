package api

import (
	"sync"

	"github.com/google/uuid"
)

// Waiter wakes command-status long polls when a command finishes. The
// runtimes wire the workers' OnFinished to Notify and the projector's to
// Applied; without a Waiter the API polls the store.
type Waiter struct {
	mu      sync.Mutex
	waiting map[uuid.UUID][]*wake
}

// wake is one long poll's wake-up call: c is closed when it comes, and
// applied is set before that when the caller knows the outcome.
type wake struct {
	c       chan struct{}
	applied bool
}

// NewWaiter returns an empty Waiter.
func NewWaiter() *Waiter { return &Waiter{waiting: make(map[uuid.UUID][]*wake)} }

// Notify wakes everyone waiting on id; they read the command's status again.
func (w *Waiter) Notify(id uuid.UUID) { w.wakeAll(id, false) }

// Applied wakes everyone waiting on id with the news that the views show
// the command's events (the projector calls it after its view write): they
// answer APPLIED without reading the store again.
func (w *Waiter) Applied(id uuid.UUID) { w.wakeAll(id, true) }

func (w *Waiter) wakeAll(id uuid.UUID, applied bool) {
	w.mu.Lock()
	list := w.waiting[id]
	delete(w.waiting, id)
	w.mu.Unlock()
	for _, k := range list {
		k.applied = applied
		close(k.c)
	}
}

// subscribe returns the wake-up call of the next Notify or Applied of id,
// and a function to call when no longer waiting.
func (w *Waiter) subscribe(id uuid.UUID) (*wake, func()) {
	k := &wake{c: make(chan struct{})}
	w.mu.Lock()
	w.waiting[id] = append(w.waiting[id], k)
	w.mu.Unlock()
	return k, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		list := w.waiting[id]
		for i, x := range list {
			if x == k {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(w.waiting, id)
		} else {
			w.waiting[id] = list
		}
	}
}
