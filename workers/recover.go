package workers

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/workflowd/workflowd/model"
)

// PanicError is a handler's panic, recovered: the message or batch it was
// handling counts as failed (it is retried, and a message that keeps
// panicking ends in the dead-letter queue), and the process goes on.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.Value) }

// handleMessage is h.Handle with a panic turned into a *PanicError.
func handleMessage(ctx context.Context, h MessageHandler, body []byte, receiveCount int) (err error) {
	defer recovered(&err)
	return h.Handle(ctx, body, receiveCount)
}

// handleEvents is h.Handle with a panic turned into a *PanicError.
func handleEvents(ctx context.Context, h EventHandler, events []model.Event) (err error) {
	defer recovered(&err)
	return h.Handle(ctx, events)
}

func recovered(err *error) {
	if r := recover(); r != nil {
		*err = &PanicError{Value: r, Stack: debug.Stack()}
	}
}
