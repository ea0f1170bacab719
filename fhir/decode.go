package fhir

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trailhq/trail"
)

// Issue codes and severities used in OperationOutcomes.
const (
	CodeInvalid   = "invalid"
	CodeStructure = "structure"
	CodeRequired  = "required"
	CodeValue     = "value"
	CodeCode      = "code-invalid"
	CodeTooLong   = "too-long"
	SeverityError = "error"
)

// MaxResourceSize is the most bytes an AuditEvent may have as sent: it is
// kept verbatim as the event's original.
const MaxResourceSize = trail.MaxOriginalSize

// ErrTooLarge is wrapped by Decode's error for a resource over
// MaxResourceSize.
var ErrTooLarge = errors.New("fhir: AuditEvent over 64 KiB")

// InvalidError lists every problem Decode found in a resource.
type InvalidError struct {
	Issues []Issue
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	b.WriteString("invalid AuditEvent: ")
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString("; ")
		}
		if len(is.Expression) > 0 {
			b.WriteString(is.Expression[0] + ": ")
		}
		b.WriteString(is.Diagnostics)
	}
	return b.String()
}

// Unwrap lets errors.Is find ErrTooLarge.
func (e *InvalidError) Unwrap() error {
	for _, is := range e.Issues {
		if is.Code == CodeTooLong {
			return ErrTooLarge
		}
	}
	return nil
}

// decoder collects the issues of one resource.
type decoder struct {
	issues []Issue
}

func (d *decoder) add(code, expr, format string, args ...any) {
	d.issues = append(d.issues, Issue{Severity: SeverityError, Code: code, Diagnostics: fmt.Sprintf(format, args...), Expression: []string{expr}})
}

// Decode reads an R4 AuditEvent resource (JSON) and maps it to an event
// whose Original is the resource as sent; the event has no id (the caller
// sets the one it stores it under). It checks what R4 requires of an
// AuditEvent and what Trail needs (see the package doc); the error is an
// *InvalidError listing every problem, each with the FHIRPath of the
// element at fault.
func Decode(data []byte) (trail.Event, error) {
	var d decoder
	if len(data) > MaxResourceSize {
		d.add(CodeTooLong, "AuditEvent", "the resource is %d bytes; an AuditEvent is at most %d (64 KiB) as sent", len(data), MaxResourceSize)
		return trail.Event{}, &InvalidError{d.issues}
	}
	ae, ok := d.parse(data)
	if !ok {
		return trail.Event{}, &InvalidError{d.issues}
	}
	ev := d.event(ae)
	if len(d.issues) > 0 {
		return trail.Event{}, &InvalidError{d.issues}
	}
	ev.Original = &trail.Original{Format: trail.OriginalFHIR, Data: bytes.Clone(data)}
	if err := ev.Validate(); err != nil {
		d.engineIssues(err)
		return trail.Event{}, &InvalidError{d.issues}
	}
	return ev, nil
}

// parse decodes the resource into the structs, with the checks that need
// the JSON itself.
func (d *decoder) parse(data []byte) (*AuditEvent, bool) {
	if !utf8.Valid(data) {
		d.add(CodeStructure, "AuditEvent", "the resource is not valid UTF-8")
		return nil, false
	}
	if t := bytes.TrimSpace(data); len(t) == 0 || t[0] != '{' {
		d.add(CodeStructure, "AuditEvent", "the body is not a JSON object: send an AuditEvent resource in JSON")
		return nil, false
	}
	var ae AuditEvent
	if err := json.Unmarshal(data, &ae); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			d.add(CodeStructure, "AuditEvent."+te.Field, "is JSON %s; R4 wants %s", te.Value, jsonKind(te.Type.Kind().String()))
		} else {
			d.add(CodeStructure, "AuditEvent", "the body is not valid JSON: %v", err)
		}
		return nil, false
	}
	if ae.ResourceType != "AuditEvent" {
		d.add(CodeInvalid, "AuditEvent.resourceType", "is %q; this endpoint takes AuditEvent resources", ae.ResourceType)
		return nil, false
	}
	return &ae, true
}

