package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/client"
	"github.com/trailhq/trail/internal/bench"
	"github.com/trailhq/trail/server"
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
// loopback port, as "trail serve" does, and returns the Go client connected
// to it (batches of up to 1000 events, lanes batches in flight).
func openHTTP(ctx context.Context, baseDir string, lanes int) (trailSide, error) {
	dir, err := os.MkdirTemp(baseDir, "trail-vspg-data-")
	if err != nil {
		return trailSide{}, err
	}
	l, err := trail.Open(dir, trail.DefaultConfig())
	if err != nil {
		os.RemoveAll(dir)
		return trailSide{}, fmt.Errorf("open trail in %s: %w", dir, err)
	}
	hs, addr, tok, err := serve(l, dir)
	if err != nil {
		l.Close(ctx)
		os.RemoveAll(dir)
		return trailSide{}, err
	}
	c, err := client.New("http://"+addr, client.WithToken(string(tok)), client.WithLanes(lanes))
	if err != nil {
		hs.Close()
		l.Close(ctx)
		os.RemoveAll(dir)
		return trailSide{}, err
	}
	stop := func(ctx context.Context) (uint64, error) {
		defer os.RemoveAll(dir)
		err := c.Close(ctx)
		err = errors.Join(err, hs.Shutdown(ctx), l.Close(ctx))
		return l.Size(), err
	}
	return trailSide{a: bench.Engine{L: c}, stop: stop}, nil
}

// serve serves l over HTTP on a free loopback port with the admin token of
// dir.
func serve(l *trail.Log, dir string) (*http.Server, string, server.Token, error) {
	tok, _, err := server.EnsureAdminToken(dir)
	if err != nil {
		return nil, "", "", err
	}
	srv, err := server.New(l, server.Config{AdminToken: tok})
	if err != nil {
		return nil, "", "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", "", fmt.Errorf("listen on loopback: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	hs.RegisterOnShutdown(srv.Shutdown)
	go hs.Serve(ln)
	return hs, ln.Addr().String(), tok, nil
}

// httpAvailable says whether openHTTP can run in this build.
const httpAvailable = true
