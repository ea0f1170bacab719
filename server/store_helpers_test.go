package server_test

import (
	"context"
	"flag"
	"os"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/pgtest"
)

// The server's end-to-end tests run on the store -store names: "files" (a
// data directory, the default) or "postgres" (a PostgreSQL server the tests
// start, one database per data directory). Tests of the files themselves
// (damaged records on disk) open the engine on files whatever it says.
var storeFlag = flag.String("store", "files", "the store the server's end-to-end tests run on: files or postgres")

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// openEngine opens the engine a test serves, keeping its data (or, on
// PostgreSQL, naming its database) by dir.
func openEngine(t testing.TB, dir string, cfg trail.Config) (*trail.Log, error) {
	t.Helper()
	if *storeFlag != "postgres" {
		return trail.Open(dir, cfg)
	}
	st, err := pgtest.StoreFor(context.Background(), dir, cfg.Origin, cfg.Logger)
	if err != nil {
		t.Fatalf("PostgreSQL for -store=postgres: %v", err)
	}
	return trail.OpenStore(st, cfg)
}
