package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDatabaseFilesAreOwnerOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "latchkey.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// A write makes sure the WAL and shared-memory files exist.
	if err := s.PutSetting(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", filepath.Base(p), fi.Mode().Perm())
		}
	}
	s.Close()
}

func TestOpenRefusesReadableDatabase(t *testing.T) {
	ctx := context.Background()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		t.Run("file"+suffix, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "latchkey.db")
			s, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.PutSetting(ctx, "k", []byte("v")); err != nil {
				t.Fatal(err)
			}
			// Keep the -wal and -shm files: with the store open, chmod one.
			if err := os.Chmod(path+suffix, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = Open(ctx, path)
			s.Close()
			if err == nil {
				t.Fatal("opened a database others can read")
			}
			if !strings.Contains(err.Error(), "mode 0644") || !strings.Contains(err.Error(), "chmod 600") {
				t.Fatalf("error does not say what to do: %v", err)
			}
		})
	}
}
