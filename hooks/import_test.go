package hooks

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"latchkey/account"
)

func TestImport10000BcryptUsersFiresNoUserEvents(t *testing.T) {
	e := newEnv(t, "")
	rcv := newReceiver(t)
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	_, secret := e.addHook(srv.URL, WebhookInput{AllEvents: true})
	rcv.setSecret(secret)
	blocking := newReceiver(t) // a blocking hook that would refuse everything
	bsrv := httptest.NewServer(blocking)
	defer bsrv.Close()
	blocking.setStatus(500)
	e.addHook(bsrv.URL, WebhookInput{Blocking: true})
	e.run()

	// Ten distinct passwords, hashed elsewhere at cost 4, cycled over 10,000 records.
	var hashes, passwords []string
	for i := range 10 {
		p := fmt.Sprintf("Imported-Passw0rd-%d", i)
		h, err := bcrypt.GenerateFromPassword([]byte(p), 4)
		if err != nil {
			t.Fatal(err)
		}
		passwords, hashes = append(passwords, p), append(hashes, string(h))
	}
	recs := make([]account.ImportRecord, 10000)
	for i := range recs {
		recs[i] = account.ImportRecord{LoginIDKey: "email", LoginIDValue: fmt.Sprintf("imported%05d@example.com", i),
			PasswordHash: hashes[i%10], SetPasswordExpired: i%2 == 0}
	}
	ctx := context.Background()
	res, sum, err := e.acct.ImportUsers(ctx, admin, recs, false)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Created != 10000 || sum.Failed != 0 || len(res) != 10000 {
		t.Fatalf("summary %+v", sum)
	}
	// They can sign in: the stored hash verifies the original password,
	// and only that one.
	for _, i := range []int{0, 1, 4321, 9999} {
		id, err := e.st.IdentityByNorm(ctx, recs[i].LoginIDValue)
		if err != nil {
			t.Fatal(err)
		}
		if id.UserID != res[i].UserID || res[i].Outcome != account.ImportCreated {
			t.Fatalf("record %d: %+v", i, res[i])
		}
		u, err := e.acct.GetUser(ctx, id.UserID)
		if err != nil {
			t.Fatal(err)
		}
		if !e.acct.Hasher().Verify(u.Password.Hash, passwords[i%10]) || e.acct.Hasher().Verify(u.Password.Hash, passwords[(i+1)%10]) {
			t.Errorf("record %d: password does not verify as imported", i)
		}
		if u.PasswordExpired(time.Now()) != (i%2 == 0) {
			t.Errorf("record %d: expired = %v", i, u.PasswordExpired(time.Now()))
		}
	}
	// No user.created, no user.pre_create (the refusing blocking hook was
	// not called); one audit event for the whole import.
	if n := e.count(`SELECT COUNT(*) FROM events WHERE type LIKE 'user.%' OR type LIKE 'password.%'`); n != 0 {
		t.Errorf("%d user events from an import", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM events WHERE type = ?`, AdminImportUsers); n != 1 {
		t.Errorf("%d import audit events", n)
	}
	if n := e.count(`SELECT COUNT(*) FROM webhook_deliveries`); n != 0 {
		t.Errorf("%d webhook deliveries from an import", n)
	}
	rcv.none(0)
}

func TestImportModesAndPerRecordResults(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	existing, err := e.createUser("email", "old@example.com", pw("Old-Passw0rd"))
	if err != nil {
		t.Fatal(err)
	}
	noPw, err := e.createUser("username", "nopassword", nil)
	if err != nil {
		t.Fatal(err)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("New-Passw0rd"), 4)
	recs := []account.ImportRecord{
		{LoginIDKey: "email", LoginIDValue: "OLD@example.com", PasswordHash: string(hash)},        // 0 existing
		{LoginIDKey: "email", LoginIDValue: "fresh@example.com", Password: "Plain-Passw0rd"},      // 1 new, plaintext
		{LoginIDKey: "email", LoginIDValue: "not-an-email"},                                       // 2 bad login ID
		{LoginIDKey: "email", LoginIDValue: "both@example.com", Password: "x", PasswordHash: "y"}, // 3 both
		{LoginIDKey: "email", LoginIDValue: "badhash@example.com", PasswordHash: "$1$md5"},        // 4 not bcrypt
		{LoginIDKey: "email", LoginIDValue: "fresh@example.com"},                                  // 5 duplicate in batch
		{LoginIDKey: "phone", LoginIDValue: "+14155550111", SetPasswordExpired: true},             // 6 expire without password
		{LoginIDKey: "username", LoginIDValue: "nopassword", SetPasswordExpired: true},            // 7 existing, no password
		{LoginIDKey: "username", LoginIDValue: "nothing-to-do"},                                   // 8 new, no password
	}
	res, sum, err := e.acct.ImportUsers(ctx, admin, recs, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"skipped", "created", "failed", "failed", "failed", "failed", "failed", "skipped", "created"}
	for i, w := range want {
		if res[i].Outcome != w {
			t.Errorf("insert-only record %d: %s (%v), want %s", i, res[i].Outcome, res[i].Error, w)
		}
		if w == "failed" && (res[i].Error == nil || res[i].Error.Message == "") {
			t.Errorf("record %d failed without a reason", i)
		}
	}
	if sum != (account.ImportSummary{Created: 2, Skipped: 2, Failed: 5}) {
		t.Errorf("summary %+v", sum)
	}
	u, _ := e.acct.GetUser(ctx, existing.ID)
	if !e.acct.Hasher().Verify(u.Password.Hash, "Old-Passw0rd") {
		t.Error("insert-only changed an existing user's password")
	}
	fresh, _ := e.st.IdentityByNorm(ctx, "fresh@example.com")
	fu, _ := e.acct.GetUser(ctx, fresh.UserID)
	if fu.Password == nil || !e.acct.Hasher().Verify(fu.Password.Hash, "Plain-Passw0rd") || strings.Contains(fu.Password.Hash, "Plain") {
		t.Error("plaintext import not hashed as expected")
	}

	// Upsert: the existing user's password is replaced and expired.
	res, sum, err = e.acct.ImportUsers(ctx, admin, []account.ImportRecord{
		{LoginIDKey: "email", LoginIDValue: "old@example.com", PasswordHash: string(hash), SetPasswordExpired: true},
		{LoginIDKey: "username", LoginIDValue: "nopassword", SetPasswordExpired: true},
		{LoginIDKey: "username", LoginIDValue: "nopassword2"},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Outcome != "updated" || res[0].UserID != existing.ID || res[1].Outcome != "failed" || res[1].UserID != noPw.ID || res[2].Outcome != "created" {
		t.Errorf("upsert results %+v", res)
	}
	u, _ = e.acct.GetUser(ctx, existing.ID)
	if !e.acct.Hasher().Verify(u.Password.Hash, "New-Passw0rd") || !u.PasswordExpired(time.Now()) {
		t.Error("upsert did not replace and expire the password")
	}
	if sum.Updated != 1 {
		t.Errorf("summary %+v", sum)
	}

	// Limits.
	if _, _, err := e.acct.ImportUsers(ctx, admin, nil, false); account.FieldErrors(err)["records"] == "" {
		t.Errorf("empty import: %v", err)
	}
	big := make([]account.ImportRecord, account.MaxImportRecords+1)
	before := e.count(`SELECT COUNT(*) FROM users`)
	if _, _, err := e.acct.ImportUsers(ctx, admin, big, false); account.FieldErrors(err)["records"] == "" {
		t.Errorf("oversized import: %v", err)
	}
	if e.count(`SELECT COUNT(*) FROM users`) != before {
		t.Error("an oversized import wrote users")
	}
	// Nothing plaintext in the audit events.
	var payloads string
	if err := e.st.DB().QueryRow(`SELECT group_concat(payload) FROM events`).Scan(&payloads); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(payloads, "Plain-Passw0rd") || strings.Contains(payloads, string(hash)) {
		t.Error("import put a password or hash in an event")
	}
}
