package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/workflowd/workflowd/api"
	"github.com/workflowd/workflowd/model"
)

// spec is the served OpenAPI document, loaded once, with a router over it.
type spec struct {
	doc    *openapi3.T
	router routers.Router
	opts   []openapi3.SchemaValidationOption
}

var (
	specOnce sync.Once
	theSpec  *spec
	specErr  error
)

// canonicalUUID is the only UUID form the API takes and gives.
var canonicalUUID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// mustSpec loads api.OpenAPIDocument, validates it and builds its router.
func mustSpec(tb testing.TB) *spec {
	tb.Helper()
	specOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIDocument())
		if err != nil {
			specErr = fmt.Errorf("load: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			specErr = fmt.Errorf("validate: %w", err)
			return
		}
		doc.SetStringFormatValidator("uuid", openapi3.NewCallbackValidator(func(s string) error {
			if !canonicalUUID.MatchString(s) {
				return errors.New("not a UUID in canonical form")
			}
			return nil
		}))
		router, err := gorillamux.NewRouter(doc)
		if err != nil {
			specErr = fmt.Errorf("router: %w", err)
			return
		}
		theSpec = &spec{doc: doc, router: router, opts: doc.GetSchemaValidationOptions()}
	})
	if specErr != nil {
		tb.Fatalf("OpenAPI document: %v", specErr)
	}
	return theSpec
}

func (s *spec) options() *openapi3filter.Options {
	return &openapi3filter.Options{
		// The server checks credentials itself (TestAuthentication);
		// the document's requirements are read, not enforced, here.
		AuthenticationFunc:      openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus:   true,
		MultiError:              true,
		SchemaValidationOptions: s.opts,
	}
}

// checkResponse checks one answer of the API against the document and the
// rules every answer follows: a documented status with a documented body
// and headers; every 4xx and 5xx an application/problem+json Problem whose
// status is the HTTP status. Answers to paths or methods the document does
// not list must be 404 or 405 problems. req is the request as sent.
func (s *spec) checkResponse(req *http.Request, status int, header http.Header, body []byte) error {
	if status >= 400 {
		if err := checkProblem(status, header, body); err != nil {
			return err
		}
	}
	route, pathParams, err := s.router.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		if status != http.StatusNotFound && status != http.StatusMovedPermanently {
			return fmt.Errorf("%s %s is no documented path: got status %d, want 404 (or a 301 to a clean path)", req.Method, req.URL.Path, status)
		}
		return s.checkProblemSchema(status, body)
	case errors.Is(err, routers.ErrMethodNotAllowed):
		if status != http.StatusMethodNotAllowed {
			return fmt.Errorf("%s is not documented on %s: got status %d, want 405", req.Method, req.URL.Path, status)
		}
		return s.checkProblemSchema(status, body)
	case err != nil:
		return fmt.Errorf("find route of %s %s: %w", req.Method, req.URL, err)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: pathParams, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                s.options(),
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Errorf("%s %s answered %d, which the document does not allow: %w\nbody: %s", req.Method, req.URL, status, err, truncate(body))
	}
	return nil
}

// checkProblemSchema validates a problem body against the Problem schema
// (for answers the document has no operation for: 404 and 405).
func (s *spec) checkProblemSchema(status int, body []byte) error {
	if status == http.StatusMovedPermanently {
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("problem body is not JSON: %w", err)
	}
	if err := s.doc.Components.Schemas["Problem"].Value.VisitJSON(v, s.opts...); err != nil {
		return fmt.Errorf("problem body does not match the Problem schema: %w", err)
	}
	return nil
}

// checkProblem checks the rules of RFC 9457 answers.
func checkProblem(status int, header http.Header, body []byte) error {
	media, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	if err != nil || media != "application/problem+json" {
		return fmt.Errorf("status %d: got Content-Type %q, want application/problem+json", status, header.Get("Content-Type"))
	}
	var p api.Problem
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("status %d: problem body %q: %w", status, truncate(body), err)
	}
	if p.Status != status || p.Title == "" || !strings.HasPrefix(p.Type, "urn:workflowd:problem:") {
		return fmt.Errorf("status %d: got problem %+v, want its status %d, a title and a urn:workflowd:problem: type", status, p, status)
	}
	return nil
}

