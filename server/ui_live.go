package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Following new events: the search and patient pages follow the log
// through the API's live tail (GET /v1/tail), run in-process as the
// session's principal, so that the grant check and the read records
// (when it starts, every second while it delivers, when it ends) are the
// API's own. The browser reads NDJSON (static/live.js): one stored event a
// line, an empty line to keep the connection alive, and, when the console
// ends the stream, a last line {"end":…,"detail":…} saying why.
//
// The stream is a background request: it never extends the session, so a
// page left following does not keep a session alive, and when the session
// ends (sign-out, idle time, maximum age, a revoked credential) the
// stream ends within liveCheckEvery, saying so. It ends too when the
// browser leaves the page or stops following (the request is cancelled),
// and when the server shuts down.

// liveParams are the page's parameters the console passes to the tail.
var liveParams = []string{"patient", "actor", "stream", "type", "action", "outcome", "after"}

// liveQuery is the live view's query for filters, starting after the
// events of a log of size events (which the page was read from).
func liveQuery(filters url.Values, size uint64) string {
	q := url.Values{}
	for k, v := range filters {
		q[k] = v
	}
	q.Set("after", "-1")
	if size > 0 {
		q.Set("after", strconv.FormatUint(size-1, 10))
	}
	return q.Encode()
}

// liveCheckEvery is how often a live stream checks its session.
const liveCheckEvery = time.Second

// errSessionEnded ends a live stream whose session ended.
type errSessionEnded struct{ why string }

func (e errSessionEnded) Error() string { return "console session ended: " + e.why }

// liveEnd is the last line of a stream the console ended.
type liveEnd struct {
	End    string `json:"end"` // "session" or "server"
	Why    string `json:"why,omitempty"`
	Detail string `json:"detail"`
}

// live streams the events the session's principal may read that match the
// page's filters, Trail's own streams left out (see tailOptions).
func (c *console) live(w http.ResponseWriter, r *http.Request, s *session, p *Principal) {
	q := url.Values{}
	for _, k := range liveParams {
		if v := r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	authenticate := func() (*Principal, error) {
		_, p, why := c.currentWhy(r, false)
		if p == nil {
			return nil, errSessionEnded{why}
		}
		return p, nil
	}
	go func() {
		t := time.NewTicker(liveCheckEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := authenticate(); err != nil {
					cancel(err)
					return
				}
			}
		}
	}()
	req := c.apiRequest(r, "/v1/tail", q, nil)
	req = req.WithContext(withTailOptions(ctx, tailOptions{authenticate: authenticate, unreserved: true}))
	sw := &ndjsonStream{w: w, rc: http.NewResponseController(w), h: http.Header{}}
	if pr := c.s.tail(sw, req, p); pr != nil {
		c.s.writeProblem(w, r, pr)
		return
	}
	// The session's end may have been seen by the tail's own check first.
	var ended errSessionEnded
	cause := context.Cause(ctx)
	if cause == nil && r.Context().Err() == nil {
		_, cause = authenticate()
	}
	switch {
	case errors.As(cause, &ended):
		detail := "Your session has ended: sign in again to follow new events."
		if n, ok := endedNotice[ended.why]; ok {
			detail = n
		}
		sw.end(liveEnd{End: "session", Why: ended.why, Detail: detail})
	case r.Context().Err() == nil && c.s.notReady() != "":
		sw.end(liveEnd{End: "server", Detail: "The server stopped the live view: " + c.s.notReady() + "."})
	}
}

// ndjsonStream turns the tail's server-sent events into NDJSON on the
// browser's connection, flushing as the tail flushes. The tail's own
// headers stay behind: the console sets its own.
type ndjsonStream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	h       http.Header
	started bool
	frame   []byte // an event not yet complete
}

func (s *ndjsonStream) Header() http.Header { return s.h }

func (s *ndjsonStream) WriteHeader(code int) {
	if s.started {
		return
	}
	s.started = true
	s.w.Header().Set("Content-Type", "application/x-ndjson; charset=utf-8")
	s.w.Header().Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(code)
}

// Write takes server-sent events ("id: …\ndata: …\n\n", or a comment
// ": …\n\n") and writes each event's data as one line, a comment as an
// empty line.
func (s *ndjsonStream) Write(b []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	s.frame = append(s.frame, b...)
	for {
		end := bytes.Index(s.frame, []byte("\n\n"))
		if end < 0 {
			return len(b), nil
		}
		var line []byte
		for l := range bytes.SplitSeq(s.frame[:end], []byte("\n")) {
			if data, ok := bytes.CutPrefix(l, []byte("data: ")); ok {
				if len(line) > 0 {
					line = append(line, ' ')
				}
				line = append(line, data...)
			}
		}
		line = append(line, '\n')
		s.frame = s.frame[end+2:]
		if _, err := s.w.Write(line); err != nil {
			return 0, err
		}
	}
}

// FlushError lets the tail's http.ResponseController flush the browser's
// connection.
func (s *ndjsonStream) FlushError() error { return s.rc.Flush() }

// end writes the stream's last line.
func (s *ndjsonStream) end(e liveEnd) {
	b, _ := json.Marshal(e)
	s.WriteHeader(http.StatusOK)
	s.w.Write(append(b, '\n'))
	s.rc.Flush()
}
