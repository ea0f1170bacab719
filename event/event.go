package event

import (
	"encoding/json"
	"time"
)

// Event is one audited action: who did what to which record, when, from where
// and with what outcome. It is the v1 event schema of the public contract.
//
// The server-assigned fields (index, stream_seq, recorded, salt, prev) are not part
// of Event; they arrive in the Receipt and in the stored bytes. ID is assigned
// (a UUIDv7) when empty.
//
// After Log has been called with an Event, the caller must not change the
// slices or the Details it refers to until the Pending is resolved.
type Event struct {
	// ID is the event's unique id: 1-64 bytes of [A-Za-z0-9.-] (a valid FHIR
	// id), assigned by Trail when empty. Sending an event with an id already
	// stored returns the first receipt.
	ID string `json:"id,omitempty"`
	// Stream names the trail the event belongs to, such as "patient/12345":
	// "/"-separated segments of [A-Za-z0-9._:-], 1-256 bytes. Streams under
	// "trail/" are reserved for Trail's own events.
	Stream string `json:"stream"`
	// Time is when the action happened. Zero means "when recorded".
	Time time.Time `json:"-"`
	// Type says what happened, such as "patient-record.read" (at most 128 bytes).
	Type string `json:"type"`
	// Subtypes refine the type: at most 16 codes of at most 128 bytes,
	// each "system|code" or a code alone (an ATNA EventTypeCode, a FHIR
	// AuditEvent subtype).
	Subtypes []string `json:"subtypes,omitempty"`
	// Action is one of C, R, U, D, E (create, read, update, delete, execute).
	Action string `json:"action"`
	// Outcome is success (the default), minor-failure, serious-failure or
	// major-failure.
	Outcome string `json:"outcome,omitempty"`
	// OutcomeDesc is free text about the outcome.
	OutcomeDesc string `json:"outcome_desc,omitempty"`
	// Actor is who did it, from where. Actor.ID is required.
	Actor Actor `json:"actor"`
	// Patient is the patient whose data was touched, if any.
	Patient string `json:"patient,omitempty"`
	// Entities are the records touched (identifiers, never their contents).
	Entities []Entity `json:"entities,omitempty"`
	// Source is the system that reports the event.
	Source *Source `json:"source,omitempty"`
	// Purpose is the purpose of use: treatment, payment, operations,
	// emergency, ...
	Purpose string `json:"purpose,omitempty"`
	// Details is any JSON object of at most 16 KiB.
	Details json.RawMessage `json:"details,omitempty"`
	// Original is the message an event was mapped from, kept verbatim
	// (an ATNA syslog message, a FHIR AuditEvent resource). Only the server
	// sets it: a client's JSON may not carry it, and MarshalJSON refuses an
	// event that has one. It is outside the 64 KiB event limit.
	Original *Original `json:"-"`

	// rawTime is the time exactly as a client sent it in JSON (or gave it
	// to SetTimeText), and rawAt that time parsed; the text is stored
	// verbatim while Time is still rawAt.
	rawAt time.Time
	// rawTime is the time exactly as a client sent it in JSON; it is stored
	// verbatim so that a client's valid time round-trips byte for byte.
	rawTime string
	// idSent: the JSON had an id member, so an empty ID is an error, not a
	// request for an assigned id.
	idSent bool
}

// Actor is who performed an action and from where.
type Actor struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	Role      string `json:"role,omitempty"`
	Address   string `json:"address,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// Entity identifies one record an action touched.
type Entity struct {
	Type string `json:"type,omitempty"`
	ID   string `json:"id"`
	Role string `json:"role,omitempty"`
	Name string `json:"name,omitempty"`
}

// Source is the system that reports an event.
type Source struct {
	ID   string `json:"id,omitempty"`
	Site string `json:"site,omitempty"`
	Type string `json:"type,omitempty"`
}

// Original is a message as it was received, before Trail mapped it to an
// event. In the stored JSON it is
//
//	"original":{"format":"syslog","data":"<the message>"}
//
// with the data as a JSON string when it is valid UTF-8 without NUL and no
// longer escaped than in base64, and otherwise with "encoding":"base64"
// and the data in standard base64, so that every byte survives.
type Original struct {
	Format string // OriginalSyslog or OriginalFHIR
	Data   []byte // at most MaxOriginalSize bytes
}

// Formats of an Original.
const (
	OriginalSyslog = "syslog"    // an RFC 5424 or RFC 3164 syslog message, as read from the transport
	OriginalFHIR   = "fhir+json" // a FHIR resource in JSON, as sent
)

// Receipt is proof of storage: it is given only once the event is durable.
type Receipt struct {
	ID        string `json:"id"`
	Index     uint64 `json:"index"`
	Stream    string `json:"stream"`
	StreamSeq uint64 `json:"stream_seq"`
	Recorded  string `json:"recorded"`
	LeafHash  Hash   `json:"leaf_hash"`
}

// RecordedLayout is the layout of the recorded field: UTC RFC 3339 with
// exactly nine fractional digits, so that text order is time order.
const RecordedLayout = "2006-01-02T15:04:05.000000000Z"

// Outcomes and actions of the v1 schema.
const (
	OutcomeSuccess        = "success"
	OutcomeMinorFailure   = "minor-failure"
	OutcomeSeriousFailure = "serious-failure"
	OutcomeMajorFailure   = "major-failure"
)

// Limits of the v1 schema.
const (
	MaxEventSize   = 64 << 10 // a whole event as sent (its JSON, as MarshalJSON writes it for a Go value)
	MaxDetailsSize = 16 << 10 // details, as compact JSON
	MaxStreamLen   = 256
	MaxTypeLen     = 128
	MaxIDLen       = 64
	MaxSubtypes    = 16
	// MaxOriginalSize bounds an Original's data; it is outside
	// MaxEventSize, and still lets every stored record fit MaxStoredSize.
	MaxOriginalSize = 64 << 10
	// MaxStoredSize bounds a stored record: the event as sent, the fields
	// the server adds and the original (base64 at worst).
	MaxStoredSize = 192 << 10
)
