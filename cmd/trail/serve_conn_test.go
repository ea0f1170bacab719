package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

// TestServeConnTimeouts: trail serve's HTTP server wants a request's
// headers within 10s and closes idle keep-alive connections after 120s
// (DESIGN.md, Hardening: Connections). The daemon's server has those
// values; a server built the same way with shortened ones cuts off a
// client sending its headers one byte at a time, and closes a connection
// left idle after a request.
func TestServeConnTimeouts(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	if h := httpServer(http.NotFoundHandler(), nil, logger); h.ReadHeaderTimeout != 10*time.Second || h.IdleTimeout != 120*time.Second {
		t.Errorf("httpServer: header timeout %v, idle timeout %v; want 10s and 2m0s", h.ReadHeaderTimeout, h.IdleTimeout)
	}

	// The daemon serves with httpServer's values.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := trail.DefaultConfig()
	cfg.Logger = logger
	d, err := startDaemon(t.TempDir(), nil, cfg, server.Config{}, ln, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.http.ReadHeaderTimeout != headerTimeout || d.http.IdleTimeout != idleTimeout {
		t.Errorf("daemon: header timeout %v, idle timeout %v; want %v and %v", d.http.ReadHeaderTimeout, d.http.IdleTimeout, headerTimeout, idleTimeout)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := d.stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}

	// A real connection, against timeouts short enough for a test.
	const header, idle = 300 * time.Millisecond, 600 * time.Millisecond
	h := httpServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") }), nil, logger)
	h.ReadHeaderTimeout, h.IdleTimeout = header, idle
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go h.Serve(ln)
	t.Cleanup(func() { h.Close() })
	addr := ln.Addr().String()

	t.Run("slow headers", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		closed := make(chan error, 1)
		go func() {
			// Cut off: the server closes the connection, with or without a
			// 4xx first (Go answers 400 to headers left half sent).
			b, err := io.ReadAll(conn)
			if errors.Is(err, syscall.ECONNRESET) {
				// Closed while the client was still writing: the kernel
				// answers the next byte with a reset. Cut off, too.
				err = nil
			}
			if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 4") {
				err = errors.New("the server answered: " + string(b))
			}
			closed <- err
		}()
		began := time.Now()
		cutOff := func(err error) {
			if err != nil {
				t.Fatalf("slow headers: %v", err)
			}
			took := time.Since(began)
			if took < header-50*time.Millisecond || took > header+time.Second {
				t.Errorf("slow headers cut off after %v, want about %v", took.Round(time.Millisecond), header)
			}
		}
		head := "GET / HTTP/1.1\r\nHost: trail\r\nX-Slow: " + strings.Repeat("a", 100)
		for i := 0; i < len(head); i++ {
			if _, err := conn.Write([]byte{head[i]}); err != nil {
				// The server closed it; the reader says how.
				select {
				case err := <-closed:
					cutOff(err)
				case <-time.After(time.Second):
					t.Fatalf("a write failed (%v) but the connection reads on", err)
				}
				return
			}
			select {
			case err := <-closed:
				cutOff(err)
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		t.Fatalf("a client sent headers one byte every 50ms for %v and was not cut off (header timeout %v)", time.Since(began).Round(time.Millisecond), header)
	})

	t.Run("idle keep-alive", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: trail\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("first request: %d (close %v), want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
		}
		answered := time.Now()
		conn.SetReadDeadline(time.Now().Add(idle + 2*time.Second))
		n, err := br.Read(make([]byte, 1))
		took := time.Since(answered)
		if n != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("idle connection after %v: read %d bytes, %v; want it closed by the server (EOF)", took.Round(time.Millisecond), n, err)
		}
		if took < idle-100*time.Millisecond {
			t.Errorf("idle connection closed after %v, before the idle timeout %v", took.Round(time.Millisecond), idle)
		}
	})
}
