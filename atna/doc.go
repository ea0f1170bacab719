// Package atna reads IHE ATNA audit messages — DICOM PS3.15 A.5
// AuditMessage XML, and the older RFC 3881 form IHE ATNA used before it —
// and maps them to Trail events.
//
// Decode and Parse read one message; Map turns it into a trail.Event that
// passes Validate, and a list of problems: whatever of the message the event does not hold, and
// whatever the mapping had to change. Nothing is lost for good, because the
// caller keeps the message verbatim as the event's original.
//
// # Decoding
//
// A message is UTF-8, with or without a byte order mark and an XML
// declaration, with or without namespaces; its root is AuditMessage.
// Unknown attributes are ignored; of unknown elements only the names are
// kept (Map lists them as problems). Codes decode in both forms:
// DICOM's (csd-code, codeSystemName, originalText, displayName) and RFC
// 3881's (code, codeSystemName or codeSystem, displayName).
//
// Parse refuses, with an error that says why and matches a sentinel:
// a message over 64 KiB (ErrTooLarge); any DOCTYPE or other <! declaration,
// so no entity is ever declared, let alone expanded (ErrDoctype); an
// encoding other than UTF-8, declared or by a UTF-16 byte order mark
// (ErrEncoding); a root other than one AuditMessage (ErrNotAuditMessage);
// XML that is not well formed (ErrSyntax). Decode reads at most 64 KiB and
// one byte from its reader, the byte that tells a message is too large.
//
// # Mapping
//
//	AuditMessage                               Trail event
//	EventID                                    type: dicom:<code> for DICOM codes, else system|code
//	EventTypeCode*                             subtypes: system|code each, at most 16
//	EventActionCode C R U D E                  action
//	EventDateTime                              time, as sent, when RFC 3339 (with a time zone)
//	EventOutcomeIndicator 0 4 8 12             outcome: success, minor-failure, serious-failure, major-failure
//	EventOutcomeDescription                    outcome_desc
//	PurposeOfUse (first)                       purpose: TREAT treatment, ETREAT emergency, HPAYMT payment,
//	                                           HOPERAT operations, any other code as it is
//	ActiveParticipant, the requestor           actor: UserID id, UserName name, first RoleIDCode role (system|code),
//	                                           NetworkAccessPointID address
//	ActiveParticipant, each other              entity: type "participant", UserID id, first RoleIDCode role, UserName name
//	ParticipantObjectIdentification, each      entity: type audit-entity-type|<ParticipantObjectTypeCode>,
//	                                           ParticipantObjectID id, role object-role|<ParticipantObjectTypeCodeRole>,
//	                                           ParticipantObjectName name
//	the patient object (type 1, role 1)        patient: ParticipantObjectID as sent (such as 12345^^^&1.2.3&ISO),
//	                                           and its entity as above
//	AuditSourceIdentification                  source: AuditSourceID id, AuditEnterpriseSiteID site,
//	                                           first AuditSourceTypeCode type (system|code, or the code alone)
//
// A code is written system|code, with the codeSystemName as the system
// (the codeSystem OID when there is no name), or the code alone without a
// system; DICOM codes (codeSystemName DCM, or the OID 1.2.840.10008.2.16.4)
// are written DCM|<code>, and as dicom:<code> in the type.
//
// The requestor is the first participant with UserIsRequestor true ("true"
// or "1"); in a message without one, the first participant. The entity
// types and roles of objects are the codes FHIR AuditEvent uses for them
// (audit-entity-type 1 person, 2 system object, 3 organization, 4 other;
// object-role 1 patient, 3 report, 24 query, …), written as the DICOM
// message gives them; participants' entities are told apart by their type,
// "participant". Entities follow the message's order, participants first.
//
// The stream is patient/<segment> when the message names exactly one
// patient. The segment is <OID>:<id> for an HL7 CX identifier whose
// assigning authority is an ISO OID (12345^^^&1.2.3&ISO →
// patient/1.2.3:12345) when both fit the stream grammar [A-Za-z0-9._:-];
// otherwise h- and the first 32 hex characters of the SHA-256 of the
// identifier as sent (12345^^^HOSP → patient/h-…). A message without a
// patient, or naming several distinct ones, goes to atna/<AuditSourceID> on
// the same rule. With several patients the event's patient is left out (an
// event names one) and each stays a patient entity.
//
// What the event has no member for is listed in Problems, by its XPath in
// the message: AlternativeUserID, NetworkAccessPointTypeCode and
// MediaIdentifier of participants, the NetworkAccessPointID of participants
// other than the actor, RoleIDCodes after the first, PurposeOfUse after the
// first, AuditSourceTypeCodes after the first, and of objects their
// ParticipantObjectIDTypeCode, DataLifeCycle, Sensitivity, Query and
// Details; and every element of a name the decoder does not know (such as
// DICOM's ParticipantObjectDescription, SOPClass or Accession).
//
// # Failures and limits
//
// Map fails (ErrUnmappable) only when the message lacks what every event
// needs or has an outcome it would have to guess: no EventID code, an
// EventActionCode missing or not one of C R U D E, an EventOutcomeIndicator
// missing or not one of 0 4 8 12 (an absent outcome reads as success, so
// none is made up), no participant, or an actor without a UserID. A
// receiver stores such a message as unparsed.
//
// Everything else is mapped, and noted in Problems where it is changed:
// an EventDateTime that is not RFC 3339 (such as an xs:dateTime without a
// time zone) leaves the time out, so the time Trail records it applies; a
// participant or object without an identifier is left out; a type or
// subtype over 128 bytes is cut to 128 at a UTF-8 boundary; subtypes past
// the 16th are left out. An event over 64 KiB as sent (possible only
// through escaping and the patient written twice) loses entities from the
// last until it fits, then has its strings, but the stream and the type,
// cut to 32 KiB, 16 KiB, … until it fits.
package atna