func jsonKind(k string) string {
	switch k {
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	case "ptr":
		return "an object or a boolean"
	}
	return "a " + k
}

// event maps the resource, adding an issue for each problem.
func (d *decoder) event(ae *AuditEvent) trail.Event {
	var ev trail.Event
	d.typ(ae, &ev)
	switch ae.Action {
	case "C", "R", "U", "D", "E":
		ev.Action = ae.Action
	case "":
		d.add(CodeRequired, "AuditEvent.action", "missing: Trail stores events with an action, one of C R U D E")
	default:
		d.add(CodeCode, "AuditEvent.action", "%q is not in the value set audit-event-action (C R U D E)", ae.Action)
	}
	d.recorded(ae.Recorded, &ev)
	if ae.Outcome != "" {
		o, ok := outcomeCodes[ae.Outcome]
		if !ok {
			d.add(CodeCode, "AuditEvent.outcome", "%q is not in the value set audit-event-outcome (0 4 8 12)", ae.Outcome)
		}
		ev.Outcome = o
	}
	ev.OutcomeDesc = ae.OutcomeDesc
	d.agents(ae, &ev)
	d.source(ae, &ev)
	d.entities(ae, &ev)
	ev.Stream = streamOf(&ev, ae)
	return ev
}

func (d *decoder) typ(ae *AuditEvent, ev *trail.Event) {
	switch {
	case ae.Type == nil:
		d.add(CodeRequired, "AuditEvent.type", "missing: the type of event (1..1), such as DICOM 110110 Patient Record")
	case ae.Type.Code == "":
		d.add(CodeRequired, "AuditEvent.type.code", "missing: the type needs a code")
	default:
		ev.Type = eventCode(*ae.Type, true)
	}
	if len(ae.Subtype) > trail.MaxSubtypes {
		d.add(CodeValue, "AuditEvent.subtype", "has %d codings; Trail keeps at most %d", len(ae.Subtype), trail.MaxSubtypes)
		return
	}
	for i, st := range ae.Subtype {
		if st.Code == "" {
			d.add(CodeRequired, fmt.Sprintf("AuditEvent.subtype[%d].code", i), "missing: a subtype needs a code")
			continue
		}
		ev.Subtypes = append(ev.Subtypes, eventCode(st, false))
	}
}

func (d *decoder) recorded(s string, ev *trail.Event) {
	if s == "" {
		d.add(CodeRequired, "AuditEvent.recorded", "missing: when the event was recorded (1..1), an instant such as 2026-12-07T10:15:00Z")
		return
	}
	if !instantRE.MatchString(s) {
		d.add(CodeValue, "AuditEvent.recorded", "%q is not an R4 instant (date, time to the second, and time zone, such as 2026-12-07T10:15:00Z)", s)
		return
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.add(CodeValue, "AuditEvent.recorded", "%q: %v", s, err)
		return
	}
	ev.Time = t
}

