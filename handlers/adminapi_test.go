package handlers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"latchkey/account"
	"latchkey/store"
)

// The two mutations from the reference guide, verbatim.
const (
	refCreateUser = `mutation {
  createUser(input: {definition: {loginID: {key: "email", value: "user@example.com"}}, password: "s3c0rp4$sw0rd", sendPassword: true, setPasswordExpired: true}) {
    user{
      id
      standardAttributes
    }
  }
}`
	refResetPassword = `mutation {
  resetPassword(input: {userID: "<ENCODED USER ID>", password: "n3w-p4$s", sendPassword: true, setPasswordExpired: true}) {
    user {
      id
      standardAttributes
    }
  }
}`
)

func nodeID(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("User:" + id))
}

func TestAdminAPIReferenceMutations(t *testing.T) {
	a := newAPIApp(t)
	ctx := context.Background()

	r := a.gql(refCreateUser, nil)
	if r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("createUser: %d %s", r.Status, r.Raw)
	}
	user := path(r.Data, "createUser", "user").(map[string]any)
	if len(user) != 2 {
		t.Errorf("user has fields %v, want only id and standardAttributes", user)
	}
	ident, err := a.store.IdentityByNorm(ctx, "user@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := user["id"], nodeID(ident.UserID); got != want {
		t.Errorf("id %v, want %v", got, want)
	}
	attrs := user["standardAttributes"].(map[string]any)
	if attrs["email"] != "user@example.com" || attrs["updated_at"] == nil {
		t.Errorf("standardAttributes %v", attrs)
	}
	if strings.Contains(r.Raw, "s3c0rp4") {
		t.Error("password in the response")
	}
	mails := a.mail.all()
	if len(mails) != 1 || mails[0].Kind != account.MailNewUser || mails[0].To != "user@example.com" ||
		mails[0].Password != "s3c0rp4$sw0rd" || !mails[0].MustChange {
		t.Fatalf("mail after createUser: %+v", mails)
	}
	u, _ := a.acct.GetUser(ctx, ident.UserID)
	if !u.PasswordExpired(a.acct.Now()) || !a.acct.Hasher().Verify(u.Password.Hash, "s3c0rp4$sw0rd") {
		t.Error("created user: password not stored or not expired")
	}
	for _, e := range a.events.all() {
		if e.Actor.Kind != "api_key" || e.Actor.TriggeredBy != "admin_api" || e.Actor.Name != "test key" || e.Actor.IP == "" {
			t.Errorf("event %s actor %+v", e.Event.Type, e.Actor)
		}
	}
	wantTypes(t, a.events.types(), "user.created", "admin_api.mutation.create_user.executed")

	// The guide's second mutation, with the encoded ID put in.
	a.clock(time.Second)
	r = a.gql(strings.Replace(refResetPassword, "<ENCODED USER ID>", user["id"].(string), 1), nil)
	if r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("resetPassword: %d %s", r.Status, r.Raw)
	}
	ru := path(r.Data, "resetPassword", "user").(map[string]any)
	if ru["id"] != user["id"] || path(ru, "standardAttributes", "email") != "user@example.com" {
		t.Errorf("resetPassword user %v", ru)
	}
	if strings.Contains(r.Raw, "n3w-p4") {
		t.Error("password in the response")
	}
	mails = a.mail.all()
	if len(mails) != 2 || mails[1].Kind != account.MailPasswordReset || mails[1].To != "user@example.com" ||
		mails[1].Password != "n3w-p4$s" || !mails[1].MustChange {
		t.Fatalf("mail after resetPassword: %+v", mails)
	}
	u, _ = a.acct.GetUser(ctx, ident.UserID)
	if !a.acct.Hasher().Verify(u.Password.Hash, "n3w-p4$s") || !u.Password.SetByAdmin || !u.PasswordExpired(a.acct.Now()) {
		t.Error("reset: new password not stored, not set_by_admin or not expired")
	}
	hist, _ := a.store.PasswordHistory(ctx, u.ID, 10, time.Time{})
	if len(hist) != 2 {
		t.Errorf("password history has %d entries, want 2", len(hist))
	}
	wantTypes(t, a.events.types(), "user.password.changed", "admin_api.mutation.reset_password.executed")
	for _, e := range a.events.all() {
		b, _ := json.Marshal(e.Event.Payload)
		if strings.Contains(string(b), "n3w-p4") || strings.Contains(string(b), "s3c0rp4") || strings.Contains(string(b), "$2") {
			t.Errorf("event %s payload carries a password or hash: %s", e.Event.Type, b)
		}
	}
}

