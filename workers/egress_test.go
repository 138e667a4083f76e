package workers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/workflowd/workflowd/model"
	"github.com/workflowd/workflowd/workers"
)

// resolver answers names as the test says.
func resolver(names map[string]string) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		a, ok := names[host]
		if !ok {
			return nil, fmt.Errorf("no such host %s", host)
		}
		return []netip.Addr{netip.MustParseAddr(a)}, nil
	}
}

// A name that resolves to loopback, the metadata service or a private
// network is refused when the connection is dialled, nothing sent, unless
// an entry names that address.
func TestEgressIsCheckedOnTheResolvedAddress(t *testing.T) {
	srv := newHTTPServer(t, httpAnswer(200, `{"ok":true}`))
	port := strings.TrimPrefix(srv.hostPort(), "127.0.0.1:")
	names := resolver(map[string]string{"rebind.example": "127.0.0.1", "mapped.example": "::ffff:127.0.0.1",
		"meta.example": "169.254.169.254", "ten.example": "10.0.0.1", "lan.example": "192.168.1.20"})
	for _, tc := range []struct {
		host, allow, want string
	}{
		{"rebind.example", "rebind.example:" + port, "resolves to 127.0.0.1, a loopback address"},
		{"mapped.example", "mapped.example:" + port, "resolves to 127.0.0.1, a loopback address"},
		{"meta.example", "meta.example:" + port, "resolves to 169.254.169.254, the cloud metadata service"},
		{"ten.example", "ten.example:" + port, "resolves to 10.0.0.1, a private address"},
		{"lan.example", "http://lan.example:" + port + "/", "resolves to 192.168.1.20, a private address"},
	} {
		c := &workers.HTTPCaller{AllowHosts: []string{tc.allow}, Resolver: names}
		_, err := c.Call(context.Background(), workers.HTTPRequest{URL: "http://" + tc.host + ":" + port + "/x", Timeout: 2 * time.Second})
		se := mustHTTPStepError(t, err)
		if se.Name != model.ErrHTTPHostNotAllowed || se.Retryable || !strings.Contains(se.Reason, tc.want) || !strings.Contains(se.Reason, "nothing was sent") {
			t.Errorf("%s: %+v, want a final refusal saying %q", tc.host, se, tc.want)
		}
	}
	if n := srv.conns.Load(); n != 0 {
		t.Fatalf("the refused calls made %d connections", n)
	}
	// An entry that names the address lets it through.
	c := &workers.HTTPCaller{AllowHosts: []string{"rebind.example:" + port, "127.0.0.1:" + port}, Resolver: names}
	if out, err := c.Call(context.Background(), workers.HTTPRequest{URL: "http://rebind.example:" + port + "/x"}); err != nil || string(out) != `{"ok":true}` {
		t.Fatalf("a named loopback address: %s %v", out, err)
	}
	c = &workers.HTTPCaller{AllowHosts: []string{"ten.example:" + port, "10.0.0.1:" + port}, Resolver: names}
	_, err := c.Call(context.Background(), workers.HTTPRequest{URL: "http://ten.example:" + port + "/x", Timeout: 300 * time.Millisecond})
	if se := mustHTTPStepError(t, err); se.Name == model.ErrHTTPHostNotAllowed {
		t.Fatalf("a named private address was refused: %+v", se)
	}
}

// A URL prefix holds its path and below, segment by segment; a path with
// dot segments is not held; a redirect out of the prefix is not followed.
func TestEgressURLPrefixes(t *testing.T) {
	srv := newHTTPServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/move" {
			http.Redirect(w, r, "/admin", http.StatusFound)
			return
		}
		httpAnswer(200, `{}`)(w, r)
	})
	c := &workers.HTTPCaller{AllowHosts: []string{"http://" + srv.hostPort() + "/api"}}
	for _, tc := range []struct {
		path string
		name string // "": allowed
	}{
		{"/api", ""},
		{"/api/orders/1", ""},
		{"/apix", model.ErrHTTPHostNotAllowed},
		{"/", model.ErrHTTPHostNotAllowed},
		{"/api/../admin", model.ErrHTTPHostNotAllowed},
		{"/api/move", model.ErrHTTPRedirect},
	} {
		_, err := c.Call(context.Background(), workers.HTTPRequest{URL: srv.URL + tc.path})
		switch {
		case tc.name == "" && err != nil:
			t.Errorf("%s: %v, want allowed", tc.path, err)
		case tc.name != "":
			if se := mustHTTPStepError(t, err); se.Name != tc.name {
				t.Errorf("%s: %+v, want %s", tc.path, se, tc.name)
			}
		}
	}
	https := &workers.HTTPCaller{AllowHosts: []string{"https://" + srv.hostPort() + "/"}}
	if _, err := https.Call(context.Background(), workers.HTTPRequest{URL: srv.URL + "/api"}); mustHTTPStepError(t, err).Name != model.ErrHTTPHostNotAllowed {
		t.Fatal("an https prefix held an http URL")
	}
}
