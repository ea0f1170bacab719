// Package fhir is Trail's FHIR R4 AuditEvent face: the AuditEvent view of
// every stored event, the decoder of AuditEvent resources into events, the
// search parameters of IHE ITI-81, and the resources of the API (Bundle,
// OperationOutcome, CapabilityStatement). It depends on the engine (the
// root package) only; the server serves it under /fhir.
//
// # The view
//
// Every event reads as a valid R4 AuditEvent, whatever API stored it. An
// event that came as an AuditEvent (its original has format fhir+json)
// reads back as it was sent, member for member and in the order sent,
// apart from id (the event id) and meta (versionId 1, lastUpdated Trail's
// recorded; the sender's other meta members, such as profile, are kept).
// Any other event is mapped:
//
//	Trail event                     AuditEvent
//	id                              id
//	recorded (Trail's)              meta.lastUpdated (meta.versionId 1)
//	time                            recorded
//	type dicom:<code>               type {system http://dicom.nema.org/resources/ontology/DCM, code, display}
//	type system|code, or code       type {system, code}, or {code}
//	subtypes                        subtype, each coded as type is
//	action                          action
//	outcome                         outcome: success 0, minor-failure 4, serious-failure 8, major-failure 12
//	outcome_desc                    outcomeDesc
//	actor.id                        agent[0].who.identifier.value (agent[0].requestor true)
//	actor.name                      agent[0].name
//	actor.role                      agent[0].role[0] (a coding, or text when not a code)
//	actor.address                   agent[0].network.address (type 2 for an IP address, else 1)
//	purpose                         agent[0].purposeOfUse: v3-ActReason TREAT, ETREAT, HPAYMT, HOPERAT for
//	                                treatment, emergency, payment, operations; any other as a code
//	source.id                       source.observer.identifier.value (Trail's own id when absent)
//	source.site, source.type        source.site, source.type[0]
//	patient                         entity {what Patient/<id> (an identifier, urn:oid:<OID> for an HL7 CX
//	                                with an ISO authority, when the id is not a FHIR id), type
//	                                audit-entity-type 1, role object-role 1}, first
//	entities of type participant    agent {who.identifier.value id, name, role, requestor false}
//	other entities                  entity {what.identifier.value id, type, role, name}
//	read records (trail/access)     type DCM 110101 Audit Log Used, subtype audit-log.read, and an entity
//	                                (type 2, role 24 Query) whose description is the endpoint and whose
//	                                details are the parameters, the count and the streams
//
// Codes written with a short system name in events (DCM, audit-entity-type,
// object-role, SNOMED-CT, security-source-type) get their canonical URLs,
// and the decoder writes those URLs back as the short names. The patient
// entity the atna mapping writes beside the patient is merged into the
// patient's entity. actor.user_agent and details (but a read record's) have
// no AuditEvent element and are not in the view.
//
// # Decoding
//
// Decode refuses, listing every problem as an OperationOutcome issue with
// the FHIRPath of the element: a body that is not a JSON object in UTF-8 or
// over 64 KiB; a resourceType other than AuditEvent; elements of the wrong
// JSON type; a missing type (or one without code), recorded (or one that
// is not an R4 instant), agent, agent.requestor, source or
// source.observer; an action outside C R U D E, an outcome outside 0 4 8
// 12, a network type outside 1-5; a subtype without code or more than 16.
// Trail needs two things R4 leaves optional: an action, and a name for the
// requestor (who's identifier value, reference or display, altId, or name).
//
// The actor is the agent with requestor true (the first agent when none
// is); other agents with a name become entities of type participant. An
// entity is the patient's when its what is a Patient reference, or when its
// type is audit-entity-type 1 and its role object-role 1; a Patient
// reference names the patient by its id, a patient identifier by
// value^^^&OID&ISO (HL7 CX, as ATNA writes it) when its system is
// urn:oid:<OID>, else by its value. The event's patient is set when the
// resource names exactly one.
//
// The stream is patient/<segment> for an event naming one patient, the
// segment being the patient's id, or <OID>:<id> for an HL7 CX identifier
// with an ISO authority (the stream the atna mapping gives the same
// patient), when it fits the stream grammar [A-Za-z0-9._:-]; otherwise
// fhir/<segment> of source.observer (its identifier's value, else its
// reference, else its display). A segment that does not fit is h- and the
// first 32 hex characters of the SHA-256 of the identifier.
//
// # Search
//
// ParseSearch reads the ITI-81 parameters (SearchParams); Match tests an
// AuditEvent view against them, so native, ATNA and FHIR events are found
// alike. Repeated parameters must all match (AND), comma-separated values
// are alternatives (OR). Tokens are code, system|code, |code or system|;
// references are Type/id, an absolute URL ending so, or an id alone (a
// Patient id for patient); :identifier and the ITI-81 chains
// patient.identifier and entity-identifier match identifiers as tokens;
// the string parameters (address, agent-name, entity-name) match the start
// of a value in any case (:exact, the whole value exactly); date takes eq ne gt lt ge le and stands for the whole range of
// its precision (2026-01-05 is that day, UTC when no zone is given). An
// event without an outcome is found as a success (0). Unknown parameters
// are listed in Ignored; unknown modifiers and bad values are errors.
//
// _sort=date and -date (the default) order by the AuditEvent's recorded
// (the event's time), then by index. A next link's _cursor is either
// t<Unix nanoseconds>.<index>, the last entry's place in that order, or an
// index in the log, for a search too large to sort whole (the server's
// doc says when).
package fhir
