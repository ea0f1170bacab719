package trail

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/trailhq/trail/internal/checkpoint"
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

// postgresTests is the PostgreSQL server the tests share, started on first use.
var postgresTests struct {
	once sync.Once
	c    *pgtest.Cluster
	err  error
	mu   sync.Mutex // serialises CREATE DATABASE
}

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
	p := &postgresTests
	p.once.Do(func() { p.c, p.err = pgtest.StartCluster(context.Background(), pgtest.ClusterConfig{}) })
	if p.err != nil {
		tb.Fatalf("start PostgreSQL for -store=postgres: %v", p.err)
	}
	ctx := context.Background()
	sum := sha256.Sum256([]byte(dir))
	db := "t" + hex.EncodeToString(sum[:10])
	p.mu.Lock()
	err := createDatabase(ctx, p.c.ConnString(), db)
	p.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	keyFile := filepath.Join(dir, "postgres.key")
	if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
		origin := cfg.Origin
		if origin == "" {
			origin = "trail/test"
		}
		if err := checkpoint.CreateKeyFile(keyFile, origin); err != nil {
			return nil, err
		}
	}
	signer, vkey, err := checkpoint.LoadKey(keyFile)
	if err != nil {
		return nil, err
	}
	// Where the files store keeps it, for the tests that read it there.
	if err := os.WriteFile(filepath.Join(dir, checkpoint.VerifierFile), []byte(vkey+"\n"), 0o644); err != nil {
		return nil, err
	}
	url := postgresURL(dir)
	st, err := postgres.Open(ctx, postgres.Options{URL: url, Signer: signer, VerifierKey: vkey, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	return OpenStore(st, cfg)
}

// postgresURL is the connection string of dir's database.
func postgresURL(dir string) string {
	sum := sha256.Sum256([]byte(dir))
	db := "t" + hex.EncodeToString(sum[:10])
	return strings.Replace(postgresTests.c.ConnString(), "/postgres?", "/"+db+"?", 1)
}

// VerifyTest verifies the log a test wrote in dir on the store -store names
// (Verify, or the PostgreSQL store's verifier).
func VerifyTest(ctx context.Context, dir string, opts VerifyOptions) (VerifyReport, error) {
	if *storeFlag != "postgres" {
		return Verify(ctx, dir, opts)
	}
	return postgres.Verify(ctx, postgresURL(dir), postgres.VerifyOptions{VerifierKey: opts.VerifierKey, Trusted: opts.Trusted})
}

func createDatabase(ctx context.Context, url, name string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

// stopPostgres stops the tests' PostgreSQL server, if one was started.
func stopPostgres() {
	if c := postgresTests.c; c != nil {
		c.Stop()
	}
}
