package main

// Verify against a trusted key and a saved checkpoint (DESIGN.md,
// Hardening: "Verify against a trusted key"; issue 8, "verify --data trusts
// whatever key is in the directory" and "A forged record is served as
// genuine ... trail verify --server --vkey --state said OK").

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/tamper"
	"github.com/trailhq/trail/internal/tree"
)

const testOrigin = "trail/verify-test"

// appendEvents opens the engine in dir (creating it under testOrigin),
// appends n events of actor and closes it, signing a checkpoint over them.
func appendEvents(t *testing.T, dir, actor string, n int) {
	t.Helper()
	ctx := context.Background()
	l, err := trail.Open(dir, trail.Config{Origin: testOrigin})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		ev := trail.Event{Stream: fmt.Sprintf("patient/%d", i%3), Type: "patient-record.read", Action: "R", Actor: trail.Actor{ID: actor}}
		if _, err := l.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// runVerify runs trail verify with args and returns stdout, stderr and the
// exit code.
func runVerify(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(trailBin, append([]string{"verify"}, args...)...)
	var out, errb bytes.Buffer
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

func wantVerify(t *testing.T, what string, code int, stdoutHas string, args ...string) (string, string) {
	t.Helper()
	out, errOut, got := runVerify(t, args...)
	if got != code || !strings.Contains(out, stdoutHas) {
		t.Errorf("%s: trail verify %s: exit %d, want %d with %q in stdout\nstdout: %s\nstderr: %s",
			what, strings.Join(args, " "), got, code, stdoutHas, out, errOut)
	}
	return out, errOut
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v %s", src, dst, err, out)
	}
}

// removeKeysAndCheckpoints deletes what an attacker who rewrites a history
// deletes: the signed checkpoints, and with key the signing key too. The
// index store and the tree, derived data, go as well.
func removeKeysAndCheckpoints(t *testing.T, dir string, key bool) {
	t.Helper()
	names := []string{"checkpoints", "checkpoint", "index", "tree"}
	if key {
		names = append(names, "checkpoint.key", "checkpoint.vkey")
	}
	for _, n := range names {
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVerifyDataTrustedKey(t *testing.T) {
	tmp := t.TempDir()
	dir, early := filepath.Join(tmp, "data"), filepath.Join(tmp, "early")
	appendEvents(t, dir, "dr-house", 30)
	copyTree(t, dir, early) // the log as it was after 30 events
	appendEvents(t, dir, "dr-house", 30)
	vkey, state := filepath.Join(tmp, "trusted.vkey"), filepath.Join(tmp, "state")
	copyTree(t, filepath.Join(dir, "checkpoint.vkey"), vkey)

	wantVerify(t, "first run", 0, "saved the checkpoint of 60 events", "--data", dir, "--vkey", vkey, "--state", state)
	wantVerify(t, "second run", 0, "extends the checkpoint of 60 events", "--data", dir, "--vkey", vkey, "--state", state)
	_, errOut := wantVerify(t, "own key", 0, "OK", "--data", dir)
	if !strings.Contains(errOut, "cannot detect") {
		t.Errorf("verify --data without --vkey does not warn what it cannot detect: %s", errOut)
	}

	// Re-keyed: a history rebuilt under a new key with the same origin.
	rekeyed := filepath.Join(tmp, "rekeyed")
	appendEvents(t, rekeyed, "mallory", 70)
	wantVerify(t, "re-keyed, --vkey", 1, "not all signed by the trusted key", "--data", rekeyed, "--vkey", vkey)
	wantVerify(t, "re-keyed, --vkey --state", 1, "FAIL", "--data", rekeyed, "--vkey", vkey, "--state", state)
	wantVerify(t, "re-keyed, --state with the directory's key", 1, "not signed by", "--data", rekeyed, "--state", state)

	// Rolled back to the first 30 events, checkpoints deleted and signed
	// again with the same key when the engine reopened.
	rolled := filepath.Join(tmp, "rolled")
	copyTree(t, early, rolled)
	removeKeysAndCheckpoints(t, rolled, false)
	appendEvents(t, rolled, "mallory", 0)
	wantVerify(t, "rolled back, same key, --vkey alone", 0, "OK", "--data", rolled, "--vkey", vkey)
	wantVerify(t, "rolled back, same key", 1, "index 30: log has 30 records but the trusted checkpoint saved earlier covers 60",
		"--data", rolled, "--vkey", vkey, "--state", state)

	// Rolled back, then grown again past the saved size with other events.
	forked := filepath.Join(tmp, "forked")
	copyTree(t, early, forked)
	removeKeysAndCheckpoints(t, forked, false)
	appendEvents(t, forked, "mallory", 40)
	wantVerify(t, "rolled back and regrown, same key", 1, "does not match the trusted checkpoint",
		"--data", forked, "--vkey", vkey, "--state", state)

	// Rolled back with the key deleted too: a new key, the same origin.
	rekeyedRoll := filepath.Join(tmp, "rolled-rekeyed")
	copyTree(t, early, rekeyedRoll)
	removeKeysAndCheckpoints(t, rekeyedRoll, true)
	appendEvents(t, rekeyedRoll, "mallory", 0)
	wantVerify(t, "rolled back under a new key", 1, "FAIL", "--data", rekeyedRoll, "--vkey", vkey, "--state", state)
	wantVerify(t, "rolled back under a new key, --state alone", 1, "FAIL", "--data", rekeyedRoll, "--state", state)

	// Checkpoints deleted and not replaced.
	bare := filepath.Join(tmp, "bare")
	copyTree(t, dir, bare)
	os.Remove(filepath.Join(bare, "checkpoints"))
	wantVerify(t, "checkpoints deleted", 1, "FAIL", "--data", bare, "--vkey", vkey, "--state", state)

	// The saved state never moved backwards through all this.
	wantVerify(t, "the original after all", 0, "extends the checkpoint of 60 events", "--data", dir, "--vkey", vkey, "--state", state)

	// Cannot run: exit 2.
	wantVerify(t, "missing key file", 2, "", "--data", dir, "--vkey", filepath.Join(tmp, "nope"))
	otherKey := filepath.Join(rekeyed, "checkpoint.vkey")
	wantVerify(t, "state of another key", 2, "", "--data", rekeyed, "--vkey", otherKey, "--state", state)
	wantVerify(t, "--full without --server", 2, "", "--data", dir, "--full")
}

// forgeEvent changes one letter of event i's type in dir's log and fixes the
// frame checksum, and returns the new leaf hash.
func forgeEvent(t *testing.T, dir string, i uint64) trail.Hash {
	t.Helper()
	rec, err := tamper.Record(vfs.Default, dir, i)
	if err != nil {
		t.Fatal(err)
	}
	return trail.LeafHash(rec)
}

// TestVerifyServerFull: --full reads every event the checkpoint covers and
// recomputes the root, so a record altered on the server's disk fails from
// outside: when the server refuses to serve it (its integrity check), and
// when the tree's leaf was altered to match (the root then differs).
func TestVerifyServerFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // made 0700 by trail serve
	tmp := t.TempDir()
	vkey, state := filepath.Join(tmp, "trusted.vkey"), filepath.Join(tmp, "state")
	p := startServe(t, dir, "--checkpoint-interval", "20ms")
	copyTree(t, filepath.Join(dir, "checkpoint.vkey"), vkey)
	var ndjson strings.Builder
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&ndjson, `{"stream":"patient/%d","type":"patient-record.read","action":"R","actor":{"id":"dr-house"}}`+"\n", i%3)
	}
	if _, errOut, code := trailCmd(t, p, ndjson.String(), "append"); code != 0 {
		t.Fatalf("append: exit %d: %s", code, errOut)
	}
	time.Sleep(100 * time.Millisecond)
	full := func() (string, string, int) {
		return trailCmd(t, p, "", "verify", "--server", p.url, "--vkey", vkey, "--state", state, "--full")
	}
	if out, errOut, code := full(); code != 0 || !strings.Contains(out, "hash to its root") {
		t.Fatalf("--full of the whole log: exit %d\n%s%s", code, out, errOut)
	}
	stop := func(p *serveProc) {
		p.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-p.exited; err != nil {
			t.Fatalf("trail serve: %v\n%s", err, p.log())
		}
	}

	// The record forged on disk: the server refuses it, verify names it.
	stop(p)
	const forged = 7
	leaf := forgeEvent(t, dir, forged)
	p = startServe(t, dir, "--checkpoint-interval", "20ms")
	if out, errOut, code := full(); code != 1 || !strings.Contains(out, fmt.Sprint("index ", forged)) {
		t.Errorf("--full with event %d forged on disk: exit %d, want 1 naming it\n%s%s", forged, code, out, errOut)
	}

	// The tree's leaf forged too, so the server serves the record: the
	// root recomputed from the events differs from the signed one.
	stop(p)
	f, err := os.OpenFile(filepath.Join(dir, "tree", "level-00"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(leaf[:], forged*tree.HashSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p = startServe(t, dir, "--checkpoint-interval", "20ms")
	// The events before the one named are proven genuine; the server's
	// altered leaf also spoils the proofs of its sibling (6), which may be
	// named first.
	out, errOut, code := full()
	if code != 1 || !strings.Contains(out, fmt.Sprint("index ", forged)) && !strings.Contains(out, fmt.Sprint("index ", forged-1)) {
		t.Errorf("--full with event %d and its tree leaf forged: exit %d, want 1 naming it (or its sibling)\n%s%s", forged, code, out, errOut)
	}
	// Without --full only the checkpoints are checked, and they are whole.
	if out, errOut, code := trailCmd(t, p, "", "verify", "--server", p.url, "--vkey", vkey, "--state", state); code != 0 {
		t.Errorf("without --full: exit %d\n%s%s", code, out, errOut)
	}
}
