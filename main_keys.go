package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"latchkey/oidc"
	"latchkey/store"
)

// runKeys is `latchkey keys rotate [-alg RS256|ES256]` and `latchkey keys
// list`: OpenID Connect signing keys, for the database in LATCHKEY_DB (or
// -db) and the server secret. A running server picks up a rotation within
// 30 seconds; the previous key stays in JWKS until its tokens expire.
func runKeys(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	usage := errors.New("usage: latchkey keys rotate [-alg RS256|ES256] [-db FILE] | latchkey keys list [-db FILE]")
	if len(args) == 0 || (args[0] != "rotate" && args[0] != "list") {
		return usage
	}
	db := strings.TrimSpace(getenv("LATCHKEY_DB"))
	if db == "" {
		db = "latchkey.db"
	}
	fs := flag.NewFlagSet("latchkey keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&db, "db", db, "SQLite database file (LATCHKEY_DB)")
	alg := fs.String("alg", oidc.AlgRS256, "signing algorithm: RS256 or ES256")
	if err := fs.Parse(args[1:]); err != nil {
		return usage
	}
	secretEnv := getenv("LATCHKEY_SECRET_KEY")
	if secretEnv != "" && len(secretEnv) < 32 {
		return fmt.Errorf("LATCHKEY_SECRET_KEY must be at least 32 characters")
	}
	st, err := store.Open(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	secret, err := serverSecret(ctx, st, secretEnv)
	if err != nil {
		return err
	}
	*alg = strings.ToUpper(*alg)
	kr, err := oidc.NewKeyring(ctx, st, secret, *alg, oidc.KeyKeep)
	if err != nil {
		return err
	}
	if args[0] == "rotate" {
		kid, err := kr.Rotate(ctx, *alg)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "new %s signing key %s is active\n", strings.ToUpper(*alg), kid)
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
