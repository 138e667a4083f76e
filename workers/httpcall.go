package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/workflowd/workflowd/model"
)

const (
	// DefaultHTTPTimeout bounds an attempt whose step sets no timeout.
	DefaultHTTPTimeout = 10 * time.Second
	// MaxHTTPResponseBytes is the default bound on the response body an
	// attempt reads.
	MaxHTTPResponseBytes = 256 << 10
)

const (
	allowHostsVar    = "WORKFLOW_HTTP_ALLOW_HOSTS"
	httpUserAgent    = "workflowd"
	maxHTTPRedirects = 5
	// reasonBodyBytes is how much of a failed answer's body a reason quotes.
	reasonBodyBytes = 200
	// reasonScanBytes is how much of a failed answer's body is read to build
	// the quote: more than reasonBodyBytes so that a secret straddling the
	// cut is still redacted whole.
	reasonScanBytes = 4 << 10
	// maxReasonBytes caps a whole reason.
	maxReasonBytes = 400
)

// HTTPRequest is one attempt of an http step.
type HTTPRequest struct {
	URL            string
	Method         string            // "" means POST
	Headers        map[string]string // the step's own headers
	Timeout        time.Duration     // for the whole attempt; 0 means DefaultHTTPTimeout
	Body           []byte            // JSON sent as the request body (not sent for GET)
	IdempotencyKey string            // sent as the Idempotency-Key header
	// Secrets are values (resolved secret references) that no reason
	// may quote, beside the header values.
	Secrets []string
}

// StepError is why an attempt failed: its name (model.ErrHTTPTimeout, …;
// docs/api.md, "Errors") and its reason. Retryable is false only when
// retrying cannot help (http.host-not-allowed, http.invalid-request); every
// other failure (network error, timeout, non-2xx status, body too large or
// not JSON) is retryable.
//
// Reason is one short line of printable text; it never holds the request's
// header values.
type StepError struct {
	Name      string
	Reason    string
	Retryable bool
}

// Error returns the reason.
func (e *StepError) Error() string { return e.Reason }

type attemptTimeoutKey struct{}

// AttemptTimeout returns the timeout of the attempt whose request carries
// ctx: what a transport that simulates time (internal/sim) needs, as the
// context's deadline is in real time.
func AttemptTimeout(ctx context.Context) (time.Duration, bool) {
	d, ok := ctx.Value(attemptTimeoutKey{}).(time.Duration)
	return d, ok
}

// HTTPCaller performs http step attempts. Safe for concurrent use. The zero
// value refuses every host.
type HTTPCaller struct {
	// AllowHosts lists what steps may call (WORKFLOW_HTTP_ALLOW_HOSTS):
	// host:port pairs (any scheme and path) or URL prefixes
	// (https://api.example.com/v1/); empty means nothing. Hosts compare
	// case-insensitively; see ParseAllowHosts. An address that is
	// loopback, private, link-local or the metadata service is dialled
	// only if an entry names it (egress.go).
	AllowHosts []string
	// Resolver, if set, resolves host names for the dial-time check
	// (tests); nil means the system's resolver.
	Resolver func(ctx context.Context, host string) ([]netip.Addr, error)
	// Transport, if set, is the round tripper used (tests, the
	// simulator), which then dials unchecked; nil means the caller's own
	// clone of http.DefaultTransport that dials through the egress check.
	Transport http.RoundTripper
	// MaxResponseBytes bounds the response body read (0: MaxHTTPResponseBytes).
	MaxResponseBytes int64

	parseOnce, transportOnce sync.Once
	parsed                   []allowEntry
	rt                       http.RoundTripper
}

// defaultTransport is the package's own clone of http.DefaultTransport, so
// that changes to the shared one (or its idle connections) do not leak in.
var defaultTransport = sync.OnceValue(func() http.RoundTripper {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return t.Clone()
	}
	return &http.Transport{Proxy: http.ProxyFromEnvironment}
})

