package account_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"latchkey/account"
	"latchkey/store"
)

// addUsers inserts n users with one email each, in one transaction.
func addUsers(t *testing.T, st *store.Store, n int) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	err := st.InTx(ctx, func(tx *store.Tx) error {
		for i := range n {
			id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
			if err := tx.InsertUser(ctx, &store.User{ID: id, CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
			v := fmt.Sprintf("user%d@example.com", i)
			if err := tx.InsertIdentity(ctx, store.Identity{ID: "i-" + id, UserID: id, Kind: account.KindEmail, Value: v, ValueNorm: v, CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestExportStreamsEveryUserOnce: the export reads and encodes on two
// goroutines, in batches; across batch boundaries every user comes out
// once, in user ID order, with their login ID.
func TestExportStreamsEveryUserOnce(t *testing.T) {
	s, st := newService(t)
	const n = 1300 // two full batches and a part
	addUsers(t, st, n)
	var buf bytes.Buffer
	got, err := s.ExportUsers(context.Background(), account.SystemActor, &buf, account.ExportCSV, store.ListUsersParams{})
	if err != nil || got != n {
		t.Fatalf("exported %d: %v", got, err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) != n+1 {
		t.Fatalf("%d records: %v", len(recs), err)
	}
	for i, r := range recs[1:] {
		if want := fmt.Sprintf("00000000-0000-4000-8000-%012d", i); r[0] != want || r[1] != fmt.Sprintf("user%d@example.com", i) {
			t.Fatalf("row %d is %v, want %s", i, r[:2], want)
		}
	}
}

// failAfter is a writer that fails once more than n bytes were written.
type failAfter struct{ n int }

func (w *failAfter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errors.New("client went away")
	}
	return len(p), nil
}

// TestExportStopsWhenWriterFails: a download cut short (the writer
// fails) stops the walk and returns the error, without hanging.
func TestExportStopsWhenWriterFails(t *testing.T) {
	s, st := newService(t)
	addUsers(t, st, 3000)
	done := make(chan error, 1)
	go func() {
		_, err := s.ExportUsers(context.Background(), account.SystemActor, &failAfter{n: 100 << 10}, account.ExportNDJSON, store.ListUsersParams{})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "client went away") {
			t.Fatalf("export over a failing writer: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the export did not stop when its writer failed")
	}
}
