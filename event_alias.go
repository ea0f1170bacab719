package trail

import (
	"time"

	"github.com/trailhq/trail/event"
)

// The event schema and its wire format live in package event; these are the
// same types under the names the engine's API has always used.
type (
	// Event is one audited action (event.Event).
	Event = event.Event
	// Actor is who performed an action and from where (event.Actor).
	Actor = event.Actor
	// Entity identifies one record an action touched (event.Entity).
	Entity = event.Entity
	// Source is the system that reports an event (event.Source).
	Source = event.Source
	// Original is a message as it was received (event.Original).
	Original = event.Original
	// Receipt is proof of storage (event.Receipt).
	Receipt = event.Receipt
	// Hash is a SHA-256 leaf or node hash (event.Hash).
	Hash = event.Hash
	// StoredEvent is a stored record decoded (event.StoredEvent).
	StoredEvent = event.StoredEvent
	// ValidationError says which field of an event is wrong (event.ValidationError).
	ValidationError = event.ValidationError
	// InvalidEventError lists every problem of an event (event.InvalidEventError).
	InvalidEventError = event.InvalidEventError
)

// Constants of the v1 schema (see package event).
const (
	RecordedLayout = event.RecordedLayout

	OriginalSyslog = event.OriginalSyslog
	OriginalFHIR   = event.OriginalFHIR

	OutcomeSuccess        = event.OutcomeSuccess
	OutcomeMinorFailure   = event.OutcomeMinorFailure
	OutcomeSeriousFailure = event.OutcomeSeriousFailure
	OutcomeMajorFailure   = event.OutcomeMajorFailure

	MaxEventSize    = event.MaxEventSize
	MaxDetailsSize  = event.MaxDetailsSize
	MaxStreamLen    = event.MaxStreamLen
	MaxTypeLen      = event.MaxTypeLen
	MaxIDLen        = event.MaxIDLen
	MaxSubtypes     = event.MaxSubtypes
	MaxOriginalSize = event.MaxOriginalSize
	MaxStoredSize   = event.MaxStoredSize
)

// ParseEvent decodes one event sent by a client and validates it (event.Parse).
func ParseEvent(data []byte) (Event, error) { return event.Parse(data) }

// ParseStored decodes a stored record (event.ParseStored).
func ParseStored(rec []byte) (StoredEvent, error) { return event.ParseStored(rec) }

// ParseTime parses an RFC 3339 time strictly (event.ParseTime): as an
// event's time is, and the time parameters of the HTTP API.
func ParseTime(text string) (time.Time, error) { return event.ParseTime(text) }

// ValidateStream checks a stream name (event.ValidateStream).
func ValidateStream(s string) error { return event.ValidateStream(s) }

// IsReservedStream reports whether stream is under trail/ (event.IsReservedStream).
func IsReservedStream(stream string) bool { return event.IsReservedStream(stream) }

// LeafHash returns the RFC 6962 leaf hash of a stored record (event.LeafHash).
func LeafHash(data []byte) Hash { return event.LeafHash(data) }