// ParseAllowHosts parses the comma-separated WORKFLOW_HTTP_ALLOW_HOSTS value
// ("host:port,https://api.example.com/v1/"). Spaces around entries are
// ignored and empty entries skipped. Each entry is host:port with a
// numeric port 1..65535 (an IPv6 host in brackets, [::1]:8080), or a URL
// prefix: http or https, a host, an optional port and path prefix. The
// result holds the entries in canonical form (lower-case host, port
// without leading zeros). The error names the first bad entry.
func ParseAllowHosts(s string) ([]string, error) {
	var hosts []string
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		e, err := parseAllow(entry)
		if err != nil {
			return nil, fmt.Errorf("%s entry %q: %w", allowHostsVar, entry, err)
		}
		if e.scheme == "" {
			hosts = append(hosts, e.hostPort)
		} else {
			hosts = append(hosts, e.scheme+"://"+e.hostPort+e.path)
		}
	}
	return hosts, nil
}

// parseAllowEntry returns the canonical form of one allowlist entry.
func parseAllowEntry(entry string) (string, error) {
	host, port, err := net.SplitHostPort(entry)
	if err != nil {
		return "", errors.New("want host:port (IPv6 as [::1]:8080)")
	}
	if strings.HasPrefix(entry, "[") {
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return "", errors.New("only an IPv6 address goes in brackets")
		}
	}
	return canonHostPort(host, port)
}

