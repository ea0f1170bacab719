package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/internal/pgtest"
)

// waitStatus repeats a request on each process until it answers want,
// failing after within.
func waitStatus(t *testing.T, within time.Duration, method, path, tok, body string, want int, procs ...*serveProc) {
	t.Helper()
	deadline := time.Now().Add(within)
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, p := range procs {
		for {
			req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := hc.Do(req)
			if err != nil {
				p.cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, in its log
				time.Sleep(time.Second)
				t.Fatalf("%s %s on %s: %v\n%s", method, path, p.url, err, p.log())
			}
			bb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, b := resp.StatusCode, string(bb)
			if code == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s %s on %s: %d %s, want %d within %v\n%s", method, path, p.url, code, b, want, within, p.log())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// TestServePostgresPrincipals: with --store the principals are the
// database's. Two trail serve processes share one; the admin token the first
// wrote works on the second, which holds no copy; a token made with trail
// token create --store works on both within a second, and a revoke with
// trail token revoke --store refuses it on both within a second; trail token
// list --store shows it revoked. A latest policy version that cannot be read
// refuses reads (503) on both while appends go on, until a good version
// follows it. A third process whose DIR/admin.token is not the log's does
// not accept that token.
func TestServePostgresPrincipals(t *testing.T) {
	ctx := context.Background()
	c := pgtest.Start(t)
	url := c.ConnString()
	base := t.TempDir()
	keyFile := filepath.Join(base, "signing.key")

	// trail token --store refuses a database that holds no log yet.
	if _, errOut, code := runTrail(t, "token", "list", "--store", url); code != 2 || !strings.Contains(errOut, "no Trail log") {
		t.Errorf("token list on an empty database: exit %d: %s", code, errOut)
	}

	a := pgServe(t, c, keyFile, filepath.Join(base, "a"), "")
	b := pgServe(t, c, keyFile, filepath.Join(base, "b"), "")
	if b.token != "" {
		t.Fatal("the second process wrote an admin token")
	}
	admin := a.token
	const event = `{"stream":"patient/1","type":"patient-record.read","action":"R","actor":{"id":"dr-1"},"patient":"1"}`
	for _, p := range []*serveProc{a, b} {
		if code, body := p.call(t, "POST", "/v1/events", admin, event); code != http.StatusCreated {
			t.Fatalf("append with the first process's admin token on %s: %d %s", p.url, code, body)
		}
	}

	// Create: the token works on both within a second.
	out, errOut, code := runTrail(t, "token", "create", "--store", url, "--name", "reader", "--read", "patient/*")
	if code != 0 {
		t.Fatalf("token create --store: exit %d: %s", code, errOut)
	}
	reader := strings.TrimSpace(out)
	out, errOut, code = runTrail(t, "token", "create", "--store", url, "--name", "writer", "--append", "patient/*")
	if code != 0 {
		t.Fatalf("token create --store: exit %d: %s", code, errOut)
	}
	writer := strings.TrimSpace(out)
	const read = "/v1/events?stream=patient/1"
	waitStatus(t, time.Second, "GET", read, reader, "", http.StatusOK, a, b)
	waitStatus(t, time.Second, "POST", "/v1/events", writer, event, http.StatusCreated, a, b)
	if _, errOut, code := runTrail(t, "token", "create", "--store", url, "--name", "reader"); code == 0 || !strings.Contains(errOut, "exists") {
		t.Errorf("a second reader: exit %d: %s", code, errOut)
	}
	if _, errOut, code := runTrail(t, "token", "create", "--store", url, "--name", "trail-x"); code != 2 {
		t.Errorf("a reserved name: exit %d: %s", code, errOut)
	}
	if _, errOut, code := runTrail(t, "token", "list", "--store", url, "--data", base); code != 2 {
		t.Errorf("--store with --data: exit %d: %s", code, errOut)
	}

	// A latest version that cannot be read: reads refused, appends go on.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int64
	if err := conn.QueryRow(ctx, "SELECT max(version) FROM trail_policy").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO trail_policy (version, policy, changed_by) VALUES ($1, '{\"principals\": [', 'test')", v+1); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, 2*time.Second, "GET", read, reader, "", http.StatusServiceUnavailable, a, b)
	for _, p := range []*serveProc{a, b} {
		if code, body := p.call(t, "POST", "/v1/events", writer, event); code != http.StatusCreated {
			t.Errorf("append while the policy is unreadable on %s: %d %s", p.url, code, body)
		}
		if code, body := p.call(t, "GET", read, admin, ""); code != http.StatusOK {
			t.Errorf("the admin's read while the policy is unreadable on %s: %d %s", p.url, code, body)
		}
	}
	if _, errOut, code := runTrail(t, "token", "revoke", "--store", url, "reader"); code == 0 || !strings.Contains(errOut, "good version") {
		t.Errorf("revoke on an unreadable policy: exit %d: %s", code, errOut)
	}
	time.Sleep(1100 * time.Millisecond) // the failure is logged once a second
	for _, p := range []*serveProc{a, b} {
		if !strings.Contains(p.log(), "principals unreadable") {
			t.Errorf("%s did not log the unreadable policy\n%s", p.url, p.log())
		}
	}
	if _, err := conn.Exec(ctx, "INSERT INTO trail_policy (version, policy, changed_by) SELECT $1, policy, 'repair' FROM trail_policy WHERE version = $2", v+2, v); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, 2*time.Second, "GET", read, reader, "", http.StatusOK, a, b)

	// Revoke: refused on both within a second; list shows it.
	if out, errOut, code := runTrail(t, "token", "revoke", "--store", url, "reader"); code != 0 || out != "revoked reader\n" {
		t.Fatalf("token revoke --store: exit %d: %q %s", code, out, errOut)
	}
	waitStatus(t, time.Second, "GET", read, reader, "", http.StatusUnauthorized, a, b)
	out, errOut, code = runTrail(t, "token", "list", "--store", url)
	if code != 0 {
		t.Fatalf("token list --store: exit %d: %s", code, errOut)
	}
	var seen bool
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "reader" {
			seen = true
			if f[len(f)-1] == "-" {
				t.Errorf("reader not shown revoked:\n%s", out)
			}
		}
	}
	if !seen || !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "writer") {
		t.Errorf("token list --store:\n%s", out)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM trail_policy").Scan(&n); err != nil || n != int(v)+3 {
		t.Errorf("%d policy versions (%v), want %d: the history keeps every one", n, err, v+3)
	}

	// A process whose admin token file is not the log's does not accept it.
	dir := filepath.Join(base, "c")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	vkey, err := os.ReadFile(filepath.Join(base, "a", "checkpoint.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	own := string(auth.NewToken())
	for name, content := range map[string]string{"checkpoint.vkey": string(vkey), "admin.token": own + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := pgServe(t, c, keyFile, dir, "")
	if !strings.Contains(p.log(), "not the log's admin token") {
		t.Errorf("no warning about a foreign admin token\n%s", p.log())
	}
	if code, body := p.call(t, "GET", read, own, ""); code != http.StatusUnauthorized {
		t.Errorf("a foreign admin token: %d %s", code, body)
	}
	if code, body := p.call(t, "GET", read, admin, ""); code != http.StatusOK {
		t.Errorf("the log's admin token on the third process: %d %s", code, body)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "admin.token")); string(b) != own+"\n" {
		t.Error("the third process changed its admin token file")
	}
}
