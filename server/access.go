package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/trailhq/trail"
)

// Streams where the server records reads.
const (
	AccessStream     = "trail/access"
	BreakGlassStream = "trail/break-glass"
)

// read is one read request on its way through the grant check and the read
// audit: every read (query, get, proof, tail, stream head), allowed or
// refused with 403, is appended to trail/access before anything is
// answered; a break-glass read also to trail/break-glass.
type read struct {
	s         *Server
	r         *http.Request
	p         *Principal
	route     string
	params    map[string]string // the query parameters, as the record names them
	purpose   string
	reason    string
	emergency bool            // a break-glass principal reading with purpose=emergency and a reason
	patient   string          // the patient the read named, if any
	index     *uint64         // the event a get or proof named
	stream    string          // the stream a stream-head read named
	streams   map[string]bool // the streams the answer carried
}

// purposeParams are accepted by every read endpoint.
var purposeParams = []string{"purpose", "reason"}

// newRead checks purpose and reason: purpose=emergency needs a non-empty
// reason, from anyone (400 otherwise, and a 400 is not recorded).
func (s *Server) newRead(r *http.Request, p *Principal, route string, ps *params) (*read, *problem) {
	rd := &read{s: s, r: r, p: p, route: route, params: map[string]string{}, streams: map[string]bool{}}
	for k, v := range ps.v {
		rd.params[k] = v[0]
	}
	rd.purpose, rd.reason = ps.str("purpose"), ps.str("reason")
	if ps.has("reason") && rd.purpose == "" {
		return nil, badRequest("reason is given without purpose; for an emergency read pass purpose=emergency&reason=<why>")
	}
	if rd.purpose == "emergency" {
		if strings.TrimSpace(rd.reason) == "" {
			return nil, badRequest("purpose=emergency needs a non-empty reason: say why, e.g. reason=cardiac+arrest+in+ER")
		}
		rd.emergency = p.BreakGlass || p.Admin // admin implies every grant
	}
	return rd, nil
}

// can reports whether the read may see stream: by grant, or by break-glass
// (which never opens Trail's own streams).
func (rd *read) can(stream string) bool {
	return rd.p.CanRead(stream) || rd.emergency && !trail.IsReservedStream(stream)
}

// readable returns the filter for engine queries (nil: everything).
func (rd *read) readable() func(string) bool {
	if rd.p.Admin {
		return nil
	}
	return rd.can
}

// scope describes the streams readable() accepts, so that the engine finds
// them through its index instead of reading the whole log (nil: everything).
// readable() stays the check of every event returned.
func (rd *read) scope() *trail.Scope {
	if rd.p.Admin {
		return nil
	}
	return &trail.Scope{Patterns: rd.p.Read, Unreserved: rd.emergency}
}

// namePatient notes the patient a stream names (patient/<id>…), unless the
// read named one already.
func (rd *read) namePatient(stream string) {
	if rd.patient != "" {
		return
	}
	if rest, ok := strings.CutPrefix(stream, "patient/"); ok {
		id, _, _ := strings.Cut(rest, "/")
		rd.patient = id
	}
}

// forbid records the refused read and returns the 403.
func (rd *read) forbid(stream string) *problem {
	rd.namePatient(stream)
	pr := newProblem(http.StatusForbidden, "forbidden", fmt.Sprintf("principal %q has no read grant for stream %q", rd.p.Name, stream))
	if err := rd.record(trail.OutcomeMinorFailure, 0); err != nil {
		return rd.s.auditProblem(err)
	}
	return pr
}

// allow records the allowed read of count events; the answer may be sent
// only when it returns nil.
func (rd *read) allow(count int) *problem {
	if err := rd.record(trail.OutcomeSuccess, count); err != nil {
		return rd.s.auditProblem(err)
	}
	return nil
}

// auditDetails is the details member of a read record.
type auditDetails struct {
	Endpoint string            `json:"endpoint"`
	Params   map[string]string `json:"params"`
	Count    int               `json:"count"`
	Reason   string            `json:"reason,omitempty"`
	Index    *uint64           `json:"index,omitempty"`
	Stream   string            `json:"stream,omitempty"`
	Streams  []string          `json:"streams,omitempty"`
	// StreamsTotal is set when Streams had to be cut short.
	StreamsTotal int `json:"streams_total,omitempty"`
}

// streamsBudget bounds the bytes of stream names a read record lists: with
// the parameters (at most 13 of 512 bytes) and the reason (1 KiB), a record
// stays well inside the 16 KiB of an event's details.
const streamsBudget = 6 << 10

// streamList returns the streams in order, cut at streamsBudget bytes; when
// cut, total is how many there were.
func streamList(set map[string]bool) (list []string, total int) {
	for st := range set {
		list = append(list, st)
	}
	slices.Sort(list)
	n := 0
	for i, st := range list {
		n += len(st) + 3
		if n > streamsBudget {
			return list[:i], len(list)
		}
	}
	return list, 0
}

// record appends the read record and waits until it is durable: a read is
// never answered unless its record is stored.
func (rd *read) record(outcome string, count int) error {
	d := auditDetails{Endpoint: rd.route, Params: rd.params, Count: count, Index: rd.index, Stream: rd.stream}
	if rd.purpose == "emergency" {
		d.Reason = rd.reason
	}
	d.Streams, d.StreamsTotal = streamList(rd.streams)
	details, err := json.Marshal(d)
	if err != nil {
		return err
	}
	ev := trail.Event{
		Stream: AccessStream, Type: "audit-log.read", Action: "R", Outcome: outcome,
		Actor:   trail.Actor{ID: rd.p.Name, Address: clientIP(rd.r), UserAgent: truncate(strings.ToValidUTF8(rd.r.UserAgent(), "\uFFFD"), 512)},
		Patient: rd.patient, Purpose: rd.purpose, Details: details,
	}
	evs := []trail.Event{ev}
	if rd.emergency {
		bg := ev
		bg.Stream = BreakGlassStream
		evs = append(evs, bg)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(rd.r.Context()), rd.s.cfg.QueueWait+auditWait)
	defer cancel()
	_, err = rd.s.l.AppendReserved(ctx, evs)
	if err == nil {
		rd.s.metrics.audited.WithLabelValues(outcome).Add(float64(len(evs)))
	}
	return err
}

// auditWait bounds how long a read waits for its record to be durable.
const auditWait = 10_000_000_000 // 10s

// auditProblem is the answer when a read record cannot be stored: the read
// is refused (fail closed), as it could not be accounted for.
func (s *Server) auditProblem(err error) *problem {
	s.log.Error("read record not stored; read refused", "err", err)
	pr := newProblem(http.StatusServiceUnavailable, "audit_failed",
		"the read could not be recorded in "+AccessStream+", so it is refused: "+err.Error())
	pr.retryAfter = 1
	return pr
}

// clientIP is the request's peer address without the port.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// withIndex notes the event a get or proof names.
func (rd *read) withIndex(i uint64) *read {
	rd.index = &i
	return rd
}
