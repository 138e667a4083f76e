package workers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"syscall"
	"time"
)

// Egress (docs/api.md, "Egress"): an http step may call a URL only if an
// entry of the allowlist holds it, and only an address that the entry
// names or that is public. The first is checked on the URL before any
// connection; the second on every address the host resolves to, when the
// connection is dialled, so a name that resolves (or re-resolves) to
// loopback, a private network or the metadata service is refused.

// allowEntry is one allowlist entry: host:port (any scheme and path, as
// earlier builds read them) or a URL prefix scheme://host[:port][/path].
type allowEntry struct {
	scheme   string // "": http or https
	hostPort string // canonical
	path     string // "" or a path prefix ending in "/" or a segment
}

// parseAllow reads one entry (canonicalized, or an error).
func parseAllow(entry string) (allowEntry, error) {
	if !strings.Contains(entry, "://") {
		hp, err := parseAllowEntry(entry)
		return allowEntry{hostPort: hp}, err
	}
	u, err := url.Parse(entry)
	switch {
	case err != nil:
		return allowEntry{}, errors.New("not a URL")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return allowEntry{}, errors.New("a URL prefix has no credentials, query or fragment")
	}
	hp, err := targetOf(u)
	if err != nil {
		return allowEntry{}, err
	}
	p := u.EscapedPath()
	if p != "" && path.Clean(p) != strings.TrimSuffix(p, "/") && p != "/" {
		return allowEntry{}, errors.New("the path prefix must be clean (no . or .. segments, no //)")
	}
	if p == "/" {
		p = ""
	}
	return allowEntry{scheme: u.Scheme, hostPort: hp, path: p}, nil
}

// holds reports whether e allows u (whose canonical host:port is target).
func (e allowEntry) holds(u *url.URL, target string) bool {
	if e.hostPort != target || e.scheme != "" && e.scheme != u.Scheme {
		return false
	}
	if e.path == "" {
		return true
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if path.Clean(p) != strings.TrimSuffix(p, "/") && p != "/" {
		return false // dot segments would leave the prefix on the server
	}
	if !strings.HasPrefix(p, e.path) {
		return false
	}
	return strings.HasSuffix(e.path, "/") || len(p) == len(e.path) || p[len(e.path)] == '/'
}

// names reports whether the entry names address a by its host: the
// address itself, or localhost for a loopback address.
func (e allowEntry) names(a netip.Addr) bool {
	host, _, err := net.SplitHostPort(e.hostPort)
	if err != nil {
		return false
	}
	if b, err := netip.ParseAddr(host); err == nil {
		return b.Unmap() == a
	}
	return host == "localhost" && a.IsLoopback()
}

// entries returns the caller's allowlist, parsed (malformed entries
// dropped: they match nothing).
func (c *HTTPCaller) entries() []allowEntry {
	c.parseOnce.Do(func() {
		for _, s := range c.AllowHosts {
			if e, err := parseAllow(strings.TrimSpace(s)); err == nil {
				c.parsed = append(c.parsed, e)
			}
		}
	})
	return c.parsed
}

// special is the kind of address a step may not reach unless an entry
// names it: "" for a public one.
func special(a netip.Addr) string {
	a = a.Unmap()
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsLinkLocalUnicast():
		if a == netip.MustParseAddr("169.254.169.254") {
			return "the cloud metadata service"
		}
		return "a link-local address"
	case a.IsPrivate():
		return "a private address"
	case a.IsUnspecified(), a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "an address no step may call"
	case a.Is4() && (cgnat.Contains(a) || zeroNet.Contains(a)):
		return "a private address"
	case a.Is6() && a == netip.MustParseAddr("fd00:ec2::254"):
		return "the cloud metadata service"
	}
	return ""
}

var (
	cgnat   = netip.MustParsePrefix("100.64.0.0/10")
	zeroNet = netip.MustParsePrefix("0.0.0.0/8")
)

// egressRefused is a dial the egress rules refused.
type egressRefused struct {
	host   string
	addr   netip.Addr
	reason string
}

func (e *egressRefused) Error() string {
	return fmt.Sprintf("host %s resolves to %s, %s, which no entry of %s names", e.host, e.addr, e.reason, allowHostsVar)
}

// resolve returns the addresses of host (an IP literal is its own).
func (c *HTTPCaller) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	if c.Resolver != nil {
		return c.Resolver(ctx, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// dial connects to addr (host:port) through an address of host that the
// egress rules allow, checking it again as the socket connects (Control),
// so that what is dialled is what was checked.
func (c *HTTPCaller) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	addrs, err := c.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	var refused error
	for _, a := range addrs {
		if why := special(a); why != "" && !c.named(a) {
			refused = &egressRefused{host: host, addr: a.Unmap(), reason: why}
			continue
		}
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: c.control}
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return conn, nil
		}
		refused = err
	}
	if refused == nil {
		refused = fmt.Errorf("host %s has no address", host)
	}
	return nil, refused
}

// named reports whether an entry names address a.
func (c *HTTPCaller) named(a netip.Addr) bool {
	for _, e := range c.entries() {
		if e.names(a.Unmap()) {
			return true
		}
	}
	return false
}

// control is the socket's last check before it connects: the address it
// connects to is public or named.
func (c *HTTPCaller) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: cannot read the address %q", address)
	}
	if why := special(ap.Addr()); why != "" && !c.named(ap.Addr()) {
		return &egressRefused{host: ap.Addr().String(), addr: ap.Addr().Unmap(), reason: why}
	}
	return nil
}

// transport is the caller's own transport: the package default's
// settings, no proxy (a proxy would dial for it, unchecked), and the
// checked dial.
func (c *HTTPCaller) transport() http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	c.transportOnce.Do(func() {
		t := defaultTransport().(*http.Transport).Clone()
		t.Proxy = nil
		t.DialContext = c.dial
		c.rt = t
	})
	return c.rt
}
