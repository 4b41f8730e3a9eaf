package account

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"latchkey/store"
)

// eventLog records event types (and payloads) inside the transaction.
type eventLog struct {
	mu     sync.Mutex
	types  []string
	events []Event
}

func (e *eventLog) Record(_ context.Context, _ *store.Tx, _ Actor, ev Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.types = append(e.types, ev.Type)
	e.events = append(e.events, ev)
	return nil
}

func (e *eventLog) Blocking(context.Context, Actor, Event) error { return nil }

func (e *eventLog) has(t string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, x := range e.types {
		if x == t {
			return true
		}
	}
	return false
}

func reason(err error) string {
	if e, ok := AsError(err); ok {
		return e.Reason
	}
	return ""
}

// TestIdentityLifecycle: an email is added to a phone user (normalised,
// duplicates refused), changed, and removed; the last login ID cannot be
// removed; each change records identity.<kind>.<what>.
func TestIdentityLifecycle(t *testing.T) {
	s, _ := newTestService(t)
	ev := &eventLog{}
	s.SetEvents(ev)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindPhone, LoginIDValue: "(212) 555-0110"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "taken@example.com"}); err != nil {
		t.Fatal(err)
	}
	// Bad and duplicate values change nothing.
	if _, _, err := s.AddIdentity(ctx, admin, u.ID, KindEmail, "not-an-email"); reason(err) != ReasonValidationFailed {
		t.Fatalf("bad email: %v", err)
	}
	if _, _, err := s.AddIdentity(ctx, admin, u.ID, KindEmail, "TAKEN@Example.com"); reason(err) != ReasonInvariantViolated {
		t.Fatalf("duplicate in another case: %v", err)
	}
	if _, _, err := s.AddIdentity(ctx, admin, "nobody", KindEmail, "x@example.com"); reason(err) != ReasonUserNotFound {
		t.Fatalf("unknown user: %v", err)
	}
	got, _ := s.GetUser(ctx, u.ID)
	if len(got.Identities) != 1 {
		t.Fatalf("failed adds left %d identities", len(got.Identities))
	}
	u2, ident, err := s.AddIdentity(ctx, admin, u.ID, KindEmail, " Pat@Example.COM ")
	if err != nil {
		t.Fatal(err)
	}
	if ident.Value != "Pat@example.com" || u2.Email() != "Pat@example.com" || !ev.has("identity.email.added") || !ev.has(EventAdminIdentity) {
		t.Fatalf("added %+v, events %v", ident, ev.types)
	}
	// The new email signs in to the same account... and is searchable.
	rows, err := s.ListUsers(ctx, store.ListUsersParams{Search: "pat@exa"})
	if err != nil || len(rows) != 1 || rows[0].ID != u.ID {
		t.Fatalf("search new email: %v %v", rows, err)
	}
	// Change it: the kind stays email, the value is normalised.
	if _, _, err := s.UpdateIdentity(ctx, admin, u.ID, ident.ID, "taken@example.com"); reason(err) != ReasonInvariantViolated {
		t.Fatalf("update to a taken value: %v", err)
	}
	if _, _, err := s.UpdateIdentity(ctx, admin, u.ID, "missing", "a@example.com"); reason(err) != ReasonIdentityNotFound {
		t.Fatalf("update unknown identity: %v", err)
	}
	_, up, err := s.UpdateIdentity(ctx, admin, u.ID, ident.ID, "pat.new@EXAMPLE.com")
	if err != nil || up.Value != "pat.new@example.com" || up.Kind != KindEmail || !ev.has("identity.email.updated") {
		t.Fatalf("update: %+v %v %v", up, err, ev.types)
	}
	if rows, _ := s.ListUsers(ctx, store.ListUsersParams{Search: "pat@exa"}); len(rows) != 0 {
		t.Fatal("old value still found")
	}
	// Remove the phone; the email is now the last and stays.
	phone := got.Identities[0]
	u3, err := s.RemoveIdentity(ctx, admin, u.ID, phone.ID)
	if err != nil || len(u3.Identities) != 1 || u3.Phone() != "" || !ev.has("identity.phone.removed") {
		t.Fatalf("remove: %v %v", err, ev.types)
	}
	if _, err := s.RemoveIdentity(ctx, admin, u.ID, ident.ID); reason(err) != ReasonInvariantViolated {
		t.Fatalf("removing the last login ID: %v", err)
	}
	if got, _ := s.GetUser(ctx, u.ID); len(got.Identities) != 1 {
		t.Fatal("last login ID removed")
	}
}

