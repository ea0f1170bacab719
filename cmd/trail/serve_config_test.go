package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// runTrailEnv runs the trail binary with env added to the environment and
// returns stdout, stderr and the exit code.
func runTrailEnv(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, trailBin, args...)
	cmd.Env = append(os.Environ(), env...)
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

// writeConfig writes a trail serve config file and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trail.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeConfigPrecedence: each flag comes from the command line, else
// the environment, else the config file, else its default; for a string,
// a number, a duration, a boolean and a repeatable flag, whose values come
// whole from one source.
func TestServeConfigPrecedence(t *testing.T) {
	file := writeConfig(t, `
listen = "0.0.0.0:8443"
max-tails = 7
body-timeout = "3s"
tls-legacy-rsa = true
trusted-proxy = ["10.0.0.0/8", "192.168.0.1"]
read-rate = 50.5
`)
	type want struct {
		listen   string
		maxTails int
		body     time.Duration
		legacy   bool
		proxies  []string
		readRate string
	}
	other := []string{"TRAIL_SERVER=http://elsewhere", "TRAIL_NOT_A_FLAG=1", "TRAIL_QUEUE_WAIT=", "PATH=/bin"}
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		want want
	}{
		{"defaults", nil, other,
			want{"127.0.0.1:7070", 32, time.Minute, false, nil, "50:200"}},
		{"file", []string{"--config", file}, other,
			want{"0.0.0.0:8443", 7, 3 * time.Second, true, []string{"10.0.0.0/8", "192.168.0.1"}, "50.5"}},
		{"file from TRAIL_CONFIG", nil, append([]string{"TRAIL_CONFIG=" + file}, other...),
			want{"0.0.0.0:8443", 7, 3 * time.Second, true, []string{"10.0.0.0/8", "192.168.0.1"}, "50.5"}},
		{"environment over file", []string{"--config", file}, append([]string{
			"TRAIL_LISTEN=127.0.0.2:9000", "TRAIL_MAX_TAILS=9", "TRAIL_BODY_TIMEOUT=4s",
			"TRAIL_TLS_LEGACY_RSA=false", "TRAIL_TRUSTED_PROXY=172.16.0.0/12, 10.1.2.3"}, other...),
			want{"127.0.0.2:9000", 9, 4 * time.Second, false, []string{"172.16.0.0/12", "10.1.2.3"}, "50.5"}},
		{"flags over environment", []string{"--config", file, "--listen", "127.0.0.3:9001", "--max-tails", "11",
			"--body-timeout", "5s", "--tls-legacy-rsa", "--trusted-proxy", "10.9.9.9", "--read-rate", "1:2"}, append([]string{
			"TRAIL_LISTEN=127.0.0.2:9000", "TRAIL_MAX_TAILS=9", "TRAIL_BODY_TIMEOUT=4s",
			"TRAIL_TLS_LEGACY_RSA=false", "TRAIL_TRUSTED_PROXY=172.16.0.0/12", "TRAIL_READ_RATE=3:4"}, other...),
			want{"127.0.0.3:9001", 11, 5 * time.Second, true, []string{"10.9.9.9"}, "1:2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newServeFlags(io.Discard)
			if err := o.parse(tc.args, tc.env); err != nil {
				t.Fatal(err)
			}
			got := want{*o.listen, o.limits.maxTails, o.limits.bodyTimeout, o.tlsFiles.LegacyRSA, o.limits.proxies, o.limits.readRate}
			if got.listen != tc.want.listen || got.maxTails != tc.want.maxTails || got.body != tc.want.body ||
				got.legacy != tc.want.legacy || !slices.Equal(got.proxies, tc.want.proxies) || got.readRate != tc.want.readRate {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
			if *o.queueWait != time.Second {
				t.Fatalf("an empty TRAIL_QUEUE_WAIT set --queue-wait to %v", *o.queueWait)
			}
		})
	}
}

// TestServeConfigErrors: an unknown key in the file, a value of the wrong
// type and a variable that does not parse stop trail serve with the usage
// exit code, naming the key (and its file) or the variable; a secret's
// value is not repeated.
func TestServeConfigErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	file := writeConfig(t, "lisen = \"127.0.0.1:0\"\nnot-a-flag-at-all = 1\n")
	_, errOut, code := runTrail(t, "serve", "--data", dir, "--config", file)
	if code != 2 || !strings.Contains(errOut, file) || !strings.Contains(errOut, `unknown key "lisen" (did you mean "listen"?)`) ||
		!strings.Contains(errOut, `unknown key "not-a-flag-at-all"`) {
		t.Fatalf("unknown keys: exit %d: %s", code, errOut)
	}
	_, errOut, code = runTrailEnv(t, []string{"TRAIL_MAX_TAILS=lots"}, "serve", "--data", dir, "--listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(errOut, "TRAIL_MAX_TAILS") || !strings.Contains(errOut, "--max-tails") {
		t.Fatalf("bad TRAIL_MAX_TAILS: exit %d: %s", code, errOut)
	}
	_, errOut, code = runTrailEnv(t, []string{"TRAIL_BODY_TIMEOUT=soon"}, "serve", "--data", dir, "--listen", "127.0.0.1:0")
	if code != 2 || !strings.Contains(errOut, "TRAIL_BODY_TIMEOUT") {
		t.Fatalf("bad TRAIL_BODY_TIMEOUT: exit %d: %s", code, errOut)
	}
	file = writeConfig(t, "tls-legacy-rsa = \"maybe\"\ntls-key = [\"hunter2-secret\"]\nlisten = [\"a\", \"b\"]\n")
	_, errOut, code = runTrail(t, "serve", "--data", dir, "--config", file)
	if code != 2 || !strings.Contains(errOut, "tls-legacy-rsa") || !strings.Contains(errOut, "tls-key") ||
		!strings.Contains(errOut, "not an array") || strings.Contains(errOut, "hunter2") {
		t.Fatalf("bad values in the file: exit %d: %s", code, errOut)
	}
	file = writeConfig(t, "listen = \"127.0.0.1:0\n")
	if _, errOut, code = runTrail(t, "serve", "--data", dir, "--config", file); code != 2 || !strings.Contains(errOut, file) {
		t.Fatalf("a file that is not TOML: exit %d: %s", code, errOut)
	}
	if _, errOut, code = runTrail(t, "serve", "--data", dir, "--config", file+".missing"); code != 2 || !strings.Contains(errOut, ".missing") {
		t.Fatalf("a missing file: exit %d: %s", code, errOut)
	}
	if _, errOut, code = runTrail(t, "serve", "--help"); code != 0 || !strings.Contains(errOut, "TRAIL_READ_RATE") || !strings.Contains(errOut, "--config") {
		t.Fatalf("serve --help: exit %d: %s", code, errOut)
	}
}

// TestServeConfigStart: trail serve configured by TRAIL_CONFIG and
// TRAIL_DATA alone starts where they say.
func TestServeConfigStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	file := writeConfig(t, "listen = \"127.0.0.1:0\"\ncheckpoint-interval = \"50ms\"\n")
	cmd := exec.Command(trailBin, "serve")
	cmd.Env = append(os.Environ(), "TRAIL_CONFIG="+file, "TRAIL_DATA="+dir)
	p := startServeCmd(t, cmd, dir)
	abs, _ := filepath.Abs(dir)
	if !strings.HasPrefix(p.url, "http://127.0.0.1:") || !strings.Contains(p.log(), "data="+abs) || p.token == "" {
		t.Fatalf("serving %s:\n%s", p.url, p.log())
	}
}
