package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"latchkey/oidc"
	"latchkey/store"
)

// migrateToPostgresCmd is `latchkey migrate-to-postgres --from FILE --to
// postgres://…`: it copies a SQLite deployment into an empty PostgreSQL
// database. The SQLite file is only read (one snapshot, also while a
// server runs on it); the target gets Latchkey's migrations, then every
// row in one transaction, and the row counts are checked before it
// commits. It ends by saying which LATCHKEY_SECRET_KEY the PostgreSQL
// instances need, since sessions, signing keys and sealed outbox rows
// derive from the secret the SQLite deployment ran with.
func migrateToPostgresCmd(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("latchkey migrate-to-postgres", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the SQLite database file to copy (required; left untouched)")
	to := fs.String("to", "", "the empty PostgreSQL database, as a postgres:// URL (required)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	if strings.TrimSpace(*from) == "" || strings.TrimSpace(*to) == "" {
		return usageErrorf("give both --from FILE and --to postgres://…")
	}
	if store.IsPostgresURL(*from) {
		return usageErrorf("--from must be a SQLite file, not a PostgreSQL URL")
	}
	if !store.IsPostgresURL(*to) {
		return usageErrorf("--to must be a postgres:// or postgresql:// URL")
	}
	envSecret := getenv("LATCHKEY_SECRET_KEY")
	if envSecret != "" {
		if _, err := secretKeyBytes(envSecret); err != nil {
			return err
		}
	}
	start := time.Now()

	src, err := store.OpenSnapshot(ctx, *from)
	if err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	defer src.Close()
	if err := src.CheckMigrations(ctx); err != nil {
		return fmt.Errorf("%w; nothing was changed", err)
	}
	secret, err := chooseSecret(ctx, src, envSecret)
	if err != nil {
		return err
	}

	target := store.RedactDB(*to)
	if err := store.CheckPostgresTarget(ctx, *to, src); err != nil {
		if errors.Is(err, store.ErrTargetNotEmpty) {
			return fmt.Errorf("%s: %w; nothing was changed", target, err)
		}
		return fmt.Errorf("cannot reach the PostgreSQL database: %w; nothing was changed", err)
	}
	dst, err := store.Open(ctx, *to) // applies the PostgreSQL migrations
	if err != nil {
		return fmt.Errorf("prepare %s: %w", target, err)
	}
	defer dst.Close()
	counts, err := dst.CopyFromSnapshot(ctx, src)
	if err != nil {
		return fmt.Errorf("copy into %s: %w", target, err)
	}

	fmt.Fprintf(stdout, "Copied %s into %s in %s; row counts verified:\n\n", *from, target, time.Since(start).Round(time.Millisecond))
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tSQLITE\tPOSTGRESQL\t")
	for _, c := range counts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", c.Table, c.Source, c.Target, c.Note)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout, secret.advice)
	fmt.Fprintf(stdout, "\nThen start Latchkey with LATCHKEY_DB=%s. The SQLite file was not changed; keep it until the PostgreSQL deployment is proven.\n", target)
	return nil
}

// migrationSecret is the secret the SQLite deployment's data was sealed
// with, and what to tell the operator about it.
type migrationSecret struct {
	advice string
}

// chooseSecret finds the server secret the SQLite deployment ran with:
// LATCHKEY_SECRET_KEY if the command was given one, or the secret the
// server generated and kept in the database. The signing keys (made at
// the first start, sealed with the secret) tell which one is right; when
// neither opens them, nothing is copied, since sessions, signing keys,
// webhook secrets and queued messages would all be lost.
func chooseSecret(ctx context.Context, src *store.Snapshot, envSecret string) (migrationSecret, error) {
	stored, err := src.Setting(ctx, "secret_key")
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return migrationSecret{}, err
	}
	keys, err := src.ListOIDCKeys(ctx)
	if err != nil {
		return migrationSecret{}, err
	}
	var env []byte
	if envSecret != "" {
		if env, err = secretKeyBytes(envSecret); err != nil {
			return migrationSecret{}, err
		}
	}
	const keepEnv = "Server secret: the data was sealed with the LATCHKEY_SECRET_KEY this command was given.\n" +
		"Set that same LATCHKEY_SECRET_KEY on every PostgreSQL instance."
	storedAdvice := func() migrationSecret {
		return migrationSecret{advice: "Server secret: the SQLite deployment ran with a secret it generated and kept in its database;\n" +
			"on PostgreSQL the secret comes only from the environment (it is not copied into the database).\n" +
			"Set exactly this on every PostgreSQL instance, and keep it secret:\n\n" +
			"    LATCHKEY_SECRET_KEY=" + secretKeyEnv(stored)}
	}
	switch {
	case len(keys) > 0 && env != nil && oidc.OpensKeys(env, keys):
		return migrationSecret{advice: keepEnv}, nil
	case len(keys) > 0 && stored != nil && oidc.OpensKeys(stored, keys):
		return storedAdvice(), nil
	case len(keys) > 0:
		if env != nil {
			return migrationSecret{}, errors.New("neither the LATCHKEY_SECRET_KEY given nor the secret kept in the database opens the OpenID Connect signing keys; run the command with the LATCHKEY_SECRET_KEY the SQLite server runs with. Nothing was changed")
		}
		return migrationSecret{}, errors.New("the SQLite server runs with a LATCHKEY_SECRET_KEY (the database's signing keys need it): run this command with that LATCHKEY_SECRET_KEY set. Nothing was changed")
	case env != nil:
		return migrationSecret{advice: keepEnv}, nil
	case stored != nil:
		return storedAdvice(), nil
	}
	return migrationSecret{advice: "Server secret: the SQLite database holds nothing sealed yet.\n" +
		"Choose a LATCHKEY_SECRET_KEY of at least 32 characters and set the same one on every PostgreSQL instance."}, nil
}