// agents maps the requestor (or, when none is, the first agent) to the
// actor and the others to participant entities.
func (d *decoder) agents(ae *AuditEvent, ev *trail.Event) {
	if len(ae.Agent) == 0 {
		d.add(CodeRequired, "AuditEvent.agent", "missing: at least one agent (1..*), the requestor among them")
		return
	}
	actor := 0
	for i := len(ae.Agent) - 1; i >= 0; i-- {
		ag := ae.Agent[i]
		path := fmt.Sprintf("AuditEvent.agent[%d]", i)
		if ag.Requestor == nil {
			d.add(CodeRequired, path+".requestor", "missing: whether the agent is the requestor (1..1)")
		} else if *ag.Requestor {
			actor = i
		}
		if ag.Network != nil {
			switch ag.Network.Type {
			case "", "1", "2", "3", "4", "5":
			default:
				d.add(CodeCode, path+".network.type", "%q is not in the value set network-type (1-5)", ag.Network.Type)
			}
		}
	}
	for i, ag := range ae.Agent {
		id := agentID(ag)
		if i == actor {
			if id == "" {
				d.add(CodeRequired, fmt.Sprintf("AuditEvent.agent[%d].who", i), "missing: the requestor needs a who (identifier or reference), an altId or a name")
			}
			ev.Actor = trail.Actor{ID: id, Name: ag.Name}
			if len(ag.Role) > 0 {
				ev.Actor.Role = conceptCode(ag.Role[0])
			} else if ag.Type != nil {
				ev.Actor.Role = conceptCode(*ag.Type)
			}
			if ag.Network != nil {
				ev.Actor.Address = ag.Network.Address
			}
			if len(ag.PurposeOfUse) > 0 {
				ev.Purpose = purposeOf(ag.PurposeOfUse[0])
			}
			continue
		}
		if id == "" {
			continue // nothing to name it by; the original keeps it
		}
		en := trail.Entity{Type: participantEntityType, ID: id, Name: ag.Name}
		if len(ag.Role) > 0 {
			en.Role = conceptCode(ag.Role[0])
		}
		ev.Entities = append(ev.Entities, en)
	}
	if ev.Purpose == "" && len(ae.PurposeOfEvent) > 0 {
		ev.Purpose = purposeOf(ae.PurposeOfEvent[0])
	}
}

// agentID is what an agent is named by: who's identifier value, who's
// reference, who's display, altId, name.
func agentID(ag Agent) string {
	if id := refID(ag.Who); id != "" {
		return id
	}
	if ag.AltID != "" {
		return ag.AltID
	}
	return ag.Name
}

// refID is what a reference names: the identifier's value, else the
// reference, else the display.
func refID(r *Reference) string {
	switch {
	case r == nil:
		return ""
	case r.Identifier != nil && r.Identifier.Value != "":
		return r.Identifier.Value
	case r.Reference != "":
		return r.Reference
	}
	return r.Display
}

func (d *decoder) source(ae *AuditEvent, ev *trail.Event) {
	switch {
	case ae.Source == nil:
		d.add(CodeRequired, "AuditEvent.source", "missing: the system that reports the event (1..1)")
		return
	case ae.Source.Observer == nil:
		d.add(CodeRequired, "AuditEvent.source.observer", "missing: the reference to the reporting system (1..1)")
		return
	}
	id := refID(ae.Source.Observer)
	if id == "" {
		d.add(CodeRequired, "AuditEvent.source.observer", "names nothing: give a reference, an identifier or a display")
		return
	}
	ev.Source = &trail.Source{ID: id, Site: ae.Source.Site}
	if len(ae.Source.Type) > 0 {
		ev.Source.Type = eventCode(ae.Source.Type[0], false)
	}
}

// entities maps entities: a patient (audit-entity-type 1 with object-role
// 1, or what = Patient/<id>) also names the event's patient when it is the
// only one.
func (d *decoder) entities(ae *AuditEvent, ev *trail.Event) {
	patients := map[string]bool{}
	for _, e := range ae.Entity {
		id := refID(e.What)
		if id == "" {
			id = e.Name
		}
		if id == "" {
			continue // a query-only entity: the original keeps it
		}
		en := trail.Entity{ID: id, Name: e.Name}
		if e.Type != nil {
			en.Type = eventCode(*e.Type, false)
		}
		if e.Role != nil {
			en.Role = eventCode(*e.Role, false)
		}
		if pt := patientOf(e); pt != "" {
			patients[pt] = true
			en.ID = pt
		}
		ev.Entities = append(ev.Entities, en)
	}
	if len(patients) == 1 {
		for pt := range patients {
			ev.Patient = pt
		}
	}
}

