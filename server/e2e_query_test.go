package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

// queryPage is one answer of GET /v1/events; Next is a pointer so that its
// absence shows.
type queryPage struct {
	Events []json.RawMessage `json:"events"`
	Next   *string           `json:"next"`
}

// tryQuery runs GET /v1/events with params and returns the indexes of the
// events and the next cursor. It checks that every event is the stored bytes
// verbatim. It is safe to call from any goroutine.
func (s *testServer) tryQuery(params url.Values) ([]uint64, string, error) {
	return s.tryQueryWith(admin, params)
}

// tryQueryWith is tryQuery with a token.
func (s *testServer) tryQueryWith(token string, params url.Values) ([]uint64, string, error) {
	r, err := s.try(http.MethodGet, "/v1/events?"+params.Encode(), token, nil)
	if err != nil {
		return nil, "", err
	}
	if r.Status != http.StatusOK || mediaType(r.Header) != "application/json" {
		return nil, "", fmt.Errorf("query %s: %v, want 200 application/json", params.Encode(), r)
	}
	var p queryPage
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, "", fmt.Errorf("query %s: decode %s: %w", params.Encode(), truncate(r.Body, 300), err)
	}
	if p.Next == nil || p.Events == nil {
		return nil, "", fmt.Errorf("query %s: events or next missing: %s", params.Encode(), truncate(r.Body, 300))
	}
	idx := make([]uint64, len(p.Events))
	for i, raw := range p.Events {
		var e struct {
			Index uint64 `json:"index"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, "", fmt.Errorf("query %s: event %s: %w", params.Encode(), raw, err)
		}
		rec, err := s.l.Read(e.Index)
		if err != nil {
			return nil, "", fmt.Errorf("query %s: engine read %d: %w", params.Encode(), e.Index, err)
		}
		if !bytes.Equal(raw, rec) {
			return nil, "", fmt.Errorf("query %s: event %d is\n%s\nnot the stored bytes\n%s", params.Encode(), e.Index, raw, rec)
		}
		idx[i] = e.Index
	}
	return idx, *p.Next, nil
}

func (s *testServer) query(t testing.TB, params url.Values) ([]uint64, string) {
	t.Helper()
	idx, next, err := s.tryQuery(params)
	if err != nil {
		t.Fatal(err)
	}
	return idx, next
}

// pageAll follows next from the first page to the last, limit events a page.
func (s *testServer) pageAll(t testing.TB, params url.Values, limit int) []uint64 {
	t.Helper()
	return s.pageAllAs(t, admin, params, limit)
}

// pageAllAs is pageAll with a token.
func (s *testServer) pageAllAs(t testing.TB, token string, params url.Values, limit int) []uint64 {
	t.Helper()
	p := url.Values{}
	for k, v := range params {
		p[k] = v
	}
	p.Set("limit", strconv.Itoa(limit))
	var all []uint64
	for range 10000 {
		idx, next := s.tryQueryAs(t, token, p)
		if len(idx) > limit {
			t.Fatalf("query %s: %d events, over the limit", p.Encode(), len(idx))
		}
		all = append(all, idx...)
		if next == "" {
			return all
		}
		p.Set("after", next)
	}
	t.Fatalf("query %s: no end after 10,000 pages", params.Encode())
	return nil
}

// logged is an event as sent and the receipt it got.
type logged struct {
	e trail.Event
	r trail.Receipt
}

func (m logged) recorded(t testing.TB) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, m.r.Recorded)
	if err != nil {
		t.Fatalf("recorded %q: %v", m.r.Recorded, err)
	}
	return tm
}

// queryData appends 150 varied events in five batches (five recorded times).
func queryData(t *testing.T, s *testServer) []logged {
	streams := []string{"patient/1", "patient/2", "auth/login", "ward/7/beds"}
	patients := []string{"p1", "p2", ""}
	actors := []string{"dr-a", "dr-b", "nurse-c", "svc-x", "dr-e"}
	types := []string{"patient-record.read", "patient-record.update", "user.login"}
	outcomes := []string{"", "success", "minor-failure", "serious-failure", "major-failure"}
	var all []logged
	for b := range 5 {
		var evs []trail.Event
		for j := range 30 {
			i := b*30 + j
			evs = append(evs, trail.Event{
				ID: fmt.Sprintf("q-%d", i), Stream: streams[i%4], Patient: patients[i%3],
				Actor: trail.Actor{ID: actors[i%5]}, Type: types[i%7%3], Action: []string{"C", "R", "U", "D", "E"}[i/2%5],
				Outcome: outcomes[i%11%5],
			})
		}
		for i, r := range s.appendBatch(t, evs...) {
			all = append(all, logged{evs[i], r})
		}
	}
	return all
}

// TestQuery checks the filters as a principal that reads every stream of
// the data but not trail/, so the records of its own reads stay out of its
// answers; the admin, who reads trail/ too, sees them.
func TestQuery(t *testing.T) {
	t.Parallel()
	const reader = "trail_query_reader"
	s := start(t, withPrincipals(map[string]*server.Principal{
		reader: {Name: "query-reader", Read: []string{"patient/*", "auth/*", "ward/*", "nobody/*"}},
	}))
	data := queryData(t, s)
	var dataIdx []uint64
	for _, m := range data {
		dataIdx = append(dataIdx, m.r.Index)
	}

	// Before any other read: each query sees the records of the reads
	// before it, not its own, which is stored after its events are chosen.
	t.Run("admin sees the read records", func(t *testing.T) {
		all := url.Values{"limit": {"1000"}}
		size := s.l.Size()
		got, _ := s.query(t, all)
		if d := cmp.Diff(dataIdx, got); d != "" {
			t.Errorf("first query (-data +got):\n%s", d)
		}
		first := s.wantRead(t, size, "admin", "success", "GET /v1/events")
		if d := cmp.Diff(map[string]string{"limit": "1000"}, first.Details.Params); d != "" || first.Details.Count != len(data) {
			t.Errorf("record of the first query: params (-want +got):\n%s\ncount %d, want %d", d, first.Details.Count, len(data))
		}

		firstRecords := s.l.Size()
		size = s.l.Size()
		got, _ = s.query(t, all)
		want := slices.Clone(dataIdx)
		for i := first.Index; i < firstRecords; i++ { // the first query's record, then one per patient it returned
			want = append(want, i)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("second query (-data and the first query's records +got):\n%s", d)
		}
		s.wantRead(t, size, "admin", "success", "GET /v1/events")

		size = s.l.Size()
		got, _ = s.tryQueryAs(t, reader, all)
		if d := cmp.Diff(dataIdx, got); d != "" {
			t.Errorf("reader's query (-data +got):\n%s", d)
		}
		third := s.wantRead(t, size, "query-reader", "success", "GET /v1/events")
		if third.Details.Count != len(data) {
			t.Errorf("record of the reader's query: count %d, want %d", third.Details.Count, len(data))
		}

		// Each read's record comes with one per patient it returned.
		span := func(from, to uint64) (out []uint64) {
			for i := from; i < to; i++ {
				out = append(out, i)
			}
			return out
		}
		end := s.l.Size()
		got, _ = s.query(t, url.Values{"stream": {server.AccessStream}})
		if d := cmp.Diff(span(first.Index, end), got); d != "" {
			t.Errorf("stream=%s (-records +got):\n%s", server.AccessStream, d)
		}
		got, _ = s.query(t, url.Values{"actor": {"query-reader"}})
		if d := cmp.Diff(span(third.Index, end), got); d != "" {
			t.Errorf("actor=query-reader (-records +got):\n%s", d)
		}
		size = s.l.Size()
		r := s.do(t, http.MethodGet, "/v1/events?stream="+server.AccessStream, reader, nil)
		wantProblem(t, r, http.StatusForbidden, "read", server.AccessStream)
		s.wantRead(t, size, "query-reader", "minor-failure", "GET /v1/events")
	})
	r2, r4 := data[60].recorded(t), data[120].recorded(t)
	if !data[59].recorded(t).Before(r2) || !data[119].recorded(t).Before(r4) {
		t.Fatalf("batches share a recorded time: %s %s %s %s", data[59].r.Recorded, data[60].r.Recorded, data[119].r.Recorded, data[120].r.Recorded)
	}
	plus2 := time.FixedZone("", 2*3600)

	tests := []struct {
		name   string
		params string
		match  func(logged) bool
	}{
		{"no filter", "", func(logged) bool { return true }},
		{"stream", "stream=patient/1", func(m logged) bool { return m.e.Stream == "patient/1" }},
		{"deep stream", "stream=ward/7/beds", func(m logged) bool { return m.e.Stream == "ward/7/beds" }},
		{"stream prefix is not a stream", "stream=ward/7", func(logged) bool { return false }},
		{"unknown stream", "stream=nobody/here", func(logged) bool { return false }},
		{"patient", "patient=p1", func(m logged) bool { return m.e.Patient == "p1" }},
		{"actor", "actor=dr-b", func(m logged) bool { return m.e.Actor.ID == "dr-b" }},
		{"actor matches actor.id only", "actor=nobody", func(logged) bool { return false }},
		{"type", "type=user.login", func(m logged) bool { return m.e.Type == "user.login" }},
		{"action", "action=D", func(m logged) bool { return m.e.Action == "D" }},
		{"outcome success includes the default", "outcome=success", func(m logged) bool { return m.e.Outcome == "" || m.e.Outcome == "success" }},
		{"outcome", "outcome=major-failure", func(m logged) bool { return m.e.Outcome == "major-failure" }},
		{"stream and type", "stream=patient/2&type=patient-record.update", func(m logged) bool {
			return m.e.Stream == "patient/2" && m.e.Type == "patient-record.update"
		}},
		{"patient, action and outcome", "patient=p2&action=R&outcome=minor-failure", func(m logged) bool {
			return m.e.Patient == "p2" && m.e.Action == "R" && m.e.Outcome == "minor-failure"
		}},
		{"since is inclusive", "since=" + url.QueryEscape(data[60].r.Recorded), func(m logged) bool { return !m.recorded(t).Before(r2) }},
		{"until is exclusive", "until=" + url.QueryEscape(data[120].r.Recorded), func(m logged) bool { return m.recorded(t).Before(r4) }},
		{"since and until", "since=" + url.QueryEscape(data[60].r.Recorded) + "&until=" + url.QueryEscape(data[120].r.Recorded), func(m logged) bool {
			return !m.recorded(t).Before(r2) && m.recorded(t).Before(r4)
		}},
		{"since in another zone", "since=" + url.QueryEscape(r2.In(plus2).Format(time.RFC3339Nano)), func(m logged) bool { return !m.recorded(t).Before(r2) }},
		{"since in whole seconds", "since=" + url.QueryEscape(r2.Truncate(time.Second).Format(time.RFC3339)), func(m logged) bool {
			return !m.recorded(t).Before(r2.Truncate(time.Second))
		}},
		{"since with a filter", "actor=dr-a&since=" + url.QueryEscape(data[60].r.Recorded), func(m logged) bool {
			return m.e.Actor.ID == "dr-a" && !m.recorded(t).Before(r2)
		}},
		{"since in the future", "since=2999-01-01T00:00:00Z", func(logged) bool { return false }},
		{"until in the past", "until=2000-01-01T00:00:00Z", func(logged) bool { return false }},
		{"since equals until", "since=" + url.QueryEscape(data[60].r.Recorded) + "&until=" + url.QueryEscape(data[60].r.Recorded), func(logged) bool { return false }},
		{"purpose is recorded, not a filter", "purpose=treatment&stream=patient/2", func(m logged) bool { return m.e.Stream == "patient/2" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []uint64
			for _, m := range data {
				if tt.match(m) {
					want = append(want, m.r.Index)
				}
			}
			params, err := url.ParseQuery(tt.params)
			if err != nil {
				t.Fatal(err)
			}
			params.Set("limit", "1000")
			size := s.l.Size()
			got, next := s.tryQueryAs(t, reader, params)
			if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("ascending (-want +got):\n%s", d)
			}
			if next != "" {
				t.Errorf("next %q after every match, want \"\"", next)
			}
			rec := s.wantRead(t, size, "query-reader", "success", "GET /v1/events")
			wantParams := map[string]string{}
			for k := range params {
				wantParams[k] = params.Get(k)
			}
			if d := cmp.Diff(wantParams, rec.Details.Params); d != "" || rec.Details.Count != len(want) || rec.Purpose != params.Get("purpose") {
				t.Errorf("record: params (-want +got):\n%s\ncount %d, want %d; purpose %q, want %q", d, rec.Details.Count, len(want), rec.Purpose, params.Get("purpose"))
			}
			// The patient the read named: by patient=, or by a patient/<id> stream.
			patient := params.Get("patient")
			if id, ok := strings.CutPrefix(params.Get("stream"), "patient/"); ok && patient == "" {
				patient = id
			}
			if rec.Patient != patient {
				t.Errorf("record: patient %q, want %q", rec.Patient, patient)
			}
			params.Set("order", "desc")
			got, next = s.tryQueryAs(t, reader, params)
			rev := slices.Clone(want)
			slices.Reverse(rev)
			if d := cmp.Diff(rev, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("descending (-want +got):\n%s", d)
			}
			if next != "" {
				t.Errorf("next %q after every match, want \"\"", next)
			}
			params.Del("order")
			for _, order := range []string{"asc", "desc"} {
				params.Set("order", order)
				w := want
				if order == "desc" {
					w = rev
				}
				if d := cmp.Diff(w, s.pageAllAs(t, reader, params, 7), cmpopts.EquateEmpty()); d != "" {
					t.Errorf("%s, pages of 7 (-want +got):\n%s", order, d)
				}
			}
		})
	}

	t.Run("limit", func(t *testing.T) {
		got, next := s.query(t, url.Values{})
		if len(got) != 100 || got[0] != 0 || next == "" {
			t.Errorf("default: %d events from %v, next %q; want 100 from 0 and a cursor", len(got), got[:min(1, len(got))], next)
		}
		got, next = s.query(t, url.Values{"limit": {"1"}})
		if len(got) != 1 || next == "" {
			t.Errorf("limit=1: %d events, next %q; want 1 and a cursor", len(got), next)
		}
		got, _ = s.tryQueryAs(t, reader, url.Values{"limit": {"1"}, "order": {"desc"}})
		if d := cmp.Diff([]uint64{data[len(data)-1].r.Index}, got); d != "" {
			t.Errorf("limit=1&order=desc as the reader (-last event +got):\n%s", d)
		}
		// For the admin the newest event is the record of the read before.
		size := s.l.Size()
		got, _ = s.query(t, url.Values{"limit": {"1"}, "order": {"desc"}})
		if prev := s.readsFrom(t, size-1); len(prev) != 2 || prev[0].Actor.ID != "query-reader" {
			t.Errorf("records from %d: %+v, want the reader's query then this one", size-1, prev)
		}
		if d := cmp.Diff([]uint64{size - 1}, got); d != "" {
			t.Errorf("limit=1&order=desc as the admin (-last record +got):\n%s", d)
		}
		// patient/1 has 38 events: a page of exactly that many is the last.
		got, next = s.query(t, url.Values{"stream": {"patient/1"}, "limit": {"38"}})
		if len(got) != 38 || next != "" {
			t.Errorf("limit=38 of 38: %d events, next %q; want 38 and \"\"", len(got), next)
		}
		got, next = s.query(t, url.Values{"stream": {"patient/1"}, "limit": {"37"}})
		if len(got) != 37 || next == "" {
			t.Errorf("limit=37 of 38: %d events, next %q; want 37 and a cursor", len(got), next)
		}
	})

	for _, tt := range []struct{ params, detail string }{
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=x", "limit"},
		{"limit=-1", "limit"},
		{"limit=", "limit"},
		{"limit=1&limit=2", "limit"},
		{"streams=patient/1", "streams"},
		{"purpose_of_use=x", "purpose_of_use"},
		{"action=r", "action"},
		{"outcome=ok", "outcome"},
		{"order=up", "order"},
		{"since=yesterday", "since"},
		{"since=2026-01-01T1:00:00Z", "since"},
		{"until=2026-13-01T00:00:00Z", "until"},
		{"since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "since"},
		{"stream=bad%20name", "stream"},
		{"stream=patient//1", "stream"},
		{"after=x", "after"},
		{"after=-1", "after"},
		{"patient=", "patient"},
		{"purpose=emergency", "reason"},
	} {
		t.Run(tt.params, func(t *testing.T) {
			size := s.l.Size()
			wantProblem(t, s.get(t, "/v1/events?"+tt.params), http.StatusBadRequest, tt.detail)
			s.wantUnchanged(t, size) // 400s are not recorded
		})
	}
	t.Run("no token", func(t *testing.T) {
		size := s.l.Size()
		r := s.do(t, http.MethodGet, "/v1/events", "", nil)
		wantProblem(t, r, http.StatusUnauthorized)
		s.wantUnchanged(t, size) // 401s are not recorded
	})

	// Valid reads whatever their answer or parameters: the record of a read
	// must not be what refuses it. A 503 would be retried forever.
	t.Run("a long filter value is answered", func(t *testing.T) {
		r := s.do(t, http.MethodGet, "/v1/events?actor="+strings.Repeat("a", 20<<10), reader, nil)
		if r.Status != http.StatusOK && r.Status != http.StatusBadRequest {
			t.Errorf("actor= of 20 KiB: %v, want 200 (no match) or 400", r)
		}
	})
	// Last, as it adds events: a full page of events from as many streams.
	t.Run("a full page from 1000 streams", func(t *testing.T) {
		var evs []trail.Event
		for i := range 1000 {
			evs = append(evs, event("", fmt.Sprintf("patient/%08x-0000-4000-8000-%012x", i, i)))
		}
		var want []uint64
		for _, r := range s.appendBatch(t, evs...) {
			want = append(want, r.Index)
		}
		got, next, err := s.tryQueryWith(reader, url.Values{"limit": {"1000"}, "order": {"desc"}})
		if err != nil {
			t.Fatal(err)
		}
		slices.Reverse(want)
		if d := cmp.Diff(want, got); d != "" || next == "" {
			t.Errorf("limit=1000&order=desc (-want +got):\n%s\nnext %q, want a cursor", d, next)
		}
	})
}

// TestQueryReadYourWrites: a query or stream head made after a receipt
// arrived sees the event, however busy the log is.
func TestQueryReadYourWrites(t *testing.T) {
	t.Parallel()
	s := start(t)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			stream := fmt.Sprintf("ryw/%d", w)
			for k := range 25 {
				body := encode(t, event(fmt.Sprintf("ryw-%d-%d", w, k), stream))
				r, err := s.try(http.MethodPost, "/v1/events", admin, body)
				if err != nil || r.Status != http.StatusCreated {
					t.Errorf("append: %v %v", r, err)
					return
				}
				var rc receiptWire
				if err := json.Unmarshal(r.Body, &rc); err != nil {
					t.Errorf("receipt %s: %v", r.Body, err)
					return
				}
				idx, _, err := s.tryQuery(url.Values{"stream": {stream}, "order": {"desc"}, "limit": {"1"}})
				if err != nil || len(idx) != 1 || idx[0] != rc.Index {
					t.Errorf("query right after receipt %d: got %v %v", rc.Index, idx, err)
				}
				hr, err := s.try(http.MethodGet, "/v1/streams/"+stream, admin, nil)
				var h struct {
					Length    uint64 `json:"length"`
					HeadIndex uint64 `json:"head_index"`
				}
				if err == nil {
					err = json.Unmarshal(hr.Body, &h)
				}
				if err != nil || hr.Status != http.StatusOK || h.HeadIndex != rc.Index || h.Length != uint64(k+1) {
					t.Errorf("stream head right after receipt %d (event %d of %s): %v %+v %v", rc.Index, k+1, stream, hr, h, err)
				}
			}
		})
	}
	wg.Wait()
}

// TestQueryPagingWhileAppending pages through queries in both orders while
// writers append, and checks that every matching event comes exactly once,
// in order. The pagers read the data streams only, not the records their
// reads add to trail/access.
func TestQueryPagingWhileAppending(t *testing.T) {
	t.Parallel()
	const pager = "trail_pager"
	s := start(t, withPrincipals(map[string]*server.Principal{
		pager: {Name: "pager", Read: []string{"load/*", "other/*"}},
	}))
	var queries atomic.Int64 // reads the pagers made, each recorded
	tryQuery := func(params url.Values) ([]uint64, string, error) {
		queries.Add(1)
		return s.tryQueryWith(pager, params)
	}
	// Some events before the pagers start.
	for i := range 10 {
		s.appendOne(t, event(fmt.Sprintf("pre-%d", i), []string{"load/a", "load/b"}[i%2]))
	}

	var (
		mu       sync.Mutex
		receipts []trail.Receipt
		done     atomic.Bool
		writers  sync.WaitGroup
	)
	acked := func() []trail.Receipt {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(receipts)
	}
	for i := range s.l.Size() {
		var rc struct {
			ID     string `json:"id"`
			Stream string `json:"stream"`
		}
		json.Unmarshal(s.stored(t, i), &rc)
		receipts = append(receipts, trail.Receipt{ID: rc.ID, Index: i, Stream: rc.Stream})
	}
	for w := range 4 {
		writers.Go(func() {
			for k := range 15 {
				streams := []string{"load/a", "load/b", "load/a", "other/x"}
				var evs []trail.Event
				for j := range 1 + k%3 { // batches of 1 to 3
					evs = append(evs, event(fmt.Sprintf("w%d-%d-%d", w, k, j), streams[(w+k+j)%4]))
				}
				path, body := "/v1/batch", ndjson(t, evs...)
				if len(evs) == 1 {
					path, body = "/v1/events", encode(t, evs[0])
				}
				r, err := s.try(http.MethodPost, path, admin, body)
				if err != nil || (r.Status != http.StatusOK && r.Status != http.StatusCreated) {
					t.Errorf("append: %v %v", r, err)
					return
				}
				var rcs []receiptWire
				if len(evs) == 1 {
					var rc receiptWire
					err = json.Unmarshal(r.Body, &rc)
					rcs = append(rcs, rc)
				} else {
					var b struct {
						Receipts []receiptWire `json:"receipts"`
					}
					err = json.Unmarshal(r.Body, &b)
					rcs = b.Receipts
				}
				if err != nil {
					t.Errorf("receipts %s: %v", r.Body, err)
					return
				}
				mu.Lock()
				for _, rc := range rcs {
					receipts = append(receipts, trail.Receipt{ID: rc.ID, Index: rc.Index, Stream: rc.Stream})
				}
				mu.Unlock()
			}
		})
	}
	go func() { writers.Wait(); done.Store(true) }()

	matching := func(rcs []trail.Receipt, stream string) []uint64 {
		var out []uint64
		for _, r := range rcs {
			if stream == "" || r.Stream == stream {
				out = append(out, r.Index)
			}
		}
		slices.Sort(out)
		return out
	}

	// ascending pages until a query made after the writers finished says
	// there is no more. At the end of the data next is "", so the last page
	// is asked again until it grows or gets a cursor; it must not shift.
	ascending := func(stream string) {
		params := url.Values{"limit": {"5"}}
		if stream != "" {
			params.Set("stream", stream)
		}
		var got, seen []uint64
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			finished := done.Load()
			idx, next, err := tryQuery(params)
			if err != nil {
				t.Error(err)
				return
			}
			if len(idx) < len(seen) || !slices.Equal(idx[:len(seen)], seen) {
				t.Errorf("asc %s: page after %q shifted: was %v, now %v", stream, params.Get("after"), seen, idx)
				return
			}
			got = append(got, idx[len(seen):]...)
			if next != "" {
				params.Set("after", next)
				seen = nil
				continue
			}
			if finished {
				if d := cmp.Diff(matching(acked(), stream), got); d != "" {
					t.Errorf("asc %s while appending (-acknowledged +paged):\n%s", stream, d)
				}
				return
			}
			seen = idx
		}
		t.Errorf("asc %s: no end of pages in 20s", stream)
	}
	// descending pages from the newest event back to the first, again and
	// again while the writers run. Each pass is checked once every receipt
	// is in: it holds every event acknowledged before it began, and every
	// matching event below its first, once, in order.
	type pass struct{ before, got []uint64 }
	descending := func(stream string) []pass {
		var passes []pass
		for len(passes) == 0 || !done.Load() {
			before := matching(acked(), stream)
			params := url.Values{"limit": {"4"}, "order": {"desc"}}
			if stream != "" {
				params.Set("stream", stream)
			}
			var got []uint64
			for {
				idx, next, err := tryQuery(params)
				if err != nil {
					t.Error(err)
					return passes
				}
				got = append(got, idx...)
				if next == "" {
					break
				}
				params.Set("after", next)
			}
			slices.Reverse(got)
			passes = append(passes, pass{before, got})
		}
		return passes
	}
	checkDescending := func(stream string, passes []pass) {
		final := matching(acked(), stream)
		for n, p := range passes {
			for _, i := range p.before {
				if _, ok := slices.BinarySearch(p.got, i); !ok {
					t.Errorf("desc %s pass %d: event %d, acknowledged before the pass, is missing", stream, n, i)
				}
			}
			want := slices.DeleteFunc(slices.Clone(final), func(i uint64) bool { return len(p.got) == 0 || i > p.got[len(p.got)-1] })
			if d := cmp.Diff(want, p.got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("desc %s pass %d (-acknowledged +paged, reversed):\n%s", stream, n, d)
			}
		}
	}

	var pagers sync.WaitGroup
	passes := map[string][]pass{}
	var passesMu sync.Mutex
	for _, stream := range []string{"load/a", ""} {
		pagers.Go(func() { ascending(stream) })
		pagers.Go(func() {
			p := descending(stream)
			passesMu.Lock()
			passes[stream] = p
			passesMu.Unlock()
		})
	}
	pagers.Wait()
	writers.Wait()
	for stream, p := range passes {
		t.Logf("stream %q: %d descending passes while appending", stream, len(p))
		checkDescending(stream, p)
	}
	// The log holds the acknowledged events and a record of each read.
	reads := s.readsFrom(t, 0)
	for _, r := range reads {
		if r.Actor.ID != "pager" || r.Outcome != "success" || r.Details.Endpoint != "GET /v1/events" {
			t.Errorf("read record %d: actor %q outcome %q endpoint %q, want a pager's query", r.Index, r.Actor.ID, r.Outcome, r.Details.Endpoint)
			break
		}
	}
	if got, want := len(reads), int(queries.Load()); got != want {
		t.Errorf("%d read records, %d queries made", got, want)
	}
	if got, want := s.l.Size()-uint64(len(reads)), uint64(len(acked())); got != want {
		t.Errorf("log holds %d events besides the read records, receipts %d", got, want)
	}
}

// TestQueryScopedReaders: a reader's query is planned from its grants
// through the engine's index; its pages must still be exactly the events of
// the streams it may read (the admin's answer filtered by the grants), with
// every filter, in both orders, for exact grants, prefixes deeper than the
// index keeps lists for, and a break-glass read, which sees every stream but
// Trail's own.
func TestQueryScopedReaders(t *testing.T) {
	t.Parallel()
	ps := map[string]*server.Principal{
		"trail_one":   {Name: "one", Read: []string{"patient/1"}},
		"trail_deep":  {Name: "deep", Read: []string{"a/b/c/d/*", "ward/*", "login"}},
		"trail_glass": {Name: "glass", BreakGlass: true, Read: []string{"patient/1"}},
	}
	s := start(t, withPrincipals(ps))
	streams := []string{"patient/1", "patient/2", "patient/1/labs", "ward/7", "ward", "a/b/c/d/e", "a/b/c/x", "login", "loginx"}
	var evs []trail.Event
	for i := range 600 {
		e := event(fmt.Sprintf("sc-%d", i), streams[(i*7+i/5)%len(streams)])
		e.Type = []string{"patient-record.read", "user.login"}[i%2]
		e.Patient = []string{"", "p1", "p2"}[i%3]
		evs = append(evs, e)
	}
	if _, err := s.l.AppendBatch(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	glass := func(st string) bool { return mxMatch([]string{"patient/1"}, st) || !trail.IsReservedStream(st) }
	for _, who := range []struct {
		token  string
		may    func(string) bool
		stream string // one it may read
		extra  url.Values
	}{
		{"trail_one", func(st string) bool { return mxMatch(ps["trail_one"].Read, st) }, "patient/1", nil},
		{"trail_deep", func(st string) bool { return mxMatch(ps["trail_deep"].Read, st) }, "a/b/c/d/e", nil},
		{"trail_glass", glass, "patient/2", url.Values{"purpose": {"emergency"}, "reason": {"test"}}},
	} {
		for _, params := range []url.Values{
			{}, {"order": {"desc"}}, {"type": {"user.login"}}, {"patient": {"p1"}, "order": {"desc"}},
			{"stream": {who.stream}}, {"action": {"R"}, "type": {"patient-record.read"}},
		} {
			q := url.Values{}
			for k, v := range params {
				q[k] = v
			}
			for k, v := range who.extra {
				q[k] = v
			}
			want := scopedOracle(t, s, params, who.may)
			got := s.pageAllAs(t, who.token, q, 7)
			if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("%s: query %s (-want +got):\n%s", who.token, q.Encode(), d)
			}
		}
	}
}

// scopedOracle is the admin's answer to params (all of it), filtered by may.
func scopedOracle(t *testing.T, s *testServer, params url.Values, may func(string) bool) []uint64 {
	t.Helper()
	q := trail.Query{Stream: params.Get("stream"), Patient: params.Get("patient"), Type: params.Get("type"),
		Action: params.Get("action"), Desc: params.Get("order") == "desc", Limit: 1 << 30}
	res, err := s.l.Query(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	var idx []uint64
	for _, rec := range res.Events {
		st, err := trail.RecordStream(rec)
		if err != nil {
			t.Fatal(err)
		}
		if may(st) {
			var e struct {
				Index uint64 `json:"index"`
			}
			if err := json.Unmarshal(rec, &e); err != nil {
				t.Fatal(err)
			}
			idx = append(idx, e.Index)
		}
	}
	return idx
}
