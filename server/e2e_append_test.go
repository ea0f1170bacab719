package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trailhq/trail"
)

func TestAppendEvent(t *testing.T) {
	t.Parallel()
	s := start(t)

	e := event("ev-1", "patient/12345")
	first := s.appendOne(t, e)
	want := trail.Receipt{ID: "ev-1", Index: 0, Stream: "patient/12345", StreamSeq: 1,
		Recorded: first.Recorded, LeafHash: trail.LeafHash(s.stored(t, 0))}
	if d := cmp.Diff(want, first); d != "" {
		t.Errorf("receipt (-want +got):\n%s", d)
	}

	t.Run("assigned id", func(t *testing.T) {
		r := s.appendOne(t, event("", "patient/12345"))
		if r.ID == "" || r.StreamSeq != 2 {
			t.Errorf("receipt %+v: want an assigned id and stream_seq 2", r)
		}
	})

	t.Run("same id and content answers 200 with the first receipt", func(t *testing.T) {
		size := s.l.Size()
		// Equal after parsing: other member order, spacing, and an
		// explicit default outcome.
		resend := `{ "actor": {"role":"physician", "id":"dr-house"}, "action":"R",
			"type":"patient-record.read", "outcome":"success", "stream":"patient/12345", "id":"ev-1" }`
		for _, body := range []string{string(encode(t, e)), resend} {
			got := wantReceipt(t, s.post(t, "/v1/events", []byte(body)), http.StatusOK)
			if d := cmp.Diff(first, got); d != "" {
				t.Errorf("resent %s: receipt (-first +got):\n%s", body, d)
			}
		}
		s.wantUnchanged(t, size)
	})

	t.Run("equal after parsing", func(t *testing.T) {
		const v = `"stream":"patient/2","type":"t","action":"R","actor":{"id":"a"}`
		r := wantReceipt(t, s.post(t, "/v1/events", []byte(`{"id":"ev-2",`+v+`,"time":"2026-11-25T10:00:00Z","details":{"a":[1,2]}}`)), http.StatusCreated)
		size := s.l.Size()
		for _, body := range []string{
			`{"id":"ev-2",` + v + `,"time":"2026-11-25T11:00:00+01:00","details":{"a":[1,2]}}`,
			`{"id":"ev-2",` + v + `,"time":"2026-11-25T10:00:00.000Z","details":{ "a" : [ 1, 2 ] }}` + "\n",
			`{"id":"ev-2",` + v + `,"time":"2026-11-25T10:00:00Z","details":{"a":[1,2]},"entities":[],"source":null}`,
		} {
			got := wantReceipt(t, s.post(t, "/v1/events", []byte(body)), http.StatusOK)
			if d := cmp.Diff(r, got); d != "" {
				t.Errorf("resent %s: receipt (-first +got):\n%s", body, d)
			}
		}
		s.wantUnchanged(t, size)
	})

	t.Run("same id and other content is 409", func(t *testing.T) {
		size := s.l.Size()
		for _, change := range []func(*trail.Event){
			func(e *trail.Event) { e.Action = "U" },
			func(e *trail.Event) { e.Stream = "patient/99" },
			func(e *trail.Event) { e.Actor.Name = "Gregory" },
		} {
			other := e
			change(&other)
			wantProblem(t, s.post(t, "/v1/events", encode(t, other)), http.StatusConflict, "ev-1")
		}
		s.wantUnchanged(t, size)
	})
}

