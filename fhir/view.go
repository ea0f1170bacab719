package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/trailhq/trail"
)

// ViewOptions are what the view of an event needs beyond the event.
type ViewOptions struct {
	// Observer is Trail's own id, the source.observer of events that name
	// no source.
	Observer string
}

// View returns the AuditEvent of a stored event, as compact JSON. An event
// that came as an AuditEvent reads back as it was sent, apart from id and
// meta (versionId 1, lastUpdated Trail's recorded; other members of the
// sender's meta are kept); any other event is mapped as the package doc
// describes.
func View(se *trail.StoredEvent, opt ViewOptions) ([]byte, error) {
	if o := se.Original; o != nil && o.Format == trail.OriginalFHIR {
		return withIDMeta(o.Data, se.ID, Meta{VersionID: "1", LastUpdated: se.Recorded})
	}
	return marshal(Map(se, opt))
}

// Parsed returns the AuditEvent of a stored event as a struct, for search:
// the resource as sent, or the mapping of the event.
func Parsed(se *trail.StoredEvent, opt ViewOptions) (*AuditEvent, error) {
	if o := se.Original; o != nil && o.Format == trail.OriginalFHIR {
		var ae AuditEvent
		if err := json.Unmarshal(o.Data, &ae); err != nil {
			return nil, fmt.Errorf("fhir: stored AuditEvent %s: %w", se.ID, err)
		}
		ae.ID = se.ID
		return &ae, nil
	}
	return Map(se, opt), nil
}

// marshal encodes v as compact JSON without HTML escaping.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Map maps an event that did not come as an AuditEvent (see the package
// doc for the table).
func Map(se *trail.StoredEvent, opt ViewOptions) *AuditEvent {
	ev := cleaned(&se.Event)
	yes := true
	ae := &AuditEvent{
		ResourceType: "AuditEvent", ID: ev.ID,
		Meta:        &Meta{VersionID: "1", LastUpdated: se.Recorded},
		Action:      ev.Action,
		Recorded:    instant(ev.Time, se.Recorded),
		Outcome:     outcomeCode(ev.Outcome),
		OutcomeDesc: ev.OutcomeDesc,
	}
	typ := codingOf(ev.Type)
	if isReadRecord(se) {
		typ = Coding{System: SystemDCM, Code: auditLogUsed, Display: dicomDisplays[auditLogUsed]}
		ae.Subtype = append(ae.Subtype, codingOf(ev.Type))
	}
	ae.Type = &typ
	for _, st := range ev.Subtypes {
		ae.Subtype = append(ae.Subtype, codingOf(st))
	}
	actor := Agent{Who: &Reference{Identifier: &Identifier{Value: ev.Actor.ID}}, Name: ev.Actor.Name, Requestor: &yes}
	if ev.Actor.Role != "" {
		actor.Role = []CodeableConcept{conceptOf(ev.Actor.Role)}
	}
	if a := ev.Actor.Address; a != "" {
		actor.Network = &Network{Address: a, Type: networkType(a)}
	}
	if ev.Purpose != "" {
		actor.PurposeOfUse = []CodeableConcept{purposeConcept(ev.Purpose)}
	}
	ae.Agent = []Agent{actor}
	ae.Source = mapSource(ev.Source, opt)
	mapEntities(ae, ev)
	if isReadRecord(se) {
		ae.Entity = append(ae.Entity, queryEntity(ev.Details))
	}
	return ae
}

// cleaned is a copy of ev whose strings R4 can hold: an R4 string has no
// whitespace but space, tab, CR and LF, so any other (form feed, vertical
// tab, no-break space, line separator, …) reads as a space.
func cleaned(ev *trail.Event) *trail.Event {
	c := *ev
	c.Type, c.OutcomeDesc, c.Patient, c.Purpose = clean(c.Type), clean(c.OutcomeDesc), clean(c.Patient), clean(c.Purpose)
	c.Subtypes = make([]string, len(ev.Subtypes))
	for i, st := range ev.Subtypes {
		c.Subtypes[i] = clean(st)
	}
	a := &c.Actor
	a.ID, a.Name, a.Role, a.Address, a.UserAgent = clean(a.ID), clean(a.Name), clean(a.Role), clean(a.Address), clean(a.UserAgent)
	c.Entities = make([]trail.Entity, len(ev.Entities))
	for i, en := range ev.Entities {
		c.Entities[i] = trail.Entity{Type: clean(en.Type), ID: clean(en.ID), Role: clean(en.Role), Name: clean(en.Name)}
	}
	if ev.Source != nil {
		c.Source = &trail.Source{ID: clean(ev.Source.ID), Site: clean(ev.Source.Site), Type: clean(ev.Source.Type)}
	}
	return &c
}

