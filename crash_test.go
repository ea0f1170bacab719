package trail

// SIGKILL crash test.
//
// TestCrash re-executes the test binary as a child (TestCrashChild) that
// appends events under load to a real directory and prints each receipt as a
// JSON line as soon as Wait has returned it. The parent kills the child with
// SIGKILL at a random moment, reopens the engine on the same directory and
// checks, round after round on the same (growing) log:
//   - every receipt the child printed is stored: same index, leaf hash, id,
//     stream and stream_seq (Guarantee 1);
//   - every atomic batch is wholly present or wholly absent;
//   - resending an acknowledged event with a client id returns its first
//     receipt (exactly once across a crash);
//   - trail.Verify passes on the directory as the kill left it and after the
//     recovered engine is closed.
//
// Run more rounds with -crash.rounds=N (default 5).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

var crashRounds = flag.Int("crash.rounds", 5, "number of SIGKILL rounds in TestCrash")

const (
	crashDirEnv  = "TRAIL_CRASH_CHILD_DIR"
	crashTagEnv  = "TRAIL_CRASH_CHILD_TAG"
	crashSeedEnv = "TRAIL_CRASH_CHILD_SEED"
)

// The configuration of the child and of the parent's reopen.
func crashConfig() Config {
	return Config{SegmentSize: 16 << 10, CheckpointInterval: 5 * time.Millisecond}
}

// crashLine is one line the child prints.
type crashLine struct {
	Ready bool    `json:"ready,omitempty"` // the engine is open
	Err   string  `json:"err,omitempty"`   // a broken guarantee seen by the child
	Acks  []acked `json:"acks,omitempty"`  // an acknowledged event, or a whole acknowledged batch
}

// TestCrashChild is the child of TestCrash. It does nothing unless the
// environment names a data directory.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		return
	}
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	var mu sync.Mutex
	emit := func(line crashLine) {
		b, err := json.Marshal(line)
		if err != nil {
			panic(err)
		}
		b = append(b, '\n')
		mu.Lock()
		defer mu.Unlock()
		// One write per line, straight to the pipe: nothing is buffered in
		// the process when it is killed.
		if _, err := os.Stdout.Write(b); err != nil {
			os.Exit(4)
		}
	}
	l, err := Open(dir, crashConfig())
	if err != nil {
		emit(crashLine{Err: fmt.Sprintf("Open: %v", err)})
		os.Exit(2)
	}
	emit(crashLine{Ready: true})
	w := newWorkload(l, os.Getenv(crashTagEnv), func(format string, args ...any) {
		emit(crashLine{Err: fmt.Sprintf(format, args...)})
	})
	w.onAck = func(as []acked) { emit(crashLine{Acks: as}) }
	w.start(4, seed)
	time.Sleep(60 * time.Second) // the parent kills the child long before
	emit(crashLine{Err: "child not killed within 60s"})
	os.Exit(3)
}

