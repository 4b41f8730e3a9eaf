package handlers

import (
	"strings"
	"testing"
)

func TestSafeNext(t *testing.T) {
	ok := []string{"/settings", "/portal/users?q=a%20b", "/x/y#frag"}
	for _, n := range ok {
		if got := safeNext(n, "/fallback"); got != n {
			t.Errorf("safeNext(%q) = %q, want it kept", n, got)
		}
	}
	bad := []string{"", "settings", "//evil.example", "/\\evil.example", "/\t/evil.example", "/\n/evil.example",
		"/\r\nLocation: x", "/a\\b", "/\x7f/evil", "https://evil.example", "javascript:alert(1)"}
	for _, n := range bad {
		if got := safeNext(n, "/fallback"); got != "/fallback" {
			t.Errorf("safeNext(%q) = %q, want the fallback", n, got)
		}
	}
}

func TestLoginLimitKeyIsBoundedAndStable(t *testing.T) {
	huge := strings.Repeat("x", 1<<20)
	if k := loginLimitKey(huge, "10.0.0.1", "US"); len(k) != 32 {
		t.Fatalf("key of a 1 MiB login ID is %d bytes", len(k))
	}
	// The same account in another spelling shares a key; another IP does not.
	a := loginLimitKey("Bob@Example.com", "10.0.0.1", "US")
	if a != loginLimitKey(" bob@example.COM ", "10.0.0.1", "US") {
		t.Error("case variants of one login ID get different keys")
	}
	if a == loginLimitKey("bob@example.com", "10.0.0.2", "US") {
		t.Error("two IPs share a key")
	}
}
