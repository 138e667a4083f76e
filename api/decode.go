package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/workflowd/workflowd/store"
)

// MaxBodyBytes is the largest request body the API reads (256 KiB).
const MaxBodyBytes = 256 << 10

// Listing limits.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// readBody reads a size-limited request body. An empty body is allowed
// only when optional is set (it then reads as "{}").
func readBody(w http.ResponseWriter, r *http.Request, optional bool) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		media, _, _ := strings.Cut(ct, ";")
		media = strings.TrimSpace(strings.ToLower(media))
		if media != "application/json" && !strings.HasSuffix(media, "+json") {
			return nil, problem(http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
				fmt.Sprintf("Content-Type %q is not JSON; send application/json", ct))
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, problem(http.StatusRequestEntityTooLarge, "too-large", "Request body too large",
			fmt.Sprintf("the body must be at most %d bytes", MaxBodyBytes))
	}
	if err != nil {
		return nil, badRequest("could not read the request body: " + err.Error())
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return []byte("{}"), nil
		}
		return nil, badRequest("the request body is empty; send a JSON object")
	}
	return body, nil
}

// decodeStrict decodes one JSON object into v, rejecting unknown fields,
// wrong types and trailing data with a message that names the problem.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest(describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("unexpected data after the JSON object")
	}
	return nil
}

func describeJSONError(err error) string {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d: %v", syntax.Offset, syntax)
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return fmt.Sprintf("field %q must be %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
		}
		return fmt.Sprintf("the body must be a JSON object, not %s", typeErr.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "malformed JSON: the body ends too early"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	}
	// uuid.UUID's UnmarshalText errors and the like.
	return "malformed request: " + err.Error()
}

// pathUUID reads and validates a UUID path variable.
func pathUUID(vars map[string]string, name string) (uuid.UUID, error) {
	id, err := parseUUID(vars[name])
	if err != nil {
		return uuid.Nil, badRequest(fmt.Sprintf("path parameter %s: %v", name, err))
	}
	return id, nil
}

// parseUUID accepts only the canonical 36-character form.
func parseUUID(s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.Nil, fmt.Errorf("%q is not a UUID (want 36 characters like 123e4567-e89b-12d3-a456-426614174000)", s)
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%q is not a UUID", s)
	}
	return id, nil
}

// queryParams parses r's query string and checks that it is well formed
// and holds only allowed parameters, each once. (r.URL.Query would silently
// drop malformed pairs, such as "cursor=%zz", and list from the start.)
func queryParams(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string: use name=value pairs joined by & and percent-encoding")
	}
	return q, checkQueryParams(q, allowed...)
}

// checkQueryParams checks that q holds only allowed parameters, each once.
func checkQueryParams(q url.Values, allowed ...string) error {
	for k, v := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return badRequest(fmt.Sprintf("unknown query parameter %q (allowed: %s)", k, strings.Join(allowed, ", ")))
		}
		if len(v) > 1 {
			return badRequest(fmt.Sprintf("query parameter %q is given %d times", k, len(v)))
		}
	}
	return nil
}

// listQuery parses limit and cursor.
func listQuery(q url.Values) (store.ListQuery, error) {
	lq := store.ListQuery{Limit: DefaultLimit}
	if s := q.Get("limit"); s != "" || q.Has("limit") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxLimit {
			return lq, badRequest(fmt.Sprintf("limit must be a whole number from 1 to %d, not %q", MaxLimit, s))
		}
		lq.Limit = n
	}
	if s := q.Get("cursor"); s != "" || q.Has("cursor") {
		pos, err := decodeCursor(s)
		if err != nil {
			return lq, badRequest("cursor is not valid: pass the nextCursor of a previous page unchanged")
		}
		lq.After = &pos
	}
	return lq, nil
}

type cursorJSON struct {
	V  int       `json:"v"`
	T  time.Time `json:"t"`
	ID uuid.UUID `json:"id"`
}

// encodeCursor makes an opaque cursor of a listing position.
func encodeCursor(p store.Position) string {
	b, _ := json.Marshal(cursorJSON{V: 1, T: p.CreatedAt.UTC(), ID: p.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (store.Position, error) {
	if len(s) > 200 {
		return store.Position{}, errors.New("too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return store.Position{}, err
	}
	var c cursorJSON
	if err := decodeStrict(b, &c); err != nil {
		return store.Position{}, err
	}
	if c.V != 1 || c.ID == uuid.Nil || c.T.IsZero() {
		return store.Position{}, errors.New("unknown cursor version")
	}
	return store.Position{CreatedAt: c.T, ID: c.ID}, nil
}

// parseWait reads the ?wait= of a command-status long poll: a Go duration
// ("10s", "500ms") or a number of seconds, at most MaxWait.
func parseWait(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		n, err2 := strconv.ParseFloat(s, 64)
		if err2 != nil {
			return 0, badRequest(fmt.Sprintf("wait must be a duration like 10s or 500ms, or a number of seconds, not %q", s))
		}
		d = time.Duration(n * float64(time.Second))
	}
	if d < 0 || d > MaxWait {
		return 0, badRequest(fmt.Sprintf("wait must be between 0s and %s", MaxWait))
	}
	return d, nil
}

// MaxWait bounds a command-status long poll.
const MaxWait = 30 * time.Second

// idempotencyKey validates the Idempotency-Key header ("" when absent).
func idempotencyKey(r *http.Request) (string, error) {
	vals := r.Header.Values("Idempotency-Key")
	if len(vals) == 0 {
		return "", nil
	}
	k := vals[0]
	if len(vals) > 1 || k == "" || len(k) > 255 {
		return "", badRequest("Idempotency-Key must be given once, 1 to 255 characters")
	}
	for _, c := range k {
		if c < 0x21 || c > 0x7e {
			return "", badRequest("Idempotency-Key must be printable ASCII without spaces")
		}
	}
	return k, nil
}
