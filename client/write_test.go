package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/client"
	"github.com/trailhq/trail/server"
)

var clientID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestReceiptsMatchStoredEvents(t *testing.T) {
	s := newTestServer(t)
	c := s.client()
	var ps []*trail.Pending
	for i := 0; i < 300; i++ {
		ev := event(fmt.Sprintf("patient/%d", i%7), 0, i)
		if i%10 == 0 {
			ev.ID = fmt.Sprintf("app-id-%d", i)
		}
		ps = append(ps, c.Log(ev))
	}
	rs := waitAll(t, ps)
	seen := map[uint64]bool{}
	for i, r := range rs {
		rec, err := c.Get(t.Context(), r.Index)
		if err != nil {
			t.Fatalf("get %d: %v", r.Index, err)
		}
		if h := trail.LeafHash(rec); h != r.LeafHash {
			t.Errorf("event %d: receipt leaf hash %s, stored bytes hash to %s", i, r.LeafHash, h)
		}
		se, err := trail.ParseStored(rec)
		if err != nil {
			t.Fatal(err)
		}
		if se.ID != r.ID || se.Stream != r.Stream || se.StreamSeq != r.StreamSeq || se.Recorded != r.Recorded || se.Index != r.Index {
			t.Errorf("event %d: receipt %+v, stored %s", i, r, rec)
		}
		if string(se.Details) != fmt.Sprintf(`{"producer":0,"i":%d}`, i) {
			t.Errorf("event %d: receipt names the event with details %s", i, se.Details)
		}
		if i%10 == 0 {
			if r.ID != fmt.Sprintf("app-id-%d", i) {
				t.Errorf("event %d: the application's id became %s", i, r.ID)
			}
		} else if !clientID.MatchString(r.ID) {
			t.Errorf("event %d: client-assigned id %q is not a UUIDv8", i, r.ID)
		}
		if seen[r.Index] {
			t.Errorf("index %d given twice", r.Index)
		}
		seen[r.Index] = true
		if p := ps[i]; p.Duplicate() {
			t.Errorf("event %d: Duplicate() = true", i)
		}
	}
}

func TestAppendAndFlush(t *testing.T) {
	s := newTestServer(t)
	c := s.client()
	r, err := c.Append(t.Context(), event("auth/login", 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if r.Stream != "auth/login" || r.StreamSeq != 1 {
		t.Errorf("receipt %+v", r)
	}
	var ps []*trail.Pending
	for i := 0; i < 500; i++ {
		ps = append(ps, c.Log(event("auth/login", 0, i)))
	}
	if err := c.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		select {
		case <-p.Done():
		default:
			t.Fatalf("event %d not resolved after Flush", i)
		}
	}
	waitAll(t, ps)
}

// TestPerStreamOrder: 32 producers log to 5 streams through 4 lanes with
// small batches; each producer's events of one stream must get increasing
// stream_seq.
func TestPerStreamOrder(t *testing.T) {
	s := newTestServer(t)
	c := s.client(client.WithBatchSize(16), client.WithLanes(4))
	const producers, perProducer, streams = 32, 150, 5
	pendings := make([][]*trail.Pending, producers)
	var wg sync.WaitGroup
	for g := 0; g < producers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps := make([]*trail.Pending, perProducer)
			for i := range ps {
				ps[i] = c.Log(event(fmt.Sprintf("ward/%d", (g+i)%streams), g, i))
				if i%50 == 49 {
					time.Sleep(time.Millisecond)
				}
			}
			pendings[g] = ps
		}()
	}
	wg.Wait()
	for g, ps := range pendings {
		rs := waitAll(t, ps)
		last := map[string]uint64{}
		for i, r := range rs {
			if want := fmt.Sprintf("ward/%d", (g+i)%streams); r.Stream != want {
				t.Fatalf("producer %d event %d: stream %s, want %s", g, i, r.Stream, want)
			}
			if r.StreamSeq <= last[r.Stream] {
				t.Fatalf("producer %d event %d: stream_seq %d of %s after %d: out of order", g, i, r.StreamSeq, r.Stream, last[r.Stream])
			}
			last[r.Stream] = r.StreamSeq
		}
	}
	// Streams have no gaps: their lengths add up to every event.
	total := uint64(0)
	for i := 0; i < streams; i++ {
		h, err := c.Stream(t.Context(), fmt.Sprintf("ward/%d", i))
		if err != nil {
			t.Fatal(err)
		}
		total += h.Length
	}
	if total != producers*perProducer {
		t.Errorf("streams hold %d events, want %d", total, producers*perProducer)
	}
}

