package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Settings, admins, TOTP enrolment and admin sessions: the upserts and
// flag columns whose SQL differs most between the two databases.
func TestSettingsAdminsAndSessionsPortable(t *testing.T) {
	forEachBackend(t, tSettingsAdminsAndSessionsPortable)
}

func tSettingsAdminsAndSessionsPortable(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	first, err := s.InsertSettingIfAbsent(ctx, "secret_key", []byte("one"))
	if err != nil || !bytes.Equal(first, []byte("one")) {
		t.Fatalf("first insert: %q, %v", first, err)
	}
	kept, err := s.InsertSettingIfAbsent(ctx, "secret_key", []byte("two"))
	if err != nil || !bytes.Equal(kept, []byte("one")) {
		t.Fatalf("second insert replaced the value: %q, %v", kept, err)
	}
	if err := s.PutSetting(ctx, "secret_key", []byte("three")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Setting(ctx, "secret_key"); err != nil || string(v) != "three" {
		t.Fatalf("put replaces: %q, %v", v, err)
	}
	if _, err := s.Setting(ctx, "absent"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent setting: %v", err)
	}

	if err := s.InsertAdmin(ctx, Admin{ID: "a1", Email: "a@example.com", PasswordHash: "h", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertAdmin(ctx, Admin{ID: "a2", Email: "a@example.com", PasswordHash: "h", CreatedAt: now}); !errors.Is(err, ErrConflict) {
		t.Fatalf("same email twice: %v, want ErrConflict", err)
	}
	if ok, err := s.PutPendingAdminTOTP(ctx, "a1", []byte("sealed-1"), now); err != nil || !ok {
		t.Fatalf("pending totp: %v, %v", ok, err)
	}
	if ok, err := s.PutPendingAdminTOTP(ctx, "a1", []byte("sealed-2"), now); err != nil || !ok {
		t.Fatalf("restart pending totp: %v, %v", ok, err)
	}
	if err := s.ConfirmAdminTOTP(ctx, "a1", now); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.PutPendingAdminTOTP(ctx, "a1", []byte("sealed-3"), now); err != nil || ok {
		t.Fatalf("a confirmed enrolment was replaced: %v, %v", ok, err)
	}
	totp, err := s.AdminTOTPByID(ctx, "a1")
	if err != nil || string(totp.Secret) != "sealed-2" || totp.ConfirmedAt == nil {
		t.Fatalf("totp: %+v, %v", totp, err)
	}
	list, err := s.ListAdmins(ctx)
	if err != nil || len(list) != 1 || !list[0].TOTP || list[0].Invited {
		t.Fatalf("admins: %+v, %v", list, err)
	}

	sess := AdminSession{TokenHash: "th", AdminID: "a1", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.InsertAdminSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AdminSessionByHash(ctx, "th", now, now.Add(-time.Minute)); err != nil || got.AdminID != "a1" {
		t.Fatalf("session: %+v, %v", got, err)
	}
	if _, err := s.AdminSessionByHash(ctx, "th", now.Add(2*time.Hour), now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired session found: %v", err)
	}
	if err := s.DeleteAdmin(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdminSessionByHash(ctx, "th", now, now.Add(-time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session outlived its admin: %v", err)
	}
}

// Passwords (upsert, the admin-set flag), password history (the reuse
// window) and the non-ASCII identity scan (GLOB on SQLite, a regular
// expression on PostgreSQL).
func TestPasswordsHistoryAndNonASCIIPortable(t *testing.T) {
	forEachBackend(t, tPasswordsHistoryAndNonASCIIPortable)
}

func tPasswordsHistoryAndNonASCIIPortable(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	u := &User{ID: "u1", CreatedAt: now, UpdatedAt: now}
	if err := s.InsertUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if u.Seq == 0 {
		t.Fatal("InsertUser did not fill in Seq")
	}
	exp := now.Add(24 * time.Hour)
	if err := s.PutPassword(ctx, Password{UserID: "u1", Hash: "h1", CreatedAt: now, UpdatedAt: now, ExpireAfter: &exp, SetByAdmin: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPassword(ctx, Password{UserID: "u1", Hash: "h2", CreatedAt: now, UpdatedAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	p, err := s.PasswordByUser(ctx, "u1")
	if err != nil || p.Hash != "h2" || p.SetByAdmin || p.ExpireAfter != nil {
		t.Fatalf("password after replace: %+v, %v", p, err)
	}
	for i, h := range []string{"old1", "old2", "old3"} {
		if err := s.InsertPasswordHistory(ctx, "u1", h, now.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	hist, err := s.PasswordHistory(ctx, "u1", 2, now.Add(100*time.Hour))
	if err != nil || len(hist) != 2 || hist[0] != "old3" || hist[1] != "old2" {
		t.Fatalf("history: %v, %v", hist, err)
	}
	for _, id := range []Identity{
		{ID: "i1", UserID: "u1", Kind: "email", Value: "plain@example.com", ValueNorm: "plain@example.com", CreatedAt: now},
		{ID: "i2", UserID: "u1", Kind: "username", Value: "Zoë", ValueNorm: "zoë", CreatedAt: now},
		{ID: "i3", UserID: "u1", Kind: "phone", Value: "+14155550100", ValueNorm: "+14155550100", CreatedAt: now},
	} {
		if err := s.InsertIdentity(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	odd, err := s.IdentitiesWithNonASCII(ctx)
	if err != nil || len(odd) != 1 || odd[0].ID != "i2" {
		t.Fatalf("non-ASCII identities: %+v, %v", odd, err)
	}
}

// Webhooks and their delivery queue on one instance: CRUD, an event's
// delivery, the claim (one per webhook, skipping busy ones), the outcome
// and the delivery list.
func TestWebhooksAndDeliveriesPortable(t *testing.T) {
	forEachBackend(t, tWebhooksAndDeliveriesPortable)
}

func tWebhooksAndDeliveriesPortable(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range []string{"w1", "w2"} {
		w := Webhook{ID: id, URL: "http://127.0.0.1/" + id, Kind: "non_blocking", Events: []string{"user.created"}, Enabled: true, Secret: []byte("sealed"), CreatedAt: now, UpdatedAt: now}
		if err := s.InsertWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetWebhookEnabled(ctx, "w2", false, now); err != nil {
		t.Fatal(err)
	}
	on, err := s.EnabledWebhooks(ctx, "non_blocking")
	if err != nil || len(on) != 1 || on[0].ID != "w1" || !on[0].Enabled || on[0].AllEvents || len(on[0].Events) != 1 {
		t.Fatalf("enabled webhooks: %+v, %v", on, err)
	}
	var seqs []int64
	for i := range 3 {
		e := &Event{Type: "user.created", UserID: "u1", CreatedAt: now, Payload: []byte(`{}`), Context: []byte(`{}`)}
		if err := s.InsertEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
		if i > 0 && e.Seq <= seqs[i-1] {
			t.Fatalf("event seq %d after %d", e.Seq, seqs[i-1])
		}
		seqs = append(seqs, e.Seq)
	}
	var ids []int64
	for _, seq := range seqs {
		id, err := s.InsertDelivery(ctx, "w1", seq, now)
		if err != nil || id == 0 {
			t.Fatalf("insert delivery: %d, %v", id, err)
		}
		ids = append(ids, id)
	}
	if _, err := s.InsertDelivery(ctx, "w2", seqs[0], now); err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimDueDeliveries(ctx, now, time.Minute, 10, []string{"w2"})
	if err != nil || len(got) != 1 || got[0].ID != ids[0] || got[0].WebhookID != "w1" {
		t.Fatalf("claim: %+v, %v; want w1's oldest (%d) only", got, err, ids[0])
	}
	d, err := s.DeliveryByID(ctx, ids[0])
	if err != nil || d.EventType != "user.created" || d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("claimed delivery: %+v, %v", d, err)
	}
	if err := s.FinishDeliveryAttempt(ctx, ids[0], DeliveryResult{Status: DeliverySucceeded, Attempts: 1, StatusCode: 204, Latency: 15 * time.Millisecond, At: now}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListDeliveries(ctx, "w1", 0, 2)
	if err != nil || len(list) != 2 || list[0].ID != ids[2] || list[1].ID != ids[1] {
		t.Fatalf("deliveries page: %+v, %v", list, err)
	}
	d, err = s.DeliveryByID(ctx, ids[0])
	if err != nil || d.Status != DeliverySucceeded || d.LastStatusCode != 204 || d.LastLatency != 15*time.Millisecond {
		t.Fatalf("finished delivery: %+v, %v", d, err)
	}
	if err := s.DeleteWebhook(ctx, "w2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WebhookByID(ctx, "w2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted webhook: %v", err)
	}
}

// A bulk import in multi-row chunks (1,200 users: three chunks, the last
// one short), then the owners lookup and a duplicate refused.
func TestImportPortable(t *testing.T) { forEachBackend(t, tImportPortable) }

func tImportPortable(t *testing.T, s *Store) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const n = 1200
	users := make([]ImportedUser, n)
	norms := make([]string, n)
	for i := range users {
		id := fmt.Sprintf("u%05d", i)
		norms[i] = fmt.Sprintf("user%05d@example.com", i)
		users[i] = ImportedUser{
			User:     User{ID: id, CreatedAt: now, UpdatedAt: now},
			Identity: Identity{ID: "i" + id, UserID: id, Kind: "email", Value: norms[i], ValueNorm: norms[i], CreatedAt: now},
		}
		if i%2 == 0 {
			users[i].Password = &Password{UserID: id, Hash: "$2a$04$x", CreatedAt: now, UpdatedAt: now, SetByAdmin: true}
		}
	}
	if err := s.InTx(ctx, func(tx *Tx) error { return tx.InsertImportedUsers(ctx, users) }); err != nil {
		t.Fatal(err)
	}
	if c, err := s.CountUsers(ctx); err != nil || c != n {
		t.Fatalf("count = %d, %v", c, err)
	}
	owners, err := s.IdentityOwners(ctx, append([]string{"nobody@example.com"}, norms[590:610]...))
	if err != nil || len(owners) != 20 || owners[norms[600]] != "u00600" {
		t.Fatalf("owners: %d, %v", len(owners), err)
	}
	if p, err := s.PasswordByUser(ctx, "u01198"); err != nil || !p.SetByAdmin {
		t.Fatalf("imported password: %+v, %v", p, err)
	}
	// The search grams came with the users (on PostgreSQL from the
	// statement-level triggers of 0022): each imported login ID is found.
	checkSearchGrams(t, s)
	if rows, err := s.ListUsers(ctx, ListUsersParams{Search: "user00600@"}); err != nil || len(rows) != 1 || rows[0].ID != "u00600" {
		t.Fatalf("search for an imported login ID: %d rows, %v", len(rows), err)
	}
	dup := []ImportedUser{{User: User{ID: "dup", CreatedAt: now, UpdatedAt: now},
		Identity: Identity{ID: "idup", UserID: "dup", Kind: "email", Value: norms[0], ValueNorm: norms[0], CreatedAt: now}}}
	if err := s.InTx(ctx, func(tx *Tx) error { return tx.InsertImportedUsers(ctx, dup) }); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate login ID: %v, want ErrConflict", err)
	}
	if _, err := s.UserByID(ctx, "dup"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused import left its user: %v", err)
	}
	checkSearchGrams(t, s)
}
