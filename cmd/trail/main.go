// Command trail is the Trail audit-trail tool: the server, the commands
// that use its API from a shell, the benchmark and the offline verifier.
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

	"github.com/trailhq/trail"
)

// command is one subcommand.
type command interface {
	Run(ctx context.Context, args []string) error
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: trail <command> [flags]

commands:
  serve       run the server (HTTP API) on a data directory
  token       create, list or revoke the principals of a data directory
  append      append events (JSON arguments or NDJSON on stdin); prints receipts
  query       query stored events; prints them as NDJSON
  tail        follow new events live
  checkpoint  print the latest signed checkpoint
  bench       measure append throughput and acknowledgement latency
  verify      check a data directory offline (records, chains, tree, signed checkpoints) or a
              server from outside, against a trusted verifier key and saved checkpoint
  backup      copy a data directory, or a running server's, up to its latest signed checkpoint
  restore     check a backup and make a new data directory from it
  healthcheck exit 0 when a server's /readyz answers 200 (for container health checks)
  version     print the version, commit and build settings

Run "trail <command> -h" for a command's flags.
`)
}

// setUsage gives fs the usage text of "trail <synopsis>": the synopsis,
// what the command does, then its flags.
func setUsage(fs *flag.FlagSet, synopsis, about string) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: trail %s\n\n%s\n\nFlags:\n", synopsis, about)
		fs.PrintDefaults()
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	var cmd command
	switch args[0] {
	case "serve":
		cmd = &serveCmd{stdout: stdout, stderr: stderr}
	case "token":
		cmd = &tokenCmd{stdout: stdout, stderr: stderr}
	case "append":
		cmd = &appendCmd{stdin: os.Stdin, stdout: stdout, stderr: stderr}
	case "query":
		cmd = &queryCmd{stdout: stdout, stderr: stderr}
	case "tail":
		cmd = &tailCmd{stdout: stdout, stderr: stderr}
	case "checkpoint":
		cmd = &checkpointCmd{stdout: stdout, stderr: stderr}
	case "bench":
		cmd = &benchCmd{stdout: stdout, stderr: stderr}
	case "verify":
		cmd = &verifyCmd{stdout: stdout, stderr: stderr}
	case "backup":
		cmd = &backupCmd{stdout: stdout, stderr: stderr}
	case "restore":
		cmd = &restoreCmd{stdout: stdout, stderr: stderr}
	case "version", "--version":
		cmd = &versionCmd{stdout: stdout, stderr: stderr}
	case "healthcheck":
		cmd = &healthcheckCmd{stdout: stdout, stderr: stderr}
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "trail: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	err := cmd.Run(ctx, args[1:])
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "trail %s: %v\n", args[0], err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// checkSync refuses a --sync that is neither always nor none (exit 2).
func checkSync(v string) error {
	if m := trail.SyncMode(v); m != trail.SyncAlways && m != trail.SyncNone {
		return &exitError{2, fmt.Errorf("--sync %q: want always or none", v)}
	}
	return nil
}