// checkRequest reports whether the document accepts a request (body is
// its body, which req no longer holds).
func (s *spec) checkRequest(req *http.Request, body []byte) error {
	route, pathParams, err := s.router.FindRoute(req)
	if err != nil {
		return err
	}
	clone := req.Clone(context.Background())
	clone.Body = io.NopCloser(bytes.NewReader(body))
	return openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: clone, PathParams: pathParams, Route: route, Options: s.options(),
	})
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// env is an api.Server over in-memory fakes, served by httptest.
type env struct {
	srv    *httptest.Server
	api    *api.Server
	pub    *fakePublisher
	views  *fakeViews
	events *fakeEvents
	cmds   *fakeCommands
	now    time.Time
	spec   *spec
	// timedCommands: the commands seeded carry their time
	// (model.NewCommandUUID), as this build's API gives them; else they
	// are random, as earlier builds' were.
	timedCommands bool
}

// envOption adjusts the Config of a test server.
type envOption func(*api.Config)

// newEnv starts an API server over fresh fakes.
func newEnv(tb testing.TB, opts ...envOption) *env {
	tb.Helper()
	e := &env{
		pub:    &fakePublisher{},
		views:  newFakeViews(),
		events: newFakeEvents(),
		cmds:   newFakeCommands(),
		now:    time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
		spec:   mustSpec(tb),
	}
	cfg := api.Config{
		Publisher: e.pub,
		Views:     e.views,
		Events:    e.events,
		Commands:  e.cmds,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:       func() time.Time { return e.now },
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.api = api.NewServer(cfg)
	e.srv = httptest.NewServer(e.api)
	tb.Cleanup(e.srv.Close)
	return e
}

// response is an answer as the client saw it.
type response struct {
	status int
	header http.Header
	body   []byte
}

// decode decodes the body strictly into v.
func (r *response) decode(tb testing.TB, v any) {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("decode %T from %s: %v", v, truncate(r.body), err)
	}
}

// problem decodes a problem answer.
func (r *response) problem(tb testing.TB) api.Problem {
	tb.Helper()
	var p api.Problem
	r.decode(tb, &p)
	return p
}

// newRequest builds a request to the test server. body is nil (no body), a
// string or []byte (sent as is), or a value sent as JSON; the body's bytes
// are returned too. headers are name, value pairs; Content-Type defaults to
// application/json when there is a body ("" sends none).
func (e *env) newRequest(tb testing.TB, method, path string, body any, headers ...string) (*http.Request, []byte) {
	tb.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
	case []byte:
		raw = b
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			tb.Fatalf("encode request body: %v", err)
		}
	}
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(raw))
	if err != nil {
		tb.Fatalf("new request %s %s: %v", method, path, err)
	}
	if body == nil {
		req.Body, req.ContentLength = http.NoBody, 0
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(headers)%2 != 0 {
		tb.Fatalf("headers must be name, value pairs: %q", headers)
	}
	for i := 0; i < len(headers); i += 2 {
		name, value := headers[i], headers[i+1]
		if name == "Content-Type" { // replaces the default; "" sends none
			req.Header.Del(name)
			if value == "" {
				continue
			}
		}
		req.Header.Add(name, value)
	}
	return req, raw
}

// do sends a request (see newRequest) to the test server and checks the
// answer against the OpenAPI document (see checkResponse) before returning
// it. A 2xx answer must also be to a request the document accepts: the
// document may not be stricter than the server.
func (e *env) do(tb testing.TB, method, path string, body any, headers ...string) *response {
	tb.Helper()
	req, raw := e.newRequest(tb, method, path, body, headers...)
	r := e.send(tb, req)
	if r.status >= 200 && r.status < 300 {
		if err := e.spec.checkRequest(req, raw); err != nil {
			tb.Errorf("%s %s: the server accepted (%d) a request the document refuses: %v", method, path, r.status, err)
		}
	}
	return r
}

// send sends req and checks the answer against the OpenAPI document.
func (e *env) send(tb testing.TB, req *http.Request) *response {
	tb.Helper()
	res, err := e.srv.Client().Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: read answer: %v", req.Method, req.URL.Path, err)
	}
	r := &response{status: res.StatusCode, header: res.Header, body: got}
	if err := e.spec.checkResponse(req, r.status, r.header, r.body); err != nil {
		tb.Errorf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return r
}

// wantStatus fails the test unless r has status want.
func (r *response) wantStatus(tb testing.TB, want int) {
	tb.Helper()
	if r.status != want {
		tb.Fatalf("got status %d, want %d; body: %s", r.status, want, truncate(r.body))
	}
}

