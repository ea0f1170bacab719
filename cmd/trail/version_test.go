package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// TestVersion: trail version names the Go version and the platform; with
// --json it is one object a program can read.
func TestVersion(t *testing.T) {
	out, errOut, code := runTrail(t, "version")
	if code != 0 || !strings.HasPrefix(out, "trail ") || !strings.Contains(out, runtime.Version()) ||
		!strings.Contains(out, runtime.GOOS+"/"+runtime.GOARCH) {
		t.Fatalf("trail version: exit %d:\n%s%s", code, out, errOut)
	}
	out, errOut, code = runTrail(t, "version", "--json")
	var b buildInfo
	if err := json.Unmarshal([]byte(out), &b); code != 0 || err != nil {
		t.Fatalf("trail version --json: exit %d, %v:\n%s%s", code, err, out, errOut)
	}
	if b.Go != runtime.Version() || b.OS != runtime.GOOS || b.Arch != runtime.GOARCH || b.Version == "" {
		t.Fatalf("trail version --json: %+v", b)
	}
	if _, _, code := runTrail(t, "version", "extra"); code != 2 {
		t.Fatalf("trail version extra: exit %d, want 2", code)
	}
}

// TestVersionUserAgent: the command line's requests, through the client
// package and its own, say User-Agent: trail/<version>.
func TestVersionUserAgent(t *testing.T) {
	var mu sync.Mutex
	var agents []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents = append(agents, r.URL.Path+" "+r.UserAgent())
		mu.Unlock()
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	runTrail(t, "healthcheck", "--url", srv.URL)
	runTrailEnv(t, []string{"TRAIL_TOKEN=x"}, "checkpoint", "--server", srv.URL)
	mu.Lock()
	defer mu.Unlock()
	if len(agents) < 2 {
		t.Fatalf("requests: %q", agents)
	}
	for _, a := range agents {
		if _, ua, _ := strings.Cut(a, " "); !strings.HasPrefix(ua, "trail/") {
			t.Errorf("request %s: want User-Agent trail/<version>", a)
		}
	}
}

// TestHealthcheck: exit 0 against a serving trail serve, found by --url or
// by TRAIL_LISTEN alone (as a container's HEALTHCHECK runs it); exit 1 with
// the reason against a closed port or a server that is not ready.
func TestHealthcheck(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startServe(t, dir)
	if out, errOut, code := runTrail(t, "healthcheck", "--url", p.url); code != 0 {
		t.Fatalf("healthcheck --url %s: exit %d: %s%s", p.url, code, out, errOut)
	}
	addr := strings.TrimPrefix(p.url, "http://")
	if out, errOut, code := runTrailEnv(t, []string{"TRAIL_LISTEN=" + addr, "TRAIL_TLS_CERT=", "TRAIL_CONFIG="}, "healthcheck"); code != 0 {
		t.Fatalf("healthcheck with TRAIL_LISTEN=%s: exit %d: %s%s", addr, code, out, errOut)
	}
	// A wildcard listen address is reached on loopback.
	_, port, _ := net.SplitHostPort(addr)
	if _, errOut, code := runTrailEnv(t, []string{"TRAIL_LISTEN=:" + port, "TRAIL_TLS_CERT=", "TRAIL_CONFIG="}, "healthcheck"); code != 0 {
		t.Fatalf("healthcheck with TRAIL_LISTEN=:%s: exit %d: %s", port, code, errOut)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	_, errOut, code := runTrail(t, "healthcheck", "--url", "http://"+closed, "--timeout", "2s")
	if code != 1 || !strings.Contains(errOut, "not healthy") || !strings.Contains(errOut, closed) {
		t.Fatalf("healthcheck against a closed port: exit %d: %s", code, errOut)
	}

	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "fsync failed", http.StatusServiceUnavailable)
	}))
	defer notReady.Close()
	_, errOut, code = runTrail(t, "healthcheck", "--url", notReady.URL)
	if code != 1 || !strings.Contains(errOut, "503") || !strings.Contains(errOut, "fsync failed") {
		t.Fatalf("healthcheck against a server not ready: exit %d: %s", code, errOut)
	}

	// With TLS configured, the default URL is https.
	if u, err := serveURL("", []string{"TRAIL_LISTEN=0.0.0.0:8443", "TRAIL_TLS_CERT=/etc/trail/cert.pem"}); err != nil || u != "https://127.0.0.1:8443" {
		t.Fatalf("serveURL with TLS: %q, %v", u, err)
	}
	if u, err := serveURL("", nil); err != nil || u != "http://127.0.0.1:7070" {
		t.Fatalf("serveURL by default: %q, %v", u, err)
	}
}