func clean(s string) string {
	if !strings.ContainsFunc(s, oddSpace) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if oddSpace(r) {
			return ' '
		}
		return r
	}, s)
}

// oddSpace reports whether r is whitespace an R4 string may not hold.
func oddSpace(r rune) bool {
	return r != ' ' && r != '\t' && r != '\r' && r != '\n' && (unicode.IsSpace(r) || r == '\ufeff')
}

// isReadRecord reports whether se is one of Trail's records of a read.
func isReadRecord(se *trail.StoredEvent) bool {
	return trail.IsReservedStream(se.Stream) && se.Type == readRecordType
}

// mapSource maps the event's source; without one, Trail is the observer.
func mapSource(src *trail.Source, opt ViewOptions) *Source {
	s := &Source{Observer: &Reference{Identifier: &Identifier{Value: opt.Observer}}}
	if src == nil {
		src = &trail.Source{}
	}
	if src.ID != "" {
		s.Observer.Identifier.Value = src.ID
	}
	if s.Observer.Identifier.Value == "" {
		s.Observer = &Reference{Display: "Trail"}
	}
	s.Site = src.Site
	if src.Type != "" {
		s.Type = []Coding{codingOf(src.Type)}
	}
	return s
}

// mapEntities maps participants to agents and the other entities to
// entities, the patient first (as a Patient reference when its id is a FHIR
// id, else as an identifier), merged with the patient entity the atna
// mapping writes for it.
func mapEntities(ae *AuditEvent, ev *trail.Event) {
	if ev.Patient != "" {
		ae.Entity = append(ae.Entity, patientEntity(ev.Patient, ""))
	}
	for _, en := range ev.Entities {
		if en.Type == participantEntityType {
			no := false
			ag := Agent{Who: &Reference{Identifier: &Identifier{Value: en.ID}}, Name: en.Name, Requestor: &no}
			if en.Role != "" {
				ag.Role = []CodeableConcept{conceptOf(en.Role)}
			}
			ae.Agent = append(ae.Agent, ag)
			continue
		}
		if ev.Patient != "" && en.ID == ev.Patient && isPatientCoding(codingOf(en.Type), codingOf(en.Role)) {
			ae.Entity[0].Name = en.Name
			continue
		}
		e := Entity{What: &Reference{Identifier: &Identifier{Value: en.ID}}, Name: en.Name}
		if en.Type != "" {
			c := codingOf(en.Type)
			e.Type = &c
		}
		if en.Role != "" {
			c := codingOf(en.Role)
			e.Role = &c
		}
		ae.Entity = append(ae.Entity, e)
	}
}

// patientEntity is the entity of a patient: what = Patient/<id> when id is
// a FHIR id, else an identifier (system urn:oid:<OID> for an HL7 CX
// identifier with an ISO assigning authority).
func patientEntity(id, name string) Entity {
	ty := Coding{System: SystemEntityType, Code: "1", Display: "Person"}
	role := Coding{System: SystemObjectRole, Code: "1", Display: "Patient"}
	e := Entity{Type: &ty, Role: &role, Name: name}
	if fhirID(id) {
		e.What = &Reference{Reference: "Patient/" + id}
	} else if oid, v := cxParts(id); oid != "" {
		e.What = &Reference{Identifier: &Identifier{System: "urn:oid:" + oid, Value: v}}
	} else {
		e.What = &Reference{Identifier: &Identifier{Value: id}}
	}
	return e
}

// isPatientCoding reports whether an entity's type and role say "patient"
// (audit-entity-type 1, object-role 1).
func isPatientCoding(ty, role Coding) bool {
	return ty.System == SystemEntityType && ty.Code == "1" && role.System == SystemObjectRole && role.Code == "1"
}

