package trail_test

// A state-machine test of the engine against a simple in-memory model: the
// model knows every event ever acknowledged, in index order, and predicts the
// outcome of every Log, Append, batch, duplicate, conflict, invalid event and
// restart. After every step the engine's stored bytes, tree, proofs and
// signed checkpoint are checked against the model.
//
// go test -run TestModel -rapid.checks=N -rapid.steps=M to run longer.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"pgregory.net/rapid"

	"github.com/trailhq/trail"
)

var (
	recordedRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)
	uuidV7RE   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

// Pools the generators draw from: small, so that streams, ids and contents
// repeat often.
var (
	mStreams  = []string{"patient/12345", "patient/67890", "auth/login", "a.B_c:d-e/f.g/h"}
	mPoolIDs  = []string{"id-0", "id-1", "id-2", "5b4c1f0e-1111-4a4a-8b8b-000000000000", "x.y-z.1"}
	mTypes    = []string{"patient-record.read", "user.login", "order.update"}
	mActions  = []string{"C", "R", "U", "D", "E"}
	mOutcomes = []string{"", trail.OutcomeSuccess, trail.OutcomeMinorFailure, trail.OutcomeSeriousFailure, trail.OutcomeMajorFailure}
	mActors   = []trail.Actor{
		{ID: "dr-1"},
		{ID: "dr-2", Name: "Zoë \"Doc\" <b>&amp;</b>\n\ttab\\", Role: "physician", Address: "10.0.0.1", UserAgent: "Mozilla/5.0 (X11) \u2028 \x01"},
		{ID: "nurse 3 — ü", Role: "nurse"},
	}
	mPatients = []string{"", "12345", "Ωmega-∑"}
	mEntities = [][]trail.Entity{
		nil,
		{{Type: "Patient", ID: "12345"}},
		{{ID: "obs/1", Role: "target", Name: "BP <120>"}, {Type: "X", ID: "y", Name: "\"quoted\""}},
	}
	mSources   = []*trail.Source{nil, {ID: "ehr-1"}, {ID: "ehr", Site: "north & south", Type: "4"}}
	mPurpose   = []string{"", "treatment", "emergency"}
	mSubtypes  = [][]string{nil, {"DCM|110120"}, {"http://terminology.hl7.org/CodeSystem/audit-event-type|rest", "vread", "\"x\" <é>"}}
	mOriginals = []*trail.Original{nil,
		{Format: trail.OriginalSyslog, Data: []byte("<85>1 2026-01-05T10:00:00Z pacs ATNA - IHE+RFC-3881 - \ufeff<?xml version=\"1.0\"?><AuditMessage/>\n")},
		{Format: trail.OriginalFHIR, Data: []byte("{\"resourceType\":\"AuditEvent\",\"bad\":\"\xff\x00\"}")}}
	mDetails = []string{"", `{"n":1}`, `{ "n" : 1 }`, `{"nested":{"a":[1,2.5,{"b":null}],"s":"<&>\u00e9\n"},"t":true}`, `null`, `{}`}
	mRawTime = []string{"2025-03-04T05:06:07Z", "2025-03-04T07:06:07+02:00", "2025-03-04T05:06:07.123456789Z", "1999-12-31T23:59:59.5-08:00"}
)

// canon is an event's content as "equal after parsing" sees it.
type canon struct {
	ID, Stream, Type, Action, Outcome, OutcomeDesc string
	Subtypes                                       []string
	Actor                                          trail.Actor
	Patient                                        string
	Entities                                       []trail.Entity
	Source                                         *trail.Source
	Purpose                                        string
	Details                                        string
}

func canonOf(ev trail.Event) canon {
	c := canon{ID: ev.ID, Stream: ev.Stream, Type: ev.Type, Action: ev.Action, Outcome: ev.Outcome,
		OutcomeDesc: ev.OutcomeDesc, Actor: ev.Actor, Patient: ev.Patient, Purpose: ev.Purpose}
	if c.Outcome == "" {
		c.Outcome = trail.OutcomeSuccess
	}
	if len(ev.Entities) > 0 {
		c.Entities = slices.Clone(ev.Entities)
	}
	if len(ev.Subtypes) > 0 {
		c.Subtypes = slices.Clone(ev.Subtypes)
	}
	if s := ev.Source; s != nil && *s != (trail.Source{}) {
		cp := *s
		c.Source = &cp
	}
	c.Details = compactDetails(ev.Details)
	return c
}

func compactDetails(d json.RawMessage) string {
	t := bytes.TrimSpace(d)
	if len(t) == 0 || string(t) == "null" {
		return ""
	}
	var b bytes.Buffer
	if err := json.Compact(&b, t); err != nil {
		return "!invalid:" + string(d)
	}
	return b.String()
}

// exported copies ev's exported fields only (dropping a time kept as sent).
func exported(ev trail.Event) trail.Event {
	return trail.Event{ID: ev.ID, Stream: ev.Stream, Time: ev.Time, Type: ev.Type, Action: ev.Action,
		Outcome: ev.Outcome, OutcomeDesc: ev.OutcomeDesc, Actor: ev.Actor, Patient: ev.Patient,
		Entities: ev.Entities, Source: ev.Source, Purpose: ev.Purpose, Details: ev.Details,
		Subtypes: ev.Subtypes, Original: ev.Original}
}

// withRawTime returns ev (which has no time) with a time as a client sends
// it in JSON, so that the engine keeps the text as sent.
func withRawTime(t rapid.TB, ev trail.Event, raw string) trail.Event {
	orig := ev.Original // the server's member: no client JSON carries it
	ev.Original = nil
	b, err := ev.MarshalJSON() // not json.Marshal, which would HTML-escape
	if err != nil {
		t.Fatalf("marshal %+v: %v", ev, err)
	}
	b = append([]byte(`{"time":"`+raw+`",`), b[1:]...)
	var out trail.Event
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	out.Original = orig
	return out
}

