package trail

import (
	"context"
	"flag"
	"fmt"

	"github.com/trailhq/trail/internal/pgtest"
	"github.com/trailhq/trail/internal/store/postgres"
)

// The engine's conformance tests (appends, reads, proofs, batches, ids,
// queries, scopes, restarts, the model-based suites) run on the store that
// -store names: "files" (a data directory, the default) or "postgres" (a
// PostgreSQL server the tests start with initdb, one database per data
// directory a test opens, so that reopening a directory reopens its log).
// The crash, power-loss and tampering suites are about files and run on
// files whatever the flag says.
var storeFlag = flag.String("store", "files", "the store the engine's conformance tests run on: files or postgres")

// testingT is what the harness needs of a test (testing.TB and rapid.T).
type testingT interface {
	Helper()
	Fatalf(format string, args ...any)
}

// openStore opens the engine for a test on the store -store names.
func openStore(tb testingT, dir string, cfg Config) (*Log, error) {
	switch *storeFlag {
	case "files":
		return Open(dir, cfg)
	case "postgres":
		return openPostgres(tb, dir, cfg)
	}
	return nil, fmt.Errorf("-store=%q: want files or postgres", *storeFlag)
}

// OpenTest is openStore for the package's external tests.
func OpenTest(tb testingT, dir string, cfg Config) (*Log, error) { return openStore(tb, dir, cfg) }

// openPostgres opens the log of dir in its own database, creating the
// database and a signing key (kept in dir) on first use.
func openPostgres(tb testingT, dir string, cfg Config) (*Log, error) {
	tb.Helper()
	st, err := pgtest.StoreFor(context.Background(), dir, cfg.Origin, cfg.Logger)
	if err != nil {
		tb.Fatalf("PostgreSQL for -store=postgres: %v", err)
	}
	return OpenStore(st, cfg)
}

// VerifyTest verifies the log a test wrote in dir on the store -store names
// (Verify, or the PostgreSQL store's verifier).
func VerifyTest(ctx context.Context, dir string, opts VerifyOptions) (VerifyReport, error) {
	if *storeFlag != "postgres" {
		return Verify(ctx, dir, opts)
	}
	url, err := pgtest.DatabaseFor(ctx, dir)
	if err != nil {
		return VerifyReport{}, err
	}
	return postgres.Verify(ctx, url, postgres.VerifyOptions{VerifierKey: opts.VerifierKey, Trusted: opts.Trusted})
}

// stopPostgres stops the tests' PostgreSQL server, if one was started.
func stopPostgres() { pgtest.StopShared() }