// clock moves the service clock forward.
func (a *apiApp) clock(d time.Duration) {
	base := a.acct.Now().Add(d)
	a.acct.Now = func() time.Time { return base }
}

func wantTypes(t *testing.T, got []string, want ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, g := range got {
		have[g] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("event %s not recorded; got %v", w, got)
		}
	}
}

func TestAdminAPIGeneratedPasswordNeverReturned(t *testing.T) {
	a := newAPIApp(t)
	d := a.gqlOK(`mutation { createUser(input: {definition: {loginID: {key: "email", value: "gen@example.com"}}, password: "", sendPassword: true}) { user { id passwordExpired } } }`, nil)
	id := path(d, "createUser", "user", "id").(string)
	mails := a.mail.all()
	if len(mails) != 1 || len(mails[0].Password) < 8 {
		t.Fatalf("mails %+v", mails)
	}
	// resetPassword with password null generates one too.
	r := a.gql(`mutation($id: ID!) { resetPassword(input: {userID: $id, sendPassword: true}) { user { id passwordExpired standardAttributes } } }`, map[string]any{"id": id})
	if len(r.Errors) > 0 {
		t.Fatal(r.Raw)
	}
	mails = a.mail.all()
	if len(mails) != 2 || mails[1].Password == "" || mails[1].Password == mails[0].Password {
		t.Fatalf("mails %+v", mails)
	}
	if strings.Contains(r.Raw, mails[1].Password) || path(r.Data, "resetPassword", "user", "passwordExpired") != false {
		t.Errorf("response %s", r.Raw)
	}
}

