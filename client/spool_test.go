package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/client"
	"github.com/trailhq/trail/server"
)

// spoolClient returns a client of s spooling in dir, closed at the end.
func (s *testServer) spoolClient(dir string, max int64, opts ...client.Option) *client.Client {
	s.t.Helper()
	c, err := client.New(s.url(), append([]client.Option{client.WithToken(string(s.tok)), client.WithSpool(dir, max)}, opts...)...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

// producerOrder checks that the application's stored events hold, for
// each stream, details.i in increasing order (the order they were logged),
// and returns how many there are of each stream.
func (s *testServer) producerOrder() map[string]int {
	s.t.Helper()
	last := map[string]int{}
	count := map[string]int{}
	for _, se := range s.stored() {
		var d struct{ I int }
		if err := json.Unmarshal(se.Details, &d); err != nil {
			s.t.Fatal(err)
		}
		if n, ok := last[se.Stream]; ok && d.I <= n {
			s.t.Errorf("stream %s: event %d stored after event %d", se.Stream, d.I, n)
		}
		last[se.Stream] = d.I
		count[se.Stream]++
	}
	return count
}

// TestSpoolOutage: with the server down, Log takes events without waiting
// and keeps them; once the server is back every one is stored exactly once,
// in order, and each Pending gets its receipt.
func TestSpoolOutage(t *testing.T) {
	s := newTestServer(t)
	s.stop()
	c := s.spoolClient(t.TempDir(), 1<<20, client.WithSpoolSegment(8<<10))
	var ps []*trail.Pending
	start := time.Now()
	for i := range 300 {
		ps = append(ps, c.Log(event(fmt.Sprintf("patient/%d", i%3), 0, i)))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("300 Logs took %v with the server down", d)
	}
	waitFor(t, "the events spooled and a failure seen", func() bool {
		st := c.Stats()
		return st.Spooled == 300 && st.LastError != "" && st.OldestAge > 0
	})
	for i, p := range ps {
		select {
		case <-p.Done():
			_, err := p.Wait(t.Context())
			t.Fatalf("event %d resolved with the server down: %v", i, err)
		default:
		}
	}
	s.start()
	rs := waitAll(t, ps)
	ids := map[string]bool{}
	for i, r := range rs {
		if r.LeafHash == (trail.Hash{}) || r.Recorded == "" {
			t.Fatalf("event %d: receipt %+v is not the server's", i, r)
		}
		ids[r.ID] = true
	}
	s.checkExactlyOnce(ids)
	for stream, n := range s.producerOrder() {
		if n != 100 {
			t.Errorf("stream %s: %d events stored, want 100", stream, n)
		}
	}
	st := c.Stats()
	if st.Spooled != 0 || st.SpooledBytes != 0 || st.Sent != 300 || st.OldestAge != 0 || st.LastError != "" {
		t.Errorf("stats after the outage: %+v", st)
	}
}

// TestSpoolApplicationRestart: an application closed (or stopped) while the
// server is down leaves its events in the spool; the next run on the same
// directory sends them, exactly once and in order, with the time they were
// logged.
func TestSpoolApplicationRestart(t *testing.T) {
	s := newTestServer(t)
	s.stop()
	dir := t.TempDir()
	c1, err := client.New(s.url(), client.WithToken(string(s.tok)), client.WithSpool(dir, 1<<20), client.WithSpoolSegment(4<<10))
	if err != nil {
		t.Fatal(err)
	}
	var ps []*trail.Pending
	for i := range 200 {
		ps = append(ps, c1.Log(event("patient/7", 0, i)))
	}
	logged := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	err = c1.Close(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "stay in the spool") {
		t.Errorf("Close with the server down: %v", err)
	}
	for i, p := range ps {
		_, err := p.Wait(t.Context())
		if !errors.Is(err, trail.ErrClosed) || !strings.Contains(err.Error(), "stays in the spool") {
			t.Fatalf("event %d after Close: %v", i, err)
		}
	}
	time.Sleep(20 * time.Millisecond) // the stored times must be those of Log
	s.start()
	c2 := s.spoolClient(dir, 1<<20)
	if st := c2.Stats(); st.Spooled != 200 {
		t.Errorf("the second run found %d events spooled, want 200", st.Spooled)
	}
	if err := c2.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	stored := s.stored()
	seen := map[string]bool{}
	for _, se := range stored {
		if seen[se.ID] {
			t.Errorf("id %s stored twice", se.ID)
		}
		seen[se.ID] = true
		if se.Time.IsZero() || se.Time.After(logged) {
			t.Errorf("event %s stored with time %v; it was logged before %v", se.ID, se.Time, logged)
		}
	}
	if n := s.producerOrder()["patient/7"]; n != 200 {
		t.Errorf("%d events stored, want 200", n)
	}
	if st := c2.Stats(); st.Spooled != 0 || st.Sent != 200 {
		t.Errorf("stats: %+v", st)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "spool-") {
			files = append(files, e.Name())
		}
	}
	if len(files) != 1 {
		t.Errorf("spool files left after everything was acknowledged: %v (want only the one being written)", files)
	}
}

// TestSpoolServerRestartsUnderLoad: producers log all along while the
// server is stopped and started twice; every event is stored exactly once,
// each stream in order, and every Pending gets the server's receipt.
func TestSpoolServerRestartsUnderLoad(t *testing.T) {
	s := newTestServer(t)
	c := s.spoolClient(t.TempDir(), 64<<20, client.WithSpoolSegment(64<<10))
	const producers, each = 4, 1500
	ps := make([][]*trail.Pending, producers)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ps[p] = append(ps[p], c.Log(event(fmt.Sprintf("patient/%d", p), p, i)))
				if i%50 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	for range 2 {
		time.Sleep(40 * time.Millisecond)
		s.stop()
		time.Sleep(150 * time.Millisecond)
		s.start()
	}
	wg.Wait()
	ids := map[string]bool{}
	for p := range producers {
		for _, r := range waitAll(t, ps[p]) {
			ids[r.ID] = true
		}
	}
	s.checkExactlyOnce(ids)
	for stream, n := range s.producerOrder() {
		if n != each {
			t.Errorf("stream %s: %d events, want %d", stream, n, each)
		}
	}
}

// TestSpoolFull: a full spool refuses Log at once with ErrSpoolFull, drops
// nothing it took, and Enqueue waits for room.
func TestSpoolFull(t *testing.T) {
	s := newTestServer(t)
	s.stop()
	max := int64(2 * client.MinSpool)
	c := s.spoolClient(t.TempDir(), max)
	var ps []*trail.Pending
	var full error
	for i := 0; full == nil; i++ {
		if i > 10000 {
			t.Fatal("the spool never filled")
		}
		p := c.Log(event("patient/1", 0, i))
		select {
		case <-p.Done():
			_, full = p.Wait(t.Context())
		default:
			ps = append(ps, p)
		}
	}
	if !errors.Is(full, client.ErrSpoolFull) || !errors.Is(full, trail.ErrBufferFull) {
		t.Fatalf("Log into a full spool: %v", full)
	}
	if st := c.Stats(); st.SpooledBytes > max || st.Spooled != int64(len(ps)) {
		t.Errorf("full spool: %+v, %d events taken, max %d bytes", st, len(ps), max)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	_, err := c.Enqueue(ctx, event("patient/1", 0, len(ps)))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Enqueue into a full spool: %v", err)
	}
	done := make(chan *trail.Pending)
	go func() {
		p, err := c.Enqueue(t.Context(), event("patient/1", 0, len(ps)))
		if err != nil {
			t.Error(err)
		}
		done <- p
	}()
	time.Sleep(20 * time.Millisecond)
	s.start()
	ps = append(ps, <-done)
	ids := map[string]bool{}
	for _, r := range waitAll(t, ps) {
		ids[r.ID] = true
	}
	s.checkExactlyOnce(ids)
	s.producerOrder()
}

// TestSpoolRejected: an event the server refuses alone fails its Pending
// with the server's answer and is kept in rejected.ndjson; the others are
// stored.
func TestSpoolRejected(t *testing.T) {
	s := newTestServer(t, func(cfg *server.Config) {
		cfg.Auth = patientOnly{admin: server.AdminOnly(cfg.AdminToken)}
	})
	dir := t.TempDir()
	c := s.spoolClient(dir, 1<<20, client.WithToken("patients"))
	ps := []*trail.Pending{
		c.Log(event("patient/2", 0, 0)),
		c.Log(event("auth/login", 0, 1)), // not granted
		c.Log(event("patient/2", 0, 2)),
	}
	if _, err := ps[0].Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := ps[2].Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := ps[1].Wait(t.Context())
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 403 {
		t.Fatalf("the refused event: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "rejected.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	var rej struct {
		Rejected time.Time
		Error    string
		Event    struct {
			ID     string
			Stream string
		}
	}
	if err := json.Unmarshal(data, &rej); err != nil {
		t.Fatalf("rejected.ndjson %q: %v", data, err)
	}
	if rej.Event.Stream != "auth/login" || rej.Event.ID == "" || !strings.Contains(rej.Error, "403") || rej.Rejected.IsZero() {
		t.Errorf("rejected.ndjson: %s", data)
	}
	if st := c.Stats(); st.Rejected != 1 || st.Sent != 2 || st.Spooled != 0 {
		t.Errorf("stats: %+v", st)
	}
}

// TestSpoolPrivateAndLocked: the spool is the owner's alone and one
// client's at a time.
func TestSpoolPrivateAndLocked(t *testing.T) {
	s := newTestServer(t, func(cfg *server.Config) {
		cfg.Auth = patientOnly{admin: server.AdminOnly(cfg.AdminToken)}
	})
	dir := filepath.Join(t.TempDir(), "spool")
	c := s.spoolClient(dir, 1<<20, client.WithToken("patients"))
	for _, ev := range []trail.Event{event("patient/1", 0, 0), event("auth/x", 0, 1)} {
		c.Log(ev)
	}
	if err := c.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("spool directory mode %v, want 0700", st.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, e.Name())
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", e.Name(), info.Mode().Perm())
		}
	}
	for _, want := range []string{"LOCK", "cursor", "rejected.ndjson", "spool-0000000000000001.log"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("spool files %v: no %s", names, want)
		}
	}
	_, err = client.New(s.url(), client.WithSpool(dir, 1<<20))
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second client on the spool: %v", err)
	}
}