// TestUpdateProfile: the name attributes are trimmed, validated, stored,
// shown as standard attributes, and record user.profile.updated only
// when they change.
func TestUpdateProfile(t *testing.T) {
	s, _ := newTestService(t)
	ev := &eventLog{}
	s.SetEvents(ev)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindUsername, LoginIDValue: "pat"})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 101)
	if _, err := s.UpdateProfile(ctx, admin, u.ID, Profile{GivenName: long}); reason(err) != ReasonValidationFailed {
		t.Fatalf("too long: %v", err)
	}
	if _, err := s.UpdateProfile(ctx, admin, u.ID, Profile{Name: "line\nbreak"}); reason(err) != ReasonValidationFailed {
		t.Fatalf("control character: %v", err)
	}
	u2, err := s.UpdateProfile(ctx, admin, u.ID, Profile{Name: " Pat Lee ", GivenName: "Pat", FamilyName: "Lee"})
	if err != nil || u2.Name != "Pat Lee" {
		t.Fatalf("update: %v", err)
	}
	got, _ := s.GetUser(ctx, u.ID)
	attrs := UserPayload(got)["user"].(map[string]any)["standard_attributes"].(map[string]any)
	if got.GivenName != "Pat" || attrs["family_name"] != "Lee" || attrs["name"] != "Pat Lee" {
		t.Fatalf("stored %+v attrs %v", got.User, attrs)
	}
	n := len(ev.types)
	if _, err := s.UpdateProfile(ctx, admin, u.ID, Profile{Name: "Pat Lee", GivenName: "Pat", FamilyName: "Lee"}); err != nil || len(ev.types) != n {
		t.Fatalf("no-op update recorded %v (%v)", ev.types[n:], err)
	}
	if !ev.has(EventUserProfileUpdated) {
		t.Fatal("no user.profile.updated")
	}
	p, err := ProfileFromAttributes(map[string]any{"name": "A", "email": "ignored@example.com"})
	if err != nil || p.Name != "A" || p.GivenName != "" {
		t.Fatalf("attributes: %+v %v", p, err)
	}
	if _, err := ProfileFromAttributes(map[string]any{"nickname": "x"}); reason(err) != ReasonValidationFailed {
		t.Fatalf("unknown attribute: %v", err)
	}
	if _, err := ProfileFromAttributes(map[string]any{"name": 3}); reason(err) != ReasonValidationFailed {
		t.Fatalf("non-string: %v", err)
	}
}

// TestRevokeSessions: one session, the others, or all end; the ended
// sessions no longer authenticate; user.sessions.revoked is recorded;
// registered revokers run with "all".
func TestRevokeSessions(t *testing.T) {
	s, _ := newTestService(t)
	ev := &eventLog{}
	s.SetEvents(ev)
	ctx := context.Background()
	u, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "s@example.com", Password: ptr("Passw0rd-long")})
	if err != nil {
		t.Fatal(err)
	}
	login := func(ua string) string {
		res, err := s.Login(ctx, Actor{IP: "192.0.2.1", UserAgent: ua}, LoginInput{LoginID: "s@example.com", Password: "Passw0rd-long"})
		if err != nil {
			t.Fatal(err)
		}
		return res.Session
	}
	a := login("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36")
	b := login("Mozilla/5.0 (Windows NT 10.0; rv:121.0) Gecko/20100101 Firefox/121.0")
	c := login("curl/8.0")
	sa, _ := s.Session(ctx, a)
	list, err := s.UserSessions(ctx, u.ID, sa)
	if err != nil || len(list) != 3 {
		t.Fatalf("sessions %v %v", list, err)
	}
	current := 0
	browsers := map[string]bool{}
	for _, x := range list {
		if x.Current {
			current++
		}
		browsers[x.Browser] = true
		if x.IP != "192.0.2.1" || x.ID == "" {
			t.Errorf("session %+v", x)
		}
	}
	if current != 1 || !browsers["Chrome 120 on Linux"] || !browsers["Firefox 121 on Windows"] || !browsers["curl"] {
		t.Fatalf("current %d browsers %v", current, browsers)
	}
	// Last seen moves on a request a minute later.
	s.Now = func() time.Time { return time.Now().UTC().Add(2 * time.Minute) }
	if _, err := s.Session(ctx, a); err != nil {
		t.Fatal(err)
	}
	list, _ = s.UserSessions(ctx, u.ID, sa)
	if !list[0].Current || !list[0].LastSeenAt.After(list[0].CreatedAt) {
		t.Fatalf("last seen not updated: %+v", list[0])
	}
	// One.
	sb, _ := s.Session(ctx, b)
	if err := s.RevokeSession(ctx, admin, u.ID, sb.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, b); reason(err) != ReasonSessionEnded {
		t.Fatalf("revoked session still works: %v", err)
	}
	if err := s.RevokeSession(ctx, admin, u.ID, sb.ID()); reason(err) != ReasonSessionNotFound {
		t.Fatalf("revoke twice: %v", err)
	}
	if !ev.has(EventUserSessionsRevoked) {
		t.Fatal("no user.sessions.revoked")
	}
	// Others: a stays, c ends.
	n, err := s.RevokeOtherSessions(ctx, Actor{Kind: "user", ID: u.ID}, sa)
	if err != nil || n != 1 {
		t.Fatalf("others: %d %v", n, err)
	}
	if _, err := s.Session(ctx, c); err == nil {
		t.Fatal("other session still works")
	}
	if _, err := s.Session(ctx, a); err != nil {
		t.Fatalf("current session ended: %v", err)
	}
	// All: a, the one left, ends.
	n, err = s.RevokeAllSessions(ctx, admin, u.ID)
	if err != nil || n != 1 {
		t.Fatalf("all: %d %v", n, err)
	}
	if _, err := s.Session(ctx, a); err == nil {
		t.Fatal("session survived sign out everywhere")
	}
	if _, err := s.RevokeAllSessions(ctx, admin, "nobody"); reason(err) != ReasonUserNotFound {
		t.Fatalf("unknown user: %v", err)
	}
}

