package atna

import (
	"fmt"
	"slices"
	"strings"

	"github.com/trailhq/trail"
)

// isPatient reports whether o is the patient: type 1 (person), role 1
// (patient).
func (o *ParticipantObject) isPatient() bool {
	return strings.TrimSpace(o.TypeCode) == "1" && strings.TrimSpace(o.TypeCodeRole) == "1"
}

// mapObjects makes every participant object an entity, and the patient
// the event's patient when there is exactly one; it also sets the stream.
func (mp *mapper) mapObjects() {
	for i := range mp.m.Objects {
		mp.mapObject(fmt.Sprintf("ParticipantObjectIdentification[%d]", i+1), &mp.m.Objects[i])
	}
	ev := &mp.out.Event
	switch len(mp.patients) {
	case 0:
		ev.Stream = sourceStream(mp.m.Source.ID)
	case 1:
		ev.Patient = mp.patients[0]
		ev.Stream = patientStream(ev.Patient)
	default:
		ev.Stream = sourceStream(mp.m.Source.ID)
		mp.note("%d patients: patient left out (an event names one), each is a patient entity", len(mp.patients))
	}
}

func (mp *mapper) mapObject(path string, o *ParticipantObject) {
	mp.objectLosses(path, o)
	if o.ID == "" {
		mp.note("%s has no ParticipantObjectID: left out", path)
		return
	}
	if o.isPatient() && !slices.Contains(mp.patients, o.ID) {
		mp.patients = append(mp.patients, o.ID)
	}
	mp.out.Event.Entities = append(mp.out.Event.Entities, trail.Entity{
		Type: codeIn(ObjectTypeCodes, o.TypeCode),
		ID:   o.ID,
		Role: codeIn(ObjectRoleCodes, o.TypeCodeRole),
		Name: o.Name,
	})
}

// codeIn renders code in system as system|code, or "" without a code.
func codeIn(system, code string) string {
	return Code{System: system, Code: strings.TrimSpace(code)}.String()
}

// objectLosses notes what of an object no entity member holds.
func (mp *mapper) objectLosses(path string, o *ParticipantObject) {
	mp.lost(path+"/ParticipantObjectIDTypeCode", o.IDTypeCode.String())
	mp.lost(path+"/@ParticipantObjectDataLifeCycle", o.DataLifeCycle)
	mp.lost(path+"/@ParticipantObjectSensitivity", o.Sensitivity)
	if q := strings.TrimSpace(o.Query); q != "" {
		mp.note("%s/ParticipantObjectQuery (%d bytes): not mapped", path, len(q))
	}
	for i, d := range o.Details {
		mp.lost(fmt.Sprintf("%s/ParticipantObjectDetail[%d]", path, i+1), d.Type)
	}
	mp.unknown(path, o.Unknown)
}

// mapSource maps AuditSourceIdentification; the first type code is the
// source's type.
func (mp *mapper) mapSource() {
	s := &mp.m.Source
	src := trail.Source{ID: s.ID, Site: s.EnterpriseSiteID}
	for i, c := range s.TypeCodes {
		if i == 0 {
			src.Type = c.String()
			continue
		}
		mp.lost(fmt.Sprintf("AuditSourceTypeCode[%d]", i+1), c.String())
	}
	mp.unknown("AuditSourceIdentification", s.Unknown)
	if s.ID == "" {
		mp.note("AuditSourceIdentification has no AuditSourceID")
	}
	if src != (trail.Source{}) {
		mp.out.Event.Source = &src
	}
}
