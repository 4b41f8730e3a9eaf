package hooks

import (
	"context"
	"strings"
	"testing"

	"latchkey/account"
)

// TestContextBoundsStrangerHeaders: User-Agent and Accept-Language come
// from whoever sends the request; the event keeps a bounded amount of them.
func TestContextBoundsStrangerHeaders(t *testing.T) {
	e := newEnv(t, "")
	var langs []string
	for i := 0; i < 5000; i++ {
		langs = append(langs, "x-"+strings.Repeat("a", i%50))
	}
	langs[0] = strings.Repeat("z", 4000) // an absurd first tag is dropped, not shown as the language
	actor := account.Actor{Kind: "user", TriggeredBy: "user", IP: "198.51.100.7",
		UserAgent: strings.Repeat("é", 300000), Languages: langs}
	u, err := e.createUser("username", "bounded", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.acct.SetDisabledStatus(context.Background(), actor, u.ID, true, ""); err != nil {
		t.Fatal(err)
	}
	var size int
	var ctxJSON string
	if err := e.st.DB().QueryRow(`SELECT length(context), context FROM events WHERE type = 'user.disabled'`).Scan(&size, &ctxJSON); err != nil {
		t.Fatal(err)
	}
	if size > 2000 {
		t.Fatalf("event context is %d bytes", size)
	}
	if strings.Contains(ctxJSON, "zzzz") {
		t.Error("an over-long language tag was kept")
	}
	if !strings.Contains(ctxJSON, "é") || strings.Contains(ctxJSON, "\\ufffd") {
		t.Error("the user agent was dropped or cut inside a character")
	}
}
