package server

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/trailhq/trail"
)

// keepAlive is how often an idle tail sends a comment, so proxies and
// clients can tell a quiet log from a dead connection.
const keepAlive = 15 * time.Second

// tailParams are the parameters of GET /v1/tail: the filters of GET
// /v1/events that a live event can be matched by, and where to start.
var tailParams = []string{"stream", "patient", "actor", "type", "action", "outcome", "after"}

// tail serves GET /v1/tail?stream=&patient=&actor=&type=&action=&outcome=&after=:
// server-sent events, one per stored event (id: its index, data: its stored
// bytes) matching the filters, as GET /v1/events matches them. Without after
// it sends only events stored after it connected; with after it first
// replays the events after that index (after=-1: from the first event).
// Only streams p may read are sent.
func (s *Server) tail(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	ps := parseParams(r.URL.RawQuery, append(tailParams, purposeParams...)...)
	stream := ps.str("stream")
	filter := tailFilter(&ps)
	var next uint64
	if ps.str("after") != "-1" { // -1: from the first event
		after := ps.uint("after", 0)
		next = after + 1
		if after == math.MaxUint64 {
			next = after // no index is after it: nothing is ever sent
		}
	}
	if ps.err != nil {
		return ps.err
	}
	if stream != "" {
		if _, pr := streamName(stream); pr != nil {
			return pr
		}
	}
	for _, f := range []string{"patient", "actor", "type"} {
		if ps.has(f) && ps.str(f) == "" {
			return badRequest(fmt.Sprintf("query parameter %s is empty; leave it out to not filter by it", f))
		}
	}
	rd, pr := s.newRead(r, p, "GET /v1/tail", &ps)
	if pr != nil {
		return pr
	}
	rd.patient = filter.Patient
	if stream != "" {
		if !rd.can(stream) {
			return rd.forbid(stream)
		}
		rd.namePatient(stream)
	}
	if !ps.has("after") {
		next = s.l.Size()
	}
	if !s.tails.acquire(p.Name, s.cfg.MaxTails) {
		return newProblem(http.StatusTooManyRequests, "too_many_tails",
			fmt.Sprintf("principal %q already holds %d live tails, the most it may; end one first", p.Name, s.cfg.MaxTails))
	}
	defer s.tails.release(p.Name)
	// A tail is recorded when it starts: the events it will carry are not
	// known yet, and none is sent before the record is stored. It is
	// recorded again at most once a second while it delivers events (with
	// the patients they belong to), and when it ends.
	if pr := rd.allow(0); pr != nil {
		return pr
	}
	defer func() {
		if err := rd.record(trail.OutcomeSuccess, rd.delivered); err != nil {
			s.log.Error("tail: closing read record not stored", "principal", p.Name, "err", err)
		}
	}()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	rc.Flush()
	s.streamEvents(ctx, w, rc, rd, filter, next)
	return nil
}

// tailFilter reads the filters of a tail.
func tailFilter(ps *params) trail.Query {
	return trail.Query{
		Stream: ps.str("stream"), Patient: ps.str("patient"), Actor: ps.str("actor"), Type: ps.str("type"),
		Action:  ps.oneOf("action", "C", "R", "U", "D", "E"),
		Outcome: ps.oneOf("outcome", trail.OutcomeSuccess, "minor-failure", "serious-failure", "major-failure"),
	}
}

// tailOptions change a tail that the console runs in-process for a
// signed-in browser (ui_live.go); the API's own tails have none.
type tailOptions struct {
	// authenticate authenticates the tail's principal again: the console
	// checks its session (sign-out, idle, maximum age) and the session's
	// credential, as the request it built carries no credentials.
	authenticate func() (*Principal, error)
	// unreserved leaves Trail's own streams out. A tail that may read
	// trail/access would otherwise deliver the read records it writes
	// itself, and record that delivery a second later, for as long as it
	// lasts; the console's pages show people's events, not those.
	unreserved bool
}

type tailOptionsKey struct{}

// withTailOptions returns ctx carrying o for the tail handler.
func withTailOptions(ctx context.Context, o tailOptions) context.Context {
	return context.WithValue(ctx, tailOptionsKey{}, o)
}

func tailOptionsOf(r *http.Request) tailOptions {
	o, _ := r.Context().Value(tailOptionsKey{}).(tailOptions)
	return o
}

