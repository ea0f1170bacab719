package trail

import "github.com/trailhq/trail/internal/index"

// queryFields are the fields of an event the index store keeps postings for
// (besides the stream).
type queryFields struct {
	patient, actor, typ, action, outcome string
}

func queryFieldsOf(ev *Event) queryFields {
	outcome := ev.Outcome
	if outcome == "" {
		outcome = OutcomeSuccess
	}
	return queryFields{patient: ev.Patient, actor: ev.Actor.ID, typ: ev.Type, action: ev.Action, outcome: outcome}
}

func (q queryFields) entry(e index.Entry) index.Entry {
	e.Patient, e.Actor, e.Type, e.Action, e.Outcome = q.patient, q.actor, q.typ, q.action, q.outcome
	return e
}