// mEvent is one stored event as the model knows it.
type mEvent struct {
	logged  trail.Event   // as logged
	want    canon         // what parsing the stored bytes must give
	timeStr string        // the stored "time" member
	when    time.Time     // the instant of the stored time
	r       trail.Receipt // the first (only) receipt
	rec     []byte        // the stored bytes
}

type machine struct {
	dir     string
	cfg     trail.Config
	l       *trail.Log
	vkey    string
	events  []*mEvent
	ids     map[string]int   // id → index
	streams map[string][]int // stream → indexes
	rng     *compact.Range
	roots   [][]byte // roots[k]: RFC 6962 root of the first k leaves
	order   []int    // indexes of events in the order the test generated them
	lastCP  uint64
	lastRec string
	fresh   int
	opens   int
}

func ctxT() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

func newMachine(t *rapid.T, base string) *machine {
	dir, err := os.MkdirTemp(base, "run")
	if err != nil {
		t.Fatal(err)
	}
	m := &machine{
		dir: dir,
		cfg: trail.Config{SegmentSize: 2048, CheckpointInterval: 25 * time.Millisecond},
		ids: map[string]int{}, streams: map[string][]int{},
		rng:   (&compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}).NewEmptyRange(0),
		roots: [][]byte{rfc6962.DefaultHasher.EmptyRoot()},
	}
	m.open(t)
	t.Cleanup(func() {
		if m.l != nil {
			ctx, cancel := ctxT()
			defer cancel()
			m.l.Close(ctx)
		}
		os.RemoveAll(dir)
	})
	return m
}

func (m *machine) open(t *rapid.T) {
	l, err := trail.OpenTest(t, m.dir, m.cfg)
	if err != nil {
		t.Fatalf("Open (open #%d): %v", m.opens+1, err)
	}
	m.l = l
	m.opens++
	vkey, err := os.ReadFile(filepath.Join(m.dir, "checkpoint.vkey"))
	if err != nil {
		t.Fatalf("read checkpoint.vkey: %v", err)
	}
	if got := strings.TrimSpace(string(vkey)); got != l.VerifierKey() {
		t.Fatalf("VerifierKey() = %q, DIR/checkpoint.vkey = %q", l.VerifierKey(), got)
	}
	if m.vkey == "" {
		m.vkey = l.VerifierKey()
	} else if l.VerifierKey() != m.vkey {
		t.Fatalf("verifier key changed across restart: %q → %q", m.vkey, l.VerifierKey())
	}
}

// genBody draws a valid event without an id.
func (m *machine) genBody(t *rapid.T, streams []string) trail.Event {
	ev := trail.Event{
		Stream:      rapid.SampledFrom(streams).Draw(t, "stream"),
		Type:        rapid.SampledFrom(mTypes).Draw(t, "type"),
		Action:      rapid.SampledFrom(mActions).Draw(t, "action"),
		Outcome:     rapid.SampledFrom(mOutcomes).Draw(t, "outcome"),
		OutcomeDesc: rapid.SampledFrom([]string{"", "ok", "denied: \"no grant\" <403>"}).Draw(t, "outcome_desc"),
		Actor:       rapid.SampledFrom(mActors).Draw(t, "actor"),
		Patient:     rapid.SampledFrom(mPatients).Draw(t, "patient"),
		Entities:    rapid.SampledFrom(mEntities).Draw(t, "entities"),
		Source:      rapid.SampledFrom(mSources).Draw(t, "source"),
		Purpose:     rapid.SampledFrom(mPurpose).Draw(t, "purpose"),
		Subtypes:    rapid.SampledFrom(mSubtypes).Draw(t, "subtypes"),
		Original:    rapid.SampledFrom(mOriginals).Draw(t, "original"),
	}
	if d := rapid.SampledFrom(mDetails).Draw(t, "details"); d != "" {
		ev.Details = json.RawMessage(d)
	}
	switch rapid.IntRange(0, 3).Draw(t, "time kind") {
	case 1:
		ns := rapid.SampledFrom([]int{0, 5, 123456789}).Draw(t, "ns")
		ev.Time = time.Date(2025, 3, 4, 5, 6, 7, ns, time.UTC)
	case 2:
		ev.Time = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC).In(time.FixedZone("", -5*3600))
	case 3:
		ev = withRawTime(t, ev, rapid.SampledFrom(mRawTime).Draw(t, "raw time"))
	}
	return ev
}

// genEvent draws a valid event: without id, with a pool id, a fresh id, or
// a resend (same or different content) of a stored event's id.
func (m *machine) genEvent(t *rapid.T) trail.Event {
	choice := rapid.IntRange(0, 9).Draw(t, "id choice")
	if choice >= 6 && choice <= 8 && len(m.events) > 0 {
		return m.genResend(t)
	}
	ev := m.genBody(t, mStreams)
	switch {
	case choice >= 3 && choice <= 5:
		ev.ID = rapid.SampledFrom(mPoolIDs).Draw(t, "pool id")
	case choice == 9:
		m.fresh++
		ev.ID = fmt.Sprintf("fresh-%d", m.fresh)
	}
	return ev
}

// genResend draws an event with the id of a stored event, its content the
// same after parsing or different.
func (m *machine) genResend(t *rapid.T) trail.Event {
	k := rapid.IntRange(0, len(m.order)-1).Draw(t, "resend of")
	return m.resendOf(t, m.order[k])
}

