package oidc

import (
	"context"
	"crypto/rsa"
	"errors"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/store"
)

// TestClientCache: token requests read an application from memory; a
// change made through this process (rotate, disable, delete) applies to
// the very next request, and a change made by another instance applies
// once clientTTL has passed.
func TestClientCache(t *testing.T) {
	ctx := context.Background()
	e := newBenchEnv(t, AlgES256)
	now := time.Now().UTC()
	e.p.SetNow(func() time.Time { return now })
	s := &storage{p: e.p}
	if err := s.AuthorizeClientIDSecret(ctx, e.app.ID, e.app.Secret); err != nil {
		t.Fatalf("right secret: %v", err)
	}

	// Another instance rotates the secret (straight in the database): this
	// one keeps the application it read for clientTTL, then reads again.
	if err := e.p.st.InTx(ctx, func(tx *store.Tx) error {
		return tx.SetOIDCClientSecret(ctx, e.app.ID, hashSecret("other-instance-secret"), now)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.AuthorizeClientIDSecret(ctx, e.app.ID, e.app.Secret); err != nil {
		t.Fatalf("within clientTTL the application in memory serves: %v", err)
	}
	now = now.Add(clientTTL)
	if err := s.AuthorizeClientIDSecret(ctx, e.app.ID, e.app.Secret); err == nil {
		t.Fatal("after clientTTL the old secret still works")
	}
	if err := s.AuthorizeClientIDSecret(ctx, e.app.ID, "other-instance-secret"); err != nil {
		t.Fatalf("after clientTTL the new secret fails: %v", err)
	}

	// Changes through this process apply at once.
	secret, err := e.p.RotateSecret(ctx, account.SystemActor, e.app.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AuthorizeClientIDSecret(ctx, e.app.ID, "other-instance-secret"); err == nil {
		t.Fatal("the secret before a rotation still works")
	}
	if err := s.AuthorizeClientIDSecret(ctx, e.app.ID, secret); err != nil {
		t.Fatalf("rotated secret: %v", err)
	}
	if _, err := e.p.UpdateApp(ctx, account.SystemActor, e.app.ID, AppInput{Name: "Bench", RedirectURIs: benchRedirect,
		Scopes: []string{"email", "offline_access"}, Disabled: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClientByClientID(ctx, e.app.ID); !errors.Is(err, errClientNotFound) {
		t.Fatalf("disabled application: %v", err)
	}
	if err := s.AuthorizeClientIDSecret(ctx, e.app.ID, secret); err == nil {
		t.Fatal("a disabled application authenticates")
	}
	if _, err := e.p.UpdateApp(ctx, account.SystemActor, e.app.ID, AppInput{Name: "Bench", RedirectURIs: benchRedirect,
		Scopes: []string{"email", "offline_access"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClientByClientID(ctx, e.app.ID); err != nil {
		t.Fatalf("enabled again: %v", err)
	}
	if err := e.p.DeleteApp(ctx, account.SystemActor, e.app.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClientByClientID(ctx, e.app.ID); !errors.Is(err, errClientNotFound) {
		t.Fatalf("deleted application: %v", err)
	}
	if err := s.AuthorizeClientIDSecret(ctx, e.app.ID, secret); err == nil {
		t.Fatal("a deleted application authenticates")
	}
	// Unknown client IDs are not kept in memory.
	if _, err := s.GetClientByClientID(ctx, "no-such-client"); !errors.Is(err, errClientNotFound) {
		t.Fatalf("unknown client: %v", err)
	}
	e.p.clients.mu.Lock()
	n := len(e.p.clients.m)
	e.p.clients.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d applications in memory after the only one was deleted", n)
	}
}

// TestRSAKeyPrecomputed: the RS256 key loaded from the store carries its
// CRT values, so a signature does not recompute them.
func TestRSAKeyPrecomputed(t *testing.T) {
	e := newBenchEnv(t, AlgRS256)
	k := e.p.keys.current(context.Background()).active
	rk, ok := k.priv.(*rsa.PrivateKey)
	if !ok {
		t.Fatalf("active key is %T, want RSA", k.priv)
	}
	if rk.Precomputed.Dp == nil || rk.Precomputed.Dq == nil || rk.Precomputed.Qinv == nil {
		t.Fatal("the RSA key has no CRT values")
	}
}
