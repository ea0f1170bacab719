package server_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	s := start(t)
	s.appendBatch(t, event("m-1", "patient/1"), event("m-2", "patient/2"))
	s.appendOne(t, event("m-3", "patient/1"))

	for _, path := range []string{"/healthz", "/readyz"} {
		t.Run(path, func(t *testing.T) {
			if r := s.do(t, http.MethodGet, path, "", nil); r.Status != http.StatusOK {
				t.Errorf("%s without a token: %v, want 200", path, r)
			}
		})
	}
	t.Run("/metrics", func(t *testing.T) {
		wantProblem(t, s.do(t, http.MethodPost, "/v1/events", "trail_nobody", encode(t, event("m-4", "patient/1"))), http.StatusUnauthorized)
		r := s.do(t, http.MethodGet, "/metrics", "", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("/metrics without a token: %v, want 200", r)
		}
		body := string(r.Body)
		for _, want := range []string{"trail_log_events", "trail_fsync_duration_seconds", "trail_queries_running", "trail_query_records_read_total"} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics has no %s", want)
			}
		}
		store := `trail_store_info{kind="files",replication=""} 1`
		if *storeFlag == "postgres" {
			store = `trail_store_info{kind="postgres",replication="none"} 1` // the tests' cluster has no standby
		}
		if !strings.Contains(body, store) {
			t.Errorf("/metrics has no %s", store)
		}
		if m := regexp.MustCompile(`(?m)^trail_log_events (\S+)$`).FindStringSubmatch(body); m == nil || m[1] != "3" {
			t.Errorf("trail_log_events sample %v, want 3", m)
		}
		if !regexp.MustCompile(`(?m)^\w+\{[^}]*(unauthenticated|"401")[^}]*\} [1-9]`).MatchString(body) {
			t.Errorf("/metrics does not count the 401 answered before")
		}
		m := regexp.MustCompile(`(?m)^trail_fsync_duration_seconds_count (\S+)$`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("/metrics has no trail_fsync_duration_seconds_count sample")
		}
		if n, err := strconv.ParseFloat(m[1], 64); err != nil || n < 1 {
			t.Errorf("trail_fsync_duration_seconds_count %q, want at least 1", m[1])
		}
	})
}

