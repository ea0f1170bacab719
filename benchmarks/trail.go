package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/client"
	"github.com/trailhq/trail/internal/bench"
	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/store/postgres"
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

// openOnPostgres opens the engine on a fresh database of the cluster (the
// PostgreSQL store, as "trail serve --store" does), in-process or served over
// HTTP to the Go client.
func openOnPostgres(ctx context.Context, baseDir, conn string, overHTTP bool, lanes int) (trailSide, error) {
	dir, err := os.MkdirTemp(baseDir, "trail-vspg-pg-")
	if err != nil {
		return trailSide{}, err
	}
	fail := func(err error) (trailSide, error) {
		os.RemoveAll(dir)
		return trailSide{}, err
	}
	db := "trail_" + strings.ReplaceAll(filepath.Base(dir), "-", "_")
	url, err := createDatabase(ctx, conn, db)
	if err != nil {
		return fail(err)
	}
	keyFile := filepath.Join(dir, "signing.key")
	if err := checkpoint.CreateKeyFile(keyFile, "trail/vspg"); err != nil {
		return fail(err)
	}
	signer, vkey, err := checkpoint.LoadKey(keyFile)
	if err != nil {
		return fail(err)
	}
	st, err := postgres.Open(ctx, postgres.Options{URL: url, Signer: signer, VerifierKey: vkey})
	if err != nil {
		return fail(err)
	}
	l, err := trail.OpenStore(st, trail.DefaultConfig())
	if err != nil {
		return fail(err)
	}
	if !overHTTP {
		stop := func(ctx context.Context) (uint64, error) {
			defer os.RemoveAll(dir)
			err := l.Close(ctx)
			return l.Size(), err
		}
		return trailSide{a: bench.Engine{L: l}, stop: stop}, nil
	}
	hs, addr, tok, err := serve(l, dir)
	if err != nil {
		l.Close(ctx)
		return fail(err)
	}
	c, err := client.New("http://"+addr, client.WithToken(string(tok)), client.WithLanes(lanes))
	if err != nil {
		hs.Close()
		l.Close(ctx)
		return fail(err)
	}
	stop := func(ctx context.Context) (uint64, error) {
		defer os.RemoveAll(dir)
		err := c.Close(ctx)
		err = errors.Join(err, hs.Shutdown(ctx), l.Close(ctx))
		return l.Size(), err
	}
	return trailSide{a: bench.Engine{L: c}, stop: stop}, nil
}

// createDatabase makes a database on the cluster and returns its connection
// string.
func createDatabase(ctx context.Context, conn, name string) (string, error) {
	c, err := pgx.Connect(ctx, conn)
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return strings.Replace(conn, "/postgres?", "/"+name+"?", 1), nil
}