// TestCrash kills a child appending to a real directory with SIGKILL at a
// random moment, many rounds on the same directory, and checks what survives.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d rounds in %s", seed, *crashRounds, dir)
	rng := rand.New(rand.NewPCG(seed, 0xc4a5))
	var all []acked     // acknowledged in every round so far
	var verified uint64 // log size verified after the previous round
	for round := 0; round < *crashRounds; round++ {
		// The last round, if no earlier one got an event acknowledged
		// (every kill came early, on a slow machine), kills only after the
		// first acknowledgement, so that the suite always checks some.
		acks, killedAt := crashChild(t, dir, round, rng, round == *crashRounds-1 && len(all) == 0)
		all = append(all, acks...)

		// The directory as the kill left it must verify (a torn tail past
		// the last checkpoint is allowed).
		raw := checkVerify(t, vfs.Default, dir, fmt.Sprintf("round %d: raw state after SIGKILL", round))

		l := openLog(t, dir, crashConfig(), fmt.Sprintf("round %d: reopen after SIGKILL", round))
		size := l.Size()
		if size < verified {
			t.Errorf("round %d: log has %d events after the crash, but %d were stored and verified before the round", round, size, verified)
		}
		checkAcked(t, l, acks, fmt.Sprintf("round %d", round))
		// Earlier rounds' receipts: a sample each round, all of them at the end.
		if round == *crashRounds-1 {
			checkAcked(t, l, all, fmt.Sprintf("round %d (all rounds)", round))
		} else if len(all) > len(acks) {
			old := all[:len(all)-len(acks)]
			sample := make([]acked, 0, 200)
			for range min(200, len(old)) {
				sample = append(sample, old[rng.IntN(len(old))])
			}
			checkAcked(t, l, sample, fmt.Sprintf("round %d (earlier rounds)", round))
		}
		// Batches of this round lie past the size verified before it.
		nb := checkBatches(t, l, verified, fmt.Sprintf("round %d", round))
		checkResend(t, l, all, 10, rng, fmt.Sprintf("round %d", round))
		if err := closeLog(t, l, fmt.Sprintf("round %d", round)); err != nil {
			t.Errorf("round %d: Close: %v", round, err)
		}
		rep := checkVerify(t, vfs.Default, dir, fmt.Sprintf("round %d: after recovery", round))
		if rep.Events != size {
			t.Errorf("round %d: Verify saw %d events, the engine %d", round, rep.Events, size)
		}
		t.Logf("round %d: killed %s; %d acknowledged, log %d → %d events, %d batches; raw torn tail %q",
			round, killedAt, len(acks), verified, size, nb, raw.TornTail)
		verified = size
		if t.Failed() {
			t.Fatalf("stopping after round %d (seed %d)", round, seed)
		}
	}
	if len(all) == 0 {
		t.Errorf("no event was acknowledged in %d rounds: the child never got to work", *crashRounds)
	}
}

// crashChild runs one child until a random moment, kills it with SIGKILL and
// returns the receipts it printed and a description of when it was killed.
func crashChild(t *testing.T, dir string, round int, rng *rand.Rand, afterAck bool) ([]acked, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		crashDirEnv+"="+dir,
		crashTagEnv+"=r"+strconv.Itoa(round),
		crashSeedEnv+"="+strconv.FormatUint(rng.Uint64(), 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	acked1 := make(chan struct{}) // closed at the first acknowledgement
	var acks []acked
	var errs []string
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		r := bufio.NewReaderSize(out, 1<<20)
		for {
			b, err := r.ReadBytes('\n')
			if err != nil {
				// io.EOF: a last line cut short by the kill is dropped (its
				// events are not known to be acknowledged).
				if !errors.Is(err, io.EOF) {
					errs = append(errs, "read: "+err.Error())
				}
				return
			}
			if len(b) == 0 || b[0] != '{' {
				continue // the test framework's own output
			}
			var line crashLine
			if err := json.Unmarshal(b, &line); err != nil {
				errs = append(errs, fmt.Sprintf("bad line %q: %v", b, err))
				continue
			}
			switch {
			case line.Ready:
				close(ready)
			case line.Err != "":
				errs = append(errs, line.Err)
			default:
				if len(acks) == 0 && len(line.Acks) > 0 {
					close(acked1)
				}
				acks = append(acks, line.Acks...)
			}
		}
	}()

	// Usually kill while the child works; every fourth round measure from
	// the start instead, so that some kills hit start-up and recovery.
	delay := time.Duration(5+rng.IntN(146)) * time.Millisecond
	from := "ready"
	switch {
	case afterAck:
		from = "the first acknowledgement"
		select {
		case <-acked1:
		case <-readDone:
		case <-time.After(60 * time.Second):
		}
	case round%4 == 3:
		from = "start"
	default:
		select {
		case <-ready:
		case <-readDone:
		case <-time.After(60 * time.Second):
		}
	}
	time.Sleep(delay) // when to kill; not an assertion
	killErr := cmd.Process.Signal(syscall.SIGKILL)
	<-readDone
	werr := cmd.Wait()
	var ee *exec.ExitError
	if killErr != nil || !errors.As(werr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("round %d: the child was not killed by SIGKILL but ended on its own (%v; kill: %v); errors %q; stderr:\n%s",
			round, werr, killErr, errs, stderr.String())
	}
	for _, e := range errs {
		t.Errorf("round %d: child: %s", round, e)
	}
	return acks, fmt.Sprintf("%v after %s (%v after start)", delay, from, time.Since(start).Round(time.Millisecond))
}
