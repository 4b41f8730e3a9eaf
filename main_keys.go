package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"latchkey/oidc"
)

// keysCmd is `latchkey keys rotate [-alg RS256|ES256]` and `latchkey keys
// list`: OpenID Connect signing keys, for the database in LATCHKEY_DB (or
// -db) and the server secret. A running server picks up a rotation within
// 30 seconds; the previous key stays in JWKS until its tokens expire.
func keysCmd(op string) commandFunc {
	return func(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
		return runKeysOp(ctx, op, args, getenv, stdout, stderr)
	}
}

func runKeysOp(ctx context.Context, op string, args []string, getenv func(string) string, out, stderr io.Writer) error {
	db := strings.TrimSpace(getenv("LATCHKEY_DB"))
	if db == "" {
		db = "latchkey.db"
	}
	fs := flag.NewFlagSet("latchkey keys "+op, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&db, "db", db, "SQLite database file or postgres:// URL (LATCHKEY_DB)")
	alg := oidc.AlgRS256
	if op == "rotate" {
		fs.StringVar(&alg, "alg", oidc.AlgRS256, "signing algorithm: RS256 or ES256")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	secretEnv := getenv("LATCHKEY_SECRET_KEY")
	if secretEnv != "" {
		if _, err := secretKeyBytes(secretEnv); err != nil {
			return err
		}
	}
	st, secret, err := openStoreForCLI(ctx, db, secretEnv)
	if err != nil {
		return err
	}
	defer st.Close()
	alg = strings.ToUpper(alg)
	kr, err := oidc.NewKeyring(ctx, st, secret, alg, oidc.KeyKeep)
	if err != nil {
		return err
	}
	if op == "rotate" {
		kid, err := kr.Rotate(ctx, alg)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "new %s signing key %s is active\n", alg, kid)
	}
	for _, k := range kr.PublishedKeys(ctx) {
		state := "retired (published until its tokens expire)"
		if k.Active {
			state = "active"
		}
		fmt.Fprintf(out, "%s\t%s\t%s\n", k.ID, k.Alg, state)
	}
	return nil
}
