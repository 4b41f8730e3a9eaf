package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"latchkey/account"
	"latchkey/hooks"
	"latchkey/store"
)

// The operator's command line, in the same binary as the server, for an
// operator locked out of the portal:
//
//	latchkey admin create --email E [--password-stdin]
//	latchkey admin reset-password --email E [--password-stdin]
//	latchkey admin list
//	latchkey admin disable-2fa --email E
//	latchkey apikey create --name N
//
// Each opens the same database as the server (LATCHKEY_DB or --db), which
// may be running: SQLite's WAL and busy timeout let both write, and on
// PostgreSQL (a postgres:// URL, with the instances' LATCHKEY_SECRET_KEY)
// the command is one more client of the shared database.
// Changes are recorded in the audit log like the portal's.

// cliFlags is the flag set every admin command shares: --db, and --email
// and --password-stdin where the command takes them.
type cliFlags struct {
	fs            *flag.FlagSet
	db            string
	email         string
	name          string
	passwordStdin bool
}

func newCLIFlags(name string, stderr io.Writer, email, password, keyName bool) *cliFlags {
	f := &cliFlags{fs: flag.NewFlagSet("latchkey "+name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.db, "db", "", "SQLite database file or postgres:// URL (default: LATCHKEY_DB or latchkey.db)")
	if email {
		f.fs.StringVar(&f.email, "email", "", "the admin's email (required)")
	}
	if password {
		f.fs.BoolVar(&f.passwordStdin, "password-stdin", false, "read the password from standard input instead of prompting")
	}
	if keyName {
		f.fs.StringVar(&f.name, "name", "", "the key's name, e.g. the script that uses it (required)")
	}
	return f
}

// parse parses args; -h gives flag.ErrHelp, a mistake a usageError.
func (f *cliFlags) parse(args []string, needEmail, needName bool) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if f.fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", f.fs.Arg(0))}
	}
	if needEmail && strings.TrimSpace(f.email) == "" {
		return usageError{errors.New("--email is required")}
	}
	if needName && strings.TrimSpace(f.name) == "" {
		return usageError{errors.New("--name is required")}
	}
	return nil
}

// cliActor is who the audit log names for command-line changes.
var cliActor = account.Actor{Kind: "system", Name: "command line", TriggeredBy: "cli"}

// openForCLI opens the database (applying migrations, as the server does)
// and builds the account service with the event log, without starting any
// worker: the running server (or its next start) delivers what is queued.
func openForCLI(ctx context.Context, dbFlag string, getenv func(string) string, stderr io.Writer) (*account.Service, func(), error) {
	cfg, err := loadConfig(nil, getenv)
	if err != nil {
		return nil, nil, err
	}
	if dbFlag != "" {
		cfg.DB = dbFlag
	}
	if _, err := os.Stat(cfg.DB); err != nil && !store.IsPostgresURL(cfg.DB) {
		return nil, nil, fmt.Errorf("no database at %s (set LATCHKEY_DB or --db to the server's file)", cfg.DB)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, secret, err := openStoreForCLI(ctx, cfg.DB, cfg.SecretKey)
	if err != nil {
		return nil, nil, err
	}
	hk, err := hooks.New(st, secret, hooks.Config{AppID: cfg.AppID}, log)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	acct, err := account.New(ctx, st, account.Config{BcryptCost: cfg.BcryptCost, PhoneRegion: cfg.PhoneRegion}, nil, hk, log)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	if err := acct.SetSecret(secret); err != nil {
		st.Close()
		return nil, nil, err
	}
	return acct, func() { st.Close() }, nil
}

// openStoreForCLI opens the database (applying migrations) and reads the
// server secret from it, or takes secretEnv: what every command that
// touches the server's data starts with.
func openStoreForCLI(ctx context.Context, db, secretEnv string) (*store.Store, []byte, error) {
	if store.IsPostgresURL(db) && secretEnv == "" {
		// Without it a secret would be generated and kept in the shared
		// database, and what the command seals would not open on the
		// instances, which use LATCHKEY_SECRET_KEY.
		return nil, nil, errors.New("LATCHKEY_SECRET_KEY is required with a PostgreSQL database: set the value the server instances run with")
	}
	st, err := store.Open(ctx, db)
	if err != nil {
		return nil, nil, err
	}
	secret, err := serverSecret(ctx, st, secretEnv)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, secret, nil
}

// readNewPassword reads a new password: from stdin with --password-stdin
// (one line; the trailing newline dropped), else typed twice at a terminal
// without echo.
func readNewPassword(stdin io.Reader, fromStdin bool, stderr io.Writer) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(stdin, 8194)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", usageError{errors.New("--password-stdin: standard input held no password")}
		}
		return pw, nil
	}
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", usageError{errors.New("no terminal to ask for the password on: pipe it in with --password-stdin")}
	}
	fmt.Fprint(stderr, "New password: ")
	first, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	fmt.Fprint(stderr, "Repeat it: ")
	second, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read the password: %w", err)
	}
	if string(first) != string(second) {
		return "", errors.New("the two passwords differ; nothing was changed")
	}
	if len(first) == 0 {
		return "", errors.New("the password is empty; nothing was changed")
	}
	return string(first), nil
}