// TestAppendRejected holds POST /v1/events to its 4xx answers, each naming
// the problem, and checks that nothing is stored after any of them.
func TestAppendRejected(t *testing.T) {
	t.Parallel()
	s := start(t)
	s.appendOne(t, event("seed", "patient/1"))

	const valid = `"stream":"patient/1","type":"patient-record.read","action":"R","actor":{"id":"dr-house"}`
	big := strings.Repeat("x", trail.MaxEventSize)
	tests := []struct {
		name   string
		body   string
		token  string
		status int
		detail []string // substrings the detail must hold
	}{
		{name: "unknown top-level field", body: `{` + valid + `,"colour":"red"}`, status: 400, detail: []string{"colour"}},
		{name: "field name in another case", body: `{` + valid + `,"Purpose":"treatment"}`, status: 400, detail: []string{"Purpose"}},
		{name: "unknown actor field", body: `{"stream":"patient/1","type":"t","action":"R","actor":{"id":"a","badge":"7"}}`, status: 400, detail: []string{"actor.badge"}},
		{name: "unknown source field", body: `{` + valid + `,"source":{"id":"ehr","vendor":"x"}}`, status: 400, detail: []string{"source.vendor"}},
		{name: "unknown entity field", body: `{` + valid + `,"entities":[{"id":"obs/1","contents":"secret"}]}`, status: 400, detail: []string{"entities[0].contents"}},
		{name: "server field index", body: `{` + valid + `,"index":3}`, status: 400, detail: []string{"index"}},
		{name: "server field stream_seq", body: `{` + valid + `,"stream_seq":1}`, status: 400, detail: []string{"stream_seq"}},
		{name: "server field recorded", body: `{` + valid + `,"recorded":"2026-11-25T10:00:00.000000000Z"}`, status: 400, detail: []string{"recorded"}},
		{name: "server field prev", body: `{` + valid + `,"prev":"` + strings.Repeat("0", 64) + `"}`, status: 400, detail: []string{"prev"}},
		{name: "malformed JSON", body: `{"stream":"patient/1",`, status: 400},
		{name: "not an object", body: `["patient/1"]`, status: 400},
		{name: "two objects", body: `{` + valid + `}{` + valid + `}`, status: 400},
		{name: "empty body", body: ``, status: 400},
		{name: "stream under trail/", body: `{"stream":"trail/access","type":"t","action":"R","actor":{"id":"a"}}`, status: 400, detail: []string{"trail/"}},
		{name: "stream trail", body: `{"stream":"trail","type":"t","action":"R","actor":{"id":"a"}}`, status: 400, detail: []string{"stream"}},
		{name: "stream with an empty segment", body: `{"stream":"patient//1","type":"t","action":"R","actor":{"id":"a"}}`, status: 400, detail: []string{"stream"}},
		{name: "stream with a dot-dot segment", body: `{"stream":"patient/../1","type":"t","action":"R","actor":{"id":"a"}}`, status: 400, detail: []string{"stream"}},
		{name: "stream with a space", body: `{"stream":"patient 1","type":"t","action":"R","actor":{"id":"a"}}`, status: 400, detail: []string{"stream"}},
		{name: "no stream", body: `{"type":"t","action":"R","actor":{"id":"a"}}`, status: 400, detail: []string{"stream"}},
		{name: "lower-case action", body: `{"stream":"patient/1","type":"t","action":"r","actor":{"id":"a"}}`, status: 400, detail: []string{"action"}},
		{name: "no actor id", body: `{"stream":"patient/1","type":"t","action":"R","actor":{"name":"a"}}`, status: 400, detail: []string{"actor.id"}},
		{name: "bad outcome", body: `{` + valid + `,"outcome":"fine"}`, status: 400, detail: []string{"outcome"}},
		{name: "bad id", body: `{"id":"a b",` + valid + `}`, status: 400, detail: []string{"id"}},
		{name: "id over 128 bytes", body: `{"id":"` + strings.Repeat("a", 129) + `",` + valid + `}`, status: 400, detail: []string{"id"}},
		{name: "id of 65 bytes", body: `{"id":"` + strings.Repeat("a", 65) + `",` + valid + `}`, status: 400, detail: []string{"id"}},
		{name: "empty id", body: `{"id":"",` + valid + `}`, status: 400, detail: []string{"id"}},
		{name: "id with an underscore", body: `{"id":"a_b",` + valid + `}`, status: 400, detail: []string{"id"}},
		{name: "id with a colon", body: `{"id":"urn:uuid:1",` + valid + `}`, status: 400, detail: []string{"id"}},
		{name: "server field salt", body: `{` + valid + `,"salt":"` + strings.Repeat("0", 32) + `"}`, status: 400, detail: []string{"salt"}},
		{name: "server field original", body: `{` + valid + `,"original":{"format":"syslog","data":"x"}}`, status: 400, detail: []string{"original"}},
		{name: "subtypes not strings", body: `{` + valid + `,"subtypes":["DCM|110120",7]}`, status: 400, detail: []string{"subtypes[1]"}},
		{name: "seventeen subtypes", body: `{` + valid + `,"subtypes":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}`, status: 400, detail: []string{"subtypes", "16"}},
		{name: "escaped NUL", body: `{` + valid + `,"patient":"1\u00002"}`, status: 400, detail: []string{"patient", "NUL"}},
		{name: "raw NUL", body: `{` + valid + `,"patient":"1` + "\x00" + `2"}`, status: 400},
		{name: "lone surrogate", body: `{` + valid + `,"purpose":"\ud800"}`, status: 400, detail: []string{"purpose", "surrogate"}},
		{name: "lone surrogate in details", body: `{` + valid + `,"details":{"a":["\udfff"]}}`, status: 400, detail: []string{"details.a[0]", "surrogate"}},
		{name: "invalid UTF-8", body: `{` + valid + `,"outcome_desc":"` + "\xc3\x28" + `"}`, status: 400, detail: []string{"outcome_desc", "UTF-8"}},
		{name: "invalid UTF-8 in a details member name", body: `{` + valid + `,"details":{"` + "\xff" + `":1}}`, status: 400, detail: []string{"details", "UTF-8"}},
		{name: "bad time", body: `{` + valid + `,"time":"yesterday"}`, status: 400, detail: []string{"time"}},
		{name: "details not an object", body: `{` + valid + `,"details":[1]}`, status: 400, detail: []string{"details"}},
		{name: "details over 16 KiB", body: `{` + valid + `,"details":{"x":"` + strings.Repeat("y", trail.MaxDetailsSize) + `"}}`, status: 400, detail: []string{"details"}},
		{name: "event over 64 KiB", body: `{` + valid + `,"outcome_desc":"` + big + `"}`, status: 413},
		{name: "event over 64 KiB as sent", body: `{` + valid + strings.Repeat(" ", trail.MaxEventSize) + `}`, status: 413},
		{name: "no token", body: `{` + valid + `}`, token: "-", status: 401},
		{name: "unknown token", body: `{` + valid + `}`, token: "trail_notatoken", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := s.l.Size()
			token := admin
			switch tt.token {
			case "":
			case "-":
				token = ""
			default:
				token = tt.token
			}
			r := s.do(t, http.MethodPost, "/v1/events", token, []byte(tt.body))
			wantProblem(t, r, tt.status, tt.detail...)
			if tt.status == http.StatusUnauthorized {
				if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
					t.Errorf("WWW-Authenticate %q, want Bearer", h)
				}
			}
			s.wantUnchanged(t, size)
		})
	}
}

