package atna

import (
	"encoding/xml"
	"strings"
)

// AuditMessage is a decoded DICOM PS3.15 A.5 audit message (or its RFC 3881
// ancestor). Strings are as sent, except codes and enumerated attributes,
// whose surrounding white space is trimmed.
type AuditMessage struct {
	Event        EventIdentification `xml:"EventIdentification"`
	Participants []ActiveParticipant `xml:"ActiveParticipant"`
	Source       AuditSource         `xml:"AuditSourceIdentification"`
	Objects      []ParticipantObject `xml:"ParticipantObjectIdentification"`
	Unknown      []xml.Name          `xml:",any"` // elements of no known name
}

// EventIdentification says what happened, when and with what outcome.
type EventIdentification struct {
	ActionCode         string     `xml:"EventActionCode,attr"`       // C R U D E
	DateTime           string     `xml:"EventDateTime,attr"`         // xs:dateTime as sent
	OutcomeIndicator   string     `xml:"EventOutcomeIndicator,attr"` // 0 4 8 12
	ID                 Code       `xml:"EventID"`
	TypeCodes          []Code     `xml:"EventTypeCode"`
	OutcomeDescription string     `xml:"EventOutcomeDescription"`
	PurposesOfUse      []Code     `xml:"PurposeOfUse"`
	Unknown            []xml.Name `xml:",any"`
}

// ActiveParticipant is a user, process or node that took part in the event.
type ActiveParticipant struct {
	UserID                     string     `xml:"UserID,attr"`
	AlternativeUserID          string     `xml:"AlternativeUserID,attr"`
	UserName                   string     `xml:"UserName,attr"`
	UserIsRequestor            string     `xml:"UserIsRequestor,attr"` // xs:boolean as sent
	NetworkAccessPointID       string     `xml:"NetworkAccessPointID,attr"`
	NetworkAccessPointTypeCode string     `xml:"NetworkAccessPointTypeCode,attr"`
	RoleIDCodes                []Code     `xml:"RoleIDCode"`
	MediaIdentifier            *Media     `xml:"MediaIdentifier"`
	Unknown                    []xml.Name `xml:",any"`
}

// Requestor reports whether UserIsRequestor is true ("true" or "1").
func (p *ActiveParticipant) Requestor() bool {
	v := strings.TrimSpace(p.UserIsRequestor)
	return v == "true" || v == "1"
}

// Media identifies the removable medium of an export or import.
type Media struct {
	MediaType Code `xml:"MediaType"`
}

// AuditSource is the system that reports the event.
type AuditSource struct {
	EnterpriseSiteID string     `xml:"AuditEnterpriseSiteID,attr"`
	ID               string     `xml:"AuditSourceID,attr"`
	TypeCodes        []Code     `xml:"AuditSourceTypeCode"`
	Unknown          []xml.Name `xml:",any"`
}

// ParticipantObject is a patient, study, query or other object the event
// touched.
type ParticipantObject struct {
	ID            string   `xml:"ParticipantObjectID,attr"`
	TypeCode      string   `xml:"ParticipantObjectTypeCode,attr"`     // 1 person, 2 system object, 3 organization, 4 other
	TypeCodeRole  string   `xml:"ParticipantObjectTypeCodeRole,attr"` // 1 patient, 3 report, 24 query, ...
	DataLifeCycle string   `xml:"ParticipantObjectDataLifeCycle,attr"`
	Sensitivity   string   `xml:"ParticipantObjectSensitivity,attr"`
	IDTypeCode    Code     `xml:"ParticipantObjectIDTypeCode"`
	Name          string   `xml:"ParticipantObjectName"`
	Query         string   `xml:"ParticipantObjectQuery"` // base64 as sent
	Details       []Detail `xml:"ParticipantObjectDetail"`
	// Unknown names the other elements, such as DICOM's SOPClass,
	// Accession or ParticipantObjectDescription.
	Unknown []xml.Name `xml:",any"`
}

// Detail is a ParticipantObjectDetail: a type and a base64 value, as sent.
type Detail struct {
	Type  string `xml:"type,attr"`
	Value string `xml:"value,attr"`
}

// Code is a coded value in either form: DICOM's (csd-code, codeSystemName,
// originalText, displayName) or RFC 3881's (code, codeSystemName or the
// codeSystem OID, displayName, originalText).
type Code struct {
	Code         string // csd-code, or code in the RFC 3881 form
	System       string // codeSystemName, or else the codeSystem OID
	DisplayName  string
	OriginalText string
}

// codeWire holds the attributes of both forms.
type codeWire struct {
	CSDCode        string `xml:"csd-code,attr"`
	Code           string `xml:"code,attr"`
	CodeSystemName string `xml:"codeSystemName,attr"`
	CodeSystem     string `xml:"codeSystem,attr"`
	DisplayName    string `xml:"displayName,attr"`
	OriginalText   string `xml:"originalText,attr"`
}

// UnmarshalXML decodes a code of either form; csd-code wins over code and
// codeSystemName over codeSystem when a message carries both.
func (c *Code) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var w codeWire
	if err := d.DecodeElement(&w, &start); err != nil {
		return err
	}
	*c = Code{
		Code:         strings.TrimSpace(first(w.CSDCode, w.Code)),
		System:       strings.TrimSpace(first(w.CodeSystemName, w.CodeSystem)),
		DisplayName:  w.DisplayName,
		OriginalText: w.OriginalText,
	}
	return nil
}

func first(a, b string) string {
	if strings.TrimSpace(a) != "" {
		return a
	}
	return b
}

// dicomOID is the DICOM controlled terminology, codeSystemName "DCM".
const dicomOID = "1.2.840.10008.2.16.4"

// IsDICOM reports whether c is from the DICOM controlled terminology.
func (c Code) IsDICOM() bool { return c.System == "DCM" || c.System == dicomOID }

// String renders c as "system|code", or the code alone when it has no
// system, or "" when it has no code. DICOM's system is written DCM, whether
// it came as that name or as its OID.
func (c Code) String() string {
	switch {
	case c.Code == "":
		return ""
	case c.IsDICOM():
		return "DCM|" + c.Code
	case c.System == "":
		return c.Code
	}
	return c.System + "|" + c.Code
}