// flaky fails batch requests in the ways a network does: refused with 503
// before the server sees them, stored but the connection dropped before the
// answer, or the answer cut in the middle.
func flaky(seed uint64) (hook, *atomic.Int64) {
	var n atomic.Int64
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if r.URL.Path != "/v1/batch" {
			next.ServeHTTP(w, r)
			return
		}
		switch (uint64(n.Add(1))*2654435761 + seed) % 5 {
		case 0:
			w.Header().Set("Retry-After", "0")
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		case 1:
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r) // stored
			panic(http.ErrAbortHandler)
		case 2:
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(rec.Body.Len()))
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes()[:rec.Body.Len()/2])
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		default:
			next.ServeHTTP(w, r)
		}
	}, &n
}

func TestRetriesStoreExactlyOnce(t *testing.T) {
	s := newTestServer(t)
	h, attempts := flaky(7)
	s.setHook(h)
	c := s.client(client.WithBatchSize(25))
	var ps []*trail.Pending
	for i := 0; i < 1000; i++ {
		ps = append(ps, c.Log(event(fmt.Sprintf("patient/%d", i%13), 0, i)))
	}
	rs := waitAll(t, ps)
	ids := map[string]bool{}
	for _, r := range rs {
		ids[r.ID] = true
	}
	if len(ids) != len(rs) {
		t.Errorf("%d receipts carry %d distinct ids", len(rs), len(ids))
	}
	s.checkExactlyOnce(ids)
	if st := c.Stats(); st.Sent != 1000 || st.Buffered != 0 {
		t.Errorf("stats after 1000 events stored: %+v", st)
	}
	t.Logf("%d batch requests for %d events", attempts.Load(), len(rs))
}

func TestRetriesAcrossServerRestart(t *testing.T) {
	s := newTestServer(t)
	c := s.client(client.WithBatchSize(20))
	var ps []*trail.Pending
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1500; i++ {
			p := c.Log(event(fmt.Sprintf("patient/%d", i%11), 0, i))
			mu.Lock()
			ps = append(ps, p)
			mu.Unlock()
			if i%20 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	waitFor(t, "events stored before the restart", func() bool { return s.log.Size() > 100 })
	s.stop()
	time.Sleep(50 * time.Millisecond) // the client meets a closed port
	s.start()
	<-done
	rs := waitAll(t, ps)
	ids := map[string]bool{}
	last := map[string]uint64{}
	for i, r := range rs {
		ids[r.ID] = true
		if r.StreamSeq <= last[r.Stream] {
			t.Errorf("event %d: stream_seq %d after %d in %s", i, r.StreamSeq, last[r.Stream], r.Stream)
		}
		last[r.Stream] = r.StreamSeq
	}
	s.checkExactlyOnce(ids)
}

func TestRetryTimeoutFailsTheBatch(t *testing.T) {
	s := newTestServer(t)
	s.setHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"title":"Service Unavailable","status":503,"detail":"disk full"}`))
	})
	c := s.client(client.WithRetryTimeout(200 * time.Millisecond))
	start := time.Now()
	_, err := c.Log(event("a/b", 0, 0)).Wait(t.Context())
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 503 || e.Detail != "disk full" {
		t.Fatalf("after the retry timeout: %v, want the last 503", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("failed after %v", el)
	}
	// The lane goes on with the next batch.
	s.setHook(nil)
	if _, err := c.Append(t.Context(), event("a/b", 0, 1)); err != nil {
		t.Fatal(err)
	}
}

// TestRetryTimeoutDuringAttempt: when the retry time runs out while an
// attempt is still waiting for the server, the batch fails with what the
// server last answered, not with the cut request.
func TestRetryTimeoutDuringAttempt(t *testing.T) {
	s := newTestServer(t)
	var n atomic.Int32
	s.setHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		if n.Add(1) > 1 {
			select { // slower than the retry timeout
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"title":"Service Unavailable","status":503,"detail":"disk full"}`))
	})
	c := s.client(client.WithRetryTimeout(300 * time.Millisecond))
	_, err := c.Log(event("a/b", 0, 0)).Wait(t.Context())
	var e *client.Error
	if !errors.As(err, &e) || e.Status != 503 || e.Detail != "disk full" {
		t.Fatalf("after the retry timeout: %v, want the last 503", err)
	}
	if n.Load() < 2 {
		t.Fatalf("%d attempts; the test needs a second, cut by the retry timeout", n.Load())
	}
}

