package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailhq/trail"
)

// sender encodes a lane's batches and posts them; it is owned by the lane
// goroutine.
type sender struct {
	c    *Client
	lane int
	ids  idSource

	body     []byte        // NDJSON of the batch being sent
	open     *atomic.Int32 // request bodies over body the transport has not closed
	resp     bytes.Buffer
	receipts []trail.Receipt // of the last answer; reused
}

// keepBody is the largest body buffer kept from one batch to the next.
const keepBody = 4 << 20

// encode writes the events of b not yet resolved as NDJSON, giving each
// event without an id a random one first, so that every resend carries the
// same id. It stops before the body would reach the server's limit and
// returns how many events of b it dealt with: sent, or resolved because
// they cannot be encoded or exceed trail.MaxEventSize.
func (s *sender) encode(b []item) ([]byte, int) {
	buf := s.buffer()
	k := 0
	for ; k < len(b); k++ {
		it := &b[k]
		if it.done {
			continue
		}
		if it.ev.ID == "" {
			it.ev.ID = s.ids.next()
		}
		start := len(buf)
		var err error
		buf, err = it.ev.AppendJSON(buf)
		if err == nil && len(buf)-start > trail.MaxEventSize {
			err = &trail.ValidationError{Field: "(event)", Err: trail.ErrTooLarge,
				Reason: fmt.Sprintf("is %d bytes as JSON; a whole event is at most %d", len(buf)-start, trail.MaxEventSize)}
		}
		if err != nil {
			buf = buf[:start]
			it.resolve(trail.Receipt{}, err)
			continue
		}
		if len(buf)+1 > maxBody && start > 0 {
			buf = buf[:start]
			break
		}
		buf = append(buf, '\n')
	}
	s.body = buf
	return buf, k
}

// buffer returns an empty body buffer: a new one while the transport may
// still read an earlier request's body (it may close a body after Do
// returns).
func (s *sender) buffer() []byte {
	if s.open == nil || s.open.Load() != 0 || cap(s.body) > keepBody {
		s.body, s.open = nil, new(atomic.Int32) // earlier bodies keep the old count
	}
	return s.body[:0]
}