// queryEntity describes a read of the trail, from a read record's details:
// the endpoint, each parameter, and how many events it returned.
func queryEntity(details json.RawMessage) Entity {
	ty := Coding{System: SystemEntityType, Code: "2", Display: "System Object"}
	role := Coding{System: SystemObjectRole, Code: "24", Display: "Query"}
	e := Entity{Type: &ty, Role: &role}
	var d struct {
		Endpoint string            `json:"endpoint"`
		Params   map[string]string `json:"params"`
		Count    *int              `json:"count"`
		Reason   string            `json:"reason"`
		Streams  []string          `json:"streams"`
	}
	if json.Unmarshal(details, &d) != nil {
		return e
	}
	e.Description = d.Endpoint
	keys := make([]string, 0, len(d.Params))
	for k := range d.Params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	add := func(k, v string) {
		if k != "" && v != "" {
			e.Detail = append(e.Detail, Detail{Type: k, ValueString: v})
		}
	}
	for _, k := range keys {
		add(k, d.Params[k])
	}
	if d.Count != nil {
		add("count", strconv.Itoa(*d.Count))
	}
	add("reason", d.Reason)
	add("streams", strings.Join(d.Streams, " "))
	return e
}

// instantRE is the grammar of an R4 instant.
var instantRE = regexp.MustCompile(`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$`)

// instant writes the event's time as an R4 instant: in its own zone when
// R4 allows it, else in UTC; the zero time is Trail's recorded.
func instant(t time.Time, recorded string) string {
	if t.IsZero() {
		return recorded
	}
	if s := t.Format(time.RFC3339Nano); instantRE.MatchString(s) {
		return s
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// networkType is the R4 network type of an address: 2 for an IP address,
// else 1 (a machine name).
func networkType(a string) string {
	if net.ParseIP(a) != nil {
		return "2"
	}
	return "1"
}

// fhirID reports whether s is an R4 id: 1-64 of [A-Za-z0-9.-].
func fhirID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// cxParts returns the OID and id of an HL7 CX identifier with an ISO
// assigning authority (12345^^^&1.2.3&ISO), else "", "".
func cxParts(cx string) (oid, id string) {
	comps := strings.Split(cx, "^")
	if len(comps) < 4 || comps[0] == "" {
		return "", ""
	}
	hd := strings.Split(comps[3], "&")
	if len(hd) < 3 || hd[1] == "" || hd[2] != "ISO" {
		return "", ""
	}
	return hd[1], comps[0]
}

// withIDMeta returns a resource with its id set and its meta's versionId
// and lastUpdated set (the sender's other meta members kept), every other
// member as sent, in the order sent, as compact JSON.
func withIDMeta(data []byte, id string, meta Meta) ([]byte, error) {
	members, err := objectMembers(data)
	if err != nil {
		return nil, err
	}
	idJSON, _ := marshal(id)
	out := make([]byte, 0, len(data)+128)
	out = append(out, `{"resourceType":"AuditEvent","id":`...)
	out = append(out, idJSON...)
	out = append(out, `,"meta":`...)
	m, err := mergeMeta(members, meta)
	if err != nil {
		return nil, err
	}
	out = append(out, m...)
	for _, mb := range members {
		switch mb.name {
		case "resourceType", "id", "meta":
			continue
		}
		k, _ := marshal(mb.name)
		out = append(out, ',')
		out = append(out, k...)
		out = append(out, ':')
		out = append(out, mb.value...)
	}
	out = append(out, '}')
	var buf bytes.Buffer
	if err := json.Compact(&buf, out); err != nil {
		return nil, fmt.Errorf("fhir: stored resource: %w", err)
	}
	return buf.Bytes(), nil
}

// mergeMeta is meta with the sender's other meta members after it.
func mergeMeta(members []member, meta Meta) ([]byte, error) {
	out, _ := marshal(meta)
	for _, mb := range members {
		if mb.name != "meta" {
			continue
		}
		inner, err := objectMembers(mb.value)
		if err != nil {
			return out, nil // not an object: replaced
		}
		out = out[:len(out)-1]
		for _, im := range inner {
			if im.name == "versionId" || im.name == "lastUpdated" {
				continue
			}
			k, _ := marshal(im.name)
			out = append(out, ',')
			out = append(out, k...)
			out = append(out, ':')
			out = append(out, im.value...)
		}
		out = append(out, '}')
	}
	return out, nil
}

// member is one member of a JSON object, its value as sent.
type member struct {
	name  string
	value json.RawMessage
}

var errNotObject = errors.New("not a JSON object")

// objectMembers splits a JSON object into its members, in order.
func objectMembers(data []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errNotObject
	}
	var ms []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		ms = append(ms, member{name, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return ms, nil
}
