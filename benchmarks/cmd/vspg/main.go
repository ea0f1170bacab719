// Command vspg measures Trail beside PostgreSQL 15 on the workload of "trail
// bench" and prints the ratios. It starts a throwaway PostgreSQL cluster from
// the installed binaries and Trail's server on loopback, and removes both
// when it ends, on error or interrupt too.
//
//	cd benchmarks && go run ./cmd/vspg [--events N] [--size 300] [--producers 64] [--runs 3] [--on-postgres] [--json]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/trailhq/trail/benchmarks"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err == flag.ErrHelp {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vspg:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vspg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg benchmarks.Config
	fs.IntVar(&cfg.Events, "events", 100000, "events of each Trail run and of the PostgreSQL COPY run")
	fs.IntVar(&cfg.InsertEvents, "insert-events", 30000, "events of the PostgreSQL single-row INSERT run (slower)")
	fs.IntVar(&cfg.Size, "size", 300, "approximate size of an event as a client sends it (JSON), in bytes")
	fs.IntVar(&cfg.Producers, "producers", 64, "concurrent callers, each waiting; PostgreSQL gets as many connections")
	fs.IntVar(&cfg.Streams, "streams", 1000, "distinct streams the events go to")
	fs.IntVar(&cfg.CopyConns, "copy-conns", 4, "connections running a COPY at once in the batched mode")
	fs.IntVar(&cfg.CopyBatch, "copy-batch", 1000, "events per COPY in the batched mode")
	fs.IntVar(&cfg.Runs, "runs", 3, "runs of each mode, one after the other; medians are reported, and ratios are the median of the ratios within each run")
	fs.BoolVar(&cfg.Embedded, "embedded", false, "also drive Trail's engine in-process, without HTTP")
	fs.BoolVar(&cfg.SkipHTTP, "no-http", false, "leave out Trail over HTTP")
	fs.BoolVar(&cfg.OnPostgres, "on-postgres", false, "also run Trail with its log in the same PostgreSQL cluster (trail serve --store)")
	fs.StringVar(&cfg.BaseDir, "dir", "", "directory for Trail's data and PostgreSQL's cluster (default: the system's temporary directory)")
	fs.StringVar(&cfg.Cluster.BinDir, "pg-bin", "", "directory of initdb and postgres (default: pg_config --bindir, then /usr/lib/postgresql/15/bin, then $PATH)")
	fs.StringVar(&cfg.Cluster.RunAs, "pg-user", "", "when root, the user to run PostgreSQL as (default: postgres, else nobody)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	quiet := fs.Bool("q", false, "do not print a line to stderr as each run ends")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	rep, err := benchmarks.Compare(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return benchmarks.WriteTable(stdout, rep)
}
