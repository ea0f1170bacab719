package trail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/trailhq/trail"
)

// fuzzSeeds are realistic events; the corpora in testdata/fuzz hold more.
var fuzzSeeds = []string{
	`{"stream":"patient/12345","type":"patient-record.read","action":"R","actor":{"id":"dr-house"}}`,
	`{"id":"5b4c1f0e-1111-7a4a-8b8b-000000000000","stream":"patient/12345","time":"2026-11-25T10:00:00.123456789+01:00","type":"patient-record.update","action":"U","outcome":"minor-failure","outcome_desc":"partly \"saved\" <b>&</b>\n\tü \u2028","actor":{"id":"dr-house","name":"Gregory House","role":"physician","address":"10.0.0.7","user_agent":"Mozilla/5.0"},"patient":"12345","entities":[{"type":"Patient","id":"12345","role":"subject","name":"John"}],"source":{"id":"ehr-1","site":"north","type":"4"},"purpose":"treatment","details":{"fields":["allergies"],"n":1.5,"ok":true,"none":null,"s":"\u00e9\\"}}`,
	`{"stream":"patient/1.2.3:12345","type":"dicom:110110","subtypes":["DCM|110120","http://terminology.hl7.org/CodeSystem/audit-event-type|rest","vread"],"action":"R","actor":{"id":"pacs"}}`,
	`{"stream":"patient/1","type":"t","subtypes":[],"action":"R","actor":{"id":"a"}}`,
	`{"stream":"auth/login","type":"user.login","action":"E","actor":{"id":"nurse-1","address":"::1"},"outcome":"serious-failure","details":{ "attempts" : 3 }}`,
	`{"stream":"patient/1","type":"t","action":"R","actor":{"id":"a"},"index":7}`,
	`{"stream":"patient/1","type":"t","action":"R","actor":{"id":"a"},"prev":"0000000000000000000000000000000000000000000000000000000000000000"}`,
	`{"stream":"patient/1","type":"t","action":"R","actor":{"id":"a","foo":1}}`,
	`{"stream":"patient/1","type":"t","action":"R","actor":{"id":"a"},"entities":[{"id":"1","bar":2}]}`,
	`{"stream":"trail/access","type":"t","action":"R","actor":{"id":"a"}}`,
	`5`,
}

// FuzzParseEvent: ParseEvent never panics; what it accepts marshals and
// parses back to an equal event (round trip); what it refuses is a
// *trail.InvalidEventError whose every problem names a field and a reason.
func FuzzParseEvent(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := trail.ParseEvent(data)
		if err != nil {
			var ie *trail.InvalidEventError
			if !errors.As(err, &ie) || len(ie.Problems) == 0 {
				t.Fatalf("ParseEvent(%q) = %v (%T), want an InvalidEventError listing the problems", data, err, err)
			}
			for _, ve := range ie.Problems {
				if ve.Field == "" || ve.Reason == "" {
					t.Fatalf("ParseEvent(%q): a problem without a field or a reason: %#v", data, ve)
				}
			}
			return
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("ParseEvent(%q) accepted an event that Validate refuses: %v", data, err)
		}
		if v := schemaViolation(data); v != "" {
			t.Fatalf("ParseEvent(%q) accepted a member outside the v1 schema: %s", data, v)
		}
		b, err := ev.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of accepted %q: %v", data, err)
		}
		if !json.Valid(b) || bytes.ContainsAny(b, "\n\r") {
			t.Fatalf("MarshalJSON of accepted %q is not one line of JSON: %q", data, b)
		}
		ev2, err := trail.ParseEvent(b)
		if err != nil {
			t.Fatalf("ParseEvent(MarshalJSON(ParseEvent(%q))) = %v; marshalled %q", data, err, b)
		}
		if d := cmp.Diff(canonOf(ev), canonOf(ev2)); d != "" {
			t.Fatalf("round trip of %q through %q changed the event (-first +second):\n%s", data, b, d)
		}
		if !ev.Time.Equal(ev2.Time) || ev.Time.IsZero() != ev2.Time.IsZero() {
			t.Fatalf("round trip of %q through %q changed the time %v → %v", data, b, ev.Time, ev2.Time)
		}
		if b2, err := ev2.MarshalJSON(); err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("MarshalJSON is not stable: %q then %q (%v)", b, b2, err)
		}
	})
}