// resendOf draws an event with the id of stored event j.
func (m *machine) resendOf(t *rapid.T, j int) trail.Event {
	first := m.events[j]
	ev := first.logged
	ev.ID = first.r.ID
	switch rapid.IntRange(0, 7).Draw(t, "resend variant") {
	case 0: // exactly the same
	case 1: // same, without a time
		ev = exported(ev)
		ev.Time = time.Time{}
	case 2: // same after parsing: outcome default, details spacing, empty source and entities
		ev = exported(ev)
		if ev.Outcome == "" {
			ev.Outcome = trail.OutcomeSuccess
		} else if ev.Outcome == trail.OutcomeSuccess {
			ev.Outcome = ""
		}
		if d := compactDetails(ev.Details); d != "" {
			var b bytes.Buffer
			json.Indent(&b, []byte(d), " ", "\t")
			ev.Details = b.Bytes()
		} else if len(ev.Details) == 0 {
			ev.Details = json.RawMessage(" null ")
		}
		if ev.Source == nil {
			ev.Source = &trail.Source{}
		}
		if ev.Entities == nil {
			ev.Entities = []trail.Entity{}
		}
	case 3: // same instant written in another zone
		ev = exported(ev)
		if !ev.Time.IsZero() {
			ev.Time = ev.Time.In(time.FixedZone("", 9*3600+30*60))
		}
	case 4: // different type
		ev = exported(ev)
		ev.Type = ev.Type + ".other"
	case 5: // different actor
		ev = exported(ev)
		ev.Actor.ID += "x"
	case 6: // different time (or a time where the stored one was recorded)
		ev = exported(ev)
		ev.Time = first.when.Add(time.Second)
	case 7: // different stream
		ev = exported(ev)
		ev.Stream = ev.Stream + "/other"
	}
	return ev
}

// sameAs reports whether ev (with first's id) must get first's receipt.
func (m *machine) sameAs(first *mEvent, ev trail.Event) bool {
	c := canonOf(ev)
	if !cmp.Equal(c, first.want) {
		return false
	}
	return ev.Time.IsZero() || ev.Time.Equal(first.when)
}

type invalidCase struct {
	name  string
	mut   func(*trail.Event)
	field string // "" means ErrTooLarge
}

var invalidCases = []invalidCase{
	{"no stream", func(e *trail.Event) { e.Stream = "" }, "stream"},
	{"empty segment", func(e *trail.Event) { e.Stream = "a//b" }, "stream"},
	{"dot segment", func(e *trail.Event) { e.Stream = "a/./b" }, "stream"},
	{"dotdot", func(e *trail.Event) { e.Stream = "../x" }, "stream"},
	{"reserved", func(e *trail.Event) { e.Stream = "trail/access" }, "stream"},
	{"stream 257", func(e *trail.Event) { e.Stream = strings.Repeat("s", 257) }, "stream"},
	{"stream char", func(e *trail.Event) { e.Stream = "patient/1 2" }, "stream"},
	{"no type", func(e *trail.Event) { e.Type = "" }, "type"},
	{"lower action", func(e *trail.Event) { e.Action = "r" }, "action"},
	{"no action", func(e *trail.Event) { e.Action = "" }, "action"},
	{"bad outcome", func(e *trail.Event) { e.Outcome = "failure" }, "outcome"},
	{"no actor id", func(e *trail.Event) { e.Actor.ID = "" }, "actor.id"},
	{"bad id", func(e *trail.Event) { e.ID = "a b" }, "id"},
	{"id 129", func(e *trail.Event) { e.ID = strings.Repeat("i", 129) }, "id"},
	{"details array", func(e *trail.Event) { e.Details = json.RawMessage(`[1]`) }, "details"},
	{"details big", func(e *trail.Event) { e.Details = bigDetails(16<<10 + 1) }, "details"},
	{"entity without id", func(e *trail.Event) { e.Entities = []trail.Entity{{Type: "x"}} }, "entities[0].id"},
	{"bad utf8", func(e *trail.Event) { e.Actor.Name = "\xff\xfe" }, "actor.name"},
	{"too large", func(e *trail.Event) {
		e.OutcomeDesc, e.Actor.UserAgent = strings.Repeat("x", 40<<10), strings.Repeat("y", 30<<10)
	}, ""},
}

// bigDetails returns a JSON object of exactly n bytes (n ≥ 10), compact.
func bigDetails(n int) json.RawMessage {
	const pre, post = `{"x":"`, `"}`
	return json.RawMessage(pre + strings.Repeat("d", n-len(pre)-len(post)) + post)
}

func (m *machine) genInvalid(t *rapid.T) (trail.Event, invalidCase) {
	ev := m.genBody(t, mStreams)
	c := rapid.SampledFrom(invalidCases).Draw(t, "invalid")
	c.mut(&ev)
	return ev, c
}

func checkInvalidErr(t *rapid.T, what string, err error, c invalidCase) {
	t.Helper()
	if c.field == "" {
		if !errors.Is(err, trail.ErrTooLarge) {
			t.Fatalf("%s (%s): err = %v, want ErrTooLarge", what, c.name, err)
		}
		return
	}
	var ve *trail.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("%s (%s): err = %v (%T), want *trail.ValidationError", what, c.name, err, err)
	}
	if ve.Field != c.field {
		t.Fatalf("%s (%s): ValidationError.Field = %q, want %q (%v)", what, c.name, ve.Field, c.field, ve)
	}
}