// TestOverload: with a queue of one event and no patience, concurrent
// appends get 503 with Retry-After; every event acknowledged is stored and
// none refused is, so a client may resend refused events with the same ids.
func TestOverload(t *testing.T) {
	t.Parallel()
	s := start(t, func(st *setup) {
		st.engine.QueueSize = 1
		st.server.QueueWait = time.Millisecond
	})

	type outcome struct {
		evs    []trail.Event
		status int
	}
	var (
		mu       sync.Mutex
		outcomes []outcome
		refused  int
	)
	for round := 0; round < 20 && refused == 0; round++ {
		var wg sync.WaitGroup
		for w := range 32 {
			wg.Go(func() {
				for k := range 8 {
					id := fmt.Sprintf("o%d-%d-%d", round, w, k)
					o := outcome{evs: []trail.Event{event(id, fmt.Sprintf("load/%d", w%4))}}
					path, body := "/v1/events", encode(t, o.evs[0])
					batch := k%3 == 2
					if batch {
						o.evs = []trail.Event{event(id+"a", "load/b"), event(id+"b", "load/b")}
						path, body = "/v1/batch", ndjson(t, o.evs...)
					}
					r, err := s.try(http.MethodPost, path, admin, body)
					if err != nil {
						t.Errorf("%s: %v", path, err)
						return
					}
					o.status = r.Status
					switch {
					case r.Status == http.StatusServiceUnavailable:
						wantProblem(t, r, http.StatusServiceUnavailable)
						if n, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || n < 1 {
							t.Errorf("503 with Retry-After %q, want a number of seconds", r.Header.Get("Retry-After"))
						}
					case batch && r.Status == http.StatusOK:
						wantReceipts(t, r)
					case !batch && r.Status == http.StatusCreated:
						wantReceipt(t, r, http.StatusCreated)
					default:
						t.Errorf("%s: %v, want 201 (200 for a batch) or 503", path, r)
					}
					mu.Lock()
					outcomes = append(outcomes, o)
					if r.Status == http.StatusServiceUnavailable {
						refused++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	if refused == 0 {
		t.Fatalf("no 503 in %d appends with a queue of one", len(outcomes))
	}
	t.Logf("%d of %d appends refused with 503", refused, len(outcomes))

	var acked []string
	for _, o := range outcomes {
		if o.status != http.StatusServiceUnavailable {
			for _, e := range o.evs {
				acked = append(acked, e.ID)
			}
		}
	}
	if d := cmp.Diff(acked, s.storedIDs(t), cmpopts.SortSlices(func(a, b string) bool { return a < b })); d != "" {
		t.Errorf("stored ids (-acknowledged +stored):\n%s", d)
	}

	// Resending refused events with the same ids, as a client does, stores
	// them now, once: a single event gets 201, not the 200 of a repeat.
	// (The room an answered event held in the queue may be freed just after
	// its answer, so even one client alone can meet a 503 and retry.)
	resend := func(path string, body []byte) reply {
		for range 1000 {
			r := s.post(t, path, body)
			if r.Status != http.StatusServiceUnavailable {
				return r
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("%s: still 503 after 1000 tries", path)
		return reply{}
	}
	for _, o := range outcomes {
		if o.status != http.StatusServiceUnavailable {
			continue
		}
		if len(o.evs) == 1 {
			wantReceipt(t, resend("/v1/events", encode(t, o.evs[0])), http.StatusCreated)
			continue
		}
		size := s.l.Size()
		for _, r := range wantReceipts(t, resend("/v1/batch", ndjson(t, o.evs...))) {
			if r.Index < size {
				t.Errorf("resent event %s has receipt %+v: it was stored before", r.ID, r)
			}
		}
	}
	if ids := s.storedIDs(t); len(ids) != len(slices.Compact(slices.Sorted(slices.Values(ids)))) {
		t.Errorf("an id is stored twice after resending")
	}
}

// TestBackupRoute: GET /v1/admin/backup is the admin's, a tar archive up to
// the latest checkpoint ending with its manifest (or 501 when the log is in
// PostgreSQL); others get 403, HEAD 405, another purpose 400. Every
// exchange is checked against the OpenAPI description.
func TestBackupRoute(t *testing.T) {
	reader := &server.Principal{Name: "reader", Read: []string{"patient/*"}}
	s := start(t, withPrincipals(map[string]*server.Principal{"reader-token": reader}), withCheckpointInterval(10*time.Millisecond))
	rs := s.appendBatch(t, event("", "patient/1"), event("", "patient/2"), event("", "patient/1"))
	s.waitCheckpoint(t, rs[len(rs)-1].Index+1)
	wantProblem(t, s.do(t, "GET", "/v1/admin/backup", "reader-token", nil), http.StatusForbidden, "admin")
	if r := s.do(t, "HEAD", "/v1/admin/backup", string(s.tok), nil); r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET" {
		t.Errorf("HEAD: %s (Allow %q)", r, r.Header.Get("Allow"))
	}
	wantProblem(t, s.do(t, "GET", "/v1/admin/backup?purpose=treatment", string(s.tok), nil), http.StatusBadRequest, "purpose=system")
	r := s.do(t, "GET", "/v1/admin/backup?purpose=system", string(s.tok), nil)
	if s.l.Dir() == "" {
		wantProblem(t, r, http.StatusNotImplemented, "pg_dump")
		return
	}
	if r.Status != http.StatusOK || mediaType(r.Header) != "application/x-tar" {
		t.Fatalf("the admin's backup: %s", r)
	}
	tr := tar.NewReader(bytes.NewReader(r.Body))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("archive: %v", err)
		}
		names = append(names, h.Name)
	}
	if len(names) == 0 || names[len(names)-1] != "BACKUP" {
		t.Fatalf("archive files %v: the manifest BACKUP must come last", names)
	}
	for _, secret := range []string{"checkpoint.key", "admin.token"} {
		if slices.Contains(names, secret) {
			t.Errorf("archive files %v hold %s", names, secret)
		}
	}
}