func TestAdminAPIErrors(t *testing.T) {
	a := newAPIApp(t)
	ctx := context.Background()
	// An existing email user and a username-only user (no email, no phone:
	// nowhere to send a password).
	d := a.gqlOK(`mutation { createUser(input: {definition: {loginID: {key: "email", value: "taken@example.com"}}, password: "first-passw0rd"}) { user { id } } }`, nil)
	emailUser := path(d, "createUser", "user", "id").(string)
	d = a.gqlOK(`mutation { createUser(input: {definition: {loginID: {key: "username", value: "nameonly"}}, password: "first-passw0rd"}) { user { id } } }`, nil)
	nameUser := path(d, "createUser", "user", "id").(string)
	if err := a.acct.SavePolicy(ctx, account.SystemActor, func() account.Policy {
		p := account.DefaultPolicy()
		p.UppercaseRequired, p.DigitRequired, p.MinLength, p.HistorySize = true, true, 10, 3
		return p
	}()); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, query string
		vars        map[string]any
		errorName   string
		reason      string
		check       func(t *testing.T, ext map[string]any)
	}{
		{"DuplicatedIdentity", `mutation { createUser(input: {definition: {loginID: {key: "email", value: "TAKEN@example.com"}}, password: "Second-passw0rd", sendPassword: true}) { user { id } } }`, nil,
			"Invalid", "InvariantViolated", func(t *testing.T, ext map[string]any) {
				if path(ext, "info", "cause", "kind") != "DuplicatedIdentity" {
					t.Errorf("info %v", ext["info"])
				}
			}},
		{"ValidationFailed", `mutation { createUser(input: {definition: {loginID: {key: "email", value: "not-an-email"}}, password: "Second-passw0rd", sendPassword: true}) { user { id } } }`, nil,
			"Invalid", "ValidationFailed", func(t *testing.T, ext map[string]any) {
				if path(ext, "info", "format") != "email" {
					t.Errorf("info %v", ext["info"])
				}
			}},
		{"PasswordPolicyViolated/create", `mutation { createUser(input: {definition: {loginID: {key: "email", value: "new@example.com"}}, password: "weak", sendPassword: true}) { user { id } } }`, nil,
			"Invalid", "PasswordPolicyViolated", wantCauses("PasswordTooShort", "PasswordUppercaseRequired", "PasswordDigitRequired")},
		{"PasswordPolicyViolated/reset", `mutation($id: ID!) { resetPassword(input: {userID: $id, password: "weak", sendPassword: true}) { user { id } } }`, map[string]any{"id": emailUser},
			"Invalid", "PasswordPolicyViolated", wantCauses("PasswordTooShort", "PasswordUppercaseRequired", "PasswordDigitRequired")},
		{"SendPasswordNoTarget/create", `mutation { createUser(input: {definition: {loginID: {key: "username", value: "nameonly2"}}, password: "Second-passw0rd", sendPassword: true}) { user { id } } }`, nil,
			"Invalid", "SendPasswordNoTarget", nil},
		{"SendPasswordNoTarget/reset", `mutation($id: ID!) { resetPassword(input: {userID: $id, password: "Second-passw0rd", sendPassword: true}) { user { id } } }`, map[string]any{"id": nameUser},
			"Invalid", "SendPasswordNoTarget", nil},
		{"UserNotFound/reset", `mutation($id: ID!) { resetPassword(input: {userID: $id, password: "Second-passw0rd", sendPassword: true}) { user { id } } }`, map[string]any{"id": nodeID(uuid.NewString())},
			"NotFound", "UserNotFound", nil},
		{"UserNotFound/delete", `mutation($id: ID!) { deleteUser(input: {userID: $id}) { deletedUserID } }`, map[string]any{"id": nodeID(uuid.NewString())},
			"NotFound", "UserNotFound", nil},
		{"UserNotFound/setPasswordExpired", `mutation($id: ID!) { setPasswordExpired(input: {userID: $id, expired: true}) { user { id } } }`, map[string]any{"id": nodeID(uuid.NewString())},
			"NotFound", "UserNotFound", nil},
		{"UserNotFound/setDisabledStatus", `mutation($id: ID!) { setDisabledStatus(input: {userID: $id, isDisabled: true, reason: "x"}) { user { id } } }`, map[string]any{"id": nodeID(uuid.NewString())},
			"NotFound", "UserNotFound", nil},
		{"ValidationFailed/bad ID", `mutation { resetPassword(input: {userID: "not-a-node-id", sendPassword: true}) { user { id } } }`, nil,
			"Invalid", "ValidationFailed", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := a.snapshot()
			r := a.gql(tc.query, tc.vars)
			if r.Status != http.StatusOK || len(r.Errors) != 1 {
				t.Fatalf("status %d, want one error: %s", r.Status, r.Raw)
			}
			ext := r.Errors[0].Extensions
			if ext["errorName"] != tc.errorName || ext["reason"] != tc.reason {
				t.Errorf("extensions %v, want errorName %s reason %s", ext, tc.errorName, tc.reason)
			}
			if _, ok := ext["info"]; !ok {
				t.Errorf("extensions without info: %v", ext)
			}
			if r.Errors[0].Message == "" || strings.Contains(r.Errors[0].Message, "account:") {
				t.Errorf("message %q", r.Errors[0].Message)
			}
			if tc.check != nil {
				tc.check(t, ext)
			}
			a.wantUnchanged(before)
		})
	}
}

