package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"latchkey/store"
)

// backupCmd is `latchkey backup PATH`.
func backupCmd(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	db := strings.TrimSpace(getenv("LATCHKEY_DB"))
	if db == "" {
		db = "latchkey.db"
	}
	opt := backupOptions{}
	force := false
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&db, "db", db, "the SQLite database file to copy (LATCHKEY_DB; for PostgreSQL use pg_dump)")
	fs.IntVar(&opt.StepPages, "step-pages", 256, "pages copied per step")
	fs.DurationVar(&opt.StepPause, "step-pause", 2*time.Millisecond, "pause between steps, leaving disk and CPU to the server")
	fs.BoolVar(&force, "force", false, "replace PATH if it exists")
	fs.IntVar(&opt.Nice, "nice", 10, "run the copy and the check this much below normal CPU priority (0 to 19; Linux)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() != 1 {
		return usageErrorf("give the backup's PATH, and nothing else")
	}
	if opt.Nice < 0 || opt.Nice > 19 {
		return usageErrorf("-nice must be from 0 to 19")
	}
	if store.IsPostgresURL(db) {
		// The SQLite online backup API has no PostgreSQL counterpart in
		// Latchkey; PostgreSQL's own tool makes a consistent dump.
		return fmt.Errorf("backup copies a SQLite file; %s is PostgreSQL: back it up with pg_dump, e.g. pg_dump --format=custom --file=%s \"$LATCHKEY_DB\" (restore with pg_restore). Nothing was written", store.RedactDB(db), fs.Arg(0))
	}
	opt.Force = force
	res, err := backupDB(ctx, db, fs.Arg(0), opt)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s: %d pages in %s, integrity_check ok\n", db, fs.Arg(0), res.Pages, res.Took.Round(time.Millisecond))
	return nil
}

// backupOptions tune backupDB.
type backupOptions struct {
	// StepPages is how many pages each backup step copies (<= 0: all).
	StepPages int
	// StepPause is the pause between steps.
	StepPause time.Duration
	// Force replaces an existing destination file.
	Force bool
	// Nice lowers the CPU priority of the copy and the check (Linux).
	Nice int
}

type backupResult struct {
	Pages int
	Took  time.Duration
}

// backupDB copies the SQLite database at src to dst with SQLite's online
// backup API, over connections of its own (never the server's pools), and
// checks the copy with PRAGMA integrity_check before it takes dst's name.
//
// In WAL mode (Latchkey's) the copy is read inside one read transaction
// held from the first step to the last: every step sees the same snapshot,
// so the copy holds exactly what was committed when the backup began, and
// writers, who never wait for readers in WAL mode, carry on meanwhile.
// (Without that transaction each step would start a new snapshot, and
// SQLite restarts a backup whose source another connection changed, so
// under steady writes it would never finish.) The steps and pauses keep
// the copy from hogging the disk and CPU. A database in rollback-journal
// mode (no server has opened it) is copied step by step without the held
// transaction, since there a reader does block writers.
//
// The copy is written to a temporary file beside dst, created 0600 (it
// holds password hashes, and the server secret when LATCHKEY_SECRET_KEY is
// not set), switched to journal_mode=DELETE so it is one self-contained
// file, verified, synced and renamed to dst.
func backupDB(ctx context.Context, src, dst string, opt backupOptions) (backupResult, error) {
	start := time.Now()
	var res backupResult
	si, err := os.Stat(src)
	if err != nil {
		return res, fmt.Errorf("database: %w", err)
	}
	if !si.Mode().IsRegular() {
		return res, fmt.Errorf("database %s is not a regular file", src)
	}
	if di, err := os.Stat(dst); err == nil {
		if os.SameFile(si, di) {
			return res, fmt.Errorf("%s is the database itself", dst)
		}
		if !opt.Force {
			return res, fmt.Errorf("%s exists (use -force to replace it)", dst)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return res, err
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-"+hex.EncodeToString(suffix))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return res, err
	}
	f.Close()
	keep := false
	defer func() {
		if !keep {
			for _, p := range []string{tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm"} {
				_ = os.Remove(p)
			}
		}
	}()

	err = atLowPriority(opt.Nice, func() error {
		var err error
		if res.Pages, err = copyDB(ctx, src, tmp, opt); err != nil {
			return err
		}
		return verifyDB(ctx, tmp)
	})
	if err != nil {
		return res, err
	}
	if err := syncFile(tmp); err != nil {
		return res, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return res, err
	}
	keep = true
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	res.Took = time.Since(start)
	return res, nil
}

// sqliteURI makes a file: URI of path with the given query.
func sqliteURI(path, query string) string {
	escaped := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	return "file:" + escaped + "?" + query
}

// copyDB runs the backup from src into the (empty) file dst and returns
// the number of pages copied.
func copyDB(ctx context.Context, src, dst string, opt backupOptions) (int, error) {
	srcDB, err := sql.Open("sqlite3", sqliteURI(src, "mode=rw&_busy_timeout=10000"))
	if err != nil {
		return 0, err
	}
	defer srcDB.Close()
	dstDB, err := sql.Open("sqlite3", sqliteURI(dst, "mode=rw"))
	if err != nil {
		return 0, err
	}
	defer dstDB.Close()
	sc, err := srcDB.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", src, err)
	}
	defer sc.Close()
	dc, err := dstDB.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", dst, err)
	}
	defer dc.Close()

	var mode string
	if err := sc.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return 0, fmt.Errorf("read %s: %w", src, err)
	}
	if strings.EqualFold(mode, "wal") {
		// A deferred BEGIN and one read start the snapshot that every
		// step then reads.
		if _, err := sc.ExecContext(ctx, `BEGIN`); err != nil {
			return 0, err
		}
		defer func() { _, _ = sc.ExecContext(context.Background(), `ROLLBACK`) }()
		var n int
		if err := sc.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master`).Scan(&n); err != nil {
			return 0, fmt.Errorf("read %s: %w", src, err)
		}
	}
	step := opt.StepPages
	if step <= 0 {
		step = -1
	}
	pages := 0
	err = dc.Raw(func(dconn any) error {
		return sc.Raw(func(sconn any) error {
			d, ok1 := dconn.(*sqlite3.SQLiteConn)
			s, ok2 := sconn.(*sqlite3.SQLiteConn)
			if !ok1 || !ok2 {
				return errors.New("not a SQLite connection")
			}
			b, err := d.Backup("main", s, "main")
			if err != nil {
				return err
			}
			for {
				done, err := b.Step(step)
				if err != nil {
					b.Close()
					return err
				}
				if done {
					pages = b.PageCount()
					return b.Finish()
				}
				if ctx.Err() != nil {
					b.Close()
					return ctx.Err()
				}
				if opt.StepPause > 0 {
					time.Sleep(opt.StepPause)
				}
			}
		})
	})
	if err != nil {
		return 0, fmt.Errorf("copy %s: %w", src, err)
	}
	return pages, nil
}

// verifyDB makes the copy a single rollback-journal file and runs PRAGMA
// integrity_check on it; anything but one "ok" row is an error.
func verifyDB(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite3", sqliteURI(path, "mode=rw"))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `PRAGMA journal_mode=DELETE`); err != nil {
		return fmt.Errorf("verify copy: %w", err)
	}
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("verify copy: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("verify copy: %w", err)
		}
		problems = append(problems, line)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("verify copy: %w", err)
	}
	if len(problems) != 1 || problems[0] != "ok" {
		return fmt.Errorf("the copy failed PRAGMA integrity_check: %s", strings.Join(problems, "; "))
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
