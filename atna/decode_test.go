package atna_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/trailhq/trail/atna"
)

// TestParseRefuses: each refusal matches its sentinel and says what to do.
func TestParseRefuses(t *testing.T) {
	valid := string(message(`EventActionCode="R" EventOutcomeIndicator="0"`, requestor))
	tests := []struct {
		name string
		msg  string
		want error
		says string
	}{
		{"doctype", `<?xml version="1.0"?><!DOCTYPE AuditMessage [<!ENTITY x "y">]>` + valid, atna.ErrDoctype, "DOCTYPE"},
		{"billion laughs", `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><AuditMessage>&lol2;</AuditMessage>`, atna.ErrDoctype, "DOCTYPE"},
		{"external entity", `<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><AuditMessage UserID="&xxe;"/>`, atna.ErrDoctype, "DOCTYPE"},
		{"doctype inside", `<AuditMessage><!DOCTYPE x></AuditMessage>`, atna.ErrDoctype, "DOCTYPE"},
		{"undeclared entity", `<AuditMessage>&xxe;</AuditMessage>`, atna.ErrSyntax, "entity"},
		{"latin-1", `<?xml version="1.0" encoding="ISO-8859-1"?>` + valid, atna.ErrEncoding, `"ISO-8859-1"; send it as UTF-8`},
		{"latin-1 after white space", "\r\n <?xml version=\"1.0\" encoding=\"latin1\"?>" + valid, atna.ErrEncoding, `"latin1"`},
		{"utf-16 bom", "\xff\xfe<\x00", atna.ErrEncoding, "UTF-16"},
		{"invalid utf-8", `<AuditMessage><EventIdentification EventDateTime="` + "\xff" + `"/></AuditMessage>`, atna.ErrSyntax, "UTF-8"},
		{"other root", `<AuditEvent/>`, atna.ErrNotAuditMessage, "<AuditEvent>"},
		{"two roots", valid + valid, atna.ErrNotAuditMessage, "expected one"},
		{"empty", ``, atna.ErrNotAuditMessage, "no <AuditMessage>"},
		{"unclosed", `<AuditMessage><EventIdentification>`, atna.ErrSyntax, ""},
		{"too large", valid + strings.Repeat(" ", atna.MaxMessageSize+1-len(valid)), atna.ErrTooLarge, "64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := atna.Decode(strings.NewReader(tt.msg))
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Decode: %v, want %v saying %q", err, tt.want, tt.says)
			}
		})
	}
}

