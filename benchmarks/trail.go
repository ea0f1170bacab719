package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/bench"
)

// trailSide is a Trail appender with a fresh data directory, and how to stop
// it: stop drains, closes and removes the directory, and reports how many
// events the log holds.
type trailSide struct {
	a    bench.Appender
	stop func(ctx context.Context) (size uint64, err error)
}

// openEmbedded opens the engine in-process, as "trail bench --embedded" does.
func openEmbedded(baseDir string) (trailSide, error) {
	dir, err := os.MkdirTemp(baseDir, "trail-vspg-data-")
	if err != nil {
		return trailSide{}, err
	}
	l, err := trail.Open(dir, trail.DefaultConfig())
	if err != nil {
		os.RemoveAll(dir)
		return trailSide{}, fmt.Errorf("open trail in %s: %w", dir, err)
	}
	stop := func(ctx context.Context) (uint64, error) {
		defer os.RemoveAll(dir)
		err := l.Close(ctx)
		return l.Size(), err
	}
	return trailSide{a: bench.Engine{L: l}, stop: stop}, nil
}

// openHTTP starts the engine and its HTTP server in-process on a free
// loopback port and returns the Go client connected to it.
func openHTTP(ctx context.Context, baseDir string) (trailSide, error) {
	return trailSide{}, errors.New("trail over HTTP: the server and client packages are not there yet")
}

// httpAvailable says whether openHTTP can run in this build.
const httpAvailable = false
