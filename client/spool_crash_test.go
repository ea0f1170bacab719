package client_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/client"
)

// streamPrefix checks that the stored events of stream are events 0..n-1
// of their producer, each once, in order, and returns n.
func (s *testServer) streamPrefix(stream string) int {
	s.t.Helper()
	next := 0
	seen := map[string]bool{}
	for _, se := range s.stored() {
		if se.Stream != stream {
			continue
		}
		if seen[se.ID] {
			s.t.Errorf("%s: id %s stored twice", stream, se.ID)
		}
		seen[se.ID] = true
		var d struct{ I int }
		if err := json.Unmarshal(se.Details, &d); err != nil {
			s.t.Fatal(err)
		}
		if d.I != next {
			s.t.Errorf("%s: event %d stored where event %d was due", stream, d.I, next)
		}
		next = d.I + 1
	}
	return next
}

// keptAndPrefix checks that every id of kept, each an event whose Pending
// resolved when (say), is stored in stream, and that the stream is a
// prefix of what was logged (streamPrefix), whose length it returns.
func (s *testServer) keptAndPrefix(stream string, kept map[string]bool, when string) int {
	s.t.Helper()
	stored := map[string]bool{}
	for _, se := range s.stored() {
		if se.Stream == stream {
			stored[se.ID] = true
		}
	}
	for id := range kept {
		if !stored[id] {
			s.t.Errorf("%s: event %s was spooled (its Pending resolved), and is not stored", when, id)
		}
	}
	return s.streamPrefix(stream)
}

// slowSync is a file system whose fsyncs take a while, as a disk's do, so
// that a power cut lands between a write and its fsync often.
type slowSync struct{ vfs.FS }

type slowSyncFile struct{ vfs.File }

func (f slowSyncFile) Sync() error {
	time.Sleep(500 * time.Microsecond)
	return f.File.Sync()
}

func (fs slowSync) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	if err != nil {
		return nil, err
	}
	return slowSyncFile{f}, nil
}

func (fs slowSync) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	if err != nil {
		return nil, err
	}
	return slowSyncFile{f}, nil
}

// TestSpoolPowerLoss cuts the power under a client spooling and sending
// (through a network that drops requests and answers) at a random moment,
// losing a random part of what was not fsynced, then starts a client on
// what the disk kept. Every event whose Pending was resolved (WithSpoolAck:
// fsynced in the spool) before the cut is stored, none twice, each stream a
// prefix of what was logged, in order.
func TestSpoolPowerLoss(t *testing.T) {
	s := newTestServer(t)
	seeds := 30
	if testing.Short() {
		seeds = 8
	}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 11))
		h, _ := flaky(seed)
		s.setHook(h)
		mem := vfs.NewCrashableMem()
		stream := fmt.Sprintf("power/%d", seed)
		c1, err := client.New(s.url(), client.WithToken(string(s.tok)), client.WithSpool("/spool", 1<<20),
			client.WithSpoolFS(slowSync{mem}), client.WithSpoolAck(), client.WithSpoolSegment(int64(2<<10+rng.IntN(8<<10))),
			client.WithBatchSize(1+rng.IntN(40)))
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		acked := map[string]bool{}
		pending := make(chan *trail.Pending, 1<<16)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(pending)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				pending <- c1.Log(event(stream, int(seed), i))
				if i%8 == 0 {
					time.Sleep(100 * time.Microsecond)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for p := range pending {
				r, err := p.Wait(context.Background())
				if err != nil {
					continue // closed at the end of the round
				}
				mu.Lock()
				acked[r.ID] = true
				mu.Unlock()
			}
		}()
		time.Sleep(time.Duration(5+rng.IntN(60)) * time.Millisecond)
		mu.Lock()
		before := len(acked)
		kept := make(map[string]bool, before)
		for id := range acked {
			kept[id] = true
		}
		disk := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
		mu.Unlock()
		close(stop)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		c1.Close(ctx)
		cancel()
		wg.Wait()

		s.setHook(nil)
		c2, err := client.New(s.url(), client.WithToken(string(s.tok)), client.WithSpool("/spool", 1<<20), client.WithSpoolFS(disk))
		if err != nil {
			t.Fatalf("seed %d: a client on the spool after the power loss: %v", seed, err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
		if err := c2.Flush(ctx); err != nil {
			t.Fatalf("seed %d: flush after the power loss: %v", seed, err)
		}
		if err := c2.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		n := s.keptAndPrefix(stream, kept, fmt.Sprintf("seed %d: before the power loss", seed))
		if st := c2.Stats(); st.Spooled != 0 || st.Lost != 0 {
			t.Errorf("seed %d: after the flush: %+v", seed, st)
		}
		if t.Failed() {
			t.FailNow()
		}
		t.Logf("seed %d: %d acknowledged by the spool before the power loss, %d stored", seed, before, n)
	}
}

