package oidc

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestTokenFailureLogNamesGrantAndClient: a failed token request is
// counted and logged with its grant type and client ID (from the form or
// from basic authentication), which the library's parsing of its own copy
// of the request used to leave empty.
func TestTokenFailureLogNamesGrantAndClient(t *testing.T) {
	e := newBenchEnv(t, AlgES256)
	var buf lockedBuffer
	e.p.log = slog.New(slog.NewTextHandler(&buf, nil))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"no-such-code"}, "redirect_uri": {benchRedirect}}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(e.app.ID, "wrong")
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode < 400 {
		t.Fatalf("status %d", res.StatusCode)
	}
	log := buf.String()
	if !strings.Contains(log, "token request failed") || !strings.Contains(log, "grant_type=authorization_code") ||
		!strings.Contains(log, "client_id="+e.app.ID) || e.p.Failures() == 0 {
		t.Fatalf("failure log: %s (failures %d)", log, e.p.Failures())
	}
}
