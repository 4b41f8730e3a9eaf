package outbound

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func TestCheckAddr(t *testing.T) {
	var deny Policy
	for _, s := range []string{
		"127.0.0.1", "127.1.2.3", "::1", "0.0.0.0", "0.1.2.3", "::",
		"10.0.0.1", "172.16.5.4", "172.31.255.255", "192.168.1.1", "fc00::1", "fd12::1",
		"169.254.169.254", "fe80::1", "100.64.0.1", "224.0.0.1", "ff02::1", "255.255.255.255", "240.0.0.1",
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1", "2002:a00:1::1",
	} {
		if err := deny.CheckAddr(netip.MustParseAddr(s)); !errors.Is(err, ErrRefused) {
			t.Errorf("%s allowed (%v)", s, err)
		}
	}
	for _, s := range []string{"93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700:4700::1111", "203.0.113.7"} {
		if err := deny.CheckAddr(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s refused: %v", s, err)
		}
	}
	allow := Policy{AllowPrivate: true}
	if err := allow.CheckAddr(netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("allow-private refused loopback: %v", err)
	}
	one := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	if one.CheckAddr(netip.MustParseAddr("127.0.0.1")) != nil || one.CheckAddr(netip.MustParseAddr("127.0.0.2")) == nil {
		t.Error("Allow prefix not applied exactly")
	}
}

func TestFromEnv(t *testing.T) {
	if FromEnv(func(string) string { return "" }).AllowPrivate {
		t.Error("private allowed by default")
	}
	if !FromEnv(func(k string) string {
		if k == EnvAllowPrivate {
			return "true"
		}
		return ""
	}).AllowPrivate {
		t.Error("LATCHKEY_HOOKS_ALLOW_PRIVATE=true ignored")
	}
}

// dnsServer answers every A question with ip: a resolver that hands out a
// private address for a public-looking name.
func dnsServer(t *testing.T, ip [4]byte) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
			b.EnableCompression()
			_ = b.StartQuestions()
			_ = b.Question(q)
			_ = b.StartAnswers()
			if q.Type == dnsmessage.TypeA {
				_ = b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: ip})
			}
			msg, err := b.Finish()
			if err == nil {
				_, _ = pc.WriteTo(msg, addr)
			}
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

func TestCheckURLAtSaveTime(t *testing.T) {
	ctx := context.Background()
	deny := Policy{Resolver: dnsServer(t, [4]byte{10, 0, 0, 5})}
	for _, u := range []string{
		"http://127.0.0.1:8080/hook", "http://localhost/hook", "http://api.localhost/x", "http://[::1]/",
		"http://0.0.0.0:9/", "http://169.254.169.254/latest/meta-data/", "https://10.1.2.3/", "http://[fe80::1%25eth0]/",
		"http://[::ffff:127.0.0.1]/",
		// A public-looking name whose DNS answer is private.
		"https://hooks.example.com/in",
	} {
		msg := deny.CheckURL(ctx, u)
		if !strings.Contains(msg, "private network") {
			t.Errorf("%s: %q, want a refusal", u, msg)
		}
	}
	for u, want := range map[string]string{
		"ftp://example.com/": "full http", "": "Enter the URL", "http://user:pw@203.0.113.7/": "credentials",
	} {
		if msg := deny.CheckURL(ctx, u); !strings.Contains(msg, want) {
			t.Errorf("%q: %q, want %q", u, msg, want)
		}
	}
	if msg := deny.CheckURL(ctx, "https://203.0.113.7/hook"); msg != "" {
		t.Errorf("public address refused: %q", msg)
	}
	pub := Policy{Resolver: dnsServer(t, [4]byte{203, 0, 113, 7})}
	if msg := pub.CheckURL(ctx, "https://hooks.example.com/in"); msg != "" {
		t.Errorf("name with a public answer refused: %q", msg)
	}
	if msg := (Policy{AllowPrivate: true}).CheckURL(ctx, "http://127.0.0.1:1/"); msg != "" {
		t.Errorf("allow-private refused loopback: %q", msg)
	}
}

// counter is a receiver that counts what reaches it.
func counter(t *testing.T, handler http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if handler != nil {
			handler(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestClientRefusesAtDialTime(t *testing.T) {
	srv, hits := counter(t, nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	// The URL was checked when saved (say the name was public then); now
	// the name resolves to loopback, where the receiver listens.
	p := Policy{Resolver: dnsServer(t, [4]byte{127, 0, 0, 1})}
	c := p.Client(Options{})
	for _, u := range []string{srv.URL, "http://rebound.example.com:" + port + "/"} {
		res, err := c.Get(u)
		if err == nil {
			res.Body.Close()
			t.Fatalf("%s: reached, status %d", u, res.StatusCode)
		}
		if !errors.Is(err, ErrRefused) {
			t.Fatalf("%s: %v, want ErrRefused", u, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("the receiver got %d requests", hits.Load())
	}
	// The same client policy with private addresses allowed reaches it.
	res, err := (Policy{AllowPrivate: true}).Client(Options{}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if hits.Load() != 1 {
		t.Fatal("allow-private did not reach the receiver")
	}
}

func TestClientChecksEveryRedirect(t *testing.T) {
	// The inner service listens on 127.0.0.2, which the policy refuses.
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no 127.0.0.2 on this machine: %v", err)
	}
	var inner atomic.Int32
	innerSrv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { inner.Add(1) })}}
	innerSrv.Start()
	t.Cleanup(innerSrv.Close)
	// The public-facing one (127.0.0.1, allowed here) redirects to it.
	outer, hits := counter(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, innerSrv.URL+"/secret", http.StatusFound)
	})
	p := Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	res, err := p.Client(Options{MaxRedirects: 5}).Get(outer.URL)
	if err == nil {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		t.Fatalf("redirect followed: %d %s", res.StatusCode, body)
	}
	if !errors.Is(err, ErrRefused) || hits.Load() != 1 || inner.Load() != 0 {
		t.Fatalf("err %v, outer %d, inner %d", err, hits.Load(), inner.Load())
	}
	// With no redirects allowed, the 3xx is the answer.
	res, err = p.Client(Options{}).Get(outer.URL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || inner.Load() != 0 {
		t.Fatalf("status %d, inner %d", res.StatusCode, inner.Load())
	}
}
