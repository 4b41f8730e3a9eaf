// Package outbound is the one guarded HTTP client for every outbound call
// an admin can configure (webhooks, blocking hooks, a script's fetch). An
// admin's URL must not become a way into the network Latchkey runs in, so
// the client refuses loopback, unspecified, private, shared (CGNAT),
// link-local (169.254.169.254, the cloud metadata address), multicast and
// reserved addresses: when the URL is saved (CheckURL) and again at every
// connection (the dialer's Control), which also covers a DNS answer that
// changed since and every redirect.
//
// LATCHKEY_HOOKS_ALLOW_PRIVATE=true turns the address checks off, for
// development and for tests whose receivers listen on loopback.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// EnvAllowPrivate is the environment variable that allows private
// addresses.
const EnvAllowPrivate = "LATCHKEY_HOOKS_ALLOW_PRIVATE"

// Policy says which addresses outbound calls may reach. The zero Policy
// refuses every non-public address.
type Policy struct {
	// AllowPrivate allows every address (development, tests).
	AllowPrivate bool
	// Allow lists prefixes allowed although not public (tests that must
	// reach one loopback receiver and no other).
	Allow []netip.Prefix
	// Resolver looks host names up at save time; nil is net.DefaultResolver.
	Resolver *net.Resolver
}

// FromEnv reads the policy from the environment.
func FromEnv(getenv func(string) string) Policy {
	return Policy{AllowPrivate: strings.TrimSpace(getenv(EnvAllowPrivate)) == "true"}
}

// ErrRefused is wrapped by every refusal of an address.
var ErrRefused = errors.New("outbound: address refused")

// blocked are the non-public ranges that netip's predicates leave out.
var blocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"; 0.0.0.0 reaches the host itself
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (CGNAT)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and 255.255.255.255
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: can embed any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2002::/16"),       // 6to4: can embed any IPv4 address
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("::/128"),          // unspecified
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated
}

// CheckAddr reports whether ip may be reached: nil, or an error wrapping
// ErrRefused that says what kind of address it is.
func (p Policy) CheckAddr(ip netip.Addr) error {
	if p.AllowPrivate {
		return nil
	}
	ip = ip.WithZone("")
	for _, pre := range p.Allow {
		if pre.Contains(ip) || pre.Contains(ip.Unmap()) {
			return nil
		}
	}
	kind := ""
	u := ip.Unmap()
	switch {
	case !ip.IsValid():
		kind = "an invalid"
	case u.IsLoopback():
		kind = "a loopback"
	case u.IsUnspecified():
		kind = "an unspecified (0.0.0.0)"
	case u.IsPrivate():
		kind = "a private"
	case u.IsLinkLocalUnicast(), u.IsLinkLocalMulticast():
		kind = "a link-local"
	case u.IsMulticast(), u.IsInterfaceLocalMulticast():
		kind = "a multicast"
	}
	if kind == "" {
		for _, pre := range blocked {
			if pre.Contains(ip) || pre.Contains(u) {
				kind = "a reserved"
				break
			}
		}
	}
	if kind == "" {
		return nil
	}
	return fmt.Errorf("%w: %s is %s address", ErrRefused, ip, kind)
}

// CheckURL checks a URL when an admin saves it: http or https, a host,
// no credentials, and (unless private addresses are allowed) a host that
// is a public address or a name whose every address is public. It returns
// a message for the form, or "" when the URL is fine.
func (p Policy) CheckURL(ctx context.Context, raw string) string {
	if raw == "" {
		return "Enter the URL of your endpoint."
	}
	if len(raw) > 2000 {
		return "The URL can be at most 2000 characters."
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return "Enter a full http:// or https:// URL."
	}
	if u.User != nil {
		return "Put credentials in your endpoint's checks, not in the URL."
	}
	if p.AllowPrivate {
		return ""
	}
	if err := p.checkHost(ctx, u.Hostname()); err != nil {
		if errors.Is(err, ErrRefused) {
			return "This URL points into a private network (loopback, private, link-local or reserved address), which webhooks may not reach. Use a public address."
		}
		return "The host name of this URL could not be resolved. Check it and try again."
	}
	return ""
}

func (p Policy) checkHost(ctx context.Context, host string) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.CheckAddr(ip)
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") || strings.HasSuffix(strings.ToLower(strings.TrimSuffix(host, ".")), ".localhost") {
		return fmt.Errorf("%w: %s is a loopback name", ErrRefused, host)
	}
	r := p.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("outbound: resolve %s: %w", host, err)
	}
	for _, a := range addrs {
		if err := p.CheckAddr(a); err != nil {
			return err
		}
	}
	return nil
}

// control runs on every connection after the name is resolved and before
// it connects: the last word on the address actually dialled.
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrRefused, address)
	}
	return p.CheckAddr(ap.Addr())
}

// Options shape a client.
type Options struct {
	// Timeout bounds a whole request, answer included; 0 means 10 s.
	Timeout time.Duration
	// MaxRedirects is how many redirects to follow, each one checked like
	// the first URL; 0 follows none (the 3xx is the answer).
	MaxRedirects int
}

// Client returns an HTTP client bound to the policy. It ignores proxy
// settings from the environment (a proxy would dial for it, unchecked).
func (p Policy) Client(o Options) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: p.control, Resolver: p.Resolver}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           20,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    5 * time.Second,
		ResponseHeaderTimeout:  o.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   o.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > o.MaxRedirects {
				return http.ErrUseLastResponse
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: redirect to %s", ErrRefused, req.URL.Scheme)
			}
			return nil
		},
	}
}