func TestBufferFull(t *testing.T) {
	s := newTestServer(t)
	g := newGate()
	s.setHook(g.hook)
	c := s.client(client.WithMaxBuffered(10), client.WithBatchSize(4), client.WithLanes(1))
	var ps []*trail.Pending
	for i := 0; i < 10; i++ {
		ps = append(ps, c.Log(event("s/1", 0, i)))
	}
	p := c.Log(event("s/1", 0, 10))
	select {
	case <-p.Done():
	default:
		t.Fatal("Log with a full buffer did not fail at once")
	}
	if _, err := p.Wait(t.Context()); !errors.Is(err, trail.ErrBufferFull) {
		t.Fatalf("Log with a full buffer: %v, want ErrBufferFull", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	if _, err := c.Enqueue(ctx, event("s/1", 0, 11)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Enqueue with a full buffer: %v, want to wait until ctx ends", err)
	}
	waited := make(chan error, 1)
	go func() {
		_, err := c.Append(t.Context(), event("s/1", 0, 12))
		waited <- err
	}()
	waitFor(t, "a batch request at the gate", func() bool { return g.waiting.Load() > 0 })
	g.release()
	waitAll(t, ps)
	if err := <-waited; err != nil {
		t.Fatalf("Append waiting for room: %v", err)
	}
}

func TestInvalidEventFailsAlone(t *testing.T) {
	s := newTestServer(t)
	c := s.client()
	bad := event("patient/1", 0, 1)
	bad.Action = "X"
	good := []*trail.Pending{c.Log(event("patient/1", 0, 0))}
	p := c.Log(bad)
	good = append(good, c.Log(event("patient/1", 0, 2)))
	select {
	case <-p.Done():
	default:
		t.Fatal("an invalid event did not fail at once")
	}
	var ve *trail.ValidationError
	if _, err := p.Wait(t.Context()); !errors.As(err, &ve) || ve.Field != "action" {
		t.Fatalf("invalid event: %v, want a ValidationError on action", err)
	}
	rs := waitAll(t, good)
	if rs[0].StreamSeq != 1 || rs[1].StreamSeq != 2 {
		t.Errorf("valid events: %+v", rs)
	}

	// Over 64 KiB as JSON: refused by the client, not sent.
	big := event("patient/1", 0, 3)
	big.OutcomeDesc = strings.Repeat("x", trail.MaxEventSize)
	if _, err := c.Log(big).Wait(t.Context()); !errors.Is(err, trail.ErrTooLarge) {
		t.Errorf("event over 64 KiB: %v, want ErrTooLarge", err)
	}
}

// TestServerRefusedLineFailsAlone: lines the server refuses (409 id
// conflict, 400 an id only the server may assign, 403 a stream not granted) fail
// alone, and the rest of their batch is stored.
func TestServerRefusedLineFailsAlone(t *testing.T) {
	s := newTestServer(t, func(cfg *server.Config) {
		cfg.Auth = patientOnly{admin: server.AdminOnly(cfg.AdminToken)}
	})
	c := s.client()
	first := event("patient/1", 0, 0)
	first.ID = "visit-1"
	if _, err := c.Append(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	conflict := event("patient/1", 0, 1)
	conflict.ID = "visit-1" // same id, other content
	// In the form of the ids the server assigns, naming an index not yet
	// reached: valid for the client, refused by the server.
	futureID := event("patient/1", 0, 2)
	futureID.ID = fmt.Sprintf("01930000-0000-7000-8000-%012x", s.log.Size()+1000)
	g := newGate()
	s.setHook(g.hook)
	pc := s.client(client.WithToken("patients"), client.WithLanes(1))
	// The first request waits at the gate, so the rest go in one batch.
	head := pc.Log(event("patient/9", 0, 0))
	waitFor(t, "the first request at the gate", func() bool { return g.waiting.Load() > 0 })
	ps := []*trail.Pending{
		pc.Log(event("patient/2", 0, 0)),
		pc.Log(conflict),
		pc.Log(event("patient/2", 0, 1)),
		pc.Log(futureID),
		pc.Log(event("auth/login", 0, 0)), // not granted
		pc.Log(event("patient/2", 0, 2)),
	}
	g.release()
	if _, err := head.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	wantErr := []func(error) bool{
		nil,
		func(err error) bool { return errors.Is(err, trail.ErrIDConflict) },
		nil,
		func(err error) bool {
			var e *client.Error
			return errors.As(err, &e) && e.Status == 400 && strings.Contains(e.Detail, "choose another id")
		},
		func(err error) bool {
			var e *client.Error
			return errors.As(err, &e) && e.Status == 403
		},
		nil,
	}
	var seqs []uint64
	for i, p := range ps {
		r, err := p.Wait(t.Context())
		switch {
		case wantErr[i] == nil && err != nil:
			t.Errorf("event %d: %v", i, err)
		case wantErr[i] == nil:
			seqs = append(seqs, r.StreamSeq)
		case !wantErr[i](err):
			t.Errorf("event %d: got %v", i, err)
		}
	}
	if fmt.Sprint(seqs) != "[1 2 3]" {
		t.Errorf("patient/2 stream_seqs %v, want [1 2 3]", seqs)
	}
}

// patientOnly admits "patients" with an append grant on patient/* only, and
// the admin.
type patientOnly struct{ admin server.Authenticator }

func (a patientOnly) Authenticate(r *http.Request) (*server.Principal, error) {
	if r.Header.Get("Authorization") == "Bearer patients" {
		return &server.Principal{Name: "patients", Append: []string{"patient/*"}}, nil
	}
	return a.admin.Authenticate(r)
}

func TestUnauthorizedFailsTheBatch(t *testing.T) {
	s := newTestServer(t)
	var requests atomic.Int32
	s.setHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		requests.Add(1)
		next.ServeHTTP(w, r)
	})
	c := s.client(client.WithToken("trail_wrong"))
	ps := []*trail.Pending{c.Log(event("a/1", 0, 0)), c.Log(event("a/1", 0, 1))}
	for i, p := range ps {
		_, err := p.Wait(t.Context())
		var e *client.Error
		if !errors.As(err, &e) || e.Status != 401 {
			t.Errorf("event %d with a wrong token: %v", i, err)
		}
	}
	if n := requests.Load(); n > 2 {
		t.Errorf("%d requests: a 401 was retried", n)
	}
}

// TestTooLargeBatchIsSplit: a server that takes small batches answers 413;
// the client sends halves until they fit.
func TestTooLargeBatchIsSplit(t *testing.T) {
	s := newTestServer(t, func(cfg *server.Config) {
		cfg.MaxBatchEvents = 7
		cfg.MaxBatchBytes = 4 << 10
	})
	g := newGate()
	s.setHook(g.hook)
	c := s.client(client.WithLanes(1), client.WithBatchSize(100))
	head := c.Log(event("s/1", 0, -1))
	waitFor(t, "the first request at the gate", func() bool { return g.waiting.Load() > 0 })
	var ps []*trail.Pending
	for i := 0; i < 100; i++ {
		ps = append(ps, c.Log(event("s/1", 0, i)))
	}
	g.release()
	waitAll(t, append([]*trail.Pending{head}, ps...))
	rs := waitAll(t, ps)
	for i := 1; i < len(rs); i++ {
		if rs[i].StreamSeq != rs[i-1].StreamSeq+1 {
			t.Fatalf("event %d: stream_seq %d after %d", i, rs[i].StreamSeq, rs[i-1].StreamSeq)
		}
	}
}

func TestCloseDrains(t *testing.T) {
	s := newTestServer(t)
	c, err := client.New(s.url(), client.WithToken(string(s.tok)))
	if err != nil {
		t.Fatal(err)
	}
	var ps []*trail.Pending
	for i := 0; i < 2000; i++ {
		ps = append(ps, c.Log(event(fmt.Sprintf("p/%d", i%17), 0, i)))
	}
	if err := c.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		select {
		case <-p.Done():
		default:
			t.Fatalf("event %d not resolved when Close returned", i)
		}
	}
	rs := waitAll(t, ps)
	ids := map[string]bool{}
	for _, r := range rs {
		ids[r.ID] = true
	}
	s.checkExactlyOnce(ids)
	if _, err := c.Log(event("p/1", 0, 0)).Wait(t.Context()); !errors.Is(err, trail.ErrClosed) {
		t.Errorf("Log after Close: %v", err)
	}
}

func TestCloseGivesUpWhenItsContextEnds(t *testing.T) {
	s := newTestServer(t)
	s.setHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	})
	c, err := client.New(s.url(), client.WithToken(string(s.tok)))
	if err != nil {
		t.Fatal(err)
	}
	var ps []*trail.Pending
	for i := 0; i < 50; i++ {
		ps = append(ps, c.Log(event(fmt.Sprintf("p/%d", i%5), 0, i)))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := c.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("Close took %v", el)
	}
	for i, p := range ps {
		select {
		case <-p.Done():
		default:
			t.Fatalf("event %d not resolved when Close returned", i)
		}
		if _, err := p.Wait(t.Context()); !errors.Is(err, trail.ErrClosed) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("event %d: %v", i, err)
		}
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	s := newTestServer(t)
	var mu sync.Mutex
	var times []time.Time
	s.setHook(func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		mu.Lock()
		times = append(times, time.Now())
		first := len(times) == 1
		mu.Unlock()
		if first {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
	c := s.client()
	if _, err := c.Append(t.Context(), event("a/1", 0, 0)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("%d requests, want 2", len(times))
	}
	if d := times[1].Sub(times[0]); d < time.Second {
		t.Errorf("retried after %v; the server asked for 1s", d)
	}
}
