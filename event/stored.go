package event

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
)

// StoredEvent is an event as stored: the client's fields and the server's.
type StoredEvent struct {
	Event
	Index     uint64
	StreamSeq uint64
	Recorded  string
	Salt      string // 32 lower-case hex digits: 128 random bits the server chose
	Prev      *Hash  // nil for the first event of a stream
}

// storedWire mirrors the stored JSON.
type storedWire struct {
	eventWire
	Index     *uint64 `json:"index"`
	StreamSeq *uint64 `json:"stream_seq"`
	Recorded  string  `json:"recorded"`
	Salt      string  `json:"salt"`
	Prev      *Hash   `json:"prev"`
	Original  *struct {
		Format   string  `json:"format"`
		Encoding *string `json:"encoding"`
		Data     *string `json:"data"`
	} `json:"original"`
}

// ParseStored decodes stored event bytes (as returned by Read).
func ParseStored(rec []byte) (StoredEvent, error) {
	dec := json.NewDecoder(bytes.NewReader(rec))
	dec.DisallowUnknownFields()
	var w storedWire
	if err := dec.Decode(&w); err != nil {
		return StoredEvent{}, fmt.Errorf("stored event: %w", err)
	}
	if w.Index == nil || w.StreamSeq == nil || w.Recorded == "" {
		return StoredEvent{}, errors.New("stored event: index, stream_seq or recorded missing")
	}
	if !isSalt(w.Salt) {
		return StoredEvent{}, fmt.Errorf("stored event: salt %q is not 32 lower-case hex digits", w.Salt)
	}
	ev, err := w.eventWire.event()
	if err != nil {
		return StoredEvent{}, fmt.Errorf("stored event: %w", err)
	}
	if o := w.Original; o != nil {
		if o.Data == nil {
			return StoredEvent{}, errors.New("stored event: original without data")
		}
		ev.Original = &Original{Format: o.Format, Data: []byte(*o.Data)}
		switch {
		case o.Encoding == nil:
		case *o.Encoding == "base64":
			data, err := base64.StdEncoding.DecodeString(*o.Data)
			if err != nil {
				return StoredEvent{}, fmt.Errorf("stored event: original data: %w", err)
			}
			ev.Original.Data = data
		default:
			return StoredEvent{}, fmt.Errorf("stored event: original encoding %q is not base64", *o.Encoding)
		}
	}
	return StoredEvent{Event: ev, Index: *w.Index, StreamSeq: *w.StreamSeq, Recorded: w.Recorded, Salt: w.Salt, Prev: w.Prev}, nil
}

// SaltLen is the length of a stored salt: 128 bits in hex.
const SaltLen = 32

// notLowerHex is 1 for every byte that is not a lower-case hex digit.
var notLowerHex = func() (t [256]byte) {
	for c := range t {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			t[c] = 1
		}
	}
	return t
}()

// isSalt reports whether s is SaltLen lower-case hex digits. It looks every
// byte up in a table rather than branch on it: a salt's digits are random,
// and a branch on each mispredicts half the time, which made this check a
// tenth of the time verify spends on a record.
func isSalt[S string | []byte](s S) bool {
	if len(s) != SaltLen {
		return false
	}
	var bad byte
	for i := 0; i < len(s); i++ {
		bad |= notLowerHex[s[i]]
	}
	return bad == 0
}

// Header is the server part of a stored event, read without a JSON decoder
// from the fixed layout AppendStored writes.
type Header struct {
	ID, Stream, Recorded, Salt, Time string
	Index, Seq                       uint64 // Seq is stream_seq
	Prev                             *Hash  // nil for the first event of a stream
}

var errLayout = errors.New("not in Trail's stored layout")

// ParseHeader reads the fields AppendStored writes at the start and end of a
// stored event. It is how recovery and verify read the log quickly; anything
// off the layout is an error.
func ParseHeader(rec []byte) (Header, error) {
	v, err := ParseHeaderView(rec)
	h := Header{ID: string(v.ID), Index: v.Index, Stream: string(v.Stream), Seq: v.Seq,
		Recorded: string(v.Recorded), Salt: string(v.Salt), Time: string(v.Time)}
	if v.HasPrev {
		p := v.Prev
		h.Prev = &p
	}
	return h, err
}

// HeaderView is a Header read without copying: its byte fields are parts
// of the record it was read from, valid as long as the record's bytes are
// not changed, and Prev is set only when HasPrev.
type HeaderView struct {
	ID, Stream, Recorded, Salt, Time []byte
	Index, Seq                       uint64 // Seq is stream_seq
	Prev                             Hash
	HasPrev                          bool // false for the first event of a stream
}

// ParseHeaderView is ParseHeader without allocating: it makes the same
// checks and fails on the same records, and its fields hold what
// ParseHeader's would, as parts of rec. It is for readers of many records,
// such as verify, that keep nothing of most of them.
func ParseHeaderView(rec []byte) (HeaderView, error) {
	var h HeaderView
	r := layoutReader{b: rec}
	h.ID = r.bytes(`{"id":"`, '"')
	h.Index = r.digits(`,"index":`)
	h.Stream = r.bytes(`,"stream":"`, '"')
	h.Seq = r.digits(`,"stream_seq":`)
	h.Recorded = r.bytes(`,"recorded":"`, '"')
	h.Salt = r.bytes(`,"salt":"`, '"')
	h.Time = r.bytes(`,"time":"`, '"')
	if r.err != nil || len(h.Recorded) != len(RecordedLayout) || !isSalt(h.Salt) {
		return h, errLayout
	}
	// prev, when present, is the last member: ,"prev":"<64 hex>"}
	const prevLen = len(`,"prev":"`) + 64 + 2
	if i := len(rec) - prevLen; i > 0 && bytes.HasPrefix(rec[i:], []byte(`,"prev":"`)) && rec[len(rec)-2] == '"' {
		if _, err := hex.Decode(h.Prev[:], rec[i+9:i+9+64]); err == nil {
			h.HasPrev = true
		} else {
			h.Prev = Hash{}
		}
	}
	if rec[len(rec)-1] != '}' {
		return h, errLayout
	}
	return h, nil
}

type layoutReader struct {
	b   []byte
	err error
}

func (r *layoutReader) expect(lit string) {
	if r.err == nil && !bytes.HasPrefix(r.b, []byte(lit)) {
		r.err = errLayout
	}
	if r.err == nil {
		r.b = r.b[len(lit):]
	}
}

// bytes reads the literal lit, then the field up to end: a part of the
// record, nil after an error.
func (r *layoutReader) bytes(lit string, end byte) []byte {
	r.expect(lit)
	if r.err != nil {
		return nil
	}
	i := bytes.IndexByte(r.b, end)
	if i < 0 {
		r.err = errLayout
		return nil
	}
	s := r.b[:i]
	r.b = r.b[i+1:]
	return s
}

// digits reads the literal lit, then a decimal number: refused when it has
// no digit, a leading zero or more than fits in 64 bits.
func (r *layoutReader) digits(lit string) uint64 {
	r.expect(lit)
	if r.err != nil {
		return 0
	}
	var n, over uint64
	i := 0
	for ; i < len(r.b) && '0' <= r.b[i] && r.b[i] <= '9'; i++ {
		hi, lo := bits.Mul64(n, 10)
		var carry uint64
		n, carry = bits.Add64(lo, uint64(r.b[i]-'0'), 0)
		over |= hi | carry
	}
	if i == 0 || over != 0 || (i > 1 && r.b[0] == '0') {
		r.err = errLayout
		return 0
	}
	r.b = r.b[i:]
	return n
}
