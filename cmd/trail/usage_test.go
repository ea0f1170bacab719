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
	{"healthcheck"}, {"version"},
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
