package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// secureFiles creates the database file with mode 0600 when it does not
// exist, and refuses to go on when the database or its -wal or -shm file
// can be read or written by the group or by others: the database holds
// password hashes and, without LATCHKEY_SECRET_KEY, the server secret from
// which the portal's cookie keys are derived.
func secureFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("store: create %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrExist):
	default:
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if mode := fi.Mode().Perm(); mode&0o066 != 0 {
			return fmt.Errorf("store: %s has mode %04o: other users could read the password hashes and the server secret in it. "+
				"Run: chmod 600 %s %s-wal %s-shm (the -wal and -shm files may not exist), then start again", p, mode, path, path, path)
		}
	}
	return nil
}