// canonHostPort validates host and port and joins them in canonical form:
// IP addresses as netip prints them, host names in lower case, the port in
// decimal without leading zeros.
func canonHostPort(host, port string) (string, error) {
	if port == "" || strings.Trim(port, "0123456789") != "" {
		return "", fmt.Errorf("port %q is not a number", port)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %s is not in 1..65535", port)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String()
	} else {
		host = strings.ToLower(host)
		if !validHostName(host) {
			return "", fmt.Errorf("host %q is not a host name or IP address", host)
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// validHostName reports whether h (lower case) is made of the characters of
// DNS names.
func validHostName(h string) bool {
	if h == "" {
		return false
	}
	for _, r := range h {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_'
		if !ok {
			return false
		}
	}
	return true
}

// targetOf returns the canonical host:port a URL points at, with the
// scheme's default port when the URL has none.
func targetOf(u *url.URL) (string, error) {
	var port string
	switch u.Scheme {
	case "http":
		port = "80"
	case "https":
		port = "443"
	default:
		return "", fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Hostname() == "" {
		return "", errors.New("url has no host")
	}
	if p := u.Port(); p != "" {
		port = p
	}
	return canonHostPort(u.Hostname(), port)
}

// allows reports whether the canonical target is in c.AllowHosts. Entries
// are canonicalized here too, so a list built without ParseAllowHosts still
// compares case-insensitively; malformed entries match nothing.
func (c *HTTPCaller) allows(u *url.URL, target string) bool {
	for _, e := range c.entries() {
		if e.holds(u, target) {
			return true
		}
	}
	return false
}

// attempt is the state of one Call, used to word its failures.
type attempt struct {
	label   string        // "POST host:port", the prefix of reasons once known
	timeout time.Duration // the attempt's bound
	secrets []string      // header values never to be quoted
}

// fail returns a StepError named name whose reason is the formatted text,
// prefixed with the attempt's label if any, with secrets redacted, on one
// printable line.
func (a *attempt) fail(name string, format string, args ...any) *StepError {
	reason := fmt.Sprintf(format, args...)
	if a.label != "" {
		reason = a.label + ": " + reason
	}
	retryable := name != model.ErrHTTPInvalidRequest && name != model.ErrHTTPHostNotAllowed
	return &StepError{Name: name, Reason: truncate(printable(redact(reason, a.secrets)), maxReasonBytes), Retryable: retryable}
}

// Call performs the attempt. On a 2xx answer whose body is JSON (or empty:
// then the output is nil) it returns the body, trimmed of surrounding white
// space, as the step's output. Otherwise it returns a *StepError.
//
// The URL's host:port must be in c.AllowHosts; it is checked before any
// connection is made. Redirects are followed (at most 5) only to the same
// scheme and host:port. The whole attempt, body read included, is bounded
// by r.Timeout. The method is upper-cased; the body is not sent for GET or
// HEAD. A cancelled ctx gives a retryable StepError saying so; see
// StepError for which failures are retryable.
func (c *HTTPCaller) Call(ctx context.Context, r HTTPRequest) (json.RawMessage, error) {
	if c == nil {
		c = &HTTPCaller{}
	}
	method := strings.ToUpper(r.Method)
	if method == "" {
		method = http.MethodPost
	}
	a := &attempt{timeout: r.Timeout, secrets: secretsOf(r.Headers, r.Secrets)}
	if a.timeout <= 0 {
		a.timeout = DefaultHTTPTimeout
	}
	if !validHeaderName(method) {
		return nil, a.fail(model.ErrHTTPInvalidRequest, "invalid request method %q", method)
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, a.fail(model.ErrHTTPInvalidRequest, "invalid url")
	}
	target, err := targetOf(u)
	if err != nil {
		return nil, a.fail(model.ErrHTTPInvalidRequest, "invalid url: %v", err)
	}
	if !c.allows(u, target) {
		return nil, c.refusal(a, target)
	}
	a.label = method + " " + target

	actx, cancel := context.WithTimeout(context.WithValue(ctx, attemptTimeoutKey{}, a.timeout), a.timeout)
	defer cancel()
	req, serr := newHTTPRequest(actx, a, method, u, r)
	if serr != nil {
		return nil, serr
	}
	resp, err := c.client(u.Scheme, target).Do(req)
	if err != nil {
		return nil, a.transportFailure(ctx, actx, err)
	}
	defer resp.Body.Close()
	return c.readOutput(ctx, actx, a, resp)
}

// refusal is the failure of a call to a host that is not allowlisted.
func (c *HTTPCaller) refusal(a *attempt, target string) *StepError {
	if len(c.AllowHosts) == 0 {
		return a.fail(model.ErrHTTPHostNotAllowed, "host %s is not in %s (the list is empty)", target, allowHostsVar)
	}
	return a.fail(model.ErrHTTPHostNotAllowed, "host %s is not in %s", target, allowHostsVar)
}

// secretsOf returns the strings of the step's header values that reasons
// must not quote: each whole value, and each long word of it (the token of
// "Bearer <token>"), longest first.
func secretsOf(h map[string]string, more []string) []string {
	var s []string
	for _, v := range more {
		if len(v) >= 4 {
			s = append(s, v)
		}
	}
	for _, v := range h {
		if v = strings.TrimSpace(v); len(v) >= 4 {
			s = append(s, v)
		}
		for _, w := range strings.Fields(v) {
			if len(w) >= 8 {
				s = append(s, w)
			}
		}
	}
	slices.SortFunc(s, func(x, y string) int {
		if len(x) != len(y) {
			return len(y) - len(x)
		}
		return strings.Compare(x, y)
	})
	return slices.Compact(s)
}

// newHTTPRequest builds the request: the body unless the method is GET or
// HEAD, our headers, then the step's (which may not replace Idempotency-Key,
// Content-Length or Host). The step cannot supply a missing Idempotency-Key
// either: it is sent only when r.IdempotencyKey is set.
func newHTTPRequest(ctx context.Context, a *attempt, method string, u *url.URL, r HTTPRequest) (*http.Request, *StepError) {
	sendBody := len(r.Body) > 0 && method != http.MethodGet && method != http.MethodHead
	if sendBody && !json.Valid(r.Body) {
		return nil, a.fail(model.ErrHTTPInvalidRequest, "request body is not JSON")
	}
	var body io.Reader
	if sendBody {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, a.fail(model.ErrHTTPInvalidRequest, "invalid request")
	}
	if sendBody {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", httpUserAgent)
	for name, value := range r.Headers {
		if !validHeaderName(name) {
			return nil, a.fail(model.ErrHTTPInvalidRequest, "invalid header name %q", name)
		}
		if !validHeaderValue(value) {
			return nil, a.fail(model.ErrHTTPInvalidRequest, "header %s has an invalid value", name)
		}
		switch key := http.CanonicalHeaderKey(name); key {
		case "Idempotency-Key", "Content-Length", "Host":
			// Ours: silently kept.
		default:
			req.Header.Set(key, value)
		}
	}
	if r.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.IdempotencyKey)
	}
	return req, nil
}

// validHeaderName reports whether name is an RFC 9110 token (the syntax of
// header names and of methods).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// validHeaderValue reports whether value holds no control characters other
// than tab.
func validHeaderValue(value string) bool {
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// redirectError is returned by CheckRedirect to stop following; its reason
// becomes the attempt's.
type redirectError struct{ reason string }

func (e *redirectError) Error() string { return e.reason }

// client returns an http.Client that follows at most maxHTTPRedirects
// redirects, and only to the given scheme and canonical host:port.
func (c *HTTPCaller) client(scheme, target string) *http.Client {
	return &http.Client{
		Transport: c.transport(),
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxHTTPRedirects {
				return &redirectError{fmt.Sprintf("stopped after %d redirects", maxHTTPRedirects)}
			}
			to, err := targetOf(req.URL)
			if err == nil && req.URL.Scheme == scheme && to == target && !c.allows(req.URL, to) {
				return &redirectError{fmt.Sprintf("redirected to a path of %s://%s that no entry of %s holds, not followed", scheme, to, allowHostsVar)}
			}
			if err != nil || req.URL.Scheme != scheme || to != target {
				if err != nil {
					to = req.URL.Host
				}
				return &redirectError{fmt.Sprintf("redirected to %s://%s, not followed (only the same scheme and host:port are)", req.URL.Scheme, to)}
			}
			return nil
		},
	}
}

// transportFailure words an error from sending the request or reading the
// answer: a redirect not followed, the caller's cancellation, the attempt's
// timeout, or a network error.
func (a *attempt) transportFailure(ctx, actx context.Context, err error) *StepError {
	var re *redirectError
	var refused *egressRefused
	switch {
	case errors.As(err, &re):
		return a.fail(model.ErrHTTPRedirect, "%s", re.reason)
	case errors.As(err, &refused):
		return a.fail(model.ErrHTTPHostNotAllowed, "%s; nothing was sent", refused.Error())
	case ctx.Err() != nil:
		return a.fail(model.ErrHTTPConnection, "cancelled (%v)", ctx.Err())
	case errors.Is(actx.Err(), context.DeadlineExceeded):
		return a.fail(model.ErrHTTPTimeout, "timed out after %v", a.timeout)
	}
	// A *url.Error repeats the method and the whole URL; keep its cause.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return a.fail(model.ErrHTTPConnection, "request failed: %s", truncate(err.Error(), reasonBodyBytes))
}

// readOutput turns the answer into the step's output or a failure.
func (c *HTTPCaller) readOutput(ctx, actx context.Context, a *attempt, resp *http.Response) (json.RawMessage, error) {
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		quote, _ := io.ReadAll(io.LimitReader(resp.Body, reasonScanBytes))
		reason := fmt.Sprintf("status %d", resp.StatusCode)
		if text := http.StatusText(resp.StatusCode); text != "" {
			reason += " " + text
		}
		if q := bodyQuote(quote, a.secrets); q != "" {
			reason += ": " + q
		}
		return nil, a.fail(model.HTTPStatusError(resp.StatusCode), "%s", reason)
	}
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = MaxHTTPResponseBytes
	}
	if resp.ContentLength > limit {
		return nil, a.fail(model.ErrHTTPBadResponse, "response body over %d bytes", limit)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, a.transportFailure(ctx, actx, err)
	}
	if int64(len(body)) > limit {
		return nil, a.fail(model.ErrHTTPBadResponse, "response body over %d bytes", limit)
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, nil
	}
	if !json.Valid(body) {
		return nil, a.fail(model.ErrHTTPBadResponse, "response is not JSON")
	}
	return json.RawMessage(body), nil
}

// bodyQuote returns the first reasonBodyBytes of b as printable text, with
// secrets redacted first so that none is quoted even in part.
func bodyQuote(b []byte, secrets []string) string {
	return truncate(printable(redact(string(b), secrets)), reasonBodyBytes)
}

// redact replaces every occurrence of the secrets (longest first) in s.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		s = strings.ReplaceAll(s, v, "[redacted]")
	}
	return s
}

// printable returns s on one line: invalid UTF-8 and unprintable runes
// (newlines included) become spaces, and runs of spaces collapse to one.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, " "))
	return strings.Join(strings.Fields(s), " ")
}

// truncate cuts s to at most n bytes at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
