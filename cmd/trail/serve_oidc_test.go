package main

import (
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/trailhq/trail/server"
)

// hdOIDC parses trail serve's OpenID Connect flags from args.
func hdOIDC(t *testing.T, args ...string) (*server.OIDCConfig, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o serveOIDC
	o.flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return o.config()
}

// writeSecret writes a client secret file with mode.
func writeSecret(t *testing.T, secret string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "oidc.secret")
	if err := os.WriteFile(path, []byte(secret), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// TestServeOIDCConfig: the flags reach the console's configuration, the
// secret comes only from a file its owner alone may read, and what would
// not work is refused naming the flag.
func TestServeOIDCConfig(t *testing.T) {
	if c, err := hdOIDC(t); c != nil || err != nil {
		t.Fatalf("no flags: %+v, %v; want no OpenID Connect", c, err)
	}
	redirect := "https://trail.example.org" + server.OIDCCallbackPath
	c, err := hdOIDC(t, "--oidc-issuer", "https://idp.example.org/realms/h", "--oidc-client-id", "trail",
		"--oidc-client-secret-file", writeSecret(t, "s3cret\n", 0o600), "--oidc-redirect-url", redirect,
		"--oidc-patient-claim", "patient_id", "--oidc-scopes", "openid, profile,patient")
	if err != nil {
		t.Fatal(err)
	}
	want := &server.OIDCConfig{Issuer: "https://idp.example.org/realms/h", ClientID: "trail", ClientSecret: "s3cret",
		RedirectURL: redirect, PrincipalClaim: "sub", PatientClaim: "patient_id", Scopes: []string{"openid", "profile", "patient"}}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("configuration (-want +got):\n%s", diff)
	}

	issuer := []string{"--oidc-issuer", "https://idp.example.org", "--oidc-client-id", "trail", "--oidc-redirect-url", redirect}
	for _, bad := range []struct {
		args []string
		says []string
	}{
		{append(issuer, "--oidc-client-secret-file", writeSecret(t, "s", 0o640)), []string{"--oidc-client-secret-file", "mode 0640", "chmod 600"}},
		{append(issuer, "--oidc-client-secret-file", writeSecret(t, "s", 0o604)), []string{"mode 0604"}},
		{append(issuer, "--oidc-client-secret-file", writeSecret(t, "\n", 0o600)), []string{"--oidc-client-secret-file", "alone on one line"}},
		{append(issuer, "--oidc-client-secret-file", "/nonexistent/secret"), []string{"--oidc-client-secret-file", "/nonexistent/secret"}},
		{[]string{"--oidc-issuer", "https://idp.example.org", "--oidc-client-id", "trail"}, []string{"--oidc-redirect-url"}},
		{[]string{"--oidc-issuer", "https://idp.example.org", "--oidc-redirect-url", redirect}, []string{"--oidc-client-id"}},
		{[]string{"--oidc-client-id", "trail"}, []string{"need --oidc-issuer"}},
		{[]string{"--oidc-issuer", "http://idp.example.org", "--oidc-client-id", "trail", "--oidc-redirect-url", redirect}, []string{"want https"}},
		{append(issuer, "--oidc-principal-claim", ""), []string{"nobody could sign in"}},
	} {
		_, err := hdOIDC(t, bad.args...)
		if err == nil {
			t.Errorf("%q accepted", bad.args)
			continue
		}
		for _, s := range bad.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%q: error %q does not say %q", bad.args, err, s)
			}
		}
	}
}

// TestServeOIDCSignIn: trail serve with the flags signs a principal of the
// tokens file in through a provider (mockoidc, whose subject names the
// principal by the default claim); a secret file others may read stops it
// from starting, with exit 2.
func TestServeOIDCSignIn(t *testing.T) {
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	dir := newDataDir(t)
	if _, errOut, code := runTrail(t, "token", "create", "--data", dir, "--name", "officer", "--read", "patient/*"); code != 0 {
		t.Fatalf("token create: %d: %s", code, errOut)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"--oidc-issuer", m.Issuer(), "--oidc-client-id", m.ClientID,
		"--oidc-redirect-url", "http://" + addr + server.OIDCCallbackPath}

	_, errOut, code := runTrail(t, append([]string{"serve", "--data", dir, "--listen", addr, "--oidc-client-secret-file",
		writeSecret(t, m.ClientSecret, 0o644)}, args...)...)
	if code != 2 || !strings.Contains(errOut, "chmod 600") {
		t.Fatalf("secret file readable by others: exit %d, want 2 saying chmod 600: %s", code, errOut)
	}

	cmd := []string{"serve", "--data", dir, "--listen", addr, "--oidc-client-secret-file", writeSecret(t, m.ClientSecret, 0o600)}
	p := startServeCmd(t, exec.Command(trailBin, append(cmd, args...)...), dir)
	m.QueueUser(&mockoidc.MockUser{Subject: "officer"})
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar}
	resp, err := b.Get(p.url + "/ui/signin/oidc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = b.Get(p.url + "/ui/search")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "Signed in as <strong>officer</strong>") {
		t.Fatalf("after the provider's sign-in, /ui/search (%s) is not officer's: %.500s\nlog:\n%s", resp.Request.URL, body, p.log())
	}
	log := p.log()
	if !strings.Contains(log, "OpenID Connect provider discovered") || !strings.Contains(log, `msg="console sign-in" principal=officer`) {
		t.Errorf("the log does not show discovery and the sign-in:\n%s", log)
	}
	if strings.Contains(log, m.ClientSecret) {
		t.Errorf("the log holds the client secret:\n%s", log)
	}
}