func wantCauses(kinds ...string) func(t *testing.T, ext map[string]any) {
	return func(t *testing.T, ext map[string]any) {
		t.Helper()
		causes, _ := path(ext, "info", "causes").([]any)
		var got []string
		for _, c := range causes {
			got = append(got, path(c, "kind").(string))
		}
		if strings.Join(got, ",") != strings.Join(kinds, ",") {
			t.Errorf("causes %v, want %v", got, kinds)
		}
	}
}

func TestAdminAPIPasswordReused(t *testing.T) {
	a := newAPIApp(t)
	p := account.DefaultPolicy()
	p.HistorySize = 3
	if err := a.acct.SavePolicy(context.Background(), account.SystemActor, p); err != nil {
		t.Fatal(err)
	}
	d := a.gqlOK(`mutation { createUser(input: {definition: {loginID: {key: "email", value: "h@example.com"}}, password: "first-passw0rd"}) { user { id } } }`, nil)
	id := path(d, "createUser", "user", "id")
	before := a.snapshot()
	r := a.gql(`mutation($id: ID!) { resetPassword(input: {userID: $id, password: "first-passw0rd", sendPassword: true}) { user { id } } }`, map[string]any{"id": id})
	if len(r.Errors) != 1 || r.Errors[0].Extensions["reason"] != "PasswordPolicyViolated" {
		t.Fatalf("%s", r.Raw)
	}
	if k := path(r.Errors[0].Extensions, "info", "causes").([]any)[0]; path(k, "kind") != "PasswordReused" {
		t.Errorf("cause %v", k)
	}
	a.wantUnchanged(before)
}

func TestAdminAPIAuth(t *testing.T) {
	a := newAPIApp(t)
	ctx := context.Background()
	mutation := `mutation { createUser(input: {definition: {loginID: {key: "email", value: "intruder@example.com"}}, password: "s3c0rp4$sw0rd"}) { user { id } } }`
	revoked, err := a.acct.CreateAPIKey(ctx, account.SystemActor, "old key")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.acct.RevokeAPIKey(ctx, account.SystemActor, revoked.Key.ID); err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(strings.TrimPrefix(a.token, "lk_"), "_")
	for name, auth := range map[string]string{
		"no header":          "",
		"not bearer":         "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:pw")),
		"bearer, no token":   "Bearer",
		"malformed token":    "Bearer not-a-key",
		"malformed id":       "Bearer lk_zz_abc",
		"wrong secret":       "Bearer lk_" + id + "_" + strings.Repeat("A", 43),
		"unknown id":         "Bearer lk_" + strings.Repeat("0", 32) + "_" + strings.Repeat("A", 43),
		"revoked key":        "Bearer " + revoked.Token,
		"token with garbage": "Bearer " + a.token + "x",
	} {
		t.Run(name, func(t *testing.T) {
			r := a.gqlAuth(auth, mutation, nil)
			if r.Status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", r.Status, r.Raw)
			}
			if len(r.Errors) != 1 || r.Errors[0].Extensions["reason"] != "Unauthenticated" || r.Data != nil {
				t.Errorf("body %s", r.Raw)
			}
		})
	}
	if n := a.countUsers(); n != 0 {
		t.Errorf("%d users created by unauthenticated requests", n)
	}
	// The good key still works, with a lowercase scheme too.
	r := a.gqlAuth("bearer "+a.token, `{ users { totalCount } }`, nil)
	if r.Status != http.StatusOK || path(r.Data, "users", "totalCount") != float64(0) {
		t.Fatalf("good key: %d %s", r.Status, r.Raw)
	}
	k, _ := a.store.APIKeyByID(ctx, id)
	if k.LastUsedAt == nil || k.SecretHash == "" || strings.Contains(a.token, k.SecretHash) {
		t.Errorf("key after use: %+v", k)
	}
}

