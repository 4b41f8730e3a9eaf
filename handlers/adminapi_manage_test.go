package handlers

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"latchkey/account"
	"latchkey/handlers/adminapi"
)

func gqlReason(r gqlResult) string {
	if len(r.Errors) == 0 {
		return ""
	}
	s, _ := r.Errors[0].Extensions["reason"].(string)
	return s
}

// TestAdminAPIIdentitiesAndProfile: createIdentity, updateIdentity,
// deleteIdentity and updateUser(standardAttributes) over HTTP, with the
// reference's errors, and each recording its event.
func TestAdminAPIIdentitiesAndProfile(t *testing.T) {
	a := newAPIApp(t)
	u := a.createUser("phone", "+12125550110", "Passw0rd-long")
	a.createUser("email", "taken@example.com", "Passw0rd-long")
	uid := string(adminapi.NodeID("User", u.ID))
	const create = `mutation($u: ID!, $k: String!, $v: String!) { createIdentity(input: {userID: $u, definition: {loginID: {key: $k, value: $v}}}) {
		user { standardAttributes } identity { id claims } } }`
	before := a.snapshot()
	r := a.gql(create, map[string]any{"u": uid, "k": "email", "v": "TAKEN@example.com"})
	if gqlReason(r) != account.ReasonInvariantViolated || !strings.Contains(r.Raw, "DuplicatedIdentity") {
		t.Fatalf("duplicate: %s", r.Raw)
	}
	if r = a.gql(create, map[string]any{"u": uid, "k": "email", "v": "nope"}); gqlReason(r) != account.ReasonValidationFailed {
		t.Fatalf("bad email: %s", r.Raw)
	}
	a.wantUnchanged(before)
	d := a.gqlOK(create, map[string]any{"u": uid, "k": "email", "v": "Pat@Example.com"})
	if path(d, "createIdentity", "user", "standardAttributes", "email") != "Pat@example.com" {
		t.Fatalf("createIdentity: %v", d)
	}
	iid, _ := path(d, "createIdentity", "identity", "id").(string)
	if len(a.events.ofType("identity.email.added")) != 1 {
		t.Fatal("no identity.email.added")
	}
	const update = `mutation($u: ID!, $i: ID!, $k: String!, $v: String!) { updateIdentity(input: {userID: $u, identityID: $i, definition: {loginID: {key: $k, value: $v}}}) {
		identity { claims } } }`
	if r = a.gql(update, map[string]any{"u": uid, "i": iid, "k": "phone", "v": "+12125550111"}); gqlReason(r) != account.ReasonValidationFailed {
		t.Fatalf("kind change: %s", r.Raw)
	}
	d = a.gqlOK(update, map[string]any{"u": uid, "i": iid, "k": "email", "v": "pat.lee@example.com"})
	if path(d, "updateIdentity", "identity", "claims", "email") != "pat.lee@example.com" {
		t.Fatalf("updateIdentity: %v", d)
	}
	const del = `mutation($u: ID!, $i: ID!) { deleteIdentity(input: {userID: $u, identityID: $i}) { user { identities { totalCount } } } }`
	if r = a.gql(del, map[string]any{"u": uid, "i": "bad"}); gqlReason(r) != account.ReasonValidationFailed {
		t.Fatalf("bad identity id: %s", r.Raw)
	}
	d = a.gqlOK(del, map[string]any{"u": uid, "i": iid})
	if path(d, "deleteIdentity", "user", "identities", "totalCount") != float64(1) {
		t.Fatalf("deleteIdentity: %v", d)
	}
	last := string(adminapi.NodeID("Identity", a.user(u.ID).Identities[0].ID))
	if r = a.gql(del, map[string]any{"u": uid, "i": last}); gqlReason(r) != account.ReasonInvariantViolated {
		t.Fatalf("delete last: %s", r.Raw)
	}
	const upd = `mutation($u: ID!, $a: UserStandardAttributes) { updateUser(input: {userID: $u, standardAttributes: $a}) { user { standardAttributes } } }`
	if r = a.gql(upd, map[string]any{"u": uid, "a": map[string]any{"nickname": "x"}}); gqlReason(r) != account.ReasonValidationFailed {
		t.Fatalf("unknown attribute: %s", r.Raw)
	}
	d = a.gqlOK(upd, map[string]any{"u": uid, "a": map[string]any{"given_name": "Pat", "family_name": "Lee", "phone_number": "ignored"}})
	if path(d, "updateUser", "user", "standardAttributes", "given_name") != "Pat" ||
		path(d, "updateUser", "user", "standardAttributes", "phone_number") != "+12125550110" {
		t.Fatalf("updateUser: %v", d)
	}
	if len(a.events.ofType(account.EventUserProfileUpdated)) != 1 {
		t.Fatal("no user.profile.updated")
	}
}

// TestAdminAPISessions: sessions are listed on the user, revokeSession
// ends one, revokeAllSessions the rest; the ended ones no longer sign in.
func TestAdminAPISessions(t *testing.T) {
	a := newAPIApp(t)
	u := a.createUser("email", "sam@example.com", "Passw0rd-long")
	ctx := context.Background()
	var tokens []string
	for range 2 {
		res, err := a.acct.Login(ctx, account.Actor{IP: "198.51.100.7", UserAgent: "curl/8.0"}, account.LoginInput{LoginID: "sam@example.com", Password: "Passw0rd-long"})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, res.Session)
	}
	uid := string(adminapi.NodeID("User", u.ID))
	d := a.gqlOK(`query($id: ID!) { node(id: $id) { ... on User { sessions { id displayName lastAccessedByIP } } } }`, map[string]any{"id": uid})
	list, _ := path(d, "node", "sessions").([]any)
	if len(list) != 2 || path(list[0], "lastAccessedByIP") != "198.51.100.7" || path(list[0], "displayName") != "curl" {
		t.Fatalf("sessions: %v", d)
	}
	sid, _ := path(list[0], "id").(string)
	const revoke = `mutation($s: ID!) { revokeSession(input: {sessionID: $s}) { user { sessions { id } } } }`
	d = a.gqlOK(revoke, map[string]any{"s": sid})
	if left, _ := path(d, "revokeSession", "user", "sessions").([]any); len(left) != 1 {
		t.Fatalf("after revokeSession: %v", d)
	}
	if r := a.gql(revoke, map[string]any{"s": sid}); gqlReason(r) != account.ReasonSessionNotFound {
		t.Fatalf("revoke twice: %s", r.Raw)
	}
	if r := a.gql(revoke, map[string]any{"s": uid}); gqlReason(r) != account.ReasonValidationFailed {
		t.Fatalf("user ID as session ID: %s", r.Raw)
	}
	d = a.gqlOK(`mutation($u: ID!) { revokeAllSessions(input: {userID: $u}) { user { sessions { id } } } }`, map[string]any{"u": uid})
	if left, _ := path(d, "revokeAllSessions", "user", "sessions").([]any); len(left) != 0 {
		t.Fatalf("after revokeAllSessions: %v", d)
	}
	for _, tok := range tokens {
		if _, err := a.acct.Session(ctx, tok); err == nil {
			t.Fatal("a revoked session still works")
		}
	}
	if n := len(a.events.ofType(account.EventUserSessionsRevoked)); n != 2 {
		t.Fatalf("%d user.sessions.revoked events, want 2", n)
	}
	r := a.gqlAuth("", `mutation($u: ID!) { revokeAllSessions(input: {userID: $u}) { user { id } } }`, map[string]any{"u": uid})
	if r.Status != http.StatusUnauthorized {
		t.Fatalf("without a key: %d", r.Status)
	}
}
