package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/trailhq/trail"
)

// appendOne serves POST /v1/events: one event, 201 with its receipt, or 200
// with the first receipt when the id is already stored with the same
// content.
func (s *Server) appendOne(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	if pr := s.beforeBody(w, p); pr != nil {
		return pr
	}
	tooLarge := fmt.Sprintf("event over %d bytes; an event is at most 64 KiB as sent", trail.MaxEventSize)
	body, pr := readBody(r, trail.MaxEventSize+maxPadding, tooLarge)
	if pr != nil {
		return pr
	}
	bodyRead(w)
	// The limit counts the event as sent: its JSON, not the whitespace
	// around it nor the fields the server adds.
	body = bytes.TrimSpace(body)
	if len(body) > trail.MaxEventSize {
		return newProblem(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("%s (%d bytes)", tooLarge, len(body)))
	}
	// Decoded here, validated once by the engine: LogBatch prepares in this
	// goroutine, in parallel with other requests.
	var ev trail.Event
	if err := ev.UnmarshalJSON(body); err != nil {
		return eventProblem(allProblems(err, body), 0)
	}
	if pr := s.canAppend(p, ev.Stream, 0); pr != nil {
		return pr
	}
	ctx, cancel := s.queueContext(r)
	b, err := s.l.LogBatch(ctx, []trail.Event{ev})
	cancel()
	if err != nil {
		return s.engineProblem(err, 0)
	}
	rcs, err := b.Wait(r.Context())
	if err != nil {
		var be *trail.BatchError
		if errors.As(err, &be) {
			err = be.Err
		}
		return s.engineProblem(err, 0)
	}
	rc := rcs[0]
	status := http.StatusCreated
	if b.Duplicates()[0] {
		status = http.StatusOK
	}
	s.metrics.appended.Add(1)
	writeJSON(w, status, rc)
	return nil
}

// appendBatch serves POST /v1/batch: NDJSON, all or nothing, receipts in line
// order.
func (s *Server) appendBatch(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
	if pr := s.beforeBody(w, p); pr != nil {
		return pr
	}
	body, pr := readBody(r, int64(s.cfg.MaxBatchBytes),
		fmt.Sprintf("batch over %d bytes; send at most %d bytes and %d events per batch", s.cfg.MaxBatchBytes, s.cfg.MaxBatchBytes, s.cfg.MaxBatchEvents))
	if pr != nil {
		return pr
	}
	bodyRead(w)
	evs, lines, pr := s.parseBatch(body, p)
	if pr != nil {
		return pr
	}
	ctx, cancel := s.queueContext(r)
	b, err := s.l.LogBatch(ctx, evs)
	cancel()
	if err != nil {
		return s.engineProblem(err, 0)
	}
	rcs, err := b.Wait(r.Context())
	if err != nil {
		var be *trail.BatchError
		if errors.As(err, &be) && be.Index >= 0 && be.Index < len(lines) {
			return s.engineProblem(be.Err, lines[be.Index])
		}
		return s.engineProblem(err, 0)
	}
	s.metrics.appended.Add(float64(len(rcs)))
	s.metrics.batchSize.Observe(float64(len(rcs)))
	out := make([]byte, 0, 16+len(rcs)*220)
	out = append(out, `{"receipts":[`...)
	for i := range rcs {
		if i > 0 {
			out = append(out, ',')
		}
		out = rcs[i].AppendJSON(out)
	}
	out = append(out, "]}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
	return nil
}

// parseBatch parses and checks every line of an NDJSON body. Blank lines are
// skipped; lines are counted from 1, blank ones included. It returns the
// events and the line of each.
func (s *Server) parseBatch(body []byte, p *Principal) ([]trail.Event, []int, *problem) {
	n := bytes.Count(body, []byte{'\n'}) + 1
	evs := make([]trail.Event, 0, min(n, s.cfg.MaxBatchEvents))
	lines := make([]int, 0, cap(evs))
	for line := 1; len(body) > 0; line++ {
		var l []byte
		l, body, _ = bytes.Cut(body, []byte{'\n'})
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		if len(evs) == s.cfg.MaxBatchEvents {
			pr := newProblem(http.StatusRequestEntityTooLarge, "too_large",
				fmt.Sprintf("batch has more than %d events (line %d is event %d); split it", s.cfg.MaxBatchEvents, line, len(evs)+1))
			return nil, nil, pr
		}
		if len(l) > trail.MaxEventSize {
			return nil, nil, lineProblem(badRequest(fmt.Sprintf("event over %d bytes (%d); an event is at most 64 KiB as sent", trail.MaxEventSize, len(l))), line)
		}
		// Decoded here, validated by the engine (LogBatch), whose errors
		// name the event and so the line: each event is validated once.
		var ev trail.Event
		if err := ev.UnmarshalJSON(l); err != nil {
			return nil, nil, eventProblem(allProblems(err, l), line)
		}
		if pr := s.canAppend(p, ev.Stream, line); pr != nil {
			return nil, nil, pr
		}
		evs = append(evs, ev)
		lines = append(lines, line)
	}
	if len(evs) == 0 {
		return nil, nil, badRequest("empty batch: send one JSON event per line")
	}
	return evs, lines, nil
}

// canAppend checks p's grant to append to stream.
func (s *Server) canAppend(p *Principal, stream string, line int) *problem {
	if trail.IsReservedStream(stream) {
		// Nobody may append there, admin included: a 400, whatever the grants.
		return lineProblem(badRequest(fmt.Sprintf("stream %q is under trail/, which is reserved for Trail's own events", stream)), line)
	}
	if p.CanAppend(stream) {
		return nil
	}
	return lineProblem(newProblem(http.StatusForbidden, "forbidden",
		fmt.Sprintf("principal %q has no append grant for stream %q", p.Name, stream)), line)
}

// beforeBody refuses a principal without any append grant before a byte of
// its body is read (so read-only tokens cannot make the server buffer
// bodies), and bounds how long the body may take to arrive: a body slower
// than BodyTimeout ends the connection.
func (s *Server) beforeBody(w http.ResponseWriter, p *Principal) *problem {
	if !p.Admin && len(p.Append) == 0 {
		return newProblem(http.StatusForbidden, "forbidden",
			fmt.Sprintf("principal %q has no append grant: it may not append to any stream", p.Name))
	}
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return s.internal("set body deadline", err)
	}
	return nil
}

