package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/workflowd/workflowd/bus"
)

// DeadLetters is the operator's access to the dead-letter queues.
type DeadLetters interface {
	ListDeadLetters(ctx context.Context, queue string, max int) ([]bus.Delivery, error)
	Redrive(ctx context.Context, queue string, max int) (int, error)
}

// DeadLetter is one message in a dead-letter queue, as the API shows it.
type DeadLetter struct {
	MessageID    string            `json:"messageId"`
	Body         string            `json:"body"`
	Attributes   map[string]string `json:"attributes"`
	ReceiveCount int               `json:"receiveCount"`
	SentAt       time.Time         `json:"sentAt"`
}

// RedriveAnswer says how many messages a redrive moved back.
type RedriveAnswer struct {
	Queue string `json:"queue"`
	Moved int    `json:"moved"`
}

// RedriveRequest is the optional body of a redrive.
type RedriveRequest struct {
	Max *int `json:"max,omitempty"`
}

// Queue names the API knows (the two command queues).
var queueNames = map[string]bool{"workflows": true, "executions": true}

func (s *Server) registerDeadLetterRoutes() {
	s.handle("/v1/queues/{queue}/dead-letters", s.listDeadLetters, http.MethodGet)
	s.handle("/v1/queues/{queue}/redrive", s.redrive, http.MethodPost)
}

func (s *Server) deadLetterQueue(r *http.Request) (string, error) {
	q := mux.Vars(r)["queue"]
	if !queueNames[q] {
		return "", notFound("no queue " + strconv.Quote(q) + " (queues: workflows, executions)")
	}
	if s.cfg.DeadLetters == nil {
		return "", problem(http.StatusNotImplemented, "not-implemented", "Not implemented",
			"this deployment does not expose its dead-letter queues through the API")
	}
	return q, nil
}

func (s *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) error {
	queue, err := s.deadLetterQueue(r)
	if err != nil {
		return err
	}
	q, err := queryParams(r, "limit")
	if err != nil {
		return err
	}
	lq, err := listQuery(q)
	if err != nil {
		return err
	}
	ds, err := s.cfg.DeadLetters.ListDeadLetters(r.Context(), queue, lq.Limit)
	if err != nil {
		return err
	}
	items := make([]DeadLetter, 0, len(ds))
	for _, d := range ds {
		attrs := d.Attributes
		if attrs == nil {
			attrs = map[string]string{}
		}
		items = append(items, DeadLetter{MessageID: d.ID, Body: string(d.Body), Attributes: attrs, ReceiveCount: d.ReceiveCount, SentAt: d.SentAt})
	}
	writeJSON(w, http.StatusOK, "application/json", Page[DeadLetter]{Items: items})
	return nil
}

// MaxRedrive bounds the messages one redrive moves.
const MaxRedrive = 10000

func (s *Server) redrive(w http.ResponseWriter, r *http.Request) error {
	queue, err := s.deadLetterQueue(r)
	if err != nil {
		return err
	}
	if _, err := queryParams(r); err != nil {
		return err
	}
	body, err := readBody(w, r, true)
	if err != nil {
		return err
	}
	var req RedriveRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	max := MaxRedrive
	if req.Max != nil {
		if *req.Max < 1 || *req.Max > MaxRedrive {
			return badRequest("max must be a whole number from 1 to " + strconv.Itoa(MaxRedrive))
		}
		max = *req.Max
	}
	n, err := s.cfg.DeadLetters.Redrive(r.Context(), queue, max)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	s.log.Info("dead letters redriven", "queue", queue, "moved", n)
	writeJSON(w, http.StatusOK, "application/json", RedriveAnswer{Queue: queue, Moved: n})
	return nil
}
