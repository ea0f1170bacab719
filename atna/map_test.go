package atna_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/atna"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the mapping")

// golden is what a golden file holds: the event as a client sends it and
// the problems.
type golden struct {
	Event    trail.Event `json:"event"`
	Problems []string    `json:"problems,omitempty"`
}

// TestMapGolden maps every testdata/*.xml message and compares the result
// with its golden file; every event validates.
func TestMapGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".xml"), func(t *testing.T) {
			got := mapFile(t, file)
			path := strings.TrimSuffix(file, ".xml") + ".golden.json"
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to write it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("mapping differs from %s (-want +got):\n%s", path, diff)
			}
		})
	}
}

// mapFile decodes and maps one file, checks the event and returns the
// golden JSON.
func mapFile(t *testing.T, file string) []byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	msg, err := atna.Decode(f)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	m, err := atna.Map(msg)
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	checkEvent(t, m)
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(golden{m.Event, m.Problems}); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// checkEvent checks what every mapped event keeps: it validates, its
// stream is not reserved, it fits the size limit, and its subtypes are
// within bounds.
func checkEvent(t testing.TB, m atna.Mapped) {
	t.Helper()
	if err := m.Event.Validate(); err != nil {
		t.Fatalf("mapped event does not validate: %v", err)
	}
	if trail.IsReservedStream(m.Event.Stream) {
		t.Fatalf("stream %q is reserved", m.Event.Stream)
	}
	b, err := m.Event.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > trail.MaxEventSize {
		t.Fatalf("mapped event is %d bytes", len(b))
	}
	if _, err := trail.ParseEvent(b); err != nil {
		t.Fatalf("mapped event does not parse back: %v", err)
	}
	if len(m.Event.Subtypes) > atna.MaxSubtypes {
		t.Fatalf("%d subtypes", len(m.Event.Subtypes))
	}
	for _, s := range m.Event.Subtypes {
		if s == "" || len(s) > trail.MaxTypeLen {
			t.Fatalf("subtype %q", s)
		}
	}
}

// TestEveryEventType: the samples cover each DICOM event type the issue
// names, each mapped to its dicom: type.
func TestEveryEventType(t *testing.T) {
	codes := []string{"110100", "110101", "110102", "110103", "110104", "110106", "110107",
		"110108", "110109", "110110", "110111", "110112", "110113", "110114"}
	for _, code := range codes {
		files, _ := filepath.Glob("testdata/" + code + "-*.xml")
		if len(files) != 1 {
			t.Errorf("event type %s: %d samples, want 1", code, len(files))
			continue
		}
		var g golden
		if err := json.Unmarshal(mapFile(t, files[0]), &struct {
			Event *trail.Event `json:"event"`
		}{&g.Event}); err != nil {
			t.Fatal(err)
		}
		if g.Event.Type != "dicom:"+code {
			t.Errorf("%s: type %q", files[0], g.Event.Type)
		}
	}
}

// message is a minimal valid message with the given event attributes and
// inner XML of EventIdentification, and the given rest.
func message(attrs, rest string) []byte {
	return []byte(`<AuditMessage><EventIdentification ` + attrs + `>` +
		`<EventID csd-code="110110" codeSystemName="DCM"/></EventIdentification>` + rest +
		`<AuditSourceIdentification AuditSourceID="S1"/></AuditMessage>`)
}

const requestor = `<ActiveParticipant UserID="u1" UserIsRequestor="true"/>`

func TestMapOutcome(t *testing.T) {
	tests := []struct{ indicator, want string }{
		{"0", trail.OutcomeSuccess},
		{"4", trail.OutcomeMinorFailure},
		{"8", trail.OutcomeSeriousFailure},
		{"12", trail.OutcomeMajorFailure},
		{" 12 ", trail.OutcomeMajorFailure},
	}
	for _, tt := range tests {
		t.Run(tt.indicator, func(t *testing.T) {
			m := mustMap(t, message(`EventActionCode="R" EventOutcomeIndicator="`+tt.indicator+`"`, requestor))
			if m.Event.Outcome != tt.want {
				t.Errorf("outcome %q, want %q", m.Event.Outcome, tt.want)
			}
		})
	}
}

// TestMapRefuses: a message missing what an event needs, or whose outcome
// would be guessed, is not mapped.
func TestMapRefuses(t *testing.T) {
	tests := []struct{ name, msg, want string }{
		{"invalid outcome", string(message(`EventActionCode="R" EventOutcomeIndicator="2"`, requestor)), `EventOutcomeIndicator "2"`},
		{"no outcome", string(message(`EventActionCode="R"`, requestor)), "no EventOutcomeIndicator"},
		{"no action", string(message(`EventOutcomeIndicator="0"`, requestor)), "no EventActionCode"},
		{"bad action", string(message(`EventActionCode="r" EventOutcomeIndicator="0"`, requestor)), `EventActionCode "r"`},
		{"no participant", string(message(`EventActionCode="R" EventOutcomeIndicator="0"`, "")), "no ActiveParticipant"},
		{"actor without id", string(message(`EventActionCode="R" EventOutcomeIndicator="0"`, `<ActiveParticipant UserName="x"/>`)), "has no UserID"},
		{"no EventID", `<AuditMessage><EventIdentification EventActionCode="R" EventOutcomeIndicator="0"/>` + requestor + `</AuditMessage>`, "no EventID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := atna.Parse([]byte(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			_, err = atna.Map(msg)
			if !errors.Is(err, atna.ErrUnmappable) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Map: %v, want ErrUnmappable saying %q", err, tt.want)
			}
		})
	}
}

