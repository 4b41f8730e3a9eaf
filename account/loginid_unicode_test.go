package account

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"latchkey/store"
)

func TestUnicodeLoginIDsNormalise(t *testing.T) {
	cases := []struct{ kind, in, value, norm string }{
		{KindEmail, "\u212Aate@example.com", "Kate@example.com", "kate@example.com"},
		{KindEmail, "ｋａｔｅ＠ＥＸＡＭＰＬＥ.com", "kate@example.com", "kate@example.com"},
		{KindEmail, "jose\u0301@example.com", "jos\u00e9@example.com", "jos\u00e9@example.com"},
		{KindEmail, "Jos\u00e9@B\u00fccher.Example", "Jos\u00e9@xn--bcher-kva.example", "jos\u00e9@xn--bcher-kva.example"},
		{KindEmail, "first.last+tag@example.com", "first.last+tag@example.com", "first.last+tag@example.com"},
		{KindUsername, "ＪＯＳＥ", "jose", "jose"},
		{KindUsername, "Jose\u0301", "jos\u00e9", "jos\u00e9"},
		{KindUsername, "\u5c71\u7530taro", "\u5c71\u7530taro", "\u5c71\u7530taro"},                                           // Han with Latin
		{KindUsername, "\u0430\u0434\u043c\u0438\u043d", "\u0430\u0434\u043c\u0438\u043d", "\u0430\u0434\u043c\u0438\u043d"}, // all Cyrillic
	}
	for _, c := range cases {
		id, err := NormalizeLoginID(c.kind, c.in, "US")
		if err != nil || id.Value != c.value || id.Norm != c.norm {
			t.Errorf("%s %q = %+q, %v; want value %q norm %q", c.kind, c.in, id, err, c.value, c.norm)
		}
	}
	for _, c := range []struct{ kind, in, want string }{
		{KindUsername, "p\u0430ypal", "mix"}, // Cyrillic а among Latin
		{KindUsername, "admin\u0440", "mix"},
		{KindUsername, "a\u200db-c", "3 to 40"}, // zero-width joiner
		{KindUsername, "has space", "3 to 40"},
		{KindEmail, "a b@example.com", "valid email"},
		{KindEmail, "x@exa_mple.com", "valid email"},
	} {
		_, err := NormalizeLoginID(c.kind, c.in, "US")
		if e, ok := AsError(err); !ok || !strings.Contains(e.Message, c.want) {
			t.Errorf("%s %q: %v, want an error saying %q", c.kind, c.in, err, c.want)
		}
	}
	// A fullwidth '@' is read as an email.
	if id, err := ParseAnyLoginID("kate＠example.com", "US"); err != nil || id.Kind != KindEmail || id.Norm != "kate@example.com" {
		t.Errorf("fullwidth @: %+v %v", id, err)
	}
}

// Each spelling of one login ID is one account: the second is a conflict.
func TestUnicodeSpellingsAreOneAccount(t *testing.T) {
	s, _ := newTestService(t)
	ctx := context.Background()
	for _, pair := range [][2]string{
		{"\u212Aate@example.com", "kate@example.com"},
		{"jos\u00e9@example.com", "jose\u0301@example.com"},
		{"ann@b\u00fccher.example", "ann@xn--bcher-kva.example"},
		{"ｍａｒｋ@example.com", "mark@example.com"},
		{"ren\u00e9e", "rene\u0301e"},
	} {
		kind := KindEmail
		if !strings.Contains(pair[0], "@") {
			kind = KindUsername
		}
		u, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: kind, LoginIDValue: pair[0]})
		if err != nil {
			t.Fatalf("%q: %v", pair[0], err)
		}
		if v := u.Identities[0].Value; strings.ContainsRune(v, '\u212A') || strings.ContainsRune(v, '\u0301') || strings.ContainsRune(v, 'ｍ') {
			t.Errorf("%q stored as %q", pair[0], v)
		}
		_, err = s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: kind, LoginIDValue: pair[1]})
		if fe := FieldErrors(err); fe["loginID"] == "" {
			t.Errorf("%q after %q: %v, want a conflict on loginID", pair[1], pair[0], err)
		}
	}
	if n, _ := s.Store().CountUsers(ctx); n != 5 {
		t.Fatalf("%d users, want 5", n)
	}
}

// Rows written under the old rules are brought to the new ones once; a
// row that would collide with another account is kept as it was.
func TestRenormalizeExistingLoginIDs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(ctx, st, Config{BcryptCost: 4}, nil, nil, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"kate@example.com", "zoe@example.com"} {
		if _, err := s.CreateUser(ctx, admin, CreateUserInput{LoginIDKey: KindEmail, LoginIDValue: id}); err != nil {
			t.Fatal(err)
		}
	}
	// What the old rules stored: the value as typed, the key lowercased.
	old := [][3]string{
		{"nfd", "jose\u0301@example.com", "jose\u0301@example.com"},
		{"wide", "ｂｅｎ@example.com", "ｂｅｎ@example.com"},
		{"clash", "ｚｏｅ@example.com", "ｚｏｅ@example.com"}, // zoe@ exists
	}
	for i, o := range old {
		if _, err := st.DB().ExecContext(ctx, `INSERT INTO users (id, created_at, updated_at) VALUES (?, 0, 0)`, o[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := st.DB().ExecContext(ctx, `INSERT INTO identities (id, user_id, kind, value, value_norm, created_at) VALUES (?, ?, 'email', ?, ?, ?)`,
			"i-"+o[0], o[0], o[1], o[2], i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.DB().ExecContext(ctx, `DELETE FROM settings WHERE key = ?`, loginIDNormSetting); err != nil {
		t.Fatal(err)
	}
	if _, err := New(ctx, st, Config{BcryptCost: 4}, nil, nil, quiet); err != nil {
		t.Fatal(err)
	}
	for norm, user := range map[string]string{"jos\u00e9@example.com": "nfd", "ben@example.com": "wide", "ｚｏｅ@example.com": "clash"} {
		i, err := st.IdentityByNorm(ctx, norm)
		if err != nil || i.UserID != user {
			t.Errorf("%q: %+v %v, want user %s", norm, i, err, user)
		}
	}
	// The NFC spelling signs in to the migrated account.
	id, _ := ParseAnyLoginID("jos\u00e9@example.com", "US")
	if i, err := st.IdentityByNorm(ctx, id.Norm); err != nil || i.UserID != "nfd" {
		t.Fatalf("lookup after migration: %+v %v", i, err)
	}
}
