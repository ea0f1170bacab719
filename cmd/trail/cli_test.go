package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

// trailCmd runs the trail binary against p and returns stdout, stderr and
// the exit code.
func trailCmd(t *testing.T, p *serveProc, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, trailBin, args...)
	cmd.Env = append(os.Environ(), "TRAIL_SERVER="+p.url, "TRAIL_TOKEN="+p.token)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestCommandLine walks the shell workflow of the README: append from
// arguments and from NDJSON, query, checkpoint, tail, verify.
func TestCommandLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // t.TempDir is 0755; serve makes its own 0700
	p := startServe(t, dir, "--checkpoint-interval", "50ms")

	out, errOut, code := trailCmd(t, p, "", "append",
		`{"stream":"patient/12345","type":"patient-record.read","action":"R","actor":{"id":"dr-house"},"patient":"12345"}`)
	if code != 0 {
		t.Fatalf("append: exit %d: %s", code, errOut)
	}
	var r trail.Receipt
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Index != 0 || r.StreamSeq != 1 {
		t.Fatalf("append printed %q (%v)", out, err)
	}

	ndjson := `{"stream":"patient/12345","type":"patient-record.update","action":"U","actor":{"id":"dr-wilson"},"patient":"12345"}

{"stream":"patient/777","type":"patient-record.read","action":"R","actor":{"id":"dr-house"},"patient":"777"}
`
	out, errOut, code = trailCmd(t, p, ndjson, "append")
	if code != 0 || strings.Count(out, "\n") != 2 {
		t.Fatalf("append NDJSON: exit %d, %q, %s", code, out, errOut)
	}

	// A bad line is named and nothing is sent.
	_, errOut, code = trailCmd(t, p, ndjson+`{"stream":"patient/1","type":"t","action":"X","actor":{"id":"a"}}`+"\n", "append")
	if code == 0 || !strings.Contains(errOut, "line 4") || !strings.Contains(errOut, "action") {
		t.Fatalf("bad NDJSON: exit %d, stderr %q", code, errOut)
	}

	out, errOut, code = trailCmd(t, p, "", "query", "--patient", "12345")
	if code != 0 {
		t.Fatalf("query: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"dr-house"`) || !strings.Contains(lines[1], `"dr-wilson"`) {
		t.Fatalf("query --patient 12345 printed:\n%s", out)
	}
	out, errOut, _ = trailCmd(t, p, "", "query", "--actor", "dr-house", "--limit", "1", "--desc")
	if !strings.Contains(out, `"patient":"777"`) || !strings.Contains(errOut, "--after") {
		t.Fatalf("query --desc --limit 1: %q / %q", out, errOut)
	}
	out, _, _ = trailCmd(t, p, "", "query", "--actor", "dr-house", "--limit", "1", "--all")
	if strings.Count(out, "\n") != 2 {
		t.Fatalf("query --all printed:\n%s", out)
	}

	// Each page read was recorded in trail/access: four reads so far, and
	// for the three by actor, which named no patient, one more record for
	// the patient of the event each returned.
	out, _, _ = trailCmd(t, p, "", "query", "--stream", "trail/access")
	if n := strings.Count(out, `"type":"audit-log.read"`); n != 7 || !strings.Contains(out, `"actor":{"id":"admin"`) {
		t.Fatalf("trail/access holds %d read records, want 7:\n%s", n, out)
	}

	time.Sleep(200 * time.Millisecond)
	out, _, code = trailCmd(t, p, "", "checkpoint")
	if code != 0 || !strings.Contains(out, "\n11\n") { // 3 events, 8 read records
		t.Fatalf("checkpoint: exit %d:\n%s", code, out)
	}

	// tail --after replays, then follows; then the process is stopped.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, trailBin, "tail", "--after", "0", "--stream", "patient/12345")
	cmd.Env = append(os.Environ(), "TRAIL_SERVER="+p.url, "TRAIL_TOKEN="+p.token)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGINT) }
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tailLines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			tailLines <- sc.Text()
		}
		close(tailLines)
	}()
	next := func() string {
		select {
		case l := <-tailLines:
			return l
		case <-time.After(20 * time.Second):
			t.Fatal("trail tail printed nothing for 20s")
			return ""
		}
	}
	if got := next(); !strings.Contains(got, "dr-wilson") {
		t.Fatalf("tail replayed %s, want the event after index 0", got)
	}
	trailCmd(t, p, "", "append", `{"stream":"patient/12345","type":"patient-record.read","action":"R","actor":{"id":"dr-cuddy"},"patient":"12345"}`)
	if got := next(); !strings.Contains(got, "dr-cuddy") {
		t.Fatalf("tail followed with %s, want the new event", got)
	}
	cancel()
	cmd.Wait()

	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
	out, errOut, code = trailCmd(t, p, "", "verify", "--data", dir)
	if code != 0 {
		t.Fatalf("verify: exit %d: %s %s", code, out, errOut)
	}
}

// TestCommandLineNoServer: a remote command without a server says how to
// name one, with the usage exit code.
func TestCommandLineNoServer(t *testing.T) {
	cmd := exec.Command(trailBin, "query")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "TRAIL_SERVER") {
		t.Fatalf("exit %d: %s", cmd.ProcessState.ExitCode(), out)
	}
}

// TestVerifyServer: the first run saves the checkpoint; later runs check the
// new one extends it; a saved checkpoint the server's log does not extend
// (another log's) fails with exit 1; a wrong key cannot verify (exit 1).
func TestVerifyServer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startServe(t, dir, "--checkpoint-interval", "20ms")
	state := dir + "/../verify-state"
	vkey := dir + "/checkpoint.vkey"
	out, errOut, code := trailCmd(t, p, "", "verify", "--server", p.url, "--vkey", vkey, "--state", state)
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("first run: exit %d: %s %s", code, out, errOut)
	}
	for i := 0; i < 3; i++ {
		trailCmd(t, p, "", "append", `{"stream":"patient/1","type":"t","action":"R","actor":{"id":"a"}}`)
		time.Sleep(100 * time.Millisecond)
		out, errOut, code = trailCmd(t, p, "", "verify", "--vkey", vkey, "--state", state)
		if code != 0 || !strings.Contains(out, "extends") {
			t.Fatalf("run %d: exit %d: %s %s", i, code, out, errOut)
		}
	}

	// Another server with the same key but a different history: its
	// checkpoint cannot extend the saved one.
	other := filepath.Join(t.TempDir(), "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"checkpoint.key", "checkpoint.vkey"} {
		b, err := os.ReadFile(dir + "/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(other+"/"+f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.exited
	q := startServe(t, other, "--checkpoint-interval", "20ms")
	for i := 0; i < 5; i++ {
		trailCmd(t, q, "", "append", `{"stream":"patient/2","type":"forged","action":"D","actor":{"id":"mallory"}}`)
	}
	time.Sleep(100 * time.Millisecond)
	out, _, code = trailCmd(t, q, "", "verify", "--vkey", vkey, "--state", state)
	if code != 1 || !strings.Contains(out, "FAIL") {
		t.Fatalf("forked log: exit %d: %s", code, out)
	}
	// A key that did not sign the checkpoint.
	_, _, code = trailCmd(t, q, "", "verify", "--vkey", other+"/../nope", "--state", state)
	if code != 2 {
		t.Fatalf("missing key file: exit %d, want 2", code)
	}
}
