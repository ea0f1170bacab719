package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/trailhq/trail"
)

// The read audit: what a read returned (returned), and its records in
// trail/access — the read itself, one per other patient whose events it
// returned, its copy in trail/break-glass for an emergency read — stored
// before anything is answered (allow, forbid, record). Who may read what is
// decided in access.go.

// patientReads is what a read returned of one patient's events.
type patientReads struct {
	count   int
	streams map[string]bool
}

// recordFields are the members of a stored event the read audit needs.
type recordFields struct {
	Stream  string `json:"stream"`
	Patient string `json:"patient"`
}

// returned notes a stored event the answer carries: its stream, and its
// patient (its patient member, else the patient its stream names) unless it
// is one of Trail's own records, whose patients a read of the trail does not
// fan out over.
func (rd *read) returned(rec []byte) {
	var f recordFields
	if err := json.Unmarshal(rec, &f); err != nil {
		rd.s.log.Error("read audit: stored event not parsed", "err", err)
		return
	}
	rd.streams[f.Stream] = true
	if trail.IsReservedStream(f.Stream) {
		return
	}
	pt := mend(f.Patient) // stored events are valid; a record must be, whatever it read
	if pt == "" {
		pt = patientOfStream(f.Stream)
	}
	if pt == "" {
		return
	}
	if rd.patients == nil {
		rd.patients = map[string]*patientReads{}
	}
	pr := rd.patients[pt]
	if pr == nil {
		pr = &patientReads{streams: map[string]bool{}}
		rd.patients[pt] = pr
	}
	pr.count++
	pr.streams[f.Stream] = true
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

// record appends the read's records and waits until they are durable: a
// read is never answered unless its records are stored. It then forgets
// the events noted so far, so a tail records each delivery once.
func (rd *read) record(outcome string, count int) error {
	evs, err := rd.records(outcome, count)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(rd.r.Context()), rd.s.cfg.QueueWait+auditWait)
	defer cancel()
	rcs, err := rd.s.l.AppendReserved(ctx, evs)
	if err != nil {
		return err
	}
	for i := range evs {
		if evs[i].Stream == BreakGlassStream {
			rd.s.notify.enqueue(rcs[i].Index) // never waits: see NotifyConfig
		}
	}
	rd.s.metrics.audited.WithLabelValues(outcome).Add(float64(len(evs)))
	charged := len(evs)
	if !rd.listed {
		charged-- // the read's own record: newRead took it
	}
	rd.s.chargeRecords(rd.p, charged)
	rd.streams, rd.patients, rd.listed = map[string]bool{}, nil, true
	return nil
}

// records builds the read's records: the read itself (naming the patient
// the read named), its copy in trail/break-glass for an emergency read, and
// one record per other patient whose events it returned.
func (rd *read) records(outcome string, count int) ([]trail.Event, error) {
	d := auditDetails{Endpoint: rd.route, Params: rd.params, Count: count, Index: rd.index, Stream: rd.stream}
	if rd.emergency {
		d.Reason = rd.reason
	}
	d.Streams, d.StreamsTotal = streamList(rd.streams)
	ev := trail.Event{
		Stream: AccessStream, Type: "audit-log.read", Action: "R", Outcome: outcome,
		Actor:   trail.Actor{ID: rd.p.Name, Role: rd.p.Role, Address: rd.s.cfg.TrustedProxies.ClientAddr(rd.r), UserAgent: userAgent(rd.r)},
		Patient: rd.patient, Purpose: rd.purpose,
	}
	if rd.system {
		ev.Patient = "" // kept out of every patient's view
	}
	var err error
	if ev.Details, err = d.encode(); err != nil {
		return nil, err
	}
	evs := []trail.Event{ev}
	if rd.emergency && !rd.listed { // once per read, not for a tail's later records
		bg := ev
		bg.Stream = BreakGlassStream
		evs = append(evs, bg)
	}
	if rd.system {
		return evs, nil
	}
	pts := make([]string, 0, len(rd.patients))
	for pt := range rd.patients {
		if pt != rd.patient {
			pts = append(pts, pt)
		}
	}
	slices.Sort(pts)
	for _, pt := range pts {
		pr := rd.patients[pt]
		pd := auditDetails{Endpoint: rd.route, Params: rd.params, Count: pr.count, Reason: d.Reason}
		pd.Streams, pd.StreamsTotal = streamList(pr.streams)
		pe := ev
		pe.Patient = cutUTF8(pt, maxRecordPatient)
		pd.PatientCut = len(pe.Patient) < len(pt)
		if pe.Details, err = pd.encode(); err != nil {
			return nil, err
		}
		evs = append(evs, pe)
	}
	return evs, nil
}

// userAgent is the request's User-Agent as a read record can hold it: valid
// UTF-8 without NUL (a header is not validated input, so it is mended, not
// refused), cut at maxUserAgent bytes.
func userAgent(r *http.Request) string {
	return cutUTF8(mend(r.UserAgent()), maxUserAgent)
}

// mend makes s a string an event may hold: valid UTF-8 without NUL.
func mend(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// maxReadRecords is the most records one read appends (its record, an
// emergency read's copy, one per patient of a full page): the most debt the
// records of reads may put a principal's read rate in.
const maxReadRecords = maxLimit + 2

// maxUserAgent bounds the User-Agent a read record keeps.
const maxUserAgent = 512

// maxRecordPatient bounds the patient a read record names. A stored event's
// patient may take most of its 64 KiB, which with the details would not fit
// in a record; no query can name more than 512 bytes of it anyway (the
// patient parameter's limit), so a longer one is cut (patient_cut in the
// details).
const maxRecordPatient = 512

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
	// ParamsCut is set when parameter values (or the reason) were cut so
	// that the record fits.
	ParamsCut bool `json:"params_cut,omitempty"`
	// PatientCut is set when the record's patient is the first
	// maxRecordPatient bytes of a longer one.
	PatientCut bool `json:"patient_cut,omitempty"`
}

// detailsBudget is what a read record's details may take as encoded JSON:
// under the 16 KiB an event's details may have, with room to spare.
const detailsBudget = 15 << 10

// encode returns d as compact JSON of at most detailsBudget bytes. Escaping
// can make a value six times longer than it was sent (a control character
// becomes \u00XX), so the size is checked after encoding; while it is over,
// the longest parameter value (or the reason) is cut in half at a UTF-8
// boundary and params_cut is set. Every accepted read thus has a record.
func (d auditDetails) encode() (json.RawMessage, error) {
	d.Params = copyParams(d.Params)
	for {
		b, err := marshalCompact(d)
		if err != nil || len(b) <= detailsBudget {
			return b, err
		}
		d.ParamsCut = true
		longest, n := "", len(d.Reason)
		for k, v := range d.Params {
			if len(v) > n || len(v) == n && k < longest {
				longest, n = k, len(v)
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("read record details are %d bytes with every parameter cut", len(b))
		}
		if longest == "" {
			d.Reason = cutUTF8(d.Reason, n/2)
		} else {
			d.Params[longest] = cutUTF8(d.Params[longest], n/2)
		}
	}
}

// copyParams copies a map of strings, so cutting values leaves the request's alone.
func copyParams(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// marshalCompact encodes v as JSON without HTML escaping (stored events
// have none) and without the encoder's trailing newline.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// cutUTF8 returns at most n bytes of s, cut at a UTF-8 boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// streamsBudget bounds the bytes of stream names a read record lists: with
// the parameters and the reason, a record stays inside detailsBudget.
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

// withIndex notes the event a get or proof names.
func (rd *read) withIndex(i uint64) *read {
	rd.index = &i
	return rd
}