// expectOne checks the outcome of logging ev (one caller, in order) against
// the model, and adds a new event to it.
func (m *machine) expectOne(t *rapid.T, what string, ev trail.Event, r trail.Receipt, err error, dup bool) {
	t.Helper()
	if ev.ID != "" {
		if j, ok := m.ids[ev.ID]; ok {
			first := m.events[j]
			if m.sameAs(first, ev) {
				if err != nil {
					t.Fatalf("%s: resend of id %q (same content as index %d): err = %v, want the first receipt", what, ev.ID, j, err)
				}
				if r != first.r || !dup {
					t.Fatalf("%s: resend of id %q: receipt %+v dup=%v, want first receipt %+v dup=true", what, ev.ID, r, dup, first.r)
				}
				return
			}
			if !errors.Is(err, trail.ErrIDConflict) {
				t.Fatalf("%s: id %q with other content than index %d: err = %v, receipt %+v; want ErrIDConflict", what, ev.ID, j, err, r)
			}
			if dup {
				t.Fatalf("%s: conflicting resend reported Duplicate()", what)
			}
			return
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if dup {
		t.Fatalf("%s: new event reported Duplicate()", what)
	}
	m.accept(t, what, ev, r)
}

// accept checks the receipt and stored bytes of a new event and adds it to
// the model.
func (m *machine) accept(t *rapid.T, what string, ev trail.Event, r trail.Receipt) {
	t.Helper()
	i := len(m.events)
	if r.Index != uint64(i) {
		t.Fatalf("%s: index %d, want %d (index = position, no gaps)", what, r.Index, i)
	}
	switch {
	case ev.ID != "" && r.ID != ev.ID:
		t.Fatalf("%s: receipt id %q, want %q", what, r.ID, ev.ID)
	case ev.ID == "" && !uuidV7RE.MatchString(r.ID):
		t.Fatalf("%s: assigned id %q is not a UUIDv7", what, r.ID)
	}
	if j, ok := m.ids[r.ID]; ok {
		t.Fatalf("%s: id %q stored twice (index %d and %d)", what, r.ID, j, i)
	}
	if r.Stream != ev.Stream {
		t.Fatalf("%s: receipt stream %q, want %q", what, r.Stream, ev.Stream)
	}
	prevIdx := m.streams[ev.Stream]
	if want := uint64(len(prevIdx) + 1); r.StreamSeq != want {
		t.Fatalf("%s: stream %s: stream_seq %d, want %d", what, ev.Stream, r.StreamSeq, want)
	}
	if !recordedRE.MatchString(r.Recorded) {
		t.Fatalf("%s: recorded %q is not UTC RFC 3339 with nine fractional digits", what, r.Recorded)
	}
	if r.Recorded < m.lastRec {
		t.Fatalf("%s: recorded %s is before the previous event's %s", what, r.Recorded, m.lastRec)
	}
	me := &mEvent{logged: ev, r: r, want: canonOf(ev)}
	me.want.ID = r.ID
	switch {
	case ev.Time.IsZero():
		me.timeStr = r.Recorded
		me.when, _ = time.Parse(time.RFC3339Nano, r.Recorded)
	default:
		me.when = ev.Time
		me.timeStr = ev.Time.Format(time.RFC3339Nano)
		if raw, ok := rawTimeOf(t, ev); ok {
			me.timeStr = raw
		}
	}
	var prev *trail.Hash
	if len(prevIdx) > 0 {
		prev = &m.events[prevIdx[len(prevIdx)-1]].r.LeafHash
	}
	rec, err := m.l.Read(r.Index)
	if err != nil {
		t.Fatalf("%s: Read(%d) after its receipt: %v", what, r.Index, err)
	}
	me.rec = rec
	checkStored(t, fmt.Sprintf("%s: event %d", what, i), rec, me, prev)

	m.events = append(m.events, me)
	m.order = append(m.order, i)
	m.ids[r.ID] = i
	m.streams[ev.Stream] = append(prevIdx, i)
	m.lastRec = r.Recorded
	m.rng.Append(rfc6962.DefaultHasher.HashLeaf(rec), nil)
	root, err := m.rng.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	m.roots = append(m.roots, root)
}

// rawTimeOf returns the time of ev as it will be encoded, when the event
// came from JSON (its time is then stored exactly as sent).
func rawTimeOf(t rapid.TB, ev trail.Event) (string, bool) {
	ev.Original = nil // the server's member, which MarshalJSON refuses
	b, err := ev.MarshalJSON()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	var w struct {
		Time string `json:"time"`
	}
	if err := json.Unmarshal(b, &w); err != nil || w.Time == "" {
		return "", false
	}
	return w.Time, true
}

var storedMembers = map[string]bool{
	"id": true, "index": true, "stream": true, "stream_seq": true, "recorded": true, "time": true,
	"type": true, "action": true, "outcome": true, "outcome_desc": true, "actor": true, "patient": true,
	"entities": true, "source": true, "purpose": true, "details": true, "prev": true, "salt": true,
	"subtypes": true, "original": true,
}

// saltRe is the stored salt: 128 random bits as 32 lower-case hex digits.
var saltRe = regexp.MustCompile(`^"[0-9a-f]{32}"$`)

// checkStored checks stored bytes against the model's event.
func checkStored(t *rapid.T, what string, rec []byte, me *mEvent, prev *trail.Hash) {
	t.Helper()
	if got := rfc6962.DefaultHasher.HashLeaf(rec); !bytes.Equal(got, me.r.LeafHash[:]) {
		t.Fatalf("%s: stored bytes hash to %x, receipt says %x", what, got, me.r.LeafHash)
	}
	if bytes.ContainsAny(rec, "\n\r") {
		t.Fatalf("%s: stored event is not one line: %q", what, rec)
	}
	var cb bytes.Buffer
	if err := json.Compact(&cb, rec); err != nil || !bytes.Equal(cb.Bytes(), rec) {
		t.Fatalf("%s: stored event is not compact JSON (%v): %s", what, err, rec)
	}
	for _, esc := range []string{`\u003c`, `\u003e`, `\u0026`} {
		if bytes.Contains(rec, []byte(esc)) {
			t.Fatalf("%s: stored event is HTML-escaped (%s): %s", what, esc, rec)
		}
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(rec, &members); err != nil {
		t.Fatalf("%s: stored event is not a JSON object: %v: %s", what, err, rec)
	}
	for k := range members {
		if !storedMembers[k] {
			t.Fatalf("%s: stored event has unexpected member %q: %s", what, k, rec)
		}
	}
	wantRaw := map[string]string{
		"id":         strconv.Quote(me.r.ID),
		"index":      strconv.FormatUint(me.r.Index, 10),
		"stream":     strconv.Quote(me.r.Stream),
		"stream_seq": strconv.FormatUint(me.r.StreamSeq, 10),
		"recorded":   strconv.Quote(me.r.Recorded),
		"time":       strconv.Quote(me.timeStr),
		"outcome":    strconv.Quote(me.want.Outcome),
	}
	for k, want := range wantRaw {
		if got := string(members[k]); got != want {
			t.Fatalf("%s: stored %q is %s, want %s: %s", what, k, got, want, rec)
		}
	}
	if !saltRe.Match(members["salt"]) {
		t.Fatalf("%s: salt %s is not 32 lower-case hex digits: %s", what, members["salt"], rec)
	}
	if prev == nil {
		if _, ok := members["prev"]; ok {
			t.Fatalf("%s: first event of stream %s has a prev: %s", what, me.r.Stream, rec)
		}
	} else if got, want := string(members["prev"]), `"`+hex.EncodeToString(prev[:])+`"`; got != want {
		t.Fatalf("%s: prev is %s, want the previous event's leaf hash %s: %s", what, got, want, rec)
	}
	st, err := trail.ParseStored(rec)
	if err != nil {
		t.Fatalf("%s: ParseStored: %v: %s", what, err, rec)
	}
	if `"`+st.Salt+`"` != string(members["salt"]) {
		t.Fatalf("%s: ParseStored gave salt %q: %s", what, st.Salt, rec)
	}
	if st.Index != me.r.Index || st.StreamSeq != me.r.StreamSeq || st.Recorded != me.r.Recorded {
		t.Fatalf("%s: ParseStored gave index %d stream_seq %d recorded %s, want %d %d %s",
			what, st.Index, st.StreamSeq, st.Recorded, me.r.Index, me.r.StreamSeq, me.r.Recorded)
	}
	switch {
	case prev == nil && st.Prev != nil:
		t.Fatalf("%s: ParseStored gave prev %x for a stream's first event", what, *st.Prev)
	case prev != nil && (st.Prev == nil || *st.Prev != *prev):
		t.Fatalf("%s: ParseStored gave prev %v, want %x", what, st.Prev, *prev)
	}
	if d := cmp.Diff(me.want, canonOf(st.Event)); d != "" {
		t.Fatalf("%s: ParseStored content differs from the logged event (-want +got):\n%s\n%s", what, d, rec)
	}
	if d := cmp.Diff(me.logged.Original, st.Original); d != "" {
		t.Fatalf("%s: ParseStored original differs from the logged one (-want +got):\n%s\n%s", what, d, rec)
	}
	if !st.Time.Equal(me.when) {
		t.Fatalf("%s: ParseStored: Time = %v, want %v (the stored time %q)", what, st.Time, me.when, me.timeStr)
	}
}

// ---- actions ----

// logOne logs one event through Log, Enqueue or Append and waits.
func (m *machine) logOne(t *rapid.T) {
	ev := m.genEvent(t)
	ctx, cancel := ctxT()
	defer cancel()
	var (
		r   trail.Receipt
		err error
		dup bool
	)
	how := rapid.SampledFrom([]string{"Log", "Enqueue", "Append"}).Draw(t, "how")
	switch how {
	case "Log":
		p := m.l.Log(ev)
		r, err = p.Wait(ctx)
		dup = p.Duplicate()
	case "Enqueue":
		p, perr := m.l.Enqueue(ctx, ev)
		if perr != nil {
			t.Fatalf("Enqueue: %v", perr)
		}
		r, err = p.Wait(ctx)
		dup = p.Duplicate()
	case "Append":
		r, err = m.l.Append(ctx, ev)
		dup = err == nil && r.Index < uint64(len(m.events)) // Append does not say; a dup is an older receipt
	}
	m.expectOne(t, how, ev, r, err, dup)
}

// logAsync has one caller Log several events (some invalid) without waiting,
// then wait for each in turn: they are sequenced in the order logged.
func (m *machine) logAsync(t *rapid.T) {
	n := rapid.IntRange(2, 8).Draw(t, "async n")
	type item struct {
		ev  trail.Event
		bad *invalidCase
		p   *trail.Pending
	}
	items := make([]item, n)
	for i := range items {
		if rapid.IntRange(0, 7).Draw(t, "async invalid") == 0 {
			ev, c := m.genInvalid(t)
			items[i] = item{ev: ev, bad: &c}
		} else {
			items[i] = item{ev: m.genEvent(t)}
		}
	}
	for i := range items {
		items[i].p = m.l.Log(items[i].ev)
	}
	ctx, cancel := ctxT()
	defer cancel()
	for i, it := range items {
		r, err := it.p.Wait(ctx)
		what := fmt.Sprintf("async %d/%d", i, n)
		if it.bad != nil {
			checkInvalidErr(t, what, err, *it.bad)
			continue
		}
		m.expectOne(t, what, it.ev, r, err, it.p.Duplicate())
	}
}

// batch logs an atomic batch, with repeated ids, resends, and sometimes an
// invalid or conflicting event (then nothing of it may be stored).
func (m *machine) batch(t *rapid.T) {
	n := rapid.IntRange(1, 6).Draw(t, "batch n")
	evs := make([]trail.Event, n)
	invalid := make([]*invalidCase, n)
	for i := range evs {
		switch {
		case i > 0 && rapid.IntRange(0, 3).Draw(t, "repeat in batch") == 0:
			j := rapid.IntRange(0, i-1).Draw(t, "repeat of")
			if k, stored := m.ids[evs[j].ID]; stored && rapid.Bool().Draw(t, "resend stored again") {
				evs[i] = m.resendOf(t, k) // another take on the stored event
				continue
			}
			ev := evs[j]
			if ev.ID == "" {
				m.fresh++
				ev.ID = fmt.Sprintf("fresh-%d", m.fresh)
				evs[j].ID = ev.ID
			}
			if rapid.Bool().Draw(t, "repeat differs") {
				ev = exported(ev)
				ev.Type += ".changed"
			}
			evs[i] = ev
		default:
			evs[i] = m.genEvent(t)
		}
	}
	if rapid.IntRange(0, 4).Draw(t, "batch has invalid") == 0 {
		k := rapid.IntRange(0, n-1).Draw(t, "invalid at")
		ev, c := m.genInvalid(t) // has no id, or a bad one
		evs[k], invalid[k] = ev, &c
	}

	// Predict: the positions that make the batch fail, and otherwise the
	// receipt of every event.
	firstInvalid, firstConflict := -1, -1
	for i := range evs {
		if invalid[i] != nil && firstInvalid < 0 {
			firstInvalid = i
		}
	}
	type pred struct {
		first int // index in the log of a stored event with this id, or -1
		inB   int // position of an earlier event of the batch with this id, or -1
	}
	preds := make([]pred, n)
	seen := map[string]int{}
	for i, ev := range evs {
		preds[i] = pred{-1, -1}
		if invalid[i] != nil || ev.ID == "" {
			continue
		}
		if j, ok := seen[ev.ID]; ok {
			preds[i].inB = j
			a := evs[j]
			same := cmp.Equal(canonOf(a), canonOf(ev)) &&
				(ev.Time.IsZero() || (!a.Time.IsZero() && a.Time.Equal(ev.Time)))
			if preds[j].first >= 0 {
				same = m.sameAs(m.events[preds[j].first], ev)
			}
			if !same && firstConflict < 0 {
				firstConflict = i
			}
			continue
		}
		seen[ev.ID] = i
		if j, ok := m.ids[ev.ID]; ok {
			preds[i].first = j
			if !m.sameAs(m.events[j], ev) && firstConflict < 0 {
				firstConflict = i
			}
		}
	}

	ctx, cancel := ctxT()
	defer cancel()
	size := m.l.Size()
	bp, err := m.l.LogBatch(ctx, evs)
	if err != nil {
		t.Fatalf("LogBatch: %v", err)
	}
	rs, err := bp.Wait(ctx)
	if firstInvalid >= 0 || firstConflict >= 0 {
		var be *trail.BatchError
		if !errors.As(err, &be) {
			t.Fatalf("batch with invalid event at %d / conflict at %d: err = %v (%T), want *trail.BatchError", firstInvalid, firstConflict, err, err)
		}
		switch {
		case be.Index == firstInvalid:
			checkInvalidErr(t, "batch", be.Err, *invalid[firstInvalid])
		case be.Index == firstConflict && (firstInvalid < 0 || firstConflict < firstInvalid):
			if !errors.Is(err, trail.ErrIDConflict) {
				t.Fatalf("batch: BatchError at the conflicting event %d: %v, want ErrIDConflict", be.Index, err)
			}
		default:
			t.Fatalf("batch: BatchError names event %d (%v); want the first bad event (invalid at %d, conflict at %d)", be.Index, be, firstInvalid, firstConflict)
		}
		if rs != nil {
			t.Fatalf("batch refused but returned receipts %v", rs)
		}
		if got := m.l.Size(); got != size {
			t.Fatalf("refused batch changed the size %d → %d", size, got)
		}
		return
	}
	if err != nil {
		t.Fatalf("batch of %d: %v", n, err)
	}
	if len(rs) != n {
		t.Fatalf("batch of %d gave %d receipts", n, len(rs))
	}
	dups := bp.Duplicates()
	for i, ev := range evs {
		what := fmt.Sprintf("batch event %d/%d", i, n)
		switch p := preds[i]; {
		case p.first >= 0:
			if rs[i] != m.events[p.first].r || !dups[i] {
				t.Fatalf("%s: resend of stored id %q: receipt %+v dup=%v, want %+v dup=true", what, ev.ID, rs[i], dups[i], m.events[p.first].r)
			}
		case p.inB >= 0:
			if rs[i] != rs[p.inB] || !dups[i] {
				t.Fatalf("%s: repeat of batch event %d (id %q): receipt %+v dup=%v, want %+v dup=true", what, p.inB, ev.ID, rs[i], dups[i], rs[p.inB])
			}
		default:
			if dups[i] {
				t.Fatalf("%s: new event reported as duplicate", what)
			}
			m.accept(t, what, ev, rs[i])
		}
	}
}

// invalid logs an invalid event: refused, nothing stored.
func (m *machine) invalid(t *rapid.T) {
	ev, c := m.genInvalid(t)
	size := m.l.Size()
	ctx, cancel := ctxT()
	defer cancel()
	var err error
	if rapid.Bool().Draw(t, "invalid via Append") {
		_, err = m.l.Append(ctx, ev)
	} else {
		p := m.l.Log(ev)
		_, err = p.Wait(ctx)
	}
	checkInvalidErr(t, "invalid event", err, c)
	if got := m.l.Size(); got != size {
		t.Fatalf("invalid event (%s) changed the size %d → %d", c.name, size, got)
	}
}

// concurrent has several callers Log events without waiting; each caller's
// events to one stream must be stored in the order that caller logged them.
func (m *machine) concurrent(t *rapid.T) {
	callers := rapid.IntRange(2, 4).Draw(t, "callers")
	evs := make([][]trail.Event, callers)
	for c := range evs {
		k := rapid.IntRange(1, 8).Draw(t, "events per caller")
		for range k {
			ev := m.genBody(t, mStreams[:2])
			if rapid.Bool().Draw(t, "concurrent id") {
				m.fresh++
				ev.ID = fmt.Sprintf("fresh-%d", m.fresh)
			}
			evs[c] = append(evs[c], ev)
		}
	}
	ctx, cancel := ctxT()
	defer cancel()
	rs := make([][]trail.Receipt, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for c := range evs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			ps := make([]*trail.Pending, len(evs[c]))
			for i, ev := range evs[c] {
				ps[i] = m.l.Log(ev)
			}
			for _, p := range ps {
				r, err := p.Wait(ctx)
				if err != nil && errs[c] == nil {
					errs[c] = err
				}
				rs[c] = append(rs[c], r)
			}
		}()
	}
	close(start)
	wg.Wait()
	type placed struct {
		c, i int
		r    trail.Receipt
	}
	var all []placed
	for c := range evs {
		if errs[c] != nil {
			t.Fatalf("caller %d: %v", c, errs[c])
		}
		last := map[string]uint64{}
		for i, r := range rs[c] {
			if l, ok := last[r.Stream]; ok && r.Index <= l {
				t.Fatalf("caller %d: event %d to %s stored at index %d, before its earlier event at %d", c, i, r.Stream, r.Index, l)
			}
			last[r.Stream] = r.Index
			all = append(all, placed{c, i, r})
		}
	}
	sort.Slice(all, func(a, b int) bool { return all[a].r.Index < all[b].r.Index })
	for _, p := range all {
		m.accept(t, fmt.Sprintf("caller %d event %d", p.c, p.i), evs[p.c][p.i], p.r)
	}
	// Which caller's event got which index depends on scheduling; keep the
	// order events are drawn from independent of it, so that rapid can
	// replay and shrink a failure.
	m.order = m.order[:len(m.order)-len(all)]
	for c := range rs {
		for _, r := range rs[c] {
			m.order = append(m.order, int(r.Index))
		}
	}
}

// reopen closes the engine, verifies the directory offline and opens it
// again: nothing is lost, and everything continues where it stopped.
func (m *machine) reopen(t *rapid.T) {
	if rapid.IntRange(0, 2).Draw(t, "reopen now") != 0 {
		return // restarts are slow: one step in three
	}
	ctx, cancel := ctxT()
	defer cancel()
	old := m.l
	if err := old.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	m.l = nil
	if _, err := old.Append(ctx, m.genBody(t, mStreams)); !errors.Is(err, trail.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	size := uint64(len(m.events))
	rep, err := trail.VerifyTest(ctx, m.dir, trail.VerifyOptions{})
	if err != nil {
		t.Fatalf("Verify after Close: %v", err)
	}
	if rep.Events != size || rep.Streams != len(m.streams) || rep.TornTail != "" {
		t.Fatalf("Verify after Close: %+v, want %d events in %d streams, no torn tail", rep, size, len(m.streams))
	}
	m.open(t)
	if got := m.l.Size(); got != size {
		t.Fatalf("after reopen: Size() = %d, want %d", got, size)
	}
	cp := m.l.Checkpoint()
	if cp.Size != size {
		t.Fatalf("after Close and reopen: latest checkpoint has size %d, want %d (Close writes a final checkpoint)", cp.Size, size)
	}
	m.lastCP = 0
}

// check is the invariant checked after every action.
func (m *machine) check(t *rapid.T) {
	size := uint64(len(m.events))
	if got := m.l.Size(); got != size {
		t.Fatalf("Size() = %d, model has %d", got, size)
	}
	root, err := m.l.Root(size)
	if err != nil {
		t.Fatalf("Root(%d): %v", size, err)
	}
	if !bytes.Equal(root[:], m.roots[size]) {
		t.Fatalf("Root(%d) = %x, RFC 6962 root of the stored bytes is %x", size, root, m.roots[size])
	}
	if _, err := m.l.Read(size); !errors.Is(err, trail.ErrNotFound) {
		t.Fatalf("Read(%d) past the end: %v, want ErrNotFound", size, err)
	}
	if _, err := m.l.Root(size + 1); !errors.Is(err, trail.ErrOutOfRange) {
		t.Fatalf("Root(%d) past the end: %v, want ErrOutOfRange", size+1, err)
	}
	if _, err := m.l.InclusionProof(size, size+1); !errors.Is(err, trail.ErrOutOfRange) {
		t.Fatalf("InclusionProof(%d, %d) past the end: %v, want ErrOutOfRange", size, size+1, err)
	}
	if size > 0 {
		k := rapid.Uint64Range(1, size).Draw(t, "proof size")
		if r, err := m.l.Root(k); err != nil || !bytes.Equal(r[:], m.roots[k]) {
			t.Fatalf("Root(%d) = %x, %v; want %x (roots never change)", k, r, err, m.roots[k])
		}
		i := rapid.Uint64Range(0, k-1).Draw(t, "proof index")
		for _, sz := range []uint64{k, size} {
			p, err := m.l.InclusionProof(i, sz)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, sz, err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, sz, m.events[i].r.LeafHash[:], hashBytes(p), m.roots[sz]); err != nil {
				t.Fatalf("InclusionProof(%d, %d) does not verify: %v", i, sz, err)
			}
		}
		if rec, err := m.l.Read(i); err != nil || !bytes.Equal(rec, m.events[i].rec) {
			t.Fatalf("Read(%d) = %q, %v; first read gave %q (append-only)", i, rec, err, m.events[i].rec)
		}
	}
	a := rapid.Uint64Range(0, size).Draw(t, "consistency from")
	b := rapid.Uint64Range(a, size).Draw(t, "consistency to")
	p, err := m.l.ConsistencyProof(a, b)
	if err != nil {
		t.Fatalf("ConsistencyProof(%d, %d): %v", a, b, err)
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, a, b, hashBytes(p), m.roots[a], m.roots[b]); err != nil {
		t.Fatalf("ConsistencyProof(%d, %d) does not verify: %v", a, b, err)
	}
	m.checkCheckpoint(t)
}

func (m *machine) checkCheckpoint(t *rapid.T) {
	cp := m.l.Checkpoint()
	v, err := note.NewVerifier(m.l.VerifierKey())
	if err != nil {
		t.Fatalf("VerifierKey %q: %v", m.l.VerifierKey(), err)
	}
	n, err := note.Open(cp.Signed, note.VerifierList(v))
	if err != nil {
		t.Fatalf("latest checkpoint does not verify with VerifierKey(): %v\n%s", err, cp.Signed)
	}
	origin, size, root, err := parseCheckpointText(n.Text)
	if err != nil {
		t.Fatalf("checkpoint body: %v\n%s", err, n.Text)
	}
	if origin != cp.Origin || origin != v.Name() || size != cp.Size || root != cp.Root {
		t.Fatalf("checkpoint: signed %q %d %x, Checkpoint() says %q %d %x, key name %q", origin, size, root, cp.Origin, cp.Size, cp.Root, v.Name())
	}
	if cp.Size > uint64(len(m.events)) {
		t.Fatalf("checkpoint covers %d events, only %d stored", cp.Size, len(m.events))
	}
	if cp.Size < m.lastCP {
		t.Fatalf("latest checkpoint went back from size %d to %d", m.lastCP, cp.Size)
	}
	m.lastCP = cp.Size
	if !bytes.Equal(cp.Root[:], m.roots[cp.Size]) {
		t.Fatalf("checkpoint of size %d: root %x, RFC 6962 root of the stored bytes is %x", cp.Size, cp.Root, m.roots[cp.Size])
	}
	if r, err := m.l.Root(cp.Size); err != nil || r != cp.Root {
		t.Fatalf("Root(%d) = %x, %v; checkpoint says %x", cp.Size, r, err, cp.Root)
	}
}

// parseCheckpointText parses a C2SP tlog-checkpoint body.
func parseCheckpointText(text string) (origin string, size uint64, root trail.Hash, err error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return "", 0, root, fmt.Errorf("want at least 3 lines")
	}
	origin = lines[0]
	if size, err = strconv.ParseUint(lines[1], 10, 64); err != nil {
		return "", 0, root, err
	}
	b, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(b) != len(root) {
		return "", 0, root, fmt.Errorf("root %q: %v", lines[2], err)
	}
	copy(root[:], b)
	return origin, size, root, nil
}

func hashBytes(hs []trail.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

func TestModel(t *testing.T) {
	base := t.TempDir()
	rapid.Check(t, func(t *rapid.T) {
		m := newMachine(t, base)
		t.Repeat(map[string]func(*rapid.T){
			"log":        m.logOne,
			"async":      m.logAsync,
			"batch":      m.batch,
			"invalid":    m.invalid,
			"concurrent": m.concurrent,
			"reopen":     m.reopen,
			"":           m.check,
		})
	})
}

// ---- focused regressions found by the model ----

// TestModelResendWithTimeIsDuplicate: an event with a client time, sent again
// unchanged, must get its first receipt (Guarantee 6), before and after a
// restart.
func TestModelResendWithTimeIsDuplicate(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	l, err := trail.OpenTest(t, dir, trail.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ev := trail.Event{ID: "evt-1", Stream: "patient/1", Type: "patient-record.read", Action: "R",
		Actor: trail.Actor{ID: "dr-1"}, Time: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)}
	first, err := l.Append(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	p := l.Log(ev)
	r, err := p.Wait(ctx)
	if err != nil || r != first || !p.Duplicate() {
		t.Errorf("resend of an event with a time: %+v, %v, dup=%v; want the first receipt %+v", r, err, p.Duplicate(), first)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	l, err = trail.OpenTest(t, dir, trail.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	p = l.Log(ev)
	r, err = p.Wait(ctx)
	if err != nil || r != first || !p.Duplicate() {
		t.Errorf("resend after restart of an event with a time: %+v, %v, dup=%v; want the first receipt %+v", r, err, p.Duplicate(), first)
	}
	if l.Size() != 1 {
		t.Errorf("size %d after resends, want 1", l.Size())
	}
}

// TestModelParseStoredTime: ParseStored must give the event's time (the
// stored "time" member), as ParseEvent does for a client's event.
func TestModelParseStoredTime(t *testing.T) {
	rec := []byte(`{"id":"e1","index":0,"stream":"s/1","stream_seq":1,"recorded":"2026-11-25T22:01:28.909124291Z",` +
		`"salt":"0123456789abcdef0123456789abcdef","time":"2025-03-04T07:06:07+02:00","type":"x","action":"R","outcome":"success","actor":{"id":"a"}}`)
	st, err := trail.ParseStored(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	if !st.Time.Equal(want) {
		t.Errorf("ParseStored(...).Time = %v, want %v", st.Time, want)
	}
	if b, err := st.Event.MarshalJSON(); err != nil || !bytes.Contains(b, []byte(`"time":"2025-03-04T07:06:07+02:00"`)) {
		t.Errorf("ParseStored(...).Event.MarshalJSON() = %s, %v; want the time as stored", b, err)
	}
}

// TestModelResendWithHTMLDetailsIsDuplicate: details with characters that
// JSON encoders like to escape (<, >, &, U+2028) are stored as sent, and a
// resend of such an event gets its first receipt.
func TestModelResendWithHTMLDetailsIsDuplicate(t *testing.T) {
	ctx := context.Background()
	l, err := trail.OpenTest(t, t.TempDir(), trail.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	for i, d := range []string{`{"s":"<b>&amp;</b>"}`, "{\"s\":\"\u2028\"}", `{"s":"\u003c"}`} {
		ev := trail.Event{ID: fmt.Sprint("html-", i), Stream: "patient/1", Type: "t", Action: "R",
			Actor: trail.Actor{ID: "dr"}, Details: json.RawMessage(d)}
		first, err := l.Append(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := l.Read(first.Index)
		if err != nil || !bytes.Contains(rec, []byte(`"details":`+d)) {
			t.Errorf("details %s not stored as sent: %s (%v)", d, rec, err)
		}
		p := l.Log(ev)
		if r, err := p.Wait(ctx); err != nil || r != first || !p.Duplicate() {
			t.Errorf("resend of an event with details %s: %+v, %v; want the first receipt %+v", d, r, err, first)
		}
	}
}

// TestModelBatchRepeatOfStoredID: a batch that names a stored id twice,
// both times with the stored event's content (once without its time, which
// matches any), is all duplicates: every event takes the first receipt.
func TestModelBatchRepeatOfStoredID(t *testing.T) {
	ctx := context.Background()
	l, err := trail.OpenTest(t, t.TempDir(), trail.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	withTime := trail.Event{ID: "e1", Stream: "patient/1", Type: "patient-record.read", Action: "R",
		Actor: trail.Actor{ID: "dr"}, Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	noTime := withTime
	noTime.Time = time.Time{}
	first, err := l.Append(ctx, withTime)
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range [][]trail.Event{{noTime, withTime}, {withTime, noTime}, {noTime, noTime, withTime}} {
		bp, err := l.LogBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := bp.Wait(ctx)
		if err != nil {
			t.Errorf("batch of %d resends of stored id e1 (each alone a duplicate): %v", len(batch), err)
			continue
		}
		for i, r := range rs {
			if r != first || !bp.Duplicates()[i] {
				t.Errorf("batch event %d: %+v dup=%v, want the first receipt %+v", i, r, bp.Duplicates()[i], first)
			}
		}
	}
	if l.Size() != 1 {
		t.Errorf("size %d, want 1", l.Size())
	}
}
