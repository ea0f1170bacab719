package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

// runTrail runs the trail binary and returns stdout, stderr and the exit
// code.
func runTrail(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return runTrailEnv(t, nil, args...)
}

// createToken runs "trail token create --data dir args…" and returns the
// token it prints.
func createToken(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, errOut, code := runTrail(t, append([]string{"token", "create", "--data", dir}, args...)...)
	if code != 0 {
		t.Fatalf("token create %v: exit %d: %s", args, code, errOut)
	}
	return strings.TrimSpace(out)
}

// call makes an API request to a running server with a bearer token and
// returns the status and the body.
func (p *serveProc) call(t *testing.T, method, path, tok, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, p.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// newDataDir makes a Trail data directory, as a first start of trail serve
// does.
func newDataDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	l, err := trail.Open(dir, trail.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTokenKeepsOwnerAndMode: "trail token" run as root over the tokens file
// of a server that runs as another user (here uid 65534) writes a file that
// user still owns, with the mode it had, so that the server can read the
// revocation; a first tokens file is 0600 and the data directory's owner's.
func TestTokenKeepsOwnerAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another user needs root")
	}
	dir := newDataDir(t)
	if err := os.Chown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "tokens.json")
	for _, name := range []string{"app", "other"} {
		if _, errOut, code := runTrail(t, "token", "create", "--data", dir, "--name", name, "--read", "patient/1"); code != 0 {
			t.Fatalf("token create %s: exit %d: %s", name, code, errOut)
		}
	}
	wantOwner(t, path, 65534, 65534, 0o600)

	if err := os.Chown(path, 65534, 1234); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runTrail(t, "token", "revoke", "--data", dir, "app")
	if code != 0 || out != "revoked app\n" {
		t.Fatalf("token revoke: exit %d, %q, %s", code, out, errOut)
	}
	wantOwner(t, path, 65534, 1234, 0o640)
}

func wantOwner(t *testing.T, path string, uid, gid uint32, mode os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Uid != uid || sys.Gid != gid || st.Mode().Perm() != mode {
		t.Errorf("%s: owner %d:%d mode %04o, want %d:%d %04o", path, sys.Uid, sys.Gid, st.Mode().Perm(), uid, gid, mode)
	}
}