// TestParseAccepts: the limits themselves, a BOM, declarations, namespaces
// and unknown elements.
func TestParseAccepts(t *testing.T) {
	valid := string(message(`EventActionCode="R" EventOutcomeIndicator="0"`, requestor))
	tests := []struct{ name, msg string }{
		{"64 KiB", valid + strings.Repeat(" ", atna.MaxMessageSize-len(valid))},
		{"bom", "\xef\xbb\xbf" + valid},
		{"bom and declaration", "\xef\xbb\xbf<?xml version='1.0' encoding='UTF-8'?>\r\n" + valid},
		{"lower-case utf-8", `<?xml version="1.0" encoding="utf-8"?>` + valid},
		{"comment and processing instruction", `<!-- from the PACS --><?xml-stylesheet href="a"?>` + valid},
		{"namespaced", `<a:AuditMessage xmlns:a="urn:x"><a:EventIdentification EventActionCode="R" EventOutcomeIndicator="0"><a:EventID csd-code="110110" codeSystemName="DCM"/></a:EventIdentification>` + requestor + `<Unknown><Deeper/></Unknown></a:AuditMessage>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustMap(t, []byte(tt.msg))
			if m.Event.Type != "dicom:110110" || m.Event.Actor.ID != "u1" {
				t.Errorf("mapped %+v", m.Event)
			}
		})
	}
}

// countingReader counts the bytes read from r, followed by spaces without
// end when endless.
type countingReader struct {
	r       io.Reader
	endless bool
	n       int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF && c.endless {
		n, err = copy(p, bytes.Repeat([]byte(" "), len(p))), nil
	}
	c.n += n
	return n, err
}

// TestDecodeReadsAtMost: Decode reads a 64 KiB message and one byte, never
// more, from an endless reader.
func TestDecodeReadsAtMost(t *testing.T) {
	c := &countingReader{r: bytes.NewReader(message(`EventActionCode="R" EventOutcomeIndicator="0"`, requestor)), endless: true}
	if _, err := atna.Decode(c); !errors.Is(err, atna.ErrTooLarge) {
		t.Fatalf("Decode: %v, want ErrTooLarge", err)
	}
	if c.n > atna.MaxMessageSize+1 {
		t.Fatalf("read %d bytes", c.n)
	}
}

// TestMapFits: an event that would exceed 64 KiB after escaping (quotes
// written \" and the patient written twice) is made to fit, and says so.
func TestMapFits(t *testing.T) {
	id := strings.Repeat(`"`, 30<<10)
	objs := `<ParticipantObjectIdentification ParticipantObjectID='` + id + `' ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1"/>` +
		strings.Repeat(`<ParticipantObjectIdentification ParticipantObjectID="x"/>`, 10)
	m := mustMap(t, message(`EventActionCode="R" EventOutcomeIndicator="0"`, requestor+objs))
	if len(m.Event.Entities) != 0 || !strings.HasPrefix(m.Event.Patient, `""`) || !strings.HasPrefix(m.Event.Stream, "patient/h-") {
		t.Errorf("entities %d, patient %.8q…, stream %q", len(m.Event.Entities), m.Event.Patient, m.Event.Stream)
	}
	if got := strings.Join(m.Problems, "\n"); !strings.Contains(got, "last 11 entities left out") {
		t.Errorf("problems:\n%s", got)
	}
}

// TestMapCuts: a type and subtypes over 128 bytes are cut, subtypes past
// the 16th left out, each noted.
func TestMapCuts(t *testing.T) {
	long := strings.Repeat("é", 100)
	types := strings.Repeat(`<EventTypeCode csd-code="`+long+`" codeSystemName="X"/>`, 17)
	msg := `<AuditMessage><EventIdentification EventActionCode="R" EventOutcomeIndicator="0">` +
		`<EventID csd-code="` + long + `" codeSystemName="X"/>` + types + `</EventIdentification>` + requestor + `</AuditMessage>`
	m := mustMap(t, []byte(msg))
	if len(m.Event.Type) != 128 || len(m.Event.Subtypes) != 16 || len(m.Event.Subtypes[0]) != 128 {
		t.Errorf("type %d bytes, %d subtypes of %d bytes", len(m.Event.Type), len(m.Event.Subtypes), len(m.Event.Subtypes[0]))
	}
	if got := strings.Join(m.Problems, "\n"); !strings.Contains(got, "EventID is 202 bytes: cut to 128") ||
		!strings.Contains(got, "EventTypeCode[17]") || !strings.Contains(got, "no AuditSourceID") {
		t.Errorf("problems:\n%s", got)
	}
}

// TestMapCutsStrings: a patient whose identifier alone would exceed 64 KiB
// after escaping is cut, and the event still names its stream by the whole.
func TestMapCutsStrings(t *testing.T) {
	id := strings.Repeat(`"`, 33<<10)
	obj := `<ParticipantObjectIdentification ParticipantObjectID='` + id + `' ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1"/>`
	m := mustMap(t, message(`EventActionCode="R" EventOutcomeIndicator="0"`, requestor+obj))
	if len(m.Event.Patient) != 16<<10 || m.Event.Stream != "patient/h-"+hash(id) {
		t.Errorf("patient %d bytes, stream %q", len(m.Event.Patient), m.Event.Stream)
	}
	if got := strings.Join(m.Problems, "\n"); !strings.Contains(got, "strings cut to 16384 bytes") {
		t.Errorf("problems:\n%s", got)
	}
}

// TestCodeForms: a code's attributes in either form, and DICOM's OID.
func TestCodeForms(t *testing.T) {
	tests := []struct{ attrs, typ, subtype string }{
		{`csd-code="110110" codeSystemName="DCM"`, "dicom:110110", "DCM|110110"},
		{`code="110110" codeSystemName="DCM" displayName="Patient Record"`, "dicom:110110", "DCM|110110"},
		{`code="110110" codeSystem="1.2.840.10008.2.16.4"`, "dicom:110110", "DCM|110110"},
		{`csd-code=" ITI-9 " code="other" codeSystemName="IHE Transactions" codeSystem="1.3.6.1.4.1.19376.1.2"`, "IHE Transactions|ITI-9", "IHE Transactions|ITI-9"},
		{`code="x1" codeSystem="1.2.3"`, "1.2.3|x1", "1.2.3|x1"},
		{`code="x1"`, "x1", "x1"},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			msg := `<AuditMessage><EventIdentification EventActionCode="R" EventOutcomeIndicator="0">` +
				`<EventID ` + tt.attrs + `/><EventTypeCode ` + tt.attrs + `/></EventIdentification>` + requestor + `</AuditMessage>`
			m := mustMap(t, []byte(msg))
			if m.Event.Type != tt.typ || len(m.Event.Subtypes) != 1 || m.Event.Subtypes[0] != tt.subtype {
				t.Errorf("type %q subtypes %q, want %q [%q]", m.Event.Type, m.Event.Subtypes, tt.typ, tt.subtype)
			}
		})
	}
}

// TestParseNamespacesOnce: prefixes are translated once, to the namespace
// their own declaration names, even when that name is itself declared as
// a prefix (a decoder stacked on another must not translate twice).
func TestParseNamespacesOnce(t *testing.T) {
	msg, err := os.ReadFile("testdata/110110-patient-record.xml")
	if err != nil {
		t.Fatal(err)
	}
	msg = bytes.Replace(msg, []byte("<AuditMessage>"),
		[]byte(`<AuditMessage xmlns:p="q" xmlns:q="urn:q"><p:Foo/><q:Bar/>`), 1)
	m, err := atna.Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := []xml.Name{{Space: "q", Local: "Foo"}, {Space: "urn:q", Local: "Bar"}}
	if !reflect.DeepEqual(m.Unknown, want) {
		t.Fatalf("unknown elements %v, want %v", m.Unknown, want)
	}
}
