package syslog_test

import (
	"encoding/xml"
	"testing"

	"github.com/trailhq/trail/internal/syslog"
)

func TestAuditXML(t *testing.T) {
	const doc = `<AuditMessage><EventIdentification EventActionCode="R"/></AuditMessage>`
	const decl = `<?xml version="1.0" encoding="UTF-8"?>`
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"element", doc, doc, true},
		{"declaration", decl + "\n" + doc, decl + "\n" + doc, true},
		{"BOM", bom + decl + doc, decl + doc, true},
		{"BOM and whitespace", bom + " \r\n\t" + doc + "\r\n\x00", doc, true},
		{"comment first", "<!-- audit -->" + doc, "<!-- audit -->" + doc, true},
		{"whole RFC 3881 sample", atnaXML, atnaXML, true},
		{"text", "'su root' failed", "", false},
		{"empty", "", "", false},
		{"BOM only", bom, "", false},
		{"cut short", decl + "<AuditMessage><Event", "", false},
		{"other processing instruction", `<?php echo 1 ?>`, "", false},
		{"not a name", "< AuditMessage/>", "", false},
		{"JSON", `{"resourceType":"AuditEvent"}`, "", false},
		{"UTF-16 BOM", "\xff\xfe<\x00A\x00/\x00>\x00", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := syslog.AuditXML([]byte(tc.in))
			if ok != tc.ok || ok && string(got) != tc.want {
				t.Errorf("AuditXML(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// The body of a parsed ATNA message, with or without a BOM, decodes as an
// AuditMessage.
func TestAuditXMLDecodes(t *testing.T) {
	for _, in := range []string{
		"<85>1 2026-12-07T10:00:00.000Z pacs01 PACS - IHE+RFC-3881 - " + atnaXML,
		"<85>1 2026-12-07T10:00:00.000Z pacs01 PACS - IHE+RFC-3881 - " + bom + atnaXML + "\n",
		"<85>Dec  7 10:00:00 pacs01 PACS: " + bom + "  " + atnaXML,
	} {
		m := syslog.Parse([]byte(in), received)
		x, ok := syslog.AuditXML(m.Body)
		if !ok {
			t.Fatalf("AuditXML of the body of %q: not XML", in)
		}
		var am struct {
			XMLName xml.Name `xml:"AuditMessage"`
			Event   struct {
				ID struct {
					Code string `xml:"csd-code,attr"`
				} `xml:"EventID"`
			} `xml:"EventIdentification"`
		}
		if err := xml.Unmarshal(x, &am); err != nil {
			t.Fatalf("decode the body of %q: %v", in, err)
		}
		if am.Event.ID.Code != "110103" {
			t.Errorf("EventID %q, want 110103", am.Event.ID.Code)
		}
	}
}