// saltRe is a stored record's salt: 128 random bits in lower-case hex.
var saltRe = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestStoredBytes checks what the server writes into a stored event: the
// defaults, a salt, prev, compact JSON on one line, and a client's time
// verbatim.
func TestStoredBytes(t *testing.T) {
	t.Parallel()
	s := start(t)

	a := event("a1", "patient/7")
	a.Actor.Name = "<Dr & Co>"
	ra := s.appendOne(t, a)
	b := event("b1", "patient/8")
	rb := s.appendOne(t, b)
	timed := `{"id":"a2","stream":"patient/7","time":"2026-11-25T10:00:00.5+01:00","type":"patient-record.update","subtypes":["DCM|110120", "vread"],"action":"U","outcome":"minor-failure","actor":{"id":"dr-house"},"details":{ "field" : "dose" }}`
	ra2 := wantReceipt(t, s.post(t, "/v1/events", []byte(timed)), http.StatusCreated)

	type stored struct {
		ID        string          `json:"id"`
		Index     uint64          `json:"index"`
		Stream    string          `json:"stream"`
		StreamSeq uint64          `json:"stream_seq"`
		Recorded  string          `json:"recorded"`
		Salt      string          `json:"salt"`
		Time      string          `json:"time"`
		Type      string          `json:"type"`
		Subtypes  []string        `json:"subtypes"`
		Action    string          `json:"action"`
		Outcome   string          `json:"outcome"`
		Actor     trail.Actor     `json:"actor"`
		Details   json.RawMessage `json:"details"`
		Prev      *string         `json:"prev"`
	}
	read := func(r trail.Receipt) (stored, []byte) {
		t.Helper()
		raw := s.get(t, "/v1/events/"+strconv.FormatUint(r.Index, 10))
		var st stored
		wantJSON(t, raw, http.StatusOK, &st)
		if strings.ContainsAny(string(raw.Body), "\n\r") {
			t.Errorf("event %d: stored bytes hold a newline: %q", r.Index, raw.Body)
		}
		if got := trail.LeafHash(raw.Body); got != r.LeafHash {
			t.Errorf("event %d: leaf hash of the returned bytes %v, receipt says %v", r.Index, got, r.LeafHash)
		}
		if !saltRe.MatchString(st.Salt) {
			t.Errorf("event %d: salt %q is not 32 lower-case hex digits", r.Index, st.Salt)
		}
		st.Salt = ""
		return st, raw.Body
	}

	st, body := read(ra)
	want := stored{ID: "a1", Index: 0, Stream: "patient/7", StreamSeq: 1, Recorded: ra.Recorded, Time: ra.Recorded,
		Type: "patient-record.read", Action: "R", Outcome: "success", Actor: a.Actor}
	if d := cmp.Diff(want, st); d != "" {
		t.Errorf("first event (-want +got):\n%s", d)
	}
	if !strings.Contains(string(body), `"name":"<Dr & Co>"`) {
		t.Errorf("stored bytes %s: want <Dr & Co> without HTML escaping", body)
	}

	st, _ = read(rb)
	if st.Prev != nil || st.StreamSeq != 1 {
		t.Errorf("first event of patient/8: prev %v, stream_seq %d; want no prev, 1", st.Prev, st.StreamSeq)
	}

	st, body = read(ra2)
	prev := ra.LeafHash.String()
	want = stored{ID: "a2", Index: 2, Stream: "patient/7", StreamSeq: 2, Recorded: ra2.Recorded,
		Time: "2026-11-25T10:00:00.5+01:00", Type: "patient-record.update", Subtypes: []string{"DCM|110120", "vread"}, Action: "U", Outcome: "minor-failure",
		Actor: trail.Actor{ID: "dr-house"}, Details: json.RawMessage(`{"field":"dose"}`), Prev: &prev}
	if d := cmp.Diff(want, st); d != "" {
		t.Errorf("second event of patient/7 (-want +got):\n%s", d)
	}
	if !strings.Contains(string(body), `"time":"2026-11-25T10:00:00.5+01:00"`) {
		t.Errorf("stored bytes %s: want the client's time as sent", body)
	}
	if !strings.Contains(string(body), `"type":"patient-record.update","subtypes":["DCM|110120","vread"],"action":"U"`) {
		t.Errorf("stored bytes %s: want the subtypes, compact, after the type", body)
	}
}