// TestTokenWriteFailsLoudly: when the new tokens file cannot be written,
// "trail token revoke" exits non-zero, says what failed, does not print
// "revoked", and the file keeps the old policy.
func TestTokenWriteFailsLoudly(t *testing.T) {
	dir := newDataDir(t)
	if _, errOut, code := runTrail(t, "token", "create", "--data", dir, "--name", "app"); code != 0 {
		t.Fatalf("token create: exit %d: %s", code, errOut)
	}
	path := filepath.Join(dir, "tokens.json")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Something in the way of the temporary file that even root cannot
	// remove: a directory that is not empty.
	if err := os.MkdirAll(filepath.Join(dir, "tokens.json.tmp", "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runTrail(t, "token", "revoke", "--data", dir, "app")
	if code == 0 || strings.Contains(out, "revoked") || !strings.Contains(errOut, "tokens.json") || !strings.Contains(errOut, "unchanged") {
		t.Fatalf("revoke that cannot write: exit %d, stdout %q, stderr %q; want a failure that says the file is unchanged", code, out, errOut)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("tokens.json changed although the revocation failed")
	}
	if out, _, code := runTrail(t, "token", "create", "--data", dir, "--name", "second"); code == 0 || out != "" {
		t.Errorf("create that cannot write: exit %d, printed %q; want a failure and no token", code, out)
	}
}

// TestTokenReservedNames: admin and names starting with trail (in any case)
// are refused with the usage exit code.
func TestTokenReservedNames(t *testing.T) {
	dir := newDataDir(t)
	for _, name := range []string{"admin", "Admin", "trail", "trail-sync", "TRAILbot"} {
		out, errOut, code := runTrail(t, "token", "create", "--data", dir, "--name", name)
		if code != 2 || out != "" || !strings.Contains(errOut, "reserved") {
			t.Errorf("token create --name %s: exit %d, %q, %q; want exit 2 saying the name is reserved", name, code, out, errOut)
		}
	}
	if _, errOut, code := runTrail(t, "token", "create", "--data", dir, "--name", "admin-assistant"); code != 0 {
		t.Errorf("token create --name admin-assistant: exit %d: %s", code, errOut)
	}
}

// TestTokenDataDir: --data must name a Trail data directory: a missing one
// is not created, and an empty or foreign one is refused (exit 2).
func TestTokenDataDir(t *testing.T) {
	base := t.TempDir()
	typo := filepath.Join(base, "typo")
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{typo, empty} {
		for _, args := range [][]string{{"create", "--name", "app"}, {"list"}, {"revoke", "app"}} {
			args = append([]string{"token", args[0], "--data", dir}, args[1:]...)
			out, errOut, code := runTrail(t, args...)
			if code != 2 || out != "" || !strings.Contains(errOut, "not a Trail data directory") {
				t.Errorf("%v: exit %d, %q, %q; want exit 2 saying it is not a Trail data directory", args, code, out, errOut)
			}
		}
	}
	if _, err := os.Stat(typo); err == nil {
		t.Errorf("trail token made %s", typo)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("trail token wrote into a directory that is not a data directory: %v", entries)
	}
}

// TestTokenExpires: --expires takes days or a Go duration, is stored as an
// expiry time and shown by list; nonsense is refused.
func TestTokenExpires(t *testing.T) {
	dir := newDataDir(t)
	start := time.Now()
	if _, errOut, code := runTrail(t, "token", "create", "--data", dir, "--name", "temp", "--expires", "90d"); code != 0 {
		t.Fatalf("token create --expires 90d: exit %d: %s", code, errOut)
	}
	if _, errOut, code := runTrail(t, "token", "create", "--data", dir, "--name", "short", "--expires", "1h30m"); code != 0 {
		t.Fatalf("token create --expires 1h30m: exit %d: %s", code, errOut)
	}
	for _, bad := range []string{"0d", "-1d", "90", "soon", "-5m"} {
		if _, _, code := runTrail(t, "token", "create", "--data", dir, "--name", "bad", "--expires", bad); code != 2 {
			t.Errorf("--expires %s: exit %d, want 2", bad, code)
		}
	}
	out, errOut, code := runTrail(t, "token", "list", "--data", dir)
	if code != 0 {
		t.Fatalf("token list: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "EXPIRES") {
		t.Fatalf("token list:\n%s", out)
	}
	for i, d := range []time.Duration{90 * 24 * time.Hour, 90 * time.Minute} {
		var found bool
		for _, f := range strings.Fields(lines[i+1]) {
			if exp, err := time.Parse(time.RFC3339, f); err == nil && exp.Sub(start) > d-time.Minute && exp.Sub(start) < d+time.Minute {
				found = true
			}
		}
		if !found {
			t.Errorf("token list line %q shows no expiry %v after creation", lines[i+1], d)
		}
	}
}

// TestTokenAsServerUser: the server runs as uid 65534 and owns its data
// directory. A token root creates is that user's to revoke; and when the
// tokens file is root's 0600 (as the old "trail token" left it), that user's
// "trail token revoke" fails, prints nothing on stdout and says what to do.
func TestTokenAsServerUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running as another user needs root")
	}
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(base, "trail")
	b, err := os.ReadFile(trailBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "data")
	l, err := trail.Open(dir, trail.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	filepath.Walk(dir, func(path string, _ os.FileInfo, _ error) error { return os.Lchown(path, 65534, 65534) })
	asServer := func(args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), errb.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), 0
	}
	for _, name := range []string{"app", "other"} {
		if _, errOut, code := runTrail(t, "token", "create", "--data", dir, "--name", name); code != 0 {
			t.Fatalf("token create as root: exit %d: %s", code, errOut)
		}
	}
	if out, errOut, code := asServer("token", "revoke", "--data", dir, "app"); code != 0 || out != "revoked app\n" {
		t.Fatalf("revoke as the server's user: exit %d, %q, %s", code, out, errOut)
	}
	path := filepath.Join(dir, "tokens.json")
	wantOwner(t, path, 65534, 65534, 0o600)

	// The finding itself: the server runs as its user; root revokes; the
	// revoked token stops working.
	srv := exec.Command(bin, "serve", "--data", dir, "--listen", "127.0.0.1:0")
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	p := startServeCmd(t, srv, dir)
	tok, errOut, code := runTrail(t, "token", "create", "--data", dir, "--name", "reader", "--read", "patient/1")
	if code != 0 {
		t.Fatalf("token create as root: exit %d: %s", code, errOut)
	}
	head := func() int {
		req, _ := http.NewRequest("GET", p.url+"/v1/streams/patient/1", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitStatus := func(want int) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for st := head(); st != want; st = head() {
			if time.Now().After(deadline) {
				t.Fatalf("reader's read still %d 2 s after the change, want %d\n%s", st, want, p.log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitStatus(http.StatusNotFound) // allowed: patient/1 has no events
	if out, errOut, code := runTrail(t, "token", "revoke", "--data", dir, "reader"); code != 0 || out != "revoked reader\n" {
		t.Fatalf("revoke as root: exit %d, %q, %s", code, out, errOut)
	}
	waitStatus(http.StatusUnauthorized)
	p.cmd.Process.Signal(syscall.SIGINT)
	<-p.exited

	if err := os.Chown(path, 0, 0); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := asServer("token", "revoke", "--data", dir, "other")
	if code == 0 || out != "" || !strings.Contains(errOut, "permission denied") || !strings.Contains(errOut, "run trail token as") {
		t.Errorf("revoke of a file the user cannot read: exit %d, stdout %q, stderr %q; want a failure saying what to do", code, out, errOut)
	}
}

// TestTokenRole: --role is stored in the principal's entry and listed under
// ROLE ("-" without one); a role that is empty, too long or holds a control
// character is refused (exit 2) saying why, and nothing is written.
func TestTokenRole(t *testing.T) {
	dir := newDataDir(t)
	createToken(t, dir, "--name", "dr-grey", "--read", "patient/*", "--role", "attending physician")
	createToken(t, dir, "--name", "app", "--append", "patient/*")
	for _, tc := range []struct{ role, why string }{
		{"", "role is empty"},
		{strings.Repeat("r", 65), "is 65 bytes: a role is at most 64"},
		{"nurse\x1b[31m", "U+001B, which is not printable"},
		{"a\tb", "U+0009, which is not printable"},
		{"  ", "only spaces"},
	} {
		out, errOut, code := runTrail(t, "token", "create", "--data", dir, "--name", "bad-role", "--role", tc.role)
		if code != 2 || out != "" || !strings.Contains(errOut, "--role: ") || !strings.Contains(errOut, tc.why) {
			t.Errorf("token create --role %q: exit %d, %q, %q; want exit 2 saying %q", tc.role, code, out, errOut, tc.why)
		}
	}
	out, errOut, code := runTrail(t, "token", "list", "--data", dir)
	if code != 0 {
		t.Fatalf("token list: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "PATIENT  ROLE  ") {
		t.Fatalf("token list:\n%s\nwant a ROLE column and 2 principals (none named bad-role)", out)
	}
	col := strings.Index(lines[0], "ROLE")
	for _, w := range []struct{ line, role string }{{lines[1], "attending physician"}, {lines[2], "-"}} {
		if !strings.HasPrefix(w.line[col:], w.role+" ") {
			t.Errorf("token list row %q: ROLE column shows %q, want %q", w.line, w.line[col:], w.role)
		}
	}
}