func TestAdminAPIAuthFailureRateLimit(t *testing.T) {
	a := newAPIApp(t)
	for i := 0; i < apiAuthFailuresPerMinute; i++ {
		if r := a.gqlAuth("Bearer wrong", `{ users { totalCount } }`, nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d", i, r.Status)
		}
	}
	r := a.gqlAuth("Bearer wrong", `{ users { totalCount } }`, nil)
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", r.Status)
	}
	// While limited, even a good key is not looked at.
	if r := a.gql(`{ users { totalCount } }`, nil); r.Status != http.StatusTooManyRequests {
		t.Fatalf("good key while limited: status %d", r.Status)
	}
}

func TestAdminAPIGetRunsQueriesOnly(t *testing.T) {
	a := newAPIApp(t)
	get := func(q string) gqlResult {
		req, _ := http.NewRequest(http.MethodGet, a.srv.URL+"/_api/admin/graphql?"+url.Values{"query": {q}}.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+a.token)
		return a.gqlDo(req)
	}
	if r := get(`{ users(first: 1) { totalCount pageInfo { hasNextPage } } }`); r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("GET query: %d %s", r.Status, r.Raw)
	}
	r := get(`mutation { createUser(input: {definition: {loginID: {key: "email", value: "get@example.com"}}, password: "s3c0rp4$sw0rd"}) { user { id } } }`)
	if r.Status != http.StatusMethodNotAllowed || a.countUsers() != 0 {
		t.Fatalf("GET mutation: status %d, users %d", r.Status, a.countUsers())
	}
}

func TestAdminAPIUserMutationsAndNode(t *testing.T) {
	a := newAPIApp(t)
	d := a.gqlOK(`mutation { createUser(input: {definition: {loginID: {key: "username", value: "Bob_1"}}, password: "s3c0rp4$sw0rd"}) { user { id isDisabled passwordExpired createdAt lastLoginAt identities { totalCount edges { node { type claims } } } } } }`, nil)
	u := path(d, "createUser", "user").(map[string]any)
	id := u["id"].(string)
	if u["isDisabled"] != false || u["passwordExpired"] != false || u["lastLoginAt"] != nil || path(u, "identities", "totalCount") != float64(1) {
		t.Errorf("created %v", u)
	}
	if _, err := time.Parse(time.RFC3339, u["createdAt"].(string)); err != nil {
		t.Errorf("createdAt %v", u["createdAt"])
	}
	vars := map[string]any{"id": id}
	d = a.gqlOK(`mutation($id: ID!) { setPasswordExpired(input: {userID: $id, expired: true}) { user { passwordExpired } } }`, vars)
	if path(d, "setPasswordExpired", "user", "passwordExpired") != true {
		t.Errorf("setPasswordExpired: %v", d)
	}
	d = a.gqlOK(`mutation($id: ID!) { setDisabledStatus(input: {userID: $id, isDisabled: true, reason: "left"}) { user { isDisabled disableReason } } }`, vars)
	if path(d, "setDisabledStatus", "user", "isDisabled") != true || path(d, "setDisabledStatus", "user", "disableReason") != "left" {
		t.Errorf("setDisabledStatus: %v", d)
	}
	d = a.gqlOK(`query($id: ID!) { node(id: $id) { id ... on User { isDisabled standardAttributes } } }`, vars)
	if path(d, "node", "id") != id || path(d, "node", "standardAttributes", "preferred_username") != "bob_1" {
		t.Errorf("node: %v", d)
	}
	d = a.gqlOK(`mutation($id: ID!) { deleteUser(input: {userID: $id}) { deletedUserID } }`, vars)
	if path(d, "deleteUser", "deletedUserID") != id || a.countUsers() != 0 {
		t.Errorf("deleteUser: %v, users %d", d, a.countUsers())
	}
	wantTypes(t, a.events.types(), "user.deleted", "user.disabled", "password.expired.set")
	for _, e := range a.events.all() {
		if e.Event.Type == "user.deleted" && path(e.Event.Payload, "user", "id") == nil {
			t.Errorf("user.deleted payload %v", e.Event.Payload)
		}
	}
	d = a.gqlOK(`query($id: ID!) { node(id: $id) { id } }`, vars)
	if d["node"] != nil {
		t.Errorf("deleted user still a node: %v", d)
	}
}