// TestSpoolApplicationKilled kills (SIGKILL) an application spooling under
// load, once while the server is up and once while it is down, and starts a
// client on its spool: every event the application was told was spooled is
// stored exactly once, in order. While the application runs, the spool is
// locked against this process.
func TestSpoolApplicationKilled(t *testing.T) {
	if dir := os.Getenv("TRAIL_SPOOL_CHILD"); dir != "" {
		spoolChild(dir)
		return
	}
	s := newTestServer(t)
	dir := t.TempDir()
	for round, serverDown := range []bool{false, true} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolApplicationKilled$", "-test.count=1")
		cmd.Env = append(os.Environ(), "TRAIL_SPOOL_CHILD="+dir, "TRAIL_SPOOL_URL="+s.url(),
			"TRAIL_SPOOL_TOKEN="+string(s.tok), fmt.Sprintf("TRAIL_SPOOL_ROUND=%d", round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		acked := map[string]bool{}
		read := make(chan struct{})
		go func() {
			defer close(read)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				// The kill may cut the last line short.
				if id, ok := strings.CutPrefix(sc.Text(), "spooled "); ok && len(id) == 36 {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				}
			}
		}()
		count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
		waitFor(t, "events spooled by the application", func() bool { return count() > 300 })
		if _, err := client.New(s.url(), client.WithSpool(dir, 1<<20)); err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("a client on a spool another process uses: %v", err)
		}
		if serverDown {
			s.stop()
			n := count()
			waitFor(t, "events spooled with the server down", func() bool { return count() > n+300 })
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		<-read
		if serverDown {
			s.start()
		}
		c := s.spoolClient(dir, 64<<20)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		if err := c.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		n := s.keptAndPrefix(fmt.Sprintf("killed/%d", round), acked, fmt.Sprintf("round %d: before the kill", round))
		t.Logf("round %d (server down: %v): %d events spooled before the kill, %d stored", round, serverDown, len(acked), n)
		ctx, cancel = context.WithTimeout(t.Context(), time.Second)
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
}

// spoolChild logs events to a spool as fast as the spool takes them and
// prints the id of each once its Pending resolves, until it is killed.
func spoolChild(dir string) {
	c, err := client.New(os.Getenv("TRAIL_SPOOL_URL"), client.WithToken(os.Getenv("TRAIL_SPOOL_TOKEN")),
		client.WithSpool(dir, 64<<20), client.WithSpoolAck(), client.WithSpoolSegment(32<<10))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stream := "killed/" + os.Getenv("TRAIL_SPOOL_ROUND")
	pending := make(chan *trail.Pending, 1024)
	go func() {
		w := bufio.NewWriter(os.Stdout)
		for p := range pending {
			r, err := p.Wait(context.Background())
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fmt.Fprintf(w, "spooled %s\n", r.ID)
			if len(pending) == 0 {
				w.Flush()
			}
		}
	}()
	for i := 0; ; i++ {
		pending <- c.Log(event(stream, 0, i))
		if i%16 == 0 {
			time.Sleep(200 * time.Microsecond)
		}
	}
}

// failSync is a file system whose spool-file fsyncs fail from the n-th on.
type failSync struct {
	vfs.FS
	syncs *atomic.Int32
	n     int32
}

type failSyncFile struct {
	vfs.File
	fs failSync
}

func (f failSyncFile) Sync() error {
	if f.fs.syncs.Add(1) >= f.fs.n {
		return errors.New("input/output error")
	}
	return f.File.Sync()
}

func (fs failSync) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	if err != nil || !strings.Contains(name, "spool-") {
		return f, err
	}
	return failSyncFile{f, fs}, nil
}

// TestSpoolWriteFails: once an fsync of the spool fails, the events in that
// write and every later Log fail with an error saying so, and the events
// spooled before are still sent.
func TestSpoolWriteFails(t *testing.T) {
	s := newTestServer(t)
	fs := failSync{FS: vfs.NewMem(), syncs: new(atomic.Int32), n: 4}
	c := s.spoolClient("/spool", 1<<20, client.WithSpoolFS(fs), client.WithSpoolAck())
	var good []string
	var failed error
	for i := 0; failed == nil; i++ {
		if i > 100 {
			t.Fatal("the fsync never failed")
		}
		r, err := c.Log(event("patient/1", 0, i)).Wait(t.Context())
		if err != nil {
			failed = err
			break
		}
		good = append(good, r.ID)
	}
	if !strings.Contains(failed.Error(), "input/output error") || !strings.Contains(failed.Error(), "no more events are taken") {
		t.Errorf("the event whose fsync failed: %v", failed)
	}
	if _, err := c.Log(event("patient/1", 0, 1000)).Wait(t.Context()); err == nil || !strings.Contains(err.Error(), "no more events are taken") {
		t.Errorf("Log after the spool failed: %v", err)
	}
	if err := c.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, se := range s.stored() {
		stored[se.ID] = true
	}
	for _, id := range good {
		if !stored[id] {
			t.Errorf("event %s, spooled before the failure, is not stored", id)
		}
	}
	if len(good) != 3 {
		t.Errorf("%d events spooled before the 4th fsync failed, want 3 (the file's creation does not fsync it)", len(good))
	}
}