func TestBatch(t *testing.T) {
	t.Parallel()
	s := start(t)

	t.Run("receipts in line order, blank lines skipped", func(t *testing.T) {
		evs := []trail.Event{event("b-1", "patient/1"), event("b-2", "patient/2"), event("b-3", "patient/1")}
		body := "\n" + string(encode(t, evs[0])) + "\r\n  \t\n" + string(encode(t, evs[1])) + "\n\n" + string(encode(t, evs[2]))
		size := s.l.Size()
		rcs := wantReceipts(t, s.post(t, "/v1/batch", []byte(body)))
		var got []trail.Receipt
		for i, r := range rcs {
			got = append(got, trail.Receipt{ID: evs[i].ID, Index: size + uint64(i), Stream: evs[i].Stream,
				StreamSeq: []uint64{1, 1, 2}[i], Recorded: r.Recorded, LeafHash: trail.LeafHash(s.stored(t, size+uint64(i)))})
		}
		if d := cmp.Diff(got, rcs); d != "" {
			t.Errorf("receipts (-want +got):\n%s", d)
		}
	})

	t.Run("repeated id takes its first receipt", func(t *testing.T) {
		stored := s.appendOne(t, event("r-0", "patient/3"))
		size := s.l.Size()
		e := event("r-1", "patient/3")
		rcs := s.appendBatch(t, e, event("r-2", "patient/3"), e, event("r-0", "patient/3"))
		if d := cmp.Diff(rcs[0], rcs[2]); d != "" {
			t.Errorf("repeat within the batch (-first +repeat):\n%s", d)
		}
		if d := cmp.Diff(stored, rcs[3]); d != "" {
			t.Errorf("id stored before the batch (-first +batch):\n%s", d)
		}
		if got := s.l.Size(); got != size+2 {
			t.Errorf("log grew by %d, want 2", got-size)
		}
	})

	t.Run("id conflict names the line and stores nothing", func(t *testing.T) {
		s.appendOne(t, event("c-0", "patient/4"))
		size := s.l.Size()
		other := event("c-0", "patient/4")
		other.Action = "D"
		p := wantProblem(t, s.post(t, "/v1/batch", ndjson(t, event("c-1", "patient/4"), other)), http.StatusConflict, "line 2")
		if p.Line != 2 {
			t.Errorf("line member %d, want 2", p.Line)
		}
		repeat := event("c-2", "patient/4")
		changed := repeat
		changed.Type = "patient-record.update"
		p = wantProblem(t, s.post(t, "/v1/batch", ndjson(t, repeat, event("c-3", "patient/4"), changed)), http.StatusConflict, "line 3")
		if p.Line != 3 {
			t.Errorf("line member %d, want 3", p.Line)
		}
		s.wantUnchanged(t, size)
		// c-1 was not stored: sending it now makes a new event.
		s.appendOne(t, event("c-1", "patient/4"))
	})

	good := string(encode(t, event("", "patient/5")))
	tests := []struct {
		name   string
		body   string
		status int
		line   int
	}{
		{name: "bad line after a blank line", body: good + "\n\n" + `{"stream":"patient/5","type":"t","action":"R","actor":{"id":"a"},"colour":1}` + "\n", status: 400, line: 3},
		{name: "server field", body: good + "\n" + `{"stream":"patient/5","type":"t","action":"R","actor":{"id":"a"},"index":0}`, status: 400, line: 2},
		{name: "unknown entity field", body: `{"stream":"patient/5","type":"t","action":"R","actor":{"id":"a"},"entities":[{"id":"x","blob":1}]}`, status: 400, line: 1},
		{name: "malformed line", body: good + "\n" + good + "\n" + `{"stream":`, status: 400, line: 3},
		{name: "stream under trail/", body: good + "\n" + `{"stream":"trail/break-glass","type":"t","action":"R","actor":{"id":"a"}}`, status: 400, line: 2},
		{name: "line over 64 KiB", body: good + "\n" + `{"stream":"patient/5","type":"t","action":"R","actor":{"id":"a"},"outcome_desc":"` + strings.Repeat("x", trail.MaxEventSize) + `"}`, status: 400, line: 2},
		{name: "empty", body: "", status: 400},
		{name: "only blank lines", body: "\n \n\t\n", status: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := s.l.Size()
			want := []string{}
			if tt.line > 0 {
				want = append(want, fmt.Sprintf("line %d", tt.line))
			}
			p := wantProblem(t, s.post(t, "/v1/batch", []byte(tt.body)), tt.status, want...)
			if p.Line != tt.line {
				t.Errorf("line member %d, want %d", p.Line, tt.line)
			}
			s.wantUnchanged(t, size)
		})
	}

	t.Run("no token", func(t *testing.T) {
		size := s.l.Size()
		r := s.do(t, http.MethodPost, "/v1/batch", "", []byte(good+"\n"))
		wantProblem(t, r, http.StatusUnauthorized)
		if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
			t.Errorf("WWW-Authenticate %q, want Bearer", h)
		}
		s.wantUnchanged(t, size)
	})
}

