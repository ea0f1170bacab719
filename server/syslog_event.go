package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"time"
	"unicode/utf8"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/atna"
	"github.com/trailhq/trail/internal/syslog"
)

// The event of a syslog message Trail could not parse or map.
const (
	UnparsedStream = "atna/unparsed"
	UnparsedType   = "atna.unparsed"
)

// Bounds on what details.received repeats of a message, so that details
// stay under trail.MaxDetailsSize whatever the message holds.
const (
	maxHeaderField = 256      // a syslog header field
	maxProblem     = 512      // one problem
	maxProblems    = 8 << 10  // all problems of one list, before escaping
	maxWhy         = 1 << 10  // why a message is unparsed
	checkSizeOver  = 12 << 10 // messages from this size may map to an event over 64 KiB with its details
)

// received is how a message came: details.received of its event.
type received struct {
	Transport      string   `json:"transport"`
	Peer           string   `json:"peer"`
	Principal      string   `json:"principal"`
	Format         string   `json:"format"`
	Hostname       string   `json:"hostname,omitempty"`
	AppName        string   `json:"app_name,omitempty"`
	ProcID         string   `json:"procid,omitempty"`
	MsgID          string   `json:"msgid,omitempty"`
	Timestamp      string   `json:"timestamp,omitempty"`
	SyslogProblems []string `json:"syslog_problems,omitempty"`
	Problems       []string `json:"problems,omitempty"` // the mapping's (atna.Mapped.Problems)
}

// receivedDetails is the details of an event from syslog; atna.Map sets
// none of its own.
type receivedDetails struct {
	Received received `json:"received"`
	Unparsed string   `json:"unparsed,omitempty"` // why the message is stored unparsed
}

// origin is where a message came from: a connection, or the UDP socket and
// a datagram's sender.
type origin struct {
	transport, peer, principal string
}

// syslogEvent turns one message, as read (without its framing), into its
// event: the mapped AuditMessage, or when the message cannot be parsed or
// mapped the atna.unparsed event, with why as the second result.
func syslogEvent(raw []byte, now time.Time, o origin) (trail.Event, string) {
	m := syslog.Parse(raw, now)
	rc := receivedOf(m, o)
	x, ok := syslog.AuditXML(m.Body)
	if !ok {
		return unparsedEvent(raw, rc, "the message body is not an XML document"), "not XML"
	}
	am, err := atna.Parse(x)
	if err != nil {
		return unparsedEvent(raw, rc, err.Error()), err.Error()
	}
	mp, err := atna.Map(am)
	if err != nil {
		return unparsedEvent(raw, rc, err.Error()), err.Error()
	}
	ev := mp.Event
	rc.Problems = clipAll(mp.Problems)
	ev.Details = detailsJSON(receivedDetails{Received: rc})
	if len(raw) >= checkSizeOver {
		fitDetails(&ev, rc)
	}
	ev.Original = &trail.Original{Format: trail.OriginalSyslog, Data: raw}
	return ev, ""
}

// receivedOf is details.received of a parsed message.
func receivedOf(m syslog.Message, o origin) received {
	rc := received{Transport: o.transport, Peer: o.peer, Principal: o.principal, Format: m.Format,
		Hostname: clip(m.Hostname, maxHeaderField), AppName: clip(m.AppName, maxHeaderField),
		ProcID: clip(m.ProcID, maxHeaderField), MsgID: clip(m.MsgID, maxHeaderField),
		SyslogProblems: clipAll(m.Problems)}
	if !m.Timestamp.IsZero() {
		rc.Timestamp = m.Timestamp.Format(time.RFC3339Nano)
	}
	return rc
}

// fitDetails leaves the problems out of details when the event would
// otherwise exceed trail.MaxEventSize (atna.Map fits the event without
// details).
func fitDetails(ev *trail.Event, rc received) {
	b, err := ev.MarshalJSON()
	if err != nil || len(b) <= trail.MaxEventSize {
		return
	}
	rc.Problems = []string{fmt.Sprintf("problems left out: listed, they would make the event exceed %d bytes (the original holds the whole message)", trail.MaxEventSize)}
	rc.SyslogProblems = nil
	ev.Details = detailsJSON(receivedDetails{Received: rc})
}

// unparsedEvent is the event of a message that cannot be parsed or mapped:
// stored, so nothing read is lost, in atna/unparsed, as executed by the
// principal the message came as, with the message as its original. Its
// outcome is minor-failure: the message is kept but not understood.
func unparsedEvent(raw []byte, rc received, why string) trail.Event {
	why = clip(why, maxWhy)
	return trail.Event{
		Stream: UnparsedStream, Type: UnparsedType, Action: "E",
		Outcome: trail.OutcomeMinorFailure, OutcomeDesc: "audit message stored unparsed: " + why,
		Actor:    trail.Actor{ID: rc.Principal, Address: peerHost(rc.Peer)},
		Details:  detailsJSON(receivedDetails{Received: rc, Unparsed: why}),
		Original: &trail.Original{Format: trail.OriginalSyslog, Data: raw},
	}
}

// detailsJSON encodes details without HTML escaping, as Trail stores JSON,
// within trail.MaxDetailsSize: the fields are clipped (clip, clipAll), and
// should escaping still make them too long, the problem lists are left
// out, then why is cut short.
func detailsJSON(d receivedDetails) json.RawMessage {
	b := encodeDetails(d)
	if len(b) > trail.MaxDetailsSize {
		d.Received.Problems = []string{fmt.Sprintf("problems left out: listed, they would make details exceed %d bytes (the original holds the whole message)", trail.MaxDetailsSize)}
		d.Received.SyslogProblems = nil
		b = encodeDetails(d)
	}
	if len(b) > trail.MaxDetailsSize {
		d.Unparsed = clip(d.Unparsed, 128)
		b = encodeDetails(d)
	}
	return b
}

func encodeDetails(d receivedDetails) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return json.RawMessage(`{}`) // strings and slices of strings always encode
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// clipAll clips each string and the list, noting what it left out.
func clipAll(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	out := make([]string, 0, len(ss))
	total := 0
	for i, s := range ss {
		s = clip(s, maxProblem)
		if total+len(s) > maxProblems {
			out = append(out, fmt.Sprintf("and %d more", len(ss)-i))
			break
		}
		total += len(s)
		out = append(out, s)
	}
	return out
}

// clip cuts s to at most n bytes at a UTF-8 boundary, with an ellipsis
// when it cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n -= len("…")
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// peerHost is the host of host:port.
func peerHost(peer string) string {
	if h, _, err := net.SplitHostPort(peer); err == nil {
		return h
	}
	return peer
}
