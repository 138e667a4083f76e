package api

import (
	"sync"

	"github.com/google/uuid"
)

// Waiter wakes command-status long polls when a command finishes. The
// embedded runtime wires the workers' and the projector's OnFinished to
// Notify; without a Waiter the API polls the store.
type Waiter struct {
	mu      sync.Mutex
	waiting map[uuid.UUID][]chan struct{}
}

// NewWaiter returns an empty Waiter.
func NewWaiter() *Waiter { return &Waiter{waiting: make(map[uuid.UUID][]chan struct{})} }

// Notify wakes everyone waiting on id.
func (w *Waiter) Notify(id uuid.UUID) {
	w.mu.Lock()
	chans := w.waiting[id]
	delete(w.waiting, id)
	w.mu.Unlock()
	for _, c := range chans {
		close(c)
	}
}

// subscribe returns a channel closed at the next Notify of id, and a
// function to call when no longer waiting.
func (w *Waiter) subscribe(id uuid.UUID) (<-chan struct{}, func()) {
	c := make(chan struct{})
	w.mu.Lock()
	w.waiting[id] = append(w.waiting[id], c)
	w.mu.Unlock()
	return c, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		list := w.waiting[id]
		for i, x := range list {
			if x == c {
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