// TestBatchLimits checks the bounds of one batch: 10,000 events and 16 MiB.
func TestBatchLimits(t *testing.T) {
	t.Parallel()
	s := start(t)
	line := func(i int, desc string) trail.Event {
		e := event(fmt.Sprintf("lim-%d", i), "ward/"+strconv.Itoa(i%7))
		e.OutcomeDesc = desc
		return e
	}
	many := func(n int, desc string) []trail.Event {
		evs := make([]trail.Event, n)
		for i := range evs {
			evs[i] = line(i, desc)
		}
		return evs
	}

	t.Run("10,001 events", func(t *testing.T) {
		wantProblem(t, s.post(t, "/v1/batch", ndjson(t, many(10001, "")...)), http.StatusRequestEntityTooLarge, "10000")
		s.wantUnchanged(t, 0)
	})
	t.Run("over 16 MiB", func(t *testing.T) {
		// 1,000 valid events of 17 KiB each: only the byte bound is crossed.
		body := ndjson(t, many(1000, strings.Repeat("d", 17<<10))...)
		if len(body) <= 16<<20 {
			t.Fatalf("test body is %d bytes, want over 16 MiB", len(body))
		}
		wantProblem(t, s.post(t, "/v1/batch", body), http.StatusRequestEntityTooLarge)
		s.wantUnchanged(t, 0)
	})
	t.Run("10,000 events", func(t *testing.T) {
		rcs := s.appendBatch(t, many(10000, "")...)
		for i, r := range rcs {
			if r.Index != uint64(i) || r.ID != fmt.Sprintf("lim-%d", i) {
				t.Fatalf("receipt %d: index %d id %q", i, r.Index, r.ID)
			}
		}
	})
}

// TestAppendBodyReadError: a body that cannot be read is a 400 that says so,
// not a claim that the event is too large.
func TestAppendBodyReadError(t *testing.T) {
	t.Parallel()
	s := start(t)
	for _, path := range []string{"/v1/events", "/v1/batch"} {
		t.Run(path, func(t *testing.T) {
			conn, err := net.Dial("tcp", s.ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// "zz" is not a chunk size.
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: trail\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", path, s.tok)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			p := wantProblem(t, reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, http.StatusBadRequest, "body")
			if strings.Contains(p.Detail, "KiB") || strings.Contains(p.Detail, "MiB") {
				t.Errorf("detail %q blames the size of a body that could not be read", p.Detail)
			}
			s.wantUnchanged(t, 0)
		})
	}
}