var (
	schemaEvent  = map[string]bool{"id": true, "stream": true, "time": true, "type": true, "subtypes": true, "action": true, "outcome": true, "outcome_desc": true, "actor": true, "patient": true, "entities": true, "source": true, "purpose": true, "details": true}
	schemaActor  = map[string]bool{"id": true, "name": true, "role": true, "address": true, "user_agent": true}
	schemaSource = map[string]bool{"id": true, "site": true, "type": true}
	schemaEntity = map[string]bool{"type": true, "id": true, "role": true, "name": true}
)

// schemaViolation walks valid event JSON and names the first member whose
// name is not exactly one of the v1 schema's (details is free-form), or "".
func schemaViolation(data []byte) string {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return "not an object: " + err.Error()
	}
	objectKeys := func(path string, raw json.RawMessage, allowed map[string]bool) string {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil || m == nil {
			return "" // null, or a type error the parser reports
		}
		for k := range m {
			if !allowed[k] {
				return path + "." + k
			}
		}
		return ""
	}
	for k, v := range top {
		if !schemaEvent[k] {
			return k
		}
		switch k {
		case "actor":
			if bad := objectKeys("actor", v, schemaActor); bad != "" {
				return bad
			}
		case "source":
			if bad := objectKeys("source", v, schemaSource); bad != "" {
				return bad
			}
		case "entities":
			var items []json.RawMessage
			json.Unmarshal(v, &items)
			for i, it := range items {
				if bad := objectKeys(fmt.Sprintf("entities[%d]", i), it, schemaEntity); bad != "" {
					return bad
				}
			}
		}
	}
	return ""
}

// The engine used by FuzzStoredLayout: in memory, one per fuzzing process.
var fuzzEngine struct {
	once  sync.Once
	l     *trail.Log
	err   error
	mu    sync.Mutex
	ids   map[string]bool
	heads map[string]trail.Hash
}

func fuzzLog(t *testing.T) *trail.Log {
	fuzzEngine.once.Do(func() {
		fuzzEngine.ids, fuzzEngine.heads = map[string]bool{}, map[string]trail.Hash{}
		fuzzEngine.l, fuzzEngine.err = trail.Open("fuzz", trail.Config{
			FS: vfs.NewMem(), Sync: trail.SyncNone, CheckpointInterval: time.Hour, SegmentSize: 1 << 20,
		})
	})
	if fuzzEngine.err != nil {
		t.Fatalf("open the in-memory engine: %v", fuzzEngine.err)
	}
	return fuzzEngine.l
}

