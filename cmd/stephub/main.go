// Command stephub runs the stephub server and its tools: serve, token,
// migrate, backup, worker and version. See the README for the flags and their env vars.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "stephub:", err)
		os.Exit(1)
	}
}

const usage = `usage: stephub <command> [flags]

commands:
  serve     run the server
  token     print an access token for a user
  migrate   apply the database schema and exit
  backup    copy a SQLite database to a new file (-o FILE), safely while it serves
  worker    run the reference worker against a server
  version   print the version

Run "stephub <command> -h" for a command's flags.
`

// run is the whole program, with its environment passed in so that tests can
// run it in-process. It returns when the command is done or ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout, stderr)
	case "token":
		return token(rest, getenv, stdout, stderr)
	case "migrate":
		return migrate(ctx, rest, getenv, stderr)
	case "backup":
		return backup(ctx, rest, getenv, stderr)
	case "worker":
		return runWorker(ctx, rest, getenv, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "stephub", version)
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}
