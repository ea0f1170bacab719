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

// tail serves GET /v1/tail?stream=&after=: server-sent events, one per stored
// event (id: its index, data: its stored bytes). Without after it sends only
// events stored after it connected; with after it first replays the events
// after that index (after=-1: from the first event). Only streams p may read
// are sent.
func (s *Server) tail(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	ps := parseParams(r.URL.RawQuery, append([]string{"stream", "after"}, purposeParams...)...)
	stream := ps.str("stream")
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
	rd, pr := s.newRead(r, p, "GET /v1/tail", &ps)
	if pr != nil {
		return pr
	}
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
	s.streamEvents(ctx, w, rc, rd, stream, next)
	return nil
}

// streamEvents writes events from index next on until ctx ends. What it
// delivered is recorded at most once every TailRecordEvery; the deferred
// record in tail covers the rest.
func (s *Server) streamEvents(ctx context.Context, w http.ResponseWriter, rc *http.ResponseController, rd *read, stream string, next uint64) {
	lastRecord := time.Now()
	for first := true; ; first = false {
		if !first && !s.stillAuthorized(rd) {
			return // revoked (or its grants changed) while tailing
		}
		size := s.l.Size()
		for next < size {
			var ok bool
			if next, ok = s.tailPage(ctx, w, rd, stream, next, size); !ok {
				return
			}
			if time.Since(lastRecord) >= s.cfg.TailRecordEvery {
				break // record before delivering more
			}
		}
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
// The events are found by a query with the reader's grants as its scope,
// so a tail of one stream among millions reads only that stream's records.
// It reports false when the tail must end (the client went away, a write
// failed, or a record does not match the tree).
func (s *Server) tailPage(ctx context.Context, w http.ResponseWriter, rd *read, stream string, next, size uint64) (uint64, bool) {
	q := trail.Query{Stream: stream, Before: &size, Limit: tailPageSize, Readable: rd.readable(), Scope: rd.scope()}
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
			next, ok = s.tailPage(ctx, w, rd, stream, next, ie.Index)
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
	p, err := s.auth.Authenticate(rd.r)
	if err != nil || p.Name != rd.p.Name || s.policyRefusal(p) != nil {
		return false
	}
	rd.p = p
	if rd.purpose == "emergency" {
		rd.emergency = p.BreakGlass || p.Admin
	}
	return true
}