func TestOpenAPIDocumentIsValid(t *testing.T) {
	s := mustSpec(t)
	if got, want := s.doc.OpenAPI, "3.0.3"; got != want {
		t.Errorf("got openapi %q, want %q", got, want)
	}
	// Every operation that issues a command takes an Idempotency-Key, and
	// every operation documents its errors as problems.
	for path, item := range s.doc.Paths.Map() {
		for method, op := range item.Operations() {
			t.Run(method+"_"+path, func(t *testing.T) {
				// Operator actions (tag "operations") act at once and issue no command.
				issuesCommand := !slices.Contains(op.Tags, "operations")
				if (method == http.MethodPost || method == http.MethodPut || method == http.MethodDelete) && issuesCommand {
					if op.Parameters.GetByInAndName("header", "Idempotency-Key") == nil {
						t.Errorf("%s %s: no Idempotency-Key header parameter", method, path)
					}
					if r := op.Responses.Status(http.StatusAccepted); r == nil || r.Value.Headers["Location"] == nil {
						t.Errorf("%s %s: no 202 answer with a Location header", method, path)
					}
					if rb := op.RequestBody; rb == nil || rb.Value.Content.Get("application/json") == nil {
						t.Errorf("%s %s: no application/json request body", method, path)
					} else if ap := rb.Value.Content.Get("application/json").Schema.Value.AdditionalProperties; ap.Has == nil || *ap.Has {
						t.Errorf("%s %s: request body allows additional properties", method, path)
					}
				}
				for code, r := range op.Responses.Map() {
					if code[0] == '4' || code[0] == '5' {
						if r.Value.Content.Get("application/problem+json") == nil {
							t.Errorf("%s %s: answer %s is not application/problem+json", method, path, code)
						}
					}
				}
			})
		}
	}
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, http.MethodGet, "/v1/openapi.json", nil)
	r.wantStatus(t, http.StatusOK)
	if !bytes.Equal(r.body, api.OpenAPIDocument()) {
		t.Errorf("GET /v1/openapi.json: got %d bytes that differ from api.OpenAPIDocument() (%d bytes)", len(r.body), len(api.OpenAPIDocument()))
	}
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("got Content-Type %q, want application/json", got)
	}
}

// The document's enums list what the service stores and answers: every
// event type of the model, every execution status.
func TestOpenAPIEnumsMatchTheModel(t *testing.T) {
	s := mustSpec(t)
	enum := func(schema, prop string) []string {
		t.Helper()
		ref := s.doc.Components.Schemas[schema]
		if ref == nil || ref.Value.Properties[prop] == nil {
			t.Fatalf("schema %s has no property %s", schema, prop)
		}
		var out []string
		for _, v := range ref.Value.Properties[prop].Value.Enum {
			out = append(out, fmt.Sprint(v))
		}
		slices.Sort(out)
		return out
	}
	sorted := func(xs []string) []string { xs = slices.Clone(xs); slices.Sort(xs); return xs }
	if got, want := enum("Event", "type"), sorted(model.EventTypes); !slices.Equal(got, want) {
		t.Errorf("Event.type enum: got %v, want the model's event types %v", got, want)
	}
	if got, want := enum("Execution", "status"), sorted(model.ExecutionStatuses); !slices.Equal(got, want) {
		t.Errorf("Execution.status enum: got %v, want the model's statuses %v", got, want)
	}
}

// The document passes kin-openapi's validation with formats checked, and
// the rules third-party linters apply to OpenAPI 3.0: nullable only
// beside a type, a 4xx answer on every operation, every tag described,
// every operation an operationId and a summary.
func TestOpenAPIDocumentLints(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableSchemaFormatValidation(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	var raw any
	if err := json.Unmarshal(api.OpenAPIDocument(), &raw); err != nil {
		t.Fatal(err)
	}
	var walk func(v any, at string)
	walk = func(v any, at string) {
		switch o := v.(type) {
		case map[string]any:
			if n, _ := o["nullable"].(bool); n {
				if _, typed := o["type"]; !typed {
					t.Errorf("%s: nullable without a type", at)
				}
			}
			for k, x := range o {
				walk(x, at+"/"+k)
			}
		case []any:
			for i, x := range o {
				walk(x, fmt.Sprintf("%s/%d", at, i))
			}
		}
	}
	walk(raw, "")
	ids := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			has4xx := false
			for code := range op.Responses.Map() {
				has4xx = has4xx || strings.HasPrefix(code, "4")
			}
			switch {
			case !has4xx:
				t.Errorf("%s %s: no 4xx answer", method, path)
			case op.OperationID == "" || ids[op.OperationID]:
				t.Errorf("%s %s: operationId %q missing or repeated", method, path, op.OperationID)
			case op.Summary == "":
				t.Errorf("%s %s: no summary", method, path)
			}
			ids[op.OperationID] = true
		}
	}
	for _, tag := range doc.Tags {
		if tag.Description == "" {
			t.Errorf("tag %s: no description", tag.Name)
		}
	}
}