// bodyRead lifts the body's deadline once it has arrived whole: a deadline
// left on the connection would, when it passed, cancel the request while
// its events wait for the queue or the fsync.
func bodyRead(w http.ResponseWriter) {
	http.NewResponseController(w).SetReadDeadline(time.Time{})
}

// maxPadding is how much whitespace around a single event's JSON is read
// beyond the 64 KiB the event may have.
const maxPadding = 4 << 10

// allProblems returns the error that lists every problem of an event whose
// decoding failed with err: decoding stops short of validation, which the
// engine does for events that decode, so a refused event is parsed again,
// and validated, to list all that is wrong with it at once.
func allProblems(err error, data []byte) error {
	if _, perr := trail.ParseEvent(data); perr != nil {
		return perr
	}
	return err
}

// readBody reads at most limit bytes of the request body; a longer body is
// a 413 with the detail tooLarge.
func readBody(r *http.Request, limit int64, tooLarge string) ([]byte, *problem) {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		return nil, newProblem(http.StatusRequestTimeout, "body_timeout", "the request body did not arrive in time (nothing was stored); send it at once")
	}
	if err != nil {
		return nil, badRequest("could not read the request body: " + err.Error() + " (nothing was stored)")
	}
	if int64(len(body)) > limit {
		return nil, newProblem(http.StatusRequestEntityTooLarge, "too_large", tooLarge)
	}
	return body, nil
}

// eventProblem turns a parse or validation error into a 400 (413 for an
// event too large), naming the field and, in a batch, the line, and listing
// every problem in errors.
func eventProblem(err error, line int) *problem {
	var p *problem
	if errors.Is(err, trail.ErrTooLarge) && line == 0 {
		p = newProblem(http.StatusRequestEntityTooLarge, "too_large", err.Error())
	} else {
		p = lineProblem(badRequest(err.Error()), line)
	}
	var ie *trail.InvalidEventError
	var ve *trail.ValidationError
	switch {
	case errors.As(err, &ie):
		for _, v := range ie.Problems {
			p.Errors = append(p.Errors, fieldProblem{Field: v.Field, Detail: v.Reason})
		}
	case errors.As(err, &ve):
		p.Errors = []fieldProblem{{Field: ve.Field, Detail: ve.Reason}}
	}
	return p
}

// engineProblem maps an error of the engine to an answer.
func (s *Server) engineProblem(err error, line int) *problem {
	var ve *trail.ValidationError
	switch {
	case errors.As(err, &ve):
		return eventProblem(err, line)
	case errors.Is(err, trail.ErrIDConflict):
		return lineProblem(newProblem(http.StatusConflict, "id_conflict",
			err.Error()+": the id is stored with different content; use a new id for a new event"), line)
	case errors.Is(err, trail.ErrTooLarge):
		return eventProblem(err, line)
	case errors.Is(err, trail.ErrBufferFull), errors.Is(err, context.DeadlineExceeded):
		pr := newProblem(http.StatusServiceUnavailable, "overloaded", "the server's queue is full; retry with the same ids after Retry-After")
		pr.retryAfter = 1
		return pr
	case errors.Is(err, trail.ErrUnavailable):
		pr := newProblem(http.StatusServiceUnavailable, "unavailable",
			"the database is out of reach for now (restarting or failing over); the events may have been stored: retry with the same ids after Retry-After")
		pr.retryAfter = 1
		return pr
	case errors.Is(err, trail.ErrFailed):
		return newProblem(http.StatusServiceUnavailable, "failed", err.Error())
	case errors.Is(err, trail.ErrClosed):
		pr := newProblem(http.StatusServiceUnavailable, "closing", "the server is shutting down; retry with the same ids")
		pr.retryAfter = 1
		return pr
	case errors.Is(err, context.Canceled):
		return newProblem(499, "canceled", "request canceled; the events may have been stored: resend the same ids to learn their receipts")
	}
	s.log.Error("append failed", "err", err)
	return newProblem(http.StatusInternalServerError, "internal", err.Error())
}

// lineProblem adds a batch line to p (line 0: not in a batch).
func lineProblem(p *problem, line int) *problem {
	if line > 0 {
		p.Line = line
		p.Detail = fmt.Sprintf("line %d: %s (nothing of the batch was stored)", line, p.Detail)
	}
	return p
}