// FuzzStoredLayout: ParseStored never panics on arbitrary bytes; an event
// ParseEvent accepts is stored by the engine as compact one-line JSON whose
// hash is the receipt's leaf hash and which ParseStored reads back to the
// same event.
func FuzzStoredLayout(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"id":"e1","index":0,"stream":"s/1","stream_seq":1,"recorded":"2026-11-25T22:01:28.909124291Z","salt":"0123456789abcdef0123456789abcdef","time":"2026-11-25T22:01:28.909124291Z","type":"x","action":"R","outcome":"success","actor":{"id":"a"}}`))
	f.Add([]byte(`{"id":"e2","index":1,"stream":"s/1","stream_seq":2,"recorded":"2026-11-25T22:01:28.909124291Z","salt":"0123456789abcdef0123456789abcdef","time":"2025-03-04T07:06:07+02:00","type":"x","action":"R","outcome":"success","actor":{"id":"a"},"prev":"4f2b7d0a8c36b6d3a0a7f4d1e2c9b8a7f6e5d4c3b2a1908f7e6d5c4b3a291807"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if st, err := trail.ParseStored(data); err == nil {
			if len(st.Recorded) == 0 {
				t.Fatalf("ParseStored(%q) accepted a record without recorded", data)
			}
		}

		ev, err := trail.ParseEvent(data)
		if err != nil {
			return
		}
		l := fuzzLog(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		fuzzEngine.mu.Lock()
		defer fuzzEngine.mu.Unlock()
		seen := ev.ID != "" && fuzzEngine.ids[ev.ID]
		r, err := l.Append(ctx, ev)
		switch {
		case seen:
			if err != nil && !errors.Is(err, trail.ErrIDConflict) {
				t.Fatalf("resend of id %q: %v", ev.ID, err)
			}
			return
		case errors.Is(err, trail.ErrTooLarge):
			if b, _ := ev.MarshalJSON(); len(b) <= trail.MaxEventSize {
				t.Fatalf("an event of %d bytes refused as too large", len(b))
			}
			return
		case err != nil:
			t.Fatalf("Append of an event ParseEvent accepts (%q): %v", data, err)
		}
		fuzzEngine.ids[r.ID] = true
		if r.Index != l.Size()-1 {
			t.Fatalf("new event got index %d of %d", r.Index, l.Size())
		}
		rec, err := l.Read(r.Index)
		if err != nil {
			t.Fatalf("Read(%d): %v", r.Index, err)
		}
		if got := rfc6962.DefaultHasher.HashLeaf(rec); !bytes.Equal(got, r.LeafHash[:]) {
			t.Fatalf("stored bytes hash to %x, receipt says %x", got, r.LeafHash)
		}
		var cb bytes.Buffer
		if err := json.Compact(&cb, rec); err != nil || !bytes.Equal(cb.Bytes(), rec) || bytes.ContainsAny(rec, "\n\r") {
			t.Fatalf("stored event is not compact one-line JSON (%v): %q", err, rec)
		}
		st, err := trail.ParseStored(rec)
		if err != nil {
			t.Fatalf("ParseStored of the engine's own record %q: %v", rec, err)
		}
		if st.Index != r.Index || st.StreamSeq != r.StreamSeq || st.Recorded != r.Recorded || st.ID != r.ID {
			t.Fatalf("ParseStored(%q) = index %d seq %d recorded %s id %s; receipt %+v", rec, st.Index, st.StreamSeq, st.Recorded, st.ID, r)
		}
		want := canonOf(ev)
		want.ID = r.ID
		if d := cmp.Diff(want, canonOf(st.Event)); d != "" {
			t.Fatalf("event %q stored as %q parses back differently (-sent +stored):\n%s", data, rec, d)
		}
		var members struct {
			Time string `json:"time"`
		}
		if err := json.Unmarshal(rec, &members); err != nil {
			t.Fatal(err)
		}
		var sent struct {
			Time *string `json:"time"`
		}
		json.Unmarshal(data, &sent)
		wantTime, wantWhen := r.Recorded, time.Time{}
		if sent.Time != nil {
			wantTime, wantWhen = *sent.Time, ev.Time
		} else {
			wantWhen, _ = time.Parse(time.RFC3339Nano, r.Recorded)
		}
		if members.Time != wantTime {
			t.Fatalf("stored time %q, want %q (as sent, or recorded): %q", members.Time, wantTime, rec)
		}
		if !st.Time.Equal(wantWhen) {
			t.Fatalf("ParseStored(%q).Time = %v, want %v", rec, st.Time, wantWhen)
		}
		head, ok := fuzzEngine.heads[r.Stream]
		switch {
		case !ok && st.Prev != nil:
			t.Fatalf("first event of %s has prev %x: %q", r.Stream, *st.Prev, rec)
		case ok && (st.Prev == nil || *st.Prev != head):
			t.Fatalf("prev of %q is not the leaf hash %x of the stream's previous event", rec, head)
		}
		fuzzEngine.heads[r.Stream] = r.LeafHash
	})
}
