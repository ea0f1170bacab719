package event

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendBody appends the client-supplied fields of ev after id and stream, as
// compact JSON members without the enclosing braces, in the stored order:
// time (when given), type, subtypes, action, outcome, outcome_desc, actor, patient,
// entities, source, purpose, details. It reports whether a time was written.
// ev must have been validated. An absent outcome is written as success, the
// default the stored form spells out.
func appendBody(dst []byte, ev *Event) ([]byte, bool) {
	return appendFields(dst, ev, true)
}

// appendFields is appendBody; with defaults false, an absent outcome is left
// out, as the client sent it (MarshalJSON).
func appendFields(dst []byte, ev *Event, defaults bool) ([]byte, bool) {
	raw := ev.sentTime()
	hasTime := raw || !ev.Time.IsZero()
	if hasTime {
		dst = append(dst, `"time":"`...)
		if raw {
			dst = append(dst, ev.rawTime...)
		} else {
			dst = ev.Time.AppendFormat(dst, time.RFC3339Nano)
		}
		dst = append(dst, `",`...)
	}
	dst = appendMember(dst, "type", ev.Type, false)
	if len(ev.Subtypes) > 0 {
		dst = append(dst, `,"subtypes":[`...)
		for i, st := range ev.Subtypes {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, st)
		}
		dst = append(dst, ']')
	}
	dst = appendMember(dst, "action", ev.Action, true)
	outcome := ev.Outcome
	if outcome == "" && defaults {
		outcome = OutcomeSuccess
	}
	dst = appendOptional(dst, "outcome", outcome)
	dst = appendOptional(dst, "outcome_desc", ev.OutcomeDesc)
	dst = append(dst, `,"actor":{`...)
	dst = appendMember(dst, "id", ev.Actor.ID, false)
	dst = appendOptional(dst, "name", ev.Actor.Name)
	dst = appendOptional(dst, "role", ev.Actor.Role)
	dst = appendOptional(dst, "address", ev.Actor.Address)
	dst = appendOptional(dst, "user_agent", ev.Actor.UserAgent)
	dst = append(dst, '}')
	dst = appendOptional(dst, "patient", ev.Patient)
	dst = appendEntities(dst, ev.Entities)
	if s := ev.Source; s != nil && (s.ID != "" || s.Site != "" || s.Type != "") {
		dst = append(dst, `,"source":{`...)
		n := len(dst)
		dst = appendOptional(dst, "id", s.ID)
		dst = appendOptional(dst, "site", s.Site)
		dst = appendOptional(dst, "type", s.Type)
		dst = append(dst[:n], dst[n+1:]...) // drop the first member's comma
		dst = append(dst, '}')
	}
	dst = appendOptional(dst, "purpose", ev.Purpose)
	if d := bytes.TrimSpace(ev.Details); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		dst = append(dst, `,"details":`...)
		if isCompact(d) {
			dst = append(dst, d...)
		} else {
			buf := bytes.NewBuffer(dst)
			if err := json.Compact(buf, d); err != nil {
				panic("trail: details not validated: " + err.Error())
			}
			dst = buf.Bytes()
		}
	}
	return dst, hasTime
}

// isCompact reports whether valid JSON d has no insignificant whitespace.
func isCompact(d []byte) bool {
	inString, escaped := false, false
	for _, c := range d {
		switch {
		case escaped:
			escaped = false
		case inString:
			if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return false
		}
	}
	return true
}