// insertUsers creates n users straight through the store, fast.
func insertUsers(t *testing.T, st *store.Store, n int, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	ids := make([]string, n)
	now := time.Now().UTC()
	err := st.InTx(ctx, func(tx *store.Tx) error {
		for i := range ids {
			u := store.User{ID: uuid.NewString(), CreatedAt: now, UpdatedAt: now}
			if err := tx.InsertUser(ctx, &u); err != nil {
				return err
			}
			email := fmt.Sprintf("%s%04d@example.com", prefix, i)
			if err := tx.InsertIdentity(ctx, store.Identity{ID: uuid.NewString(), UserID: u.ID, Kind: "email", Value: email, ValueNorm: email, CreatedAt: now}); err != nil {
				return err
			}
			if err := tx.PutPassword(ctx, store.Password{UserID: u.ID, Hash: "x", CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
			ids[i] = u.ID
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestAdminAPIPagingThousandUsers(t *testing.T) {
	a := newAPIApp(t)
	ids := insertUsers(t, a.store, 1000, "page")
	want := map[string]bool{}
	emailOf := map[string]string{}
	for i, id := range ids {
		want[nodeID(id)] = true
		emailOf[nodeID(id)] = fmt.Sprintf("page%04d@example.com", i)
	}
	for _, search := range []string{"", "page"} {
		seen := map[string]int{}
		var after any
		pages := 0
		for {
			d := a.gqlOK(`query($after: String, $q: String) { users(first: 37, after: $after, searchKeyword: $q) {
				totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id passwordExpired standardAttributes } } } }`, map[string]any{"after": after, "q": search})
			pages++
			if path(d, "users", "totalCount") != float64(1000) {
				t.Fatalf("totalCount %v", path(d, "users", "totalCount"))
			}
			edges := path(d, "users", "edges").([]any)
			for _, e := range edges {
				id := path(e, "node", "id").(string)
				seen[id]++
				if got := path(e, "node", "standardAttributes", "email"); got != emailOf[id] {
					t.Fatalf("user %s: standardAttributes.email %v, want %s", id, got, emailOf[id])
				}
			}
			if path(d, "users", "pageInfo", "hasNextPage") != true {
				break
			}
			if len(edges) != 37 {
				t.Fatalf("page %d has %d edges", pages, len(edges))
			}
			after = path(d, "users", "pageInfo", "endCursor")
			if pages > 40 {
				t.Fatal("paging does not end")
			}
		}
		if len(seen) != 1000 || pages != 28 {
			t.Errorf("search %q: %d distinct users in %d pages, want 1000 in 28", search, len(seen), pages)
		}
		for id, n := range seen {
			if n != 1 || !want[id] {
				t.Errorf("search %q: user %s seen %d times (known: %v)", search, id, n, want[id])
			}
		}
	}
	// A cursor from one search is refused by another.
	d := a.gqlOK(`{ users(first: 1) { pageInfo { endCursor } } }`, nil)
	r := a.gql(`query($after: String) { users(first: 1, after: $after, searchKeyword: "page") { totalCount } }`,
		map[string]any{"after": path(d, "users", "pageInfo", "endCursor")})
	if len(r.Errors) != 1 || r.Errors[0].Extensions["reason"] != "ValidationFailed" {
		t.Errorf("foreign cursor: %s", r.Raw)
	}
	if r := a.gql(`{ users(first: 1000) { totalCount } }`, nil); len(r.Errors) != 1 {
		t.Errorf("first over the limit: %s", r.Raw)
	}
}

func TestAdminAPISearchListsEachUserOnce(t *testing.T) {
	a := newAPIApp(t)
	ctx := context.Background()
	// One user with two login IDs that both match "ann".
	u, err := a.acct.CreateUser(ctx, account.SystemActor, account.CreateUserInput{LoginIDKey: "email", LoginIDValue: "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.store.InsertIdentity(ctx, store.Identity{ID: uuid.NewString(), UserID: u.ID, Kind: "username", Value: "anne", ValueNorm: "anne", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, first := range []int{1, 5} {
		d := a.gqlOK(`query($f: Int) { users(first: $f, searchKeyword: "ANN") { totalCount pageInfo { hasNextPage } edges { node { id standardAttributes identities { totalCount } } } } }`, map[string]any{"f": first})
		edges := path(d, "users", "edges").([]any)
		if len(edges) != 1 || path(d, "users", "totalCount") != float64(1) || path(d, "users", "pageInfo", "hasNextPage") != false {
			t.Fatalf("first %d: %v", first, d)
		}
		node := path(edges[0], "node")
		if path(node, "standardAttributes", "email") != "ann@example.com" || path(node, "standardAttributes", "preferred_username") != "anne" ||
			path(node, "identities", "totalCount") != float64(2) {
			t.Errorf("first %d: node %v", first, node)
		}
	}
}

func TestAdminAPIGetCannotMutateEvenDisguised(t *testing.T) {
	a := newAPIApp(t)
	// A query document whose first operation is a query and whose second,
	// selected by operationName, is a mutation.
	q := `query A { users { totalCount } }
# mutation
mutation B { createUser(input: {definition: {loginID: {key: "email", value: "get2@example.com"}}, password: "s3c0rp4$sw0rd"}) { user { id } } }`
	for _, op := range []string{"B", " B"} {
		req, _ := http.NewRequest(http.MethodGet, a.srv.URL+"/_api/admin/graphql?"+url.Values{"query": {q}, "operationName": {op}}.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+a.token)
		r := a.gqlDo(req)
		if r.Status == http.StatusOK && len(r.Errors) == 0 {
			t.Errorf("operationName %q: GET ran a mutation: %s", op, r.Raw)
		}
	}
	// A leading fragment hides the mutation from a text check; the
	// query-only schema still refuses it.
	q = `fragment F on User { id }
mutation { createUser(input: {definition: {loginID: {key: "email", value: "get3@example.com"}}, password: "s3c0rp4$sw0rd"}) { user { ...F } } }`
	req, _ := http.NewRequest(http.MethodGet, a.srv.URL+"/_api/admin/graphql?"+url.Values{"query": {q}}.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+a.token)
	if r := a.gqlDo(req); len(r.Errors) == 0 {
		t.Errorf("fragment-first GET ran a mutation: %s", r.Raw)
	}
	if a.countUsers() != 0 {
		t.Fatal("GET created a user")
	}
}

func TestAdminAPISeveralProblemsAndGraphQLBody(t *testing.T) {
	a := newAPIApp(t)
	before := a.snapshot()
	r := a.gql(`mutation { createUser(input: {definition: {loginID: {key: "email", value: "bad"}}, password: "x", sendPassword: true}) { user { id } } }`, nil)
	if len(r.Errors) != 1 {
		t.Fatalf("%s", r.Raw)
	}
	ext := r.Errors[0].Extensions
	also, _ := ext["also"].([]any)
	if ext["reason"] != "ValidationFailed" || len(also) != 1 || path(also[0], "reason") != "PasswordPolicyViolated" {
		t.Errorf("extensions %v", ext)
	}
	a.wantUnchanged(before)

	req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/_api/admin/graphql", strings.NewReader(`{ users { totalCount } }`))
	req.Header.Set("Content-Type", "application/graphql")
	req.Header.Set("Authorization", "Bearer "+a.token)
	if r := a.gqlDo(req); r.Status != http.StatusOK || path(r.Data, "users", "totalCount") != float64(0) {
		t.Errorf("application/graphql body: %d %s", r.Status, r.Raw)
	}
}