func mustMap(t testing.TB, data []byte) atna.Mapped {
	t.Helper()
	msg, err := atna.Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	m, err := atna.Map(msg)
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	checkEvent(t, m)
	return m
}

// TestMapPatientStream: the stream of one patient, by the form of the
// identifier, and of none.
func TestMapPatientStream(t *testing.T) {
	tests := []struct{ name, id, want string }{
		{"CX with OID", "12345^^^&1.2.3&ISO", "patient/1.2.3:12345"},
		{"CX with namespace and OID", "12345^^^HOSP&1.2.3&ISO^MR", "patient/1.2.3:12345"},
		{"CX without OID", "12345^^^HOSP", "patient/h-" + hash("12345^^^HOSP")},
		{"CX with a non-ISO authority", "12345^^^&urn:x&URI", "patient/h-" + hash("12345^^^&urn:x&URI")},
		{"plain id", "12345", "patient/h-" + hash("12345")},
		{"id outside the grammar", "12 345^^^&1.2.3&ISO", "patient/h-" + hash("12 345^^^&1.2.3&ISO")},
		{"id with a slash", "a/b^^^&1.2.3&ISO", "patient/h-" + hash("a/b^^^&1.2.3&ISO")},
		{"too long", strings.Repeat("9", 250) + "^^^&1.2.3&ISO", "patient/h-" + hash(strings.Repeat("9", 250)+"^^^&1.2.3&ISO")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := `<ParticipantObjectIdentification ParticipantObjectID="` + escape(tt.id) +
				`" ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1"/>`
			m := mustMap(t, message(`EventActionCode="R" EventOutcomeIndicator="0"`, requestor+obj))
			if m.Event.Stream != tt.want || m.Event.Patient != tt.id {
				t.Errorf("stream %q patient %q, want %q %q", m.Event.Stream, m.Event.Patient, tt.want, tt.id)
			}
		})
	}
	t.Run("no patient", func(t *testing.T) {
		m := mustMap(t, message(`EventActionCode="R" EventOutcomeIndicator="0"`, requestor))
		if m.Event.Stream != "atna/S1" || m.Event.Patient != "" {
			t.Errorf("stream %q patient %q", m.Event.Stream, m.Event.Patient)
		}
	})
}

func escape(s string) string {
	var b bytes.Buffer
	if err := xmlEscape(&b, s); err != nil {
		panic(err)
	}
	return b.String()
}

// TestMapLeavesOut: parts without an identifier or code are left out and
// named among the problems; the rest maps.
func TestMapLeavesOut(t *testing.T) {
	rest := requestor + `<ActiveParticipant UserName="anonymous"/>` +
		`<ParticipantObjectIdentification ParticipantObjectTypeCode="2"/>` +
		`<ParticipantObjectIdentification ParticipantObjectID="r1" ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="3"/>`
	msg := message(`EventActionCode="R" EventOutcomeIndicator="0"`, rest)
	msg = bytes.Replace(msg, []byte(`</EventIdentification>`), []byte(`<EventTypeCode displayName="no code"/></EventIdentification>`), 1)
	m := mustMap(t, msg)
	want := []trail.Entity{{Type: "audit-entity-type|2", ID: "r1", Role: "object-role|3"}}
	if diff := cmp.Diff(want, m.Event.Entities); diff != "" {
		t.Errorf("entities (-want +got):\n%s", diff)
	}
	got := strings.Join(m.Problems, "\n")
	for _, p := range []string{"ActiveParticipant[2] has no UserID: left out",
		"ParticipantObjectIdentification[1] has no ParticipantObjectID: left out", "EventTypeCode[1] has no code: left out"} {
		if !strings.Contains(got, p) {
			t.Errorf("problems lack %q:\n%s", p, got)
		}
	}
}

// TestMapTime: a time in RFC 3339 is kept as sent; any other is left out
// (Trail's recorded time applies) and noted.
func TestMapTime(t *testing.T) {
	tests := []struct{ sent, want, problem string }{
		{"2026-12-07T08:03:00.120+01:00", `"time":"2026-12-07T08:03:00.120+01:00"`, ""},
		{" 2026-12-07T08:03:00+00:00 ", `"time":"2026-12-07T08:03:00+00:00"`, ""},
		{"2026-12-07T08:03:00", "", "is not RFC 3339"},
		{"2026-12-07", "", "is not RFC 3339"},
		{"yesterday", "", "is not RFC 3339"},
		{"", "", "EventDateTime is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.sent, func(t *testing.T) {
			m := mustMap(t, message(`EventActionCode="R" EventOutcomeIndicator="0" EventDateTime="`+tt.sent+`"`, requestor))
			b, _ := m.Event.MarshalJSON()
			hasTime := strings.Contains(string(b), `"time":`)
			if tt.want != "" && !strings.Contains(string(b), tt.want) || tt.want == "" && hasTime {
				t.Errorf("event %s, want %s", b, tt.want)
			}
			if got := strings.Join(m.Problems, "\n"); tt.problem != "" && !strings.Contains(got, tt.problem) {
				t.Errorf("problems lack %q:\n%s", tt.problem, got)
			}
		})
	}
}
