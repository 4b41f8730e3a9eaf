package oidc

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"latchkey/store"
)

// TestKeyringRotationAcrossProcesses: the first key is made at first
// start; a rotation by another process (the CLI) is picked up within
// keyRecheck; the retired key stays published until keep has passed; the
// private keys are sealed (no PKCS#8 in the file) and need the secret.
func TestKeyringRotationAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	server, err := NewKeyring(ctx, st, secret, AlgES256, KeyKeep)
	if err != nil {
		t.Fatal(err)
	}
	server.now = func() time.Time { return now }
	server.checkedAt.Store(now.UnixNano())
	first := server.ActiveKeyID(ctx)
	if first == "" {
		t.Fatal("no key made at first start")
	}
	again, err := NewKeyring(ctx, st, secret, AlgRS256, KeyKeep)
	if err != nil || again.ActiveKeyID(ctx) != first {
		t.Fatalf("a second start made another key: %v", err)
	}
	cli, err := NewKeyring(ctx, st, secret, AlgRS256, KeyKeep)
	if err != nil {
		t.Fatal(err)
	}
	cli.now = func() time.Time { return now }
	second, err := cli.Rotate(ctx, AlgRS256)
	if err != nil {
		t.Fatal(err)
	}
	if got := server.ActiveKeyID(ctx); got != first {
		t.Fatalf("server switched before the recheck: %s", got)
	}
	now = now.Add(keyRecheck + time.Second)
	if got := server.ActiveKeyID(ctx); got != second {
		t.Fatalf("server did not pick up the rotation: %s, want %s", got, second)
	}
	keys := server.PublishedKeys(ctx)
	if len(keys) != 2 || keys[0].ID != second || !keys[0].Active || keys[1].ID != first || keys[1].Active || keys[0].Alg != "RS256" {
		t.Fatalf("published: %+v", keys)
	}
	now = now.Add(KeyKeep)
	server.checkedAt.Store(0)
	if keys := server.PublishedKeys(ctx); len(keys) != 1 || keys[0].ID != second {
		t.Fatalf("published after keep: %+v", keys)
	}
	if _, err := NewKeyring(ctx, st, []byte("another-secret-another-secret-xx"), AlgRS256, KeyKeep); err == nil ||
		!strings.Contains(err.Error(), "LATCHKEY_SECRET_KEY") {
		t.Fatalf("opened with the wrong secret: %v", err)
	}
	rows, err := st.ListOIDCKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if _, err := x509.ParsePKCS8PrivateKey(r.PrivateKey); err == nil {
			t.Fatalf("key %s is stored in the clear", r.ID)
		}
	}
	if _, err := server.Rotate(ctx, "HS256"); err == nil {
		t.Fatal("HS256 accepted")
	}
}