func appendEntities(dst []byte, ents []Entity) []byte {
	if len(ents) == 0 {
		return dst
	}
	dst = append(dst, `,"entities":[`...)
	for i, en := range ents {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		n := len(dst)
		dst = appendOptional(dst, "type", en.Type)
		dst = appendOptional(dst, "id", en.ID)
		dst = appendOptional(dst, "role", en.Role)
		dst = appendOptional(dst, "name", en.Name)
		dst = append(dst[:n], dst[n+1:]...)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

func appendMember(dst []byte, name, v string, comma bool) []byte {
	if comma {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	dst = append(dst, `":`...)
	return appendString(dst, v)
}

func appendOptional(dst []byte, name, v string) []byte {
	if v == "" {
		return dst
	}
	return appendMember(dst, name, v, true)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string without HTML escaping. s must be
// valid UTF-8. Every character is written in its shortest JSON form, so a
// string is never longer here than in any JSON a client could send: an
// event's encoding is at most its size as sent.
func appendString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue // bytes of multi-byte characters (valid UTF-8) included
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// escapedLen is the length of valid UTF-8 b as appendString writes it,
// without the quotes.
func escapedLen(b []byte) int {
	n := len(b)
	for _, c := range b {
		switch {
		case c >= 0x20 && c != '"' && c != '\\':
		case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t' || c == '\b' || c == '\f':
			n++
		default:
			n += 5
		}
	}
	return n
}

// Encoded is an event validated and encoded, ready to be stored: what
// AppendStored needs besides the fields the server assigns. Encoding depends
// on nothing but the event, so it runs in parallel, in the caller's
// goroutine or across goroutines for a large batch.
type Encoded struct {
	ID, Stream string // ID is empty until the engine assigns one, if the client sent none
	Body       []byte // the client's fields as compact JSON members (appendBody)
	Original   []byte // the original member with its leading comma (appendOriginal), or nil
	HasTime    bool   // the client sent a time
}

// Encode encodes ev, already validated, appending its body to buf: the
// Encoded refers to buf. It refuses an event over MaxEventSize as sent.
func Encode(ev *Event, buf []byte) (Encoded, []byte, error) {
	var e Encoded
	if n := encodedSizeHint(ev); cap(buf)-len(buf) < n {
		buf = slices.Grow(buf, n) // one allocation rather than one per doubling
	}
	start := len(buf)
	buf, e.HasTime = appendBody(buf, ev)
	e.Body = buf[start:len(buf):len(buf)]
	if ev.Original != nil {
		start = len(buf)
		buf = appendOriginal(buf, ev.Original)
		e.Original = buf[start:len(buf):len(buf)]
	}
	e.ID, e.Stream = ev.ID, ev.Stream
	if n := sentSize(ev, e.Body); n > MaxEventSize {
		return e, buf, &InvalidEventError{Problems: []*ValidationError{{Field: "(event)", Err: ErrTooLarge,
			Reason: fmt.Sprintf("is %d bytes as compact JSON; an event is at most %d (64 KiB) as sent", n, MaxEventSize)}}}
	}
	return e, buf, nil
}

// encodedSizeHint is about the size of ev's body and original as Encode
// writes them: the strings' lengths and room for the member names. A string
// that needs escaping makes it short, and append then grows the buffer.
func encodedSizeHint(ev *Event) int {
	n := 160 + len(ev.Type) + len(ev.Action) + len(ev.Outcome) + len(ev.OutcomeDesc) + len(ev.Patient) + len(ev.Purpose) + len(ev.Details) +
		len(ev.Actor.ID) + len(ev.Actor.Name) + len(ev.Actor.Role) + len(ev.Actor.Address) + len(ev.Actor.UserAgent) + len(ev.rawTime)
	for _, s := range ev.Subtypes {
		n += len(s) + 3
	}
	for _, en := range ev.Entities {
		n += 40 + len(en.Type) + len(en.ID) + len(en.Role) + len(en.Name)
	}
	if s := ev.Source; s != nil {
		n += 40 + len(s.ID) + len(s.Site) + len(s.Type)
	}
	if o := ev.Original; o != nil {
		n += 64 + len(o.Format) + len(o.Data)*4/3
	}
	return n
}

// StoredSizeHint estimates the size of ev's record as stored — its body as
// encoded and the fields the engine adds — without encoding it: the engine
// bounds a group-commit write's bytes with it before events are prepared.
func StoredSizeHint(ev *Event) int {
	return encodedSizeHint(ev) + len(ev.ID) + len(ev.Stream) + storedFieldsSize
}

// StoredSizeHint is StoredSizeHint for an event already encoded.
func (e *Encoded) StoredSizeHint() int {
	return len(e.Body) + len(e.Original) + len(e.ID) + len(e.Stream) + storedFieldsSize
}

// storedFieldsSize bounds the members the engine adds to a record besides
// id and stream (index, stream_seq, recorded, salt, time, prev).
const storedFieldsSize = 256

// sentSize is the length of ev as MarshalJSON encodes it, given its body
// (appendBody): the event's size as sent. No JSON a client sends for an
// event is shorter (appendString), so an event a client sent in at most
// MaxEventSize bytes is never refused here; the record stored for it adds
// the server's fields, and is at most MaxStoredSize.
func sentSize(ev *Event, body []byte) int {
	n := len(`{"stream":"",}`) + len(ev.Stream) + len(body)
	if ev.ID != "" {
		n += len(`"id":"",`) + len(ev.ID)
	}
	if ev.Outcome == "" {
		n -= len(`,"outcome":"success"`)
	}
	return n
}

// AppendStored appends the complete stored form of an event: the server
// fields, the body, the original when there is one and, unless this is the
// first event of its stream, prev.
// These bytes are what the Merkle tree hashes and what readers get back.
// salt is the record's 16 random bytes (written as 32 hex digits), so that
// its leaf hash, which proofs make public, confirms no guess of its content.
func AppendStored(dst []byte, e *Encoded, index, seq uint64, recorded, salt []byte, prev *Hash) []byte {
	dst = append(dst, `{"id":"`...)
	dst = append(dst, e.ID...)
	dst = append(dst, `","index":`...)
	dst = strconv.AppendUint(dst, index, 10)
	dst = append(dst, `,"stream":"`...)
	dst = append(dst, e.Stream...)
	dst = append(dst, `","stream_seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"recorded":"`...)
	dst = append(dst, recorded...)
	dst = append(dst, `","salt":"`...)
	dst = hexAppend(dst, salt)
	dst = append(dst, `",`...)
	if !e.HasTime {
		dst = append(dst, `"time":"`...)
		dst = append(dst, recorded...)
		dst = append(dst, `",`...)
	}
	dst = append(dst, e.Body...)
	dst = append(dst, e.Original...)
	if prev != nil {
		dst = append(dst, `,"prev":"`...)
		dst = hexAppend(dst, prev[:])
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// StoredLen is the length of the record AppendStored makes from the same
// arguments (salt is always SaltLen/2 bytes): the sequencer reserves each
// record's room in a batch before the record is written, so that records can
// be written and hashed in parallel.
func StoredLen(e *Encoded, index, seq uint64, recorded int, prev bool) int {
	n := len(`{"id":"`) + len(e.ID) + len(`","index":`) + decimalLen(index) +
		len(`,"stream":"`) + len(e.Stream) + len(`","stream_seq":`) + decimalLen(seq) +
		len(`,"recorded":"`) + recorded + len(`","salt":"`) + SaltLen + len(`",`) +
		len(e.Body) + len(e.Original) + len(`}`)
	if !e.HasTime {
		n += len(`"time":"`) + recorded + len(`",`)
	}
	if prev {
		n += len(`,"prev":"`) + 2*len(Hash{}) + len(`"`)
	}
	return n
}

// decimalLen is the number of decimal digits of v.
func decimalLen(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

func hexAppend(dst, b []byte) []byte {
	for _, c := range b {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xF])
	}
	return dst
}

// appendOriginal appends o as the stored original member, with its leading
// comma: the data as a JSON string when it is valid UTF-8 without NUL and
// its escaped form is no longer than base64, otherwise in base64 with
// "encoding":"base64". Either way the record stays within MaxStoredSize.
func appendOriginal(dst []byte, o *Original) []byte {
	dst = append(dst, `,"original":{"format":`...)
	dst = appendString(dst, o.Format)
	if originalIsText(o.Data) {
		dst = append(dst, `,"data":`...)
		dst = appendString(dst, o.Data)
		return append(dst, '}')
	}
	dst = append(dst, `,"encoding":"base64","data":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, o.Data)
	return append(dst, `"}`...)
}

// originalIsText reports whether data is stored as a JSON string.
func originalIsText(data []byte) bool {
	return utf8.Valid(data) && bytes.IndexByte(data, 0) < 0 &&
		escapedLen(data) <= base64.StdEncoding.EncodedLen(len(data))
}
