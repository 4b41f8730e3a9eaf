package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// TestCLIUsage: -h lists every command with its flags and exits 0; an
// unknown command exits 2 with the usage on stderr.
func TestCLIUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := cli(context.Background(), []string{"-h"}, func(string) string { return "" }, nil, &out, &errOut); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	for _, s := range []string{"serve [flags]", "backup [flags] PATH", "latchkey serve flags:", "-addr", "-db",
		"latchkey backup flags:", "-step-pages", "-step-pause", "-force"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("usage lacks %q:\n%s", s, out.String())
		}
	}
	out.Reset()
	if code := cli(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, nil, &out, &errOut); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
	if !strings.Contains(errOut.String(), `unknown command "frobnicate"`) || !strings.Contains(errOut.String(), "Usage: latchkey") || out.Len() != 0 {
		t.Errorf("unknown command: stdout %q, stderr %q", out.String(), errOut.String())
	}
	errOut.Reset()
	if code := cli(context.Background(), []string{"serve", "-nope"}, func(string) string { return "" }, nil, &out, &errOut); code != 2 {
		t.Errorf("serve -nope: exit %d (%s)", code, errOut.String())
	}
	if code := cli(context.Background(), []string{"serve", "extra"}, func(string) string { return "" }, nil, &out, &errOut); code != 2 {
		t.Errorf("serve extra: exit %d", code)
	}
}

// TestCLITable: a command added to the table with one line is dispatched
// (multi-word names included), listed in the usage with its flags, and a
// first word alone names the choices.
func TestCLITable(t *testing.T) {
	saved := commands
	t.Cleanup(func() { commands = saved })
	var got []string
	commands = append(commands, command{"demo frob", "", "rotate the signing keys", func(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
		fs := flag.NewFlagSet("demo frob", flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.Bool("dry-run", false, "only say what would change")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return errors.New("ran with -h")
		}
		got = fs.Args()
		return nil
	}})
	var out, errOut bytes.Buffer
	if code := cli(context.Background(), []string{"demo", "frob", "-dry-run", "now"}, func(string) string { return "" }, nil, &out, &errOut); code != 0 {
		t.Fatalf("demo frob: exit %d: %s", code, errOut.String())
	}
	if len(got) != 1 || got[0] != "now" {
		t.Errorf("demo frob got args %v", got)
	}
	if code := cli(context.Background(), []string{"-h"}, func(string) string { return "" }, nil, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "demo frob [flags]") || !strings.Contains(out.String(), "-dry-run") {
		t.Errorf("usage with demo frob: %d\n%s", code, out.String())
	}
	errOut.Reset()
	if code := cli(context.Background(), []string{"demo"}, func(string) string { return "" }, nil, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "demo frob") {
		t.Errorf("demo alone: exit %d, %q", code, errOut.String())
	}
}

func TestLoadConfigOps(t *testing.T) {
	c, err := loadConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.MetricsAddr != "" || c.LogFormat != "text" || c.TrustProxy || c.TrustedProxies != nil {
		t.Fatalf("defaults = %+v", c)
	}
	c, err = loadConfig(nil, func(k string) string {
		return map[string]string{"LATCHKEY_TRUST_PROXY": "10.0.0.0/8, 192.168.1.7,::1", "LATCHKEY_LOG_FORMAT": "json", "LATCHKEY_METRICS_ADDR": "127.0.0.1:9090"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if !c.TrustProxy || len(c.TrustedProxies) != 3 || c.TrustedProxies[0].String() != "10.0.0.0/8" || c.TrustedProxies[1].String() != "192.168.1.7/32" ||
		c.TrustedProxies[2].String() != "::1/128" || c.LogFormat != "json" || c.MetricsAddr != "127.0.0.1:9090" {
		t.Fatalf("ops settings = %+v", c)
	}
	if c, err := loadConfig(nil, func(k string) string { return map[string]string{"LATCHKEY_TRUST_PROXY": "true"}[k] }); err != nil || !c.TrustProxy || c.TrustedProxies != nil {
		t.Fatalf("true: %+v %v", c, err)
	}
	for _, env := range []map[string]string{
		{"LATCHKEY_TRUST_PROXY": "yes please"},
		{"LATCHKEY_TRUST_PROXY": "10.0.0.0/33"},
		{"LATCHKEY_TRUST_PROXY": ","},
		{"LATCHKEY_LOG_FORMAT": "xml"},
		{"LATCHKEY_METRICS_ADDR": "9090"},
	} {
		if _, err := loadConfig(nil, func(k string) string { return env[k] }); err == nil {
			t.Errorf("%v: want an error", env)
		}
	}
}

func TestPublicURLPortWarning(t *testing.T) {
	for _, tc := range []struct {
		url  string
		port int
		warn bool
	}{
		{"http://localhost:8080", 8080, false},
		{"http://localhost:8080", 9000, true},
		{"https://id.example.com", 443, false},
		{"https://id.example.com", 8080, true},
		{"http://id.example.com", 80, false},
	} {
		var buf bytes.Buffer
		warnPublicURLPort(tc.url, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: tc.port}, slog.New(slog.NewTextHandler(&buf, nil)))
		if got := strings.Contains(buf.String(), "differs from the listen port"); got != tc.warn {
			t.Errorf("%s on %d: warned %v, want %v (%s)", tc.url, tc.port, got, tc.warn, buf.String())
		}
	}
}

func TestDevMailboxExposureWarning(t *testing.T) {
	for _, tc := range []struct {
		ip   net.IP
		smtp string
		warn bool
	}{
		{net.IPv4(127, 0, 0, 1), "", false},
		{net.IPv6zero, "", true},
		{net.IPv4(10, 1, 2, 3), "", true},
		{net.IPv6zero, "smtp://mail.example.com:587", false},
	} {
		var buf bytes.Buffer
		cfg := config{PublicURL: "http://localhost:8080", SMTPURL: tc.smtp}
		warnListen(cfg, &net.TCPAddr{IP: tc.ip, Port: 8080}, slog.New(slog.NewTextHandler(&buf, nil)))
		if got := strings.Contains(buf.String(), "dev mailbox"); got != tc.warn {
			t.Errorf("%v smtp=%q: warned %v, want %v", tc.ip, tc.smtp, got, tc.warn)
		}
	}
}

func TestHealthURL(t *testing.T) {
	for addr, want := range map[string]string{
		":8080":            "http://127.0.0.1:8080/healthz",
		"0.0.0.0:8080":     "http://127.0.0.1:8080/healthz",
		"[::]:9000":        "http://127.0.0.1:9000/healthz",
		"127.0.0.1:8080":   "http://127.0.0.1:8080/healthz",
		"10.1.2.3:80":      "http://10.1.2.3:80/healthz",
		"[::1]:8080":       "http://[::1]:8080/healthz",
		"localhost:8080":   "http://localhost:8080/healthz",
		"no-port-here":     "",
		"127.0.0.1:8080:1": "",
	} {
		got, err := healthURL(addr, false)
		if want == "" {
			if err == nil {
				t.Errorf("%q: want an error, got %s", addr, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: %s %v, want %s", addr, got, err, want)
		}
	}
	if got, _ := healthURL(":8080", true); got != "http://127.0.0.1:8080/readyz" {
		t.Errorf("-ready: %s", got)
	}
	var out, errOut bytes.Buffer
	if code := cli(context.Background(), []string{"healthcheck", "-addr", "nonsense"}, func(string) string { return "" }, nil, &out, &errOut); code != 2 {
		t.Errorf("bad address: exit %d %s", code, errOut.String())
	}
}
