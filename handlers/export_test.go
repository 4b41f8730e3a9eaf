package handlers

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"latchkey/account"
)

// TestPortalExport: the Export page carries the list's filters; the
// download is CSV of exactly those users, with no hash anywhere, and is
// recorded in the audit log; without the CSRF token nothing is exported.
func TestPortalExport(t *testing.T) {
	a := newAPIApp(t)
	a.loginAdmin()
	ctx := context.Background()
	keep := a.createUser("email", "=cmd@example.com", "Passw0rd-long")
	a.createUser("phone", "+12125550110", "Passw0rd-long")
	if _, err := a.acct.SetDisabledStatus(ctx, account.SystemActor, keep.ID, true, "left"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.acct.UpdateProfile(ctx, account.SystemActor, keep.ID, account.Profile{Name: "Cee, Md"}); err != nil {
		t.Fatal(err)
	}
	list := a.get("/portal/users?disabled=1")
	wantContains(t, list.Body, `href="/portal/users/export?disabled=1"`)
	page := a.get("/portal/users/export?disabled=1")
	wantStatus(t, page, http.StatusOK)
	wantContains(t, page.Body, `name="disabled" value="1"`, "1 user", "Never a password or a hash")
	r := a.post("/portal/users/export", url.Values{"disabled": {"1"}, "format": {"csv"}})
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") || !strings.Contains(r.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("headers %v", r.Header)
	}
	recs, err := csv.NewReader(strings.NewReader(r.Body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || strings.Join(recs[0], ",") != strings.Join(account.ExportColumns, ",") {
		t.Fatalf("export:\n%s", r.Body)
	}
	row := map[string]string{}
	for i, col := range recs[0] {
		row[col] = recs[1][i]
	}
	if row["id"] != keep.ID || row["email"] != "'=cmd@example.com" || row["is_disabled"] != "true" || row["name"] != "Cee, Md" ||
		row["disable_reason"] != "left" || row["has_password"] != "true" {
		t.Fatalf("row %v", row)
	}
	if strings.Contains(r.Body, "bcrypt") || strings.Contains(r.Body, "$2") {
		t.Fatal("a hash in the export")
	}
	if len(a.events.ofType(account.EventAdminExportUsers)) != 1 {
		t.Fatal("export not in the audit log")
	}
	if r := a.post("/portal/users/export", url.Values{"format": {"xml"}}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("bad format: %d", r.Status)
	}
	if r := a.postRaw("/portal/users/export", url.Values{"format": {"csv"}}); r.Status != http.StatusForbidden {
		t.Fatalf("no CSRF: %d", r.Status)
	}
}

// TestAPIExport: POST /_api/admin/users/export streams NDJSON (or CSV)
// of the selected users with an API key, and refuses without one.
func TestAPIExport(t *testing.T) {
	a := newAPIApp(t)
	a.createUser("email", "ann@example.org", "Passw0rd-long")
	a.createUser("phone", "+12125550110", "Passw0rd-long")
	if _, err := a.acct.CreateUser(context.Background(), account.SystemActor, account.CreateUserInput{LoginIDKey: "username", LoginIDValue: "nopw"}); err != nil {
		t.Fatal(err)
	}
	post := func(auth, body string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, a.srv.URL+"/_api/admin/users/export", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	if res, _ := post("", `{"format":"ndjson"}`); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key: %d", res.StatusCode)
	}
	if res, _ := post("Bearer "+a.token, `{"format":"xml"}`); res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad format: %d", res.StatusCode)
	}
	if res, _ := post("Bearer "+a.token, `{"format":"csv","nope":1}`); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown field: %d", res.StatusCode)
	}
	res, body := post("Bearer "+a.token, `{"format":"ndjson"}`)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("ndjson: %d %v", res.StatusCode, res.Header)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	// A whole export goes in user ID order.
	by := map[string]map[string]any{}
	for i, l := range lines {
		for _, k := range []string{"preferred_username", "phone_number", "email"} {
			if v, ok := l[k].(string); ok {
				by[v] = l
			}
		}
		if i > 0 && lines[i-1]["sub"].(string) >= l["sub"].(string) {
			t.Errorf("not in user ID order at line %d", i)
		}
	}
	if len(lines) != 3 || by["nopw"]["has_password"] != false || by["+12125550110"]["has_password"] != true || by["ann@example.org"] == nil {
		t.Fatalf("ndjson:\n%s", body)
	}
	if strings.Contains(body, "hash") || strings.Contains(body, "bcrypt") {
		t.Fatal("a hash in the export")
	}
	res, body = post("Bearer "+a.token, `{"format":"csv","searchKeyword":"212555","filters":{"noPassword":false}}`)
	if res.StatusCode != http.StatusOK || strings.Count(body, "\n") != 2 || !strings.Contains(body, "+12125550110") {
		t.Fatalf("csv search: %d\n%s", res.StatusCode, body)
	}
	res, body = post("Bearer "+a.token, `{"format":"csv","filters":{"noPassword":true}}`)
	if strings.Count(body, "\n") != 2 || !strings.Contains(body, "nopw") {
		t.Fatalf("csv filter:\n%s", body)
	}
}
