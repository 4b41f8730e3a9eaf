package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"latchkey/store/testdb"
)

// TestKeysCommand: `latchkey keys rotate` makes a new active key and keeps
// the previous one published; `keys list` shows both; bad usage is an
// error that changes nothing.
func TestKeysCommand(t *testing.T) {
	ctx := context.Background()
	env := map[string]string{"LATCHKEY_DB": testdb.DB(t, filepath.Join(t.TempDir(), "k.db")), "LATCHKEY_SECRET_KEY": "0123456789abcdef0123456789abcdef"}
	getenv := func(k string) string { return env[k] }
	var out bytes.Buffer
	keys := func(args ...string) int {
		return cli(ctx, append([]string{"keys"}, args...), getenv, nil, &out, io.Discard)
	}
	if code := keys("list"); code != 0 {
		t.Fatalf("keys list: exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "RS256\tactive") {
		t.Fatalf("first list: %q", out.String())
	}
	first := strings.Fields(lines[0])[0]
	out.Reset()
	if code := cli(ctx, []string{"keys", "rotate", "-alg", "es256"}, getenv, nil, &out, &out); code != 0 {
		t.Fatalf("keys rotate: exit %d: %s", code, out.String())
	}
	out.Reset()
	if code := keys("list"); code != 0 {
		t.Fatalf("keys list: exit %d", code)
	}
	lines = strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "ES256\tactive") || !strings.HasPrefix(lines[1], first+"\tRS256\tretired") {
		t.Fatalf("after rotate: %q", out.String())
	}
	for _, args := range [][]string{{}, {"spin"}, {"rotate", "-alg", "HS256"}, {"rotate", "-nope"}} {
		if code := keys(args...); code == 0 {
			t.Errorf("keys %v: no error", args)
		}
	}
	out.Reset()
	_ = keys("list")
	if n := strings.Count(strings.TrimSpace(out.String()), "\n") + 1; n != 2 {
		t.Fatalf("bad usage changed the keys: %q", out.String())
	}
}
