package main

import (
	"context"
	"strings"
	"testing"
)

// runInProcess runs the command line args in this process and returns
// stdout, stderr and the exit code.
func runInProcess(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb strings.Builder
	code := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// subcommands are the commands a user can ask for help with.
var subcommands = [][]string{
	{"serve"}, {"token"}, {"token", "create"}, {"token", "list"}, {"token", "revoke"},
	{"append"}, {"query"}, {"tail"}, {"checkpoint"}, {"bench"}, {"verify"},
	{"healthcheck"}, {"version"}, {"backup"}, {"restore"},
}

// TestSubcommandHelp: every subcommand's --help starts with "Usage: trail
// <cmd>" and exits 0, and a flag whose help names its default from the
// environment shows no second default.
func TestSubcommandHelp(t *testing.T) {
	t.Setenv("TRAIL_SERVER", "http://127.0.0.1:7999")
	t.Setenv("TRAIL_TOKEN", "")
	for _, cmd := range subcommands {
		name := strings.Join(cmd, " ")
		for _, h := range []string{"--help", "-h"} {
			out, errOut, code := runInProcess(t, append(append([]string{}, cmd...), h)...)
			if code != 0 {
				t.Errorf("trail %s %s: exit %d, want 0", name, h, code)
			}
			text := out + errOut
			if !strings.HasPrefix(text, "Usage: trail "+name) {
				t.Errorf("trail %s %s printed %.80q, want it to start with %q", name, h, text, "Usage: trail "+name)
			}
			if strings.Contains(text, "127.0.0.1:7999") {
				t.Errorf("trail %s %s shows $TRAIL_SERVER's value as a second default:\n%s", name, h, text)
			}
		}
	}
}

// TestUsageErrors: an unknown flag, a bad flag value, an unexpected
// argument or a missing required flag exits 2 for every subcommand, with a
// message that names the problem.
func TestUsageErrors(t *testing.T) {
	t.Setenv("TRAIL_SERVER", "")
	t.Setenv("TRAIL_TOKEN", "")
	t.Chdir(t.TempDir())
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"serve", "--bogus"}, "-bogus"},
		{[]string{"serve", "--checkpoint-interval", "soon"}, "checkpoint-interval"},
		{[]string{"serve", "--sync", "maybe"}, "--sync"},
		{[]string{"serve", "extra"}, `unexpected argument "extra"`},
		{[]string{"token"}, "usage: trail token"},
		{[]string{"token", "frob"}, "usage: trail token"},
		{[]string{"token", "create", "--bogus"}, "-bogus"},
		{[]string{"token", "create", "--data", "."}, "--name is required"},
		{[]string{"token", "create", "--name", "a", "--expires", "soon"}, "soon"},
		{[]string{"token", "list", "--bogus"}, "-bogus"},
		{[]string{"token", "revoke", "--bogus"}, "-bogus"},
		{[]string{"token", "revoke", "--data", "."}, "usage: trail token revoke"},
		{[]string{"append", "--bogus"}, "-bogus"},
		{[]string{"append", "not json"}, "argument 1"},
		{[]string{"query", "--bogus"}, "-bogus"},
		{[]string{"query", "--limit", "many"}, "-limit"},
		{[]string{"query", "--since", "yesterday"}, "yesterday"},
		{[]string{"query", "extra"}, `unexpected argument "extra"`},
		{[]string{"query"}, "no server"},
		{[]string{"tail", "--bogus"}, "-bogus"},
		{[]string{"tail", "--after", "x"}, "--after"},
		{[]string{"tail", "extra"}, `unexpected argument "extra"`},
		{[]string{"checkpoint", "--bogus"}, "-bogus"},
		{[]string{"checkpoint", "extra"}, `unexpected argument "extra"`},
		{[]string{"bench", "--bogus"}, "-bogus"},
		{[]string{"bench", "--events", "x"}, "-events"},
		{[]string{"bench", "--events", "0"}, "--events"},
		{[]string{"bench", "--sync", "maybe"}, "--sync"},
		{[]string{"bench", "extra"}, `unexpected argument "extra"`},
		{[]string{"verify", "--bogus"}, "-bogus"},
		{[]string{"verify", "--quiet=maybe"}, "-quiet"},
		{[]string{"verify"}, "usage: trail verify"},
		{[]string{"healthcheck", "--bogus"}, "-bogus"},
		{[]string{"healthcheck", "extra"}, `unexpected argument "extra"`},
		{[]string{"version", "--bogus"}, "-bogus"},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
		{[]string{"backup", "--bogus"}, "-bogus"},
		{[]string{"backup", "extra"}, `unexpected argument "extra"`},
		{[]string{"backup", "--data", "."}, "usage: trail backup"},
		{[]string{"backup", "--to", "out"}, "usage: trail backup"},
		{[]string{"backup", "--data", ".", "--server", "http://127.0.0.1:1", "--to", "out"}, "usage: trail backup"},
		{[]string{"backup", "--data", ".", "--to", "out"}, "not a Trail data directory"},
		{[]string{"restore", "--bogus"}, "-bogus"},
		{[]string{"restore", "extra"}, `unexpected argument "extra"`},
		{[]string{"restore", "--from", "b"}, "usage: trail restore"},
		{[]string{"frob"}, `unknown command "frob"`},
	} {
		_, errOut, code := runInProcess(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.says) {
			t.Errorf("trail %s: exit %d, want 2 with a message saying %q:\n%s", strings.Join(c.args, " "), code, c.says, errOut)
		}
	}
}

// TestNoToken: a command that needs credentials and has none (no --token,
// no $TRAIL_TOKEN, no --cert) says so with the usage exit code, without
// asking the server (nothing listens at $TRAIL_SERVER) or waiting on stdin.
func TestNoToken(t *testing.T) {
	t.Setenv("TRAIL_SERVER", "http://127.0.0.1:1")
	t.Setenv("TRAIL_TOKEN", "")
	for _, args := range [][]string{
		{"query"},
		{"query", "--stream", "patient/1"},
		{"append", `{"stream":"s","type":"t","action":"R","actor":{"id":"a"}}`},
		{"append"},
		{"tail"},
		{"verify", "--full", "--vkey", "k", "--state", "s"},
		{"backup", "--to", "out"},
	} {
		_, errOut, code := runInProcess(t, args...)
		if code != 2 || !strings.Contains(errOut, "no token: give --token or set TRAIL_TOKEN") {
			t.Errorf("trail %s without a token: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
	}
}

// TestVerifyForms: with or without $TRAIL_SERVER, trail verify's help and
// its error when given neither --data nor --server name both forms.
func TestVerifyForms(t *testing.T) {
	t.Setenv("TRAIL_TOKEN", "")
	for _, env := range []string{"", "http://127.0.0.1:1"} {
		t.Setenv("TRAIL_SERVER", env)
		_, help, code := runInProcess(t, "verify", "--help")
		if code != 0 || !strings.Contains(help, "--data DIR") || !strings.Contains(help, "--server URL") {
			t.Errorf("TRAIL_SERVER=%q: trail verify --help: exit %d:\n%s", env, code, help)
		}
		for _, args := range [][]string{{"verify"}, {"verify", "--vkey", "k"}} {
			_, errOut, code := runInProcess(t, args...)
			if code != 2 || !strings.Contains(errOut, "--data DIR") || !strings.Contains(errOut, "--server URL") {
				t.Errorf("TRAIL_SERVER=%q: trail %s: exit %d, want 2 naming --data DIR and --server URL:\n%s", env, strings.Join(args, " "), code, errOut)
			}
		}
	}
}