// post sends one batch request and returns its receipts. A refusal is an
// *Error; anything else is a transport error or an unreadable answer.
func (s *sender) post(ctx context.Context, body []byte) ([]trail.Receipt, error) {
	rb := newReqBody(body, s.open)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.c.batch, rb)
	if err != nil {
		rb.Close()
		return nil, err
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	if s.c.auth != "" {
		req.Header.Set("Authorization", s.c.auth)
	}
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, readError(resp)
	}
	defer resp.Body.Close()
	s.resp.Reset()
	if _, err := s.resp.ReadFrom(resp.Body); err != nil {
		return nil, fmt.Errorf("client: read batch answer: %w", err)
	}
	rs, err := decodeReceipts(s.resp.Bytes(), s.receipts)
	if err != nil {
		return nil, fmt.Errorf("client: decode batch answer (%d %s): %w", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	s.receipts = rs
	return rs, nil
}

// reqBody is a request body that counts itself open until the transport
// closes it, so that its buffer is reused only then.
type reqBody struct {
	bytes.Reader
	once sync.Once
	open *atomic.Int32
}

func newReqBody(b []byte, open *atomic.Int32) *reqBody {
	open.Add(1)
	rb := &reqBody{open: open}
	rb.Reset(b)
	return rb
}

func (rb *reqBody) Close() error {
	rb.once.Do(func() { rb.open.Add(-1) })
	return nil
}

// deliver sends the batch b (body is its encoding) until every event of it
// is resolved: stored, refused alone, or failed with the batch after
// retrying until deadline.
func (l *lane) deliver(b []item, body []byte, deadline time.Time) {
	var bo backoff
	var answered error // the server's last answer, when it gave one
	for attempt := 1; ; attempt++ {
		if l.c.runCtx.Err() != nil {
			failLive(b, abortError(context.Cause(l.c.runCtx)))
			return
		}
		ctx, cancel := context.WithDeadline(l.c.runCtx, deadline)
		recs, err := l.send.post(ctx, body)
		cancel()
		if err == nil {
			l.c.sent.Add(uint64(settleReceipts(b, recs)))
			return
		}
		if l.c.runCtx.Err() != nil {
			failLive(b, abortError(context.Cause(l.c.runCtx)))
			return
		}
		if statusError(err) != nil {
			answered = err
		} else if answered != nil && errors.Is(err, context.DeadlineExceeded) {
			// The retry time ran out during an attempt: what the server
			// last said tells the caller more than the cut request.
			err = answered
		}
		switch e := statusError(err); classify(e) {
		case actRetry:
			if !l.backOff(b, &bo, attempt, err, deadline) {
				return
			}
		case actLine:
			if !failLine(b, e) {
				failLive(b, err)
				return
			}
			if live(b) == 0 {
				return
			}
			body, _ = l.send.encode(b)
		case actSplit:
			l.split(b, err, deadline)
			return
		default:
			failLive(b, err)
			return
		}
	}
}

// backOff waits before the next attempt, honouring Retry-After. It reports
// false, having failed the batch, when the wait would pass the deadline or
// the client gives up.
func (l *lane) backOff(b []item, bo *backoff, attempt int, err error, deadline time.Time) bool {
	var hint time.Duration
	if e := statusError(err); e != nil {
		hint = e.RetryAfter
	}
	wait := bo.next(hint)
	if time.Now().Add(wait).After(deadline) {
		failLive(b, fmt.Errorf("client: batch of %d events not stored after %d attempts in %v (WithRetryTimeout): %w",
			live(b), attempt, l.c.cfg.retryTimeout, err))
		return false
	}
	l.c.log.Warn("trail batch not stored; retrying with the same ids",
		"lane", l.id, "events", live(b), "attempt", attempt, "wait", wait, "err", err)
	if !l.pause(l.c.runCtx, wait) {
		failLive(b, abortError(context.Cause(l.c.runCtx)))
		return false
	}
	return true
}

// split sends the two halves of a batch the server found too large, one
// after the other; a single event too large fails alone.
func (l *lane) split(b []item, err error, deadline time.Time) {
	n := live(b)
	if n <= 1 {
		failLive(b, err)
		return
	}
	i, seen := 0, 0
	for ; seen < n/2; i++ {
		if !b[i].done {
			seen++
		}
	}
	for _, h := range [][]item{b[:i], b[i:]} {
		body, _ := l.send.encode(h)
		if live(h) > 0 {
			l.deliver(h, body, deadline)
		}
	}
}

// action is what a failed attempt calls for.
type action int

const (
	actRetry action = iota // transient: send the same batch again
	actLine                // one line refused: fail it, send the others
	actSplit               // too large: send it in halves
	actFail                // the whole batch is refused
)

// classify decides by the server's answer; a nil *Error is a transport
// error or an unreadable answer, which retrying resolves exactly once since
// the ids are the same.
func classify(e *Error) action {
	if e == nil {
		return actRetry
	}
	switch e.Status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return actRetry
	case http.StatusBadRequest, http.StatusConflict, http.StatusForbidden:
		// A 403 naming a line is a missing grant for that event's stream:
		// the other events may be granted.
		if e.Line > 0 {
			return actLine
		}
	case http.StatusRequestEntityTooLarge:
		if e.Line > 0 {
			return actLine
		}
		return actSplit
	}
	return actFail
}

// failLine resolves the event on the line e names (counted from 1 among
// the events of b still sent) with e; it reports false when there is no
// such line.
func failLine(b []item, e *Error) bool {
	line := 0
	for i := range b {
		if b[i].done {
			continue
		}
		line++
		if line == e.Line {
			b[i].resolve(trail.Receipt{}, e)
			return true
		}
	}
	return false
}

// settleReceipts resolves the events of b with the receipts, in line
// order, and returns how many it resolved with a receipt.
func settleReceipts(b []item, recs []trail.Receipt) int {
	if n := live(b); len(recs) != n {
		failLive(b, fmt.Errorf("client: server answered %d receipts for a batch of %d events; their outcome is unknown", len(recs), n))
		return 0
	}
	stored := 0
	j := 0
	for i := range b {
		if b[i].done {
			continue
		}
		r := recs[j]
		j++
		if r.ID != b[i].ev.ID {
			b[i].resolve(trail.Receipt{}, fmt.Errorf("client: server answered receipt %s for event %s; its outcome is unknown", r.ID, b[i].ev.ID))
			continue
		}
		b[i].resolve(r, nil)
		stored++
	}
	return stored
}

// backoff is exponential backoff with jitter: from 10ms, doubling to 1s.
type backoff struct{ d time.Duration }

const (
	backoffMin = 10 * time.Millisecond
	backoffMax = time.Second
)

// next returns the wait before the next attempt: at least hint (a
// Retry-After), else half the current step plus up to as much again.
func (b *backoff) next(hint time.Duration) time.Duration {
	if b.d == 0 {
		b.d = backoffMin
	} else {
		b.d = min(2*b.d, backoffMax)
	}
	w := b.d/2 + rand.N(b.d/2+1)
	return max(w, hint)
}
