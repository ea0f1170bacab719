package syslog_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/trailhq/trail/internal/syslog"
)

const bom = "\xef\xbb\xbf"

var received = time.Date(2026, 12, 7, 10, 0, 5, 0, time.UTC)

const atnaXML = `<?xml version="1.0" encoding="UTF-8"?>
<AuditMessage>
  <EventIdentification EventActionCode="R" EventDateTime="2026-12-07T10:00:00.000Z" EventOutcomeIndicator="0">
    <EventID csd-code="110103" codeSystemName="DCM" originalText="DICOM Instances Accessed"/>
  </EventIdentification>
  <ActiveParticipant UserID="pacs01" UserIsRequestor="false" NetworkAccessPointID="10.0.0.5" NetworkAccessPointTypeCode="2">
    <RoleIDCode csd-code="110152" codeSystemName="DCM" originalText="Destination Role ID"/>
  </ActiveParticipant>
  <ActiveParticipant UserID="dr.house" UserIsRequestor="true"/>
  <AuditSourceIdentification AuditSourceID="PACS"/>
  <ParticipantObjectIdentification ParticipantObjectID="12345^^^&amp;1.2.3.4&amp;ISO" ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1">
    <ParticipantObjectIDTypeCode csd-code="2" codeSystemName="RFC-3881" originalText="Patient Number"/>
  </ParticipantObjectIdentification>
</AuditMessage>`

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParse(t *testing.T) {
	evntslog := []syslog.SDElement{{ID: "exampleSDID@32473", Params: []syslog.SDParam{
		{Name: "iut", Value: "3"}, {Name: "eventSource", Value: "Application"}, {Name: "eventID", Value: "1011"}}}}
	atna := syslog.Message{Facility: 10, Severity: 5, Version: 1, Timestamp: ts("2026-12-07T10:00:00Z"),
		Hostname: "pacs01", AppName: "PACS", MsgID: "IHE+RFC-3881", Body: []byte(atnaXML), Format: "rfc5424"}
	for _, tc := range []struct {
		name string
		in   string
		want syslog.Message
	}{
		// RFC 5424 section 6.5, examples 1 to 4.
		{"rfc5424 example 1", "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - " + bom + "'su root' failed for lonvick on /dev/pts/8",
			syslog.Message{Facility: 4, Severity: 2, Version: 1, Timestamp: ts("2003-10-11T22:14:15.003Z"), Hostname: "mymachine.example.com",
				AppName: "su", MsgID: "ID47", Body: []byte("'su root' failed for lonvick on /dev/pts/8"), Format: "rfc5424"}},
		{"rfc5424 example 2", "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
			syslog.Message{Facility: 20, Severity: 5, Version: 1, Timestamp: ts("2003-08-24T12:14:15.000003Z"), Hostname: "192.0.2.1",
				AppName: "myproc", ProcID: "8710", Body: []byte("%% It's time to make the do-nuts."), Format: "rfc5424"}},
		{"rfc5424 example 3", `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] ` + bom + "An application event log entry...",
			syslog.Message{Facility: 20, Severity: 5, Version: 1, Timestamp: ts("2003-10-11T22:14:15.003Z"), Hostname: "mymachine.example.com",
				AppName: "evntslog", MsgID: "ID47", StructuredData: evntslog, Body: []byte("An application event log entry..."), Format: "rfc5424"}},
		{"rfc5424 example 4", `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
			syslog.Message{Facility: 20, Severity: 5, Version: 1, Timestamp: ts("2003-10-11T22:14:15.003Z"), Hostname: "mymachine.example.com",
				AppName: "evntslog", MsgID: "ID47", Format: "rfc5424", StructuredData: append(evntslog[:1:1],
					syslog.SDElement{ID: "examplePriority@32473", Params: []syslog.SDParam{{Name: "class", Value: "high"}}})}},
		{"all nil", "<0>1 - - - - - -", syslog.Message{Version: 1, Format: "rfc5424"}},
		{"escapes in a param value", `<13>1 - h a - - [x@1 a="q\"b\\s\]e\n"] m`,
			syslog.Message{Facility: 1, Severity: 5, Version: 1, Hostname: "h", AppName: "a", Format: "rfc5424", Body: []byte("m"),
				StructuredData: []syslog.SDElement{{ID: "x@1", Params: []syslog.SDParam{{Name: "a", Value: `q"b\s]e\n`}}}}}},
		{"empty param value and element without params", `<13>1 - - - - - [a][b c=""]`,
			syslog.Message{Facility: 1, Severity: 5, Version: 1, Format: "rfc5424",
				StructuredData: []syslog.SDElement{{ID: "a"}, {ID: "b", Params: []syslog.SDParam{{Name: "c"}}}}}},

		// IHE ATNA (ITI-20) as PACS send it.
		{"atna", "<85>1 2026-12-07T10:00:00.000Z pacs01 PACS - IHE+RFC-3881 - " + atnaXML, atna},
		{"atna with BOM", "<85>1 2026-12-07T10:00:00.000Z pacs01 PACS - IHE+RFC-3881 - " + bom + atnaXML, atna},
		{"atna with CRLF", "<85>1 2026-12-07T10:00:00.000Z pacs01 PACS - IHE+RFC-3881 - " + atnaXML + "\r\n", atna},
		{"atna without SD", "<85>1 2026-12-07T10:00:00.000Z pacs01 PACS - IHE+RFC-3881 " + atnaXML,
			with(atna, "no STRUCTURED-DATA: MSG follows MSGID")},
		{"atna with extra spaces", "<85>1 2026-12-07T10:00:00.000Z  pacs01 PACS -   IHE+RFC-3881 - " + atnaXML,
			with(atna, "more than one space between header fields")},

		// RFC 3164, section 5.4 and what senders write.
		{"rfc3164", "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
			syslog.Message{Facility: 4, Severity: 2, Timestamp: time.Date(2026, 10, 11, 22, 14, 15, 0, time.UTC), Hostname: "mymachine",
				AppName: "su", Body: []byte("'su root' failed for lonvick on /dev/pts/8"), Format: "rfc3164"}},
		{"rfc3164 no tag", "<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
			syslog.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 2, 5, 17, 32, 18, 0, time.UTC), Hostname: "10.0.0.99",
				Body: []byte("Use the BFG!"), Format: "rfc3164", Problems: []string{"no TAG: all after HOSTNAME taken as MSG"}}},
		{"rfc3164 no timestamp", "<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!",
			syslog.Message{Body: []byte("1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org 10.1.2.3 sched[0]: That's All Folks!"), Format: "rfc3164",
				Problems: []string{"no RFC 3164 TIMESTAMP: all after PRI taken as MSG"}}},
		{"rfc3164 pid", "<85>Dec  7 09:59:59 pacs01 PACS[812]: " + atnaXML,
			syslog.Message{Facility: 10, Severity: 5, Timestamp: time.Date(2026, 12, 7, 9, 59, 59, 0, time.UTC), Hostname: "pacs01",
				AppName: "PACS", ProcID: "812", Body: []byte(atnaXML), Format: "rfc3164"}},
		{"rfc3164 tag glued to the XML", "<85>Dec 07 09:59:59.250 pacs01 PACS:" + atnaXML,
			syslog.Message{Facility: 10, Severity: 5, Timestamp: time.Date(2026, 12, 7, 9, 59, 59, 250e6, time.UTC), Hostname: "pacs01",
				AppName: "PACS", Body: []byte(atnaXML), Format: "rfc3164"}},
		{"rfc3164 last year", "<13>Dec 31 23:59:59 h t: m",
			syslog.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC), Hostname: "h",
				AppName: "t", Body: []byte("m"), Format: "rfc3164"}},
		{"rfc3164 IPv6 host", "<13>Dec  7 10:00:00 fe80::1 sshd[7]: m",
			syslog.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC), Hostname: "fe80::1",
				AppName: "sshd", ProcID: "7", Body: []byte("m"), Format: "rfc3164"}},
		{"rfc3164 no hostname", "<13>Dec  7 10:00:00 su: m",
			syslog.Message{Facility: 1, Severity: 5, Timestamp: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC),
				AppName: "su", Body: []byte("m"), Format: "rfc3164", Problems: []string{"no HOSTNAME before TAG"}}},
		{"rfc3164 with an RFC 3339 stamp", "<13>2026-12-07T10:00:00.5+01:00 h t: m",
			syslog.Message{Facility: 1, Severity: 5, Timestamp: ts("2026-12-07T09:00:00.5Z"), Hostname: "h",
				AppName: "t", Body: []byte("m"), Format: "rfc3164"}},
		{"bare PRI and MSG", "<13>hello world\n",
			syslog.Message{Facility: 1, Severity: 5, Body: []byte("hello world"), Format: "rfc3164",
				Problems: []string{"no RFC 3164 TIMESTAMP: all after PRI taken as MSG"}}},

		// Broken.
		{"no PRI", "hello\r\n", syslog.Message{Facility: 1, Severity: 5, Body: []byte("hello"), Format: "raw",
			Problems: []string{`no <PRI> (starts "hello"): the whole message is taken as its body`}}},
		{"empty", "", syslog.Message{Facility: 1, Severity: 5, Body: []byte{}, Format: "raw",
			Problems: []string{"empty message: the whole message is taken as its body"}}},
		{"PRI over 191", "<192>1 - - - - - - x", syslog.Message{Facility: 1, Severity: 5, Body: []byte("<192>1 - - - - - - x"), Format: "raw",
			Problems: []string{"PRI 192 over 191: the whole message is taken as its body"}}},
		{"PRI unclosed", "<13 x", syslog.Message{Facility: 1, Severity: 5, Body: []byte("<13 x"), Format: "raw"}},
		{"PRI leading zero", "<013>1 - - - - - -", syslog.Message{Facility: 1, Severity: 5, Version: 1, Format: "rfc5424",
			Problems: []string{`PRI "<013>" has a leading zero`}}},
		{"version 2", "<13>2 - - - - - - m", syslog.Message{Facility: 1, Severity: 5, Version: 2, Body: []byte("m"), Format: "rfc5424",
			Problems: []string{"version 2: parsed as version 1"}}},
		{"header cut short", "<13>1 2026-12-07T10:00:00Z host", syslog.Message{Facility: 1, Severity: 5, Version: 1, Timestamp: ts("2026-12-07T10:00:00Z"),
			Hostname: "host", Format: "rfc5424", Problems: []string{"header ends before APP-NAME"}}},
		{"no SD", "<13>1 - - - - -", syslog.Message{Facility: 1, Severity: 5, Version: 1, Format: "rfc5424",
			Problems: []string{"no STRUCTURED-DATA: the message ends after MSGID"}}},
		{"bad timestamp", "<13>1 2026-12-07 - - - - - m", syslog.Message{Facility: 1, Severity: 5, Version: 1, Format: "rfc5424", Body: []byte("m"),
			Problems: []string{`TIMESTAMP "2026-12-07" is not RFC 3339: left out`}}},
		{"unclosed SD", `<13>1 - - - - - [a b="c"`, syslog.Message{Facility: 1, Severity: 5, Version: 1, Format: "rfc5424", Body: []byte(`[a b="c"`),
			Problems: []string{`STRUCTURED-DATA not well formed (no ] closing element "a"): taken as MSG`}}},
		{"text in SD", `<13>1 - - - - - [a b="c" m`, syslog.Message{Facility: 1, Severity: 5, Version: 1, Format: "rfc5424", Body: []byte(`[a b="c" m`),
			Problems: []string{`STRUCTURED-DATA not well formed (a param is not NAME="VALUE" in element "a"): taken as MSG`}}},
		{"unquoted param", `<13>1 - - - - - [a b=c] m`, syslog.Message{Facility: 1, Severity: 5, Version: 1, Format: "rfc5424", Body: []byte(`[a b=c] m`),
			Problems: []string{`STRUCTURED-DATA not well formed (a param is not NAME="VALUE" in element "a"): taken as MSG`}}},
		{"unterminated value", `<13>1 - - - - - [a b="c\"]`, syslog.Message{Facility: 1, Severity: 5, Version: 1, Format: "rfc5424", Body: []byte(`[a b="c\"]`),
			Problems: []string{`STRUCTURED-DATA not well formed (param "b" has no closing quote in element "a"): taken as MSG`}}},
		// "[Note]" is a well-formed SD-ELEMENT: RFC 5424 cannot tell it from a message in brackets.
		{"message in brackets", `<13>1 - - - - - [Note] disk full`, syslog.Message{Facility: 1, Severity: 5, Version: 1, Format: "rfc5424", Body: []byte(`disk full`), StructuredData: []syslog.SDElement{{ID: "Note"}}}},
		{"text glued to SD", `<13>1 - - - - - [a]b`, syslog.Message{Facility: 1, Severity: 5, Version: 1, Format: "rfc5424", Body: []byte(`b`),
			StructuredData: []syslog.SDElement{{ID: "a"}}, Problems: []string{"no space after STRUCTURED-DATA"}}},
		{"hostname not ASCII", "<13>1 - h\xc3\xa9 - - - - m", syslog.Message{Facility: 1, Severity: 5, Version: 1, Format: "rfc5424", Body: []byte("m"),
			Hostname: "h\xc3\xa9", Problems: []string{`HOSTNAME "hé" holds bytes outside printable ASCII`}}},
		{"MSGID too long", "<13>1 - - - - " + strings.Repeat("m", 33) + " - m", syslog.Message{Facility: 1, Severity: 5, Version: 1, Format: "rfc5424",
			Body: []byte("m"), MsgID: strings.Repeat("m", 33), Problems: []string{"MSGID of 33 bytes is over its 32"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := syslog.Parse([]byte(tc.in), received)
			opts := cmp.Options{cmpopts.EquateEmpty()}
			if tc.want.Format == "raw" && tc.want.Problems == nil {
				opts = append(opts, cmpopts.IgnoreFields(syslog.Message{}, "Problems"))
				if len(got.Problems) == 0 {
					t.Errorf("raw message without a problem")
				}
			}
			if diff := cmp.Diff(tc.want, got, opts...); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func with(m syslog.Message, problems ...string) syslog.Message {
	m.Problems = problems
	return m
}