// explain turns an account error into one clear line (with the password
// policy's reasons); other errors pass through.
func explain(err error) error {
	fe := account.FieldErrors(err)
	if fe == nil {
		return err
	}
	keys := make([]string, 0, len(fe))
	for k := range fe {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		if k == "" {
			parts = append(parts, fe[k])
		} else {
			parts = append(parts, k+": "+fe[k])
		}
	}
	return errors.New(strings.Join(parts, "; ") + " Nothing was changed.")
}

// passwordCmd is a command that takes --email and a new password (from
// --password-stdin or the terminal), then runs set on the open database.
func passwordCmd(name string, set func(ctx context.Context, acct *account.Service, email, pw string, stdout io.Writer) error) commandFunc {
	return func(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
		f := newCLIFlags(name, stderr, true, true, false)
		if err := f.parse(args, true, false); err != nil {
			return err
		}
		pw, err := readNewPassword(stdin, f.passwordStdin, stderr)
		if err != nil {
			return err
		}
		acct, closeDB, err := openForCLI(ctx, f.db, getenv, stderr)
		if err != nil {
			return err
		}
		defer closeDB()
		if err := set(ctx, acct, f.email, pw, stdout); err != nil {
			return fmt.Errorf("%s: %w", name, explain(err))
		}
		return nil
	}
}

var adminCreateCmd = passwordCmd("admin create", func(ctx context.Context, acct *account.Service, email, pw string, stdout io.Writer) error {
	a, err := acct.CreateAdmin(ctx, cliActor, email, pw)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Admin %s created. They can sign in at /portal/login now.\n", a.Email)
	return nil
})

var adminResetPasswordCmd = passwordCmd("admin reset-password", func(ctx context.Context, acct *account.Service, email, pw string, stdout io.Writer) error {
	if err := acct.ResetAdminPassword(ctx, cliActor, email, pw); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Password of %s reset; their portal sessions have been signed out.\n", strings.ToLower(strings.TrimSpace(email)))
	return nil
})

func adminListCmd(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	f := newCLIFlags("admin list", stderr, false, false, false)
	if err := f.parse(args, false, false); err != nil {
		return err
	}
	acct, closeDB, err := openForCLI(ctx, f.db, getenv, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	admins, err := acct.ListAdmins(ctx)
	if err != nil {
		return fmt.Errorf("admin list: %w", err)
	}
	if len(admins) == 0 {
		fmt.Fprintln(stdout, "No admins. Create one with: latchkey admin create --email E")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tSTATUS\tTWO-FACTOR\tLAST SIGN-IN\tSESSIONS")
	for _, a := range admins {
		status, tfa, last := "active", "off", "never"
		if a.Invited {
			status = "invited"
		}
		if a.TOTP {
			tfa = "on"
		}
		if a.LastLoginAt != nil {
			last = a.LastLoginAt.Format("2006-01-02 15:04 UTC")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", a.Email, status, tfa, last, a.Sessions)
	}
	return tw.Flush()
}

func adminDisable2FACmd(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	f := newCLIFlags("admin disable-2fa", stderr, true, false, false)
	if err := f.parse(args, true, false); err != nil {
		return err
	}
	acct, closeDB, err := openForCLI(ctx, f.db, getenv, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	was, err := acct.DisableAdmin2FA(ctx, cliActor, f.email)
	if err != nil {
		return fmt.Errorf("admin disable-2fa: %w", explain(err))
	}
	email := strings.ToLower(strings.TrimSpace(f.email))
	if !was {
		fmt.Fprintf(stdout, "%s did not have two-factor on; nothing changed.\n", email)
		return nil
	}
	fmt.Fprintf(stdout, "Two-factor sign-in turned off for %s; they sign in with their password alone until they enrol again.\n", email)
	return nil
}

func apikeyCreateCmd(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	f := newCLIFlags("apikey create", stderr, false, false, true)
	if err := f.parse(args, false, true); err != nil {
		return err
	}
	acct, closeDB, err := openForCLI(ctx, f.db, getenv, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	k, err := acct.CreateAPIKey(ctx, cliActor, f.name)
	if err != nil {
		return fmt.Errorf("apikey create: %w", explain(err))
	}
	// The token alone on stdout, so a script can capture it; the note on stderr.
	fmt.Fprintln(stdout, k.Token)
	fmt.Fprintf(stderr, "API key %q created. It is shown only this once: Latchkey keeps only a hash.\n", k.Key.Name)
	return nil
}
