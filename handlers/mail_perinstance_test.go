package handlers

import (
	"net/http"
	"strings"
	"testing"

	"latchkey/mail"
)

// On PostgreSQL, where several instances may share the database, the dev
// mailbox says it is this instance's own; on SQLite,
// one instance, it does not. CI runs this on both databases.
func TestDevMailboxSaysPerInstanceOnSharedDatabase(t *testing.T) {
	a, _ := newMailApp(t, mail.NewDevMailbox(0))
	a.loginAdmin()
	shared := a.store.Postgres()
	for _, path := range []string{"/portal/mail"} {
		r := a.get(path)
		wantStatus(t, r, http.StatusOK)
		if got := strings.Contains(r.Body, "data-per-instance"); got != shared {
			t.Errorf("%s: per-instance note shown = %v on a database shared = %v", path, got, shared)
		}
		if shared {
			wantContains(t, r.Body, "each instance has its own dev mailbox")
		}
	}
}
