package atna_test

import (
	"fmt"
	"strings"

	"github.com/trailhq/trail/atna"
)

// A nurse reads a patient's record; the DICOM audit message becomes an
// event on the patient's stream.
func ExampleMap() {
	msg, err := atna.Decode(strings.NewReader(`<?xml version="1.0" encoding="UTF-8"?>
<AuditMessage>
  <EventIdentification EventActionCode="R" EventDateTime="2026-12-07T09:15:02Z" EventOutcomeIndicator="0">
    <EventID csd-code="110110" codeSystemName="DCM" originalText="Patient Record"/>
    <PurposeOfUse csd-code="TREAT" codeSystemName="v3-ActReason" originalText="Treatment"/>
  </EventIdentification>
  <ActiveParticipant UserID="nurse.ratched" UserName="Mildred Ratched" UserIsRequestor="true" NetworkAccessPointID="10.1.6.2"/>
  <AuditSourceIdentification AuditSourceID="EHR1"/>
  <ParticipantObjectIdentification ParticipantObjectID="12345^^^&amp;1.2.3&amp;ISO" ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1"/>
</AuditMessage>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := atna.Map(msg)
	if err != nil {
		fmt.Println(err)
		return
	}
	ev := m.Event
	fmt.Println(ev.Stream, ev.Type, ev.Action, ev.Outcome, ev.Purpose)
	fmt.Println(ev.Actor.ID, ev.Actor.Address, ev.Patient)
	// Output:
	// patient/1.2.3:12345 dicom:110110 R success treatment
	// nurse.ratched 10.1.6.2 12345^^^&1.2.3&ISO
}