// patientOf is the patient an entity names, "" when it names none: the id
// of a Patient reference, or for a patient identifier, value^^^&OID&ISO
// (HL7 CX, as ATNA writes it) when its system is urn:oid:<OID>, else the
// value.
func patientOf(e Entity) string {
	w := e.What
	if w == nil {
		return ""
	}
	if id := patientRefID(w.Reference); id != "" {
		return id
	}
	isPatient := e.Type != nil && e.Role != nil && isPatientCoding(*e.Type, *e.Role)
	if !isPatient || w.Identifier == nil || w.Identifier.Value == "" {
		return ""
	}
	if oid, ok := strings.CutPrefix(w.Identifier.System, "urn:oid:"); ok && oid != "" {
		return w.Identifier.Value + "^^^&" + oid + "&ISO"
	}
	return w.Identifier.Value
}

// patientRefID is the id of a reference to a Patient ("Patient/1",
// "https://host/fhir/Patient/1", "Patient/1/_history/2"), else "".
func patientRefID(ref string) string {
	i := strings.LastIndex(ref, "Patient/")
	if i < 0 || i > 0 && ref[i-1] != '/' {
		return ""
	}
	id, _, _ := strings.Cut(ref[i+len("Patient/"):], "/")
	return id
}

// streamOf chooses the stream: patient/<segment> for an event naming one
// patient, else fhir/<segment> of the source observer. A segment is the
// patient's id (or the observer's) when it fits the stream grammar, or
// <OID>:<id> for an HL7 CX identifier with an ISO assigning authority (so
// a patient has the stream the atna mapping gives it); otherwise h- and
// the first 32 hex characters of SHA-256 of the identifier.
func streamOf(ev *trail.Event, ae *AuditEvent) string {
	if ev.Patient != "" {
		seg := ev.Patient
		if oid, id := cxParts(seg); oid != "" {
			seg = oid + ":" + id
		}
		return stream("patient/", seg, ev.Patient)
	}
	src := ""
	if ev.Source != nil {
		src = ev.Source.ID
	}
	return stream("fhir/", src, src)
}

// stream returns prefix+readable when that is a valid stream, else
// prefix+"h-" and the first 32 hex characters of SHA-256 of sent.
func stream(prefix, readable, sent string) string {
	if readable != "" && !strings.Contains(readable, "/") && trail.ValidateStream(prefix+readable) == nil {
		return prefix + readable
	}
	sum := sha256.Sum256([]byte(sent))
	return prefix + "h-" + hex.EncodeToString(sum[:16])
}

// engineIssues turns the event's validation problems into issues.
func (d *decoder) engineIssues(err error) {
	var ie *trail.InvalidEventError
	if !errors.As(err, &ie) {
		d.add(CodeInvalid, "AuditEvent", "%v", err)
		return
	}
	for _, p := range ie.Problems {
		code := CodeValue
		if errors.Is(p, trail.ErrTooLarge) {
			code = CodeTooLong
		}
		d.add(code, expressionOf(p.Field), "%s (Trail's event field %s)", p.Reason, p.Field)
	}
}

// expressionOf is the AuditEvent element an event field comes from.
func expressionOf(field string) string {
	for _, m := range [...]struct{ prefix, expr string }{
		{"type", "AuditEvent.type"}, {"subtypes", "AuditEvent.subtype"}, {"action", "AuditEvent.action"},
		{"outcome_desc", "AuditEvent.outcomeDesc"}, {"outcome", "AuditEvent.outcome"},
		{"actor", "AuditEvent.agent"}, {"purpose", "AuditEvent.agent.purposeOfUse"},
		{"patient", "AuditEvent.entity"}, {"entities", "AuditEvent.entity"}, {"source", "AuditEvent.source"},
		{"original", "AuditEvent"},
	} {
		if strings.HasPrefix(field, m.prefix) {
			return m.expr
		}
	}
	return "AuditEvent"
}