// streamEvents writes events from index next on until ctx ends. What it
// delivered is recorded at most once every TailRecordEvery; the deferred
// record in tail covers the rest.
func (s *Server) streamEvents(ctx context.Context, w http.ResponseWriter, rc *http.ResponseController, rd *read, filter trail.Query, next uint64) {
	lastRecord := time.Now()
	// Each write must be taken within TailWriteTimeout (not supported for
	// the console's in-process tails, whose own request has the timeout).
	deadline := func() { rc.SetWriteDeadline(time.Now().Add(s.cfg.TailWriteTimeout)) }
	for first := true; ; first = false {
		if !first && !s.stillAuthorized(rd) {
			return // revoked (or its grants changed) while tailing
		}
		size := s.l.Size()
		for next < size {
			var ok bool
			deadline()
			if next, ok = s.tailPage(ctx, w, rd, filter, next, size); !ok {
				return
			}
			if time.Since(lastRecord) >= s.cfg.TailRecordEvery {
				break // record before delivering more
			}
		}
		deadline()
		if err := rc.Flush(); err != nil {
			return
		}
		wait := keepAlive
		if rd.delivered > 0 {
			if due := s.cfg.TailRecordEvery - time.Since(lastRecord); due <= 0 {
				if err := rd.record(trail.OutcomeSuccess, rd.delivered); err != nil {
					s.log.Error("tail: read record not stored; tail ended", "principal", rd.p.Name, "err", err)
					return
				}
				rd.delivered, lastRecord = 0, time.Now()
				continue
			} else {
				wait = due
			}
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		_, err := s.l.WaitSize(wctx, next)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err == context.DeadlineExceeded {
			if rd.delivered > 0 {
				continue // a record is due
			}
			deadline()
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return
			}
			continue
		}
		if err != nil {
			return
		}
	}
}

// tailPageSize is how many events a tail reads in one query.
const tailPageSize = 1000

// tailPage writes the next page of events the tail may send among those
// from index next up to size, and returns where the following page starts.
// The events are found by a query with the tail's filters and the reader's
// grants as its scope, so a tail of one stream among millions reads only
// that stream's records. It reports false when the tail must end (the
// client went away, a write failed, or a record does not match the tree).
func (s *Server) tailPage(ctx context.Context, w http.ResponseWriter, rd *read, filter trail.Query, next, size uint64) (uint64, bool) {
	q := filter
	q.Before, q.Limit, q.Readable, q.Scope = &size, tailPageSize, rd.readable(), rd.scope()
	if tailOptionsOf(rd.r).unreserved {
		q.Readable = unreservedOnly(q.Readable)
	}
	if next > 0 {
		after := next - 1
		q.After = &after
	}
	res, err := s.l.Query(ctx, q)
	if err != nil {
		ie, integrity := s.integrityFailure(err)
		if !integrity {
			if ctx.Err() == nil {
				s.log.Error("tail: query", "after", next, "err", err)
			}
			return next, false
		}
		// Send what comes before the record that does not match the tree,
		// then end: the tail never carries it, nor skips it silently.
		for ok := true; ok && next < ie.Index; {
			next, ok = s.tailPage(ctx, w, rd, filter, next, ie.Index)
		}
		return next, false
	}
	var buf []byte
	for _, rec := range res.Events {
		i, err := trail.RecordIndex(rec)
		if err != nil {
			s.log.Error("tail: stored event", "err", err)
			return next, false
		}
		buf = append(buf[:0], "id: "...)
		buf = strconv.AppendUint(buf, i, 10)
		buf = append(buf, "\ndata: "...)
		buf = append(buf, rec...)
		buf = append(buf, "\n\n"...)
		if _, err := w.Write(buf); err != nil {
			return next, false
		}
		rd.returned(rec)
		rd.delivered++
	}
	if res.More {
		return res.Next + 1, true
	}
	return size, true
}

// tailCount counts live tails per principal.
type tailCount struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire counts one more tail of name, unless it holds max already.
func (c *tailCount) acquire(name string, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[name] >= max {
		return false
	}
	c.n[name]++
	return true
}

func (c *tailCount) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.n {
		n += k
	}
	return n
}

func (c *tailCount) release(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[name]--; c.n[name] <= 0 {
		delete(c.n, name)
	}
}

// stillAuthorized authenticates a live tail's request again, so that a
// revoked principal's tail ends when the policy changes (within
// PolicyReload), and picks up changed grants.
func (s *Server) stillAuthorized(rd *read) bool {
	authenticate := func() (*Principal, error) { return s.auth.Authenticate(rd.r) }
	if o := tailOptionsOf(rd.r); o.authenticate != nil {
		authenticate = o.authenticate
	}
	p, err := authenticate()
	if err != nil || p.Name != rd.p.Name || s.policyRefusal(p) != nil {
		return false
	}
	rd.p = p
	if rd.purpose == "emergency" {
		rd.emergency = p.BreakGlass || p.Admin
	}
	return true
}
