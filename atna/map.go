package atna

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trailhq/trail"
)

// Mapped is a message mapped to a Trail event. Problems lists, for a person, what of the
// message the event does not hold (the message itself, kept as the event's
// original, still does) and what the mapping had to change.
type Mapped struct {
	Event    trail.Event
	Problems []string
}

// ErrUnmappable is wrapped by Map's error when the message lacks what every
// Trail event needs (a type, an action, an actor) or has an outcome it
// would have to guess.
var ErrUnmappable = errors.New("atna: audit message cannot be mapped to an event")

// MaxSubtypes is the most subtypes an event holds; a subtype, like the
// type, is at most trail.MaxTypeLen bytes.
const MaxSubtypes = trail.MaxSubtypes

// Entity types of participants and of objects: see the package doc.
const (
	ParticipantType = "participant"
	ObjectTypeCodes = "audit-entity-type"
	ObjectRoleCodes = "object-role"
)

// Map maps m to a Trail event as the package doc describes. The event it
// returns passes trail.Event.Validate; its ID is empty (Trail assigns one).
func Map(m *AuditMessage) (Mapped, error) {
	mp := mapper{m: m}
	mp.unknown("AuditMessage", m.Unknown)
	mp.mapEvent()
	mp.mapActorAndParticipants()
	mp.mapObjects()
	mp.mapSource()
	if len(mp.fails) > 0 {
		return Mapped{}, fmt.Errorf("%w: %s", ErrUnmappable, strings.Join(mp.fails, "; "))
	}
	mp.fit()
	mp.keepSentTime()
	return mp.out, nil
}

// mapper holds one mapping under way.
type mapper struct {
	m        *AuditMessage
	out      Mapped
	fails    []string // what makes the message unmappable
	patients []string // distinct patient identifiers, in order
}

func (mp *mapper) fail(format string, args ...any) {
	mp.fails = append(mp.fails, fmt.Sprintf(format, args...))
}

func (mp *mapper) note(format string, args ...any) {
	mp.out.Problems = append(mp.out.Problems, fmt.Sprintf(format, args...))
}

// unknown notes elements of no known name.
func (mp *mapper) unknown(path string, names []xml.Name) {
	for _, n := range names {
		mp.note("%s/%s: not mapped", path, clip(n.Local, 64))
	}
}

// lost notes a value the event has no place for.
func (mp *mapper) lost(path, v string) {
	if strings.TrimSpace(v) != "" {
		mp.note("%s %q: not mapped", path, clip(v, 64))
	}
}

func (mp *mapper) mapEvent() {
	e := &mp.m.Event
	ev := &mp.out.Event
	ev.Type = mp.eventType(e.ID)
	for i, c := range e.TypeCodes {
		mp.subtype(fmt.Sprintf("EventTypeCode[%d]", i+1), c)
	}
	switch a := strings.TrimSpace(e.ActionCode); a {
	case "C", "R", "U", "D", "E":
		ev.Action = a
	case "":
		mp.fail("EventIdentification has no EventActionCode (one of C, R, U, D, E)")
	default:
		mp.fail("EventActionCode %q is not one of C, R, U, D, E", clip(a, 16))
	}
	mp.mapTime(e.DateTime)
	mp.unknown("EventIdentification", e.Unknown)
	ev.Outcome = mp.outcome(e.OutcomeIndicator)
	ev.OutcomeDesc = e.OutcomeDescription
	for i, c := range e.PurposesOfUse {
		if i == 0 && c.Code != "" {
			ev.Purpose = purpose(c.Code)
			continue
		}
		mp.lost(fmt.Sprintf("PurposeOfUse[%d]", i+1), c.String())
	}
}

// eventType renders EventID: dicom:<code> for a DICOM code, else
// system|code.
func (mp *mapper) eventType(id Code) string {
	if id.Code == "" {
		mp.fail("EventIdentification has no EventID code")
		return ""
	}
	t := id.String()
	if id.IsDICOM() {
		t = "dicom:" + id.Code
	}
	return mp.cutTo("EventID", t, trail.MaxTypeLen)
}

func (mp *mapper) subtype(path string, c Code) {
	s := c.String()
	switch {
	case s == "":
		mp.note("%s has no code: left out", path)
	case len(mp.out.Event.Subtypes) == MaxSubtypes:
		mp.note("%s %q: left out, an event holds %d subtypes", path, clip(s, 64), MaxSubtypes)
	default:
		mp.out.Event.Subtypes = append(mp.out.Event.Subtypes, mp.cutTo(path, s, trail.MaxTypeLen))
	}
}

// cutTo cuts s to n bytes at a UTF-8 boundary, noting it.
func (mp *mapper) cutTo(path, s string, n int) string {
	if len(s) <= n {
		return s
	}
	mp.note("%s is %d bytes: cut to %d", path, len(s), n)
	return cut(s, n)
}

// mapTime keeps the sender's time when it is RFC 3339 (an xs:dateTime
// with a time zone); otherwise the event has no time and Trail uses the
// time it records the event.
func (mp *mapper) mapTime(v string) {
	if v == "" {
		mp.note("EventDateTime is missing: time left out (the time recorded applies)")
		return
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
	if err != nil {
		mp.note("EventDateTime %q is not RFC 3339 with a time zone: time left out (the time recorded applies)", clip(v, 64))
		return
	}
	mp.out.Event.Time = t
}

// keepSentTime gives the event its time exactly as the message wrote it
// (2026-12-07T08:03:00+00:00 stays so, not 2026-12-07T08:03:00Z), as Trail
// keeps a client's time. Should that fail, the event keeps the parsed time.
func (mp *mapper) keepSentTime() {
	ev := &mp.out.Event
	if ev.Time.IsZero() {
		return
	}
	t := ev.Time
	if ev.SetTimeText(strings.TrimSpace(mp.m.Event.DateTime)) != nil || !ev.Time.Equal(t) {
		ev.Time = t
	}
}

// outcome maps EventOutcomeIndicator; there is no default, as an absent
// outcome would read as success.
func (mp *mapper) outcome(v string) string {
	switch strings.TrimSpace(v) {
	case "0":
		return trail.OutcomeSuccess
	case "4":
		return trail.OutcomeMinorFailure
	case "8":
		return trail.OutcomeSeriousFailure
	case "12":
		return trail.OutcomeMajorFailure
	case "":
		mp.fail("EventIdentification has no EventOutcomeIndicator (0, 4, 8 or 12)")
	default:
		mp.fail("EventOutcomeIndicator %q is not 0, 4, 8 or 12", clip(v, 16))
	}
	return ""
}

// purpose maps a v3 ActReason code to Trail's purpose words.
func purpose(code string) string {
	switch code {
	case "TREAT":
		return "treatment"
	case "ETREAT":
		return "emergency"
	case "HPAYMT":
		return "payment"
	case "HOPERAT":
		return "operations"
	}
	return code
}
