package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// commandFunc is a subcommand. It must parse its flags (flag.ContinueOnError,
// output to stderr) before it does anything else, so that "-h" prints its
// flags and returns flag.ErrHelp without side effects: `latchkey -h` runs
// every command that way to list their flags. Wrap a usage mistake (a
// missing argument, a bad flag) in usageError to exit with status 2.
type commandFunc func(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error

// command is one line of the subcommand table.
type command struct {
	// name is one or more words: "backup", "keys rotate".
	name string
	// args is what follows the flags in the synopsis, like "PATH".
	args    string
	summary string
	run     commandFunc
}

// commands is every subcommand; add one with one line here. serve is the
// default when the first argument is a flag or there is none.
var commands = []command{
	{"serve", "", "run the server (the default)", serveCmd},
	{"backup", "PATH", "write a consistent, verified copy of the database, also while the server runs", backupCmd},
	{"healthcheck", "", "ask the running server's /healthz (for container health checks)", healthcheckCmd},
	{"admin create", "", "create a portal admin (prompts for the password, or --password-stdin)", adminCreateCmd},
	{"admin reset-password", "", "set an admin's password and sign them out everywhere", adminResetPasswordCmd},
	{"admin list", "", "list portal admins", adminListCmd},
	{"admin disable-2fa", "", "turn an admin's two-factor sign-in off", adminDisable2FACmd},
	{"apikey create", "", "create an Admin API key (printed once)", apikeyCreateCmd},
	{"keys rotate", "", "make a new OpenID Connect signing key active (the old one stays published until its tokens expire)", keysCmd("rotate")},
	{"keys list", "", "list the OpenID Connect signing keys", keysCmd("list")},
	{"migrate-to-postgres", "", "copy a SQLite database into an empty PostgreSQL one (the file is left untouched)", migrateToPostgresCmd},
}

// usageError is a command-line mistake: cli prints it with the usage and
// exits with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// cli runs the subcommand args name and returns the exit status: 0 on
// success (and for -h), 1 when the command failed, 2 for a usage mistake.
func cli(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			usage(stdout)
			return 0
		}
	}
	cmd, rest, err := findCommand(args)
	if err != nil {
		fmt.Fprintf(stderr, "latchkey: %v\n\n", err)
		usage(stderr)
		return 2
	}
	err = cmd.run(ctx, rest, getenv, stdin, stdout, stderr)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "latchkey %s: %v (see latchkey %s -h)\n", cmd.name, ue.err, cmd.name)
		return 2
	default:
		fmt.Fprintf(stderr, "latchkey %s: %v\n", cmd.name, err)
		return 1
	}
}

// findCommand picks the command whose name is the longest run of leading
// words of args, or serve when args is empty or starts with a flag.
func findCommand(args []string) (command, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return commands[0], args, nil
	}
	for n := min(len(args), 3); n > 0; n-- {
		name := strings.Join(args[:n], " ")
		for _, c := range commands {
			if c.name == name {
				return c, args[n:], nil
			}
		}
	}
	var near []string
	for _, c := range commands {
		if strings.HasPrefix(c.name, args[0]+" ") {
			near = append(near, c.name)
		}
	}
	if len(near) > 0 {
		if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
			return command{}, nil, fmt.Errorf("unknown command %q; %q takes: %s", args[0]+" "+args[1], args[0], strings.Join(near, ", "))
		}
		return command{}, nil, fmt.Errorf("%q needs a subcommand: %s", args[0], strings.Join(near, ", "))
	}
	return command{}, nil, fmt.Errorf("unknown command %q", args[0])
}

// usage lists the commands and, under each, the flags it prints for -h.
func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: latchkey [COMMAND] [FLAGS] [ARGS]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	width := 0
	for _, c := range commands {
		width = max(width, len(synopsis(c)))
	}
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, synopsis(c), c.summary)
	}
	// A cancelled context and an empty environment: a command that
	// ignored -h would fail before touching anything.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range commands {
		var out bytes.Buffer
		err := c.run(ctx, []string{"-h"}, func(string) string { return "" }, strings.NewReader(""), io.Discard, &out)
		if !errors.Is(err, flag.ErrHelp) {
			continue
		}
		fmt.Fprintf(w, "\nlatchkey %s flags:\n", c.name)
		for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
			if strings.HasPrefix(line, "Usage") {
				continue
			}
			fmt.Fprintln(w, line)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Configuration comes from LATCHKEY_* environment variables (see README.md);")
	fmt.Fprintln(w, "flags override them.")
}

func synopsis(c command) string {
	s := c.name + " [flags]"
	if c.args != "" {
		s += " " + c.args
	}
	return s
}

// serveCmd runs the server: the flags are checked here first so that -h
// lists them, then serve reads the whole configuration.
func serveCmd(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, _, stderr io.Writer) error {
	fs := serveFlags(&config{})
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageErrorf("unexpected argument %q", fs.Arg(0))
	}
	return serve(ctx, args, getenv, stderr)
}

// exit runs cli on the process's arguments and exits with its status.
func exit(ctx context.Context, stop func()) {
	code := cli(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
