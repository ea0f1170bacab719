package fhir

import (
	"regexp"
	"strings"

	"github.com/trailhq/trail"
)

// Code systems Trail writes by a short name in events (as the atna package
// does) and by their canonical URL in AuditEvents.
const (
	SystemDCM             = "http://dicom.nema.org/resources/ontology/DCM"
	SystemEntityType      = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	SystemObjectRole      = "http://terminology.hl7.org/CodeSystem/object-role"
	SystemActReason       = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	SystemOutcome         = "http://hl7.org/fhir/audit-event-outcome"
	SystemAction          = "http://hl7.org/fhir/audit-event-action"
	SystemSNOMED          = "http://snomed.info/sct"
	SystemSecuritySource  = "http://terminology.hl7.org/CodeSystem/security-source-type"
	SystemNetworkType     = "http://hl7.org/fhir/network-type"
	dicomTypePrefix       = "dicom:"
	auditLogUsed          = "110101"
	readRecordType        = "audit-log.read"
	participantEntityType = "participant"
)

// systemURLs maps the short names of code systems in events to their URLs.
var systemURLs = map[string]string{
	"DCM":                  SystemDCM,
	"audit-entity-type":    SystemEntityType,
	"object-role":          SystemObjectRole,
	"SNOMED-CT":            SystemSNOMED,
	"security-source-type": SystemSecuritySource,
}

// systemNames is systemURLs the other way (and the DICOM OID).
var systemNames = map[string]string{
	SystemDCM:                      "DCM",
	"urn:oid:1.2.840.10008.2.16.4": "DCM",
	SystemEntityType:               "audit-entity-type",
	SystemObjectRole:               "object-role",
	SystemSNOMED:                   "SNOMED-CT",
	SystemSecuritySource:           "security-source-type",
}

// dicomDisplays names the DICOM audit event ids (PS3.16 CID 400).
var dicomDisplays = map[string]string{
	"110100": "Application Activity", "110101": "Audit Log Used", "110102": "Begin Transferring DICOM Instances",
	"110103": "DICOM Instances Accessed", "110104": "DICOM Instances Transferred", "110105": "DICOM Study Deleted",
	"110106": "Export", "110107": "Import", "110108": "Network Entry", "110109": "Order Record",
	"110110": "Patient Record", "110111": "Procedure Record", "110112": "Query", "110113": "Security Alert",
	"110114": "User Authentication",
}

// codeRE is the grammar of an R4 code: no leading, trailing or double
// whitespace.
var codeRE = regexp.MustCompile(`^[^\s]+( [^\s]+)*$`)

// codingOf renders an event's code: "dicom:<code>", "system|code" (the
// system by its short name or as written) or a code alone. A string that is
// not an R4 code becomes the coding's display.
func codingOf(s string) Coding {
	if code, ok := strings.CutPrefix(s, dicomTypePrefix); ok && codeRE.MatchString(code) {
		return Coding{System: SystemDCM, Code: code, Display: dicomDisplays[code]}
	}
	if sys, code, ok := strings.Cut(s, "|"); ok && sys != "" && !strings.ContainsAny(sys, " \t\r\n") && codeRE.MatchString(code) {
		if u, ok := systemURLs[sys]; ok {
			sys = u
		}
		c := Coding{System: sys, Code: code}
		if sys == SystemDCM {
			c.Display = dicomDisplays[code]
		}
		return c
	}
	if codeRE.MatchString(s) {
		return Coding{Code: s}
	}
	return Coding{Display: s}
}

// eventCode is codingOf the other way: the event's string for a coding.
// With typ set, DICOM codes are written dicom:<code> (an event's type).
func eventCode(c Coding, typ bool) string {
	if c.Code == "" {
		return c.Display
	}
	if c.System == "" {
		return c.Code
	}
	sys := c.System
	if n, ok := systemNames[sys]; ok {
		sys = n
	}
	if typ && sys == "DCM" {
		return dicomTypePrefix + c.Code
	}
	return sys + "|" + c.Code
}

// conceptOf renders a code as a CodeableConcept: a coding, or text.
func conceptOf(s string) CodeableConcept {
	c := codingOf(s)
	if c.Code == "" {
		return CodeableConcept{Text: s}
	}
	return CodeableConcept{Coding: []Coding{c}}
}

// conceptCode is the event's string for a CodeableConcept: its first
// coding, else its text.
func conceptCode(cc CodeableConcept) string {
	for _, c := range cc.Coding {
		if s := eventCode(c, false); s != "" {
			return s
		}
	}
	return cc.Text
}

// Outcome codes of R4 AuditEvent and the event outcomes they stand for.
var outcomeCodes = map[string]string{
	"0": trail.OutcomeSuccess, "4": trail.OutcomeMinorFailure, "8": trail.OutcomeSeriousFailure, "12": trail.OutcomeMajorFailure,
}

// outcomeCode is the R4 code of an event outcome ("" reads as success).
func outcomeCode(o string) string {
	switch o {
	case trail.OutcomeMinorFailure:
		return "4"
	case trail.OutcomeSeriousFailure:
		return "8"
	case trail.OutcomeMajorFailure:
		return "12"
	}
	return "0"
}

// purposeCodes maps event purposes to v3 ActReason codes, as atna maps
// them the other way.
var purposeCodes = map[string]string{
	"treatment": "TREAT", "emergency": "ETREAT", "payment": "HPAYMT", "operations": "HOPERAT",
}

// purposeConcept renders an event's purpose of use.
func purposeConcept(p string) CodeableConcept {
	if code, ok := purposeCodes[p]; ok {
		return CodeableConcept{Coding: []Coding{{System: SystemActReason, Code: code}}}
	}
	return conceptOf(p)
}

// purposeOf is the event purpose of a purposeOfUse concept.
func purposeOf(cc CodeableConcept) string {
	for _, c := range cc.Coding {
		if c.System == SystemActReason {
			for p, code := range purposeCodes {
				if code == c.Code {
					return p
				}
			}
			return c.Code
		}
	}
	return conceptCode(cc)
}