// TestGeneratedPasswordsAvoidLookAlikes: no 0, O, o, 1, l, I or | in
// generated passwords, whatever the policy asks for.
func TestGeneratedPasswordsAvoidLookAlikes(t *testing.T) {
	for _, p := range []Policy{DefaultPolicy(), {MinLength: 64, UppercaseRequired: true, LowercaseRequired: true, DigitRequired: true, SymbolRequired: true}} {
		for range 200 {
			pw, err := GeneratePassword(p)
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(pw, "0Oo1lI|") {
				t.Fatalf("look-alike character in %q", pw)
			}
		}
	}
}

// TestPasswordMailSaysWhenTemporaryPasswordEnds: a password email for a
// password the user must change carries the moment it stops working.
func TestPasswordMailSaysWhenTemporaryPasswordEnds(t *testing.T) {
	s, m := newTestService(t)
	ctx := context.Background()
	p := s.Policy()
	p.TemporaryExpiryDays = 3
	if err := s.SavePolicy(ctx, SystemActor, p); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	if _, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "temp@example.com", Password: ptr(""), SendPassword: true, SetPasswordExpired: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: "keep@example.com", Password: ptr(""), SendPassword: true}); err != nil {
		t.Fatal(err)
	}
	if len(m.sent) != 2 || m.sent[0].ExpiresAt == nil || !m.sent[0].ExpiresAt.Equal(now.Add(72*time.Hour)) || m.sent[1].ExpiresAt != nil {
		t.Fatalf("mails %+v", m.sent)
	}
}

// TestLockoutDurationFromPolicy: the first lock lasts the policy's
// minutes; out-of-range values are refused.
func TestLockoutDurationFromPolicy(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	p := s.Policy()
	p.LockoutThreshold, p.LockoutMinutes = 1, 5000
	if err := s.SavePolicy(ctx, SystemActor, p); reason(err) != ReasonValidationFailed {
		t.Fatalf("5000 minutes: %v", err)
	}
	p.LockoutMinutes = 5
	if err := s.SavePolicy(ctx, SystemActor, p); err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindUsername, LoginIDValue: "locky", Password: ptr("Passw0rd-long")})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	if _, err := s.Login(ctx, Actor{IP: "192.0.2.1"}, LoginInput{LoginID: "locky", Password: "wrong"}); err == nil {
		t.Fatal("wrong password signed in")
	}
	l, err := s.Lockout(ctx, u.ID)
	if err != nil || l == nil || l.LockedUntil == nil || !l.LockedUntil.Equal(now.Add(5*time.Minute)) {
		t.Fatalf("lockout %+v %v", l, err)
	}
}
