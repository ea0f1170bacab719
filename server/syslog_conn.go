package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/syslog"
)

// serveConn reads one TLS or TCP connection until it ends, handing each
// message to the engine, then waits for every message it handed over
// before it closes.
func (r *SyslogReceiver) serveConn(transport string, nc net.Conn) {
	defer nc.Close()
	if !r.track(nc) {
		return
	}
	defer r.untrack(nc)
	gauge := r.m.conns.WithLabelValues(transport)
	gauge.Inc()
	defer gauge.Dec()
	k := r.newSink(origin{transport: transport, peer: nc.RemoteAddr().String(), principal: r.cfg.Principal})
	defer k.drain()
	var rd io.Reader = nc
	framing := syslog.Auto
	if transport == TransportTLS {
		tc, ok := r.handshake(nc, k)
		if !ok {
			return
		}
		rd, framing = tc, syslog.OctetCounting // RFC 5425 allows nothing else
	}
	dr := &deadlineReader{c: nc, r: rd, idle: r.cfg.IdleTimeout, frame: r.cfg.FrameTimeout, stopping: r.stopping}
	sr, err := syslog.NewReader(dr, syslog.Config{Framing: framing})
	if err != nil {
		r.s.log.Error("syslog: reader", "err", err)
		return
	}
	for {
		dr.between()
		msg, err := sr.Next()
		if errors.Is(err, io.ErrUnexpectedEOF) && len(msg) > 0 {
			// LF framing: the sender closed without a final LF; the tail
			// may be a whole message, and is stored whatever it is.
			k.handle(msg)
		}
		if err != nil {
			r.connEnded(k.o, sr.Framing(), err)
			return
		}
		if err := k.handle(msg); err != nil {
			return
		}
	}
}

// handshake completes the TLS handshake within FrameTimeout and maps the
// client certificate, which TLS required and verified, to its principal;
// it closes the connection (counted, logged) when either fails.
func (r *SyslogReceiver) handshake(nc net.Conn, k *sink) (*tls.Conn, bool) {
	tc := tls.Server(nc, r.cfg.TLS)
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.FrameTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		r.m.refusedConn(TransportTLS, "handshake")
		r.logs.warn(r.s.log, "handshake", "syslog: TLS handshake failed: connection closed", "peer", k.o.peer, "err", err)
		return nil, false
	}
	st := tc.ConnectionState()
	if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
		r.m.refusedConn(TransportTLS, "handshake")
		r.logs.warn(r.s.log, "handshake", "syslog: TLS client sent no verified certificate: connection closed", "peer", k.o.peer)
		return nil, false
	}
	cert := st.VerifiedChains[0][0]
	if _, err := r.dir.PrincipalByCertificate(cert); err != nil {
		r.m.refusedConn(TransportTLS, "unknown_principal")
		r.logs.warn(r.s.log, "unknown_principal", "syslog: TLS client certificate names no principal: connection closed", "peer", k.o.peer, "err", err)
		return nil, false
	}
	k.o.principal = cert.Subject.CommonName
	k.principal = func() (*Principal, error) { return r.dir.PrincipalByCertificate(cert) }
	return tc, true
}

// connEnded counts and logs why a connection ended.
func (r *SyslogReceiver) connEnded(o origin, f syslog.Framing, err error) {
	var fe *syslog.FrameError
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
	case errors.As(err, &fe):
		kind := "bad_frame"
		if errors.Is(err, syslog.ErrTooLarge) {
			kind = "too_large"
		}
		r.m.frameErrors.WithLabelValues(o.transport, kind).Inc()
		r.logs.warn(r.s.log, "frame", "syslog: framing error: connection closed (the messages before it are stored)",
			"transport", o.transport, "peer", o.peer, "framing", f.String(), "err", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		r.m.frameErrors.WithLabelValues(o.transport, "truncated").Inc()
		r.logs.warn(r.s.log, "frame", "syslog: connection ended inside a message", "transport", o.transport, "peer", o.peer, "framing", f.String())
	case errors.As(err, &ne) && ne.Timeout():
		if !r.stopping() {
			r.s.log.Info("syslog: connection timed out: idle, or a message too slow to arrive", "transport", o.transport, "peer", o.peer)
		}
	default:
		if !r.stopping() {
			r.s.log.Info("syslog: connection ended", "transport", o.transport, "peer", o.peer, "err", err)
		}
	}
}

// deadlineReader gives a connection its read deadlines: IdleTimeout while
// it waits for a message to start, then FrameTimeout for the message to
// arrive. The Reader reads ahead, so a message that started in an earlier
// read has the idle time to finish: the frame bound is approximate, never
// absent. Once Shutdown has begun every read times out at once.
type deadlineReader struct {
	c           net.Conn // where deadlines are set
	r           io.Reader
	idle, frame time.Duration
	stopping    func() bool
	waiting     bool // no byte of the next message read yet
}

// between is called before each message.
func (d *deadlineReader) between() {
	d.waiting = true
	d.set(d.idle)
}

func (d *deadlineReader) set(after time.Duration) {
	d.c.SetReadDeadline(time.Now().Add(after))
	// Shutdown closes stopped before it sets every deadline to now: either
	// it sets this one after the line above, or this sees it stopping.
	if d.stopping() {
		d.c.SetReadDeadline(time.Now())
	}
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if n > 0 && d.waiting {
		d.waiting = false
		d.set(d.frame)
	}
	return n, err
}

// sink hands the messages of one connection (or of the UDP socket) to the
// engine, keeping at most a window of them unresolved. Its reaper
// goroutine waits for each in order, counts it and frees its room, so the
// reading goroutine blocks only when the window is full.
type sink struct {
	r         *SyslogReceiver
	o         origin
	principal func() (*Principal, error)
	c         *transportCounters
	win       *window
	q         chan inflight // to the reaper, in order; never blocks: the window bounds it
	reaped    chan struct{} // closed when the reaper has seen the last
}

func (r *SyslogReceiver) newSink(o origin) *sink {
	name := o.principal
	k := &sink{r: r, o: o, c: r.m.forTransport(o.transport),
		principal: func() (*Principal, error) { return r.dir.PrincipalByName(name) },
		win:       newWindow(r.cfg.Window, r.cfg.WindowBytes, &r.peak),
		q:         make(chan inflight, r.cfg.Window), reaped: make(chan struct{})}
	go k.reaper()
	return k
}

// handle stores one message as read (it keeps raw). It returns an error
// only when the engine takes no more events: the caller stops reading.
func (k *sink) handle(raw []byte) error {
	k.c.received.Inc()
	ev, why := syslogEvent(raw, time.Now(), k.o)
	return k.submit(k.o, ev, why != "", true)
}

// submit checks the principal's grant and hands ev to the engine, once the
// window has room (when windowed; the reaper's own resubmissions are not,
// and wait for their outcome instead).
func (k *sink) submit(o origin, ev trail.Event, unparsed, windowed bool) error {
	p, err := k.principal()
	if err == nil && !p.CanAppend(ev.Stream) {
		err = errors.New("principal " + p.Name + " may not append to " + ev.Stream)
	}
	if err != nil {
		k.c.refused.Inc()
		k.r.logs.warn(k.r.s.log, "refused", "syslog: message refused, not stored", "transport", o.transport, "peer", o.peer,
			"stream", ev.Stream, "err", err)
		return nil
	}
	size := len(ev.Original.Data)
	if windowed {
		k.win.acquire(size)
	}
	b, err := k.r.s.l.LogBatch(k.r.ctx, []trail.Event{ev})
	if err != nil {
		if windowed {
			k.win.release(size)
		}
		k.failed(o, err)
		return err
	}
	f := inflight{b: b, ev: ev, o: o, unparsed: unparsed, size: size}
	if windowed {
		k.q <- f
	} else {
		k.reap(f)
	}
	return nil
}

// reaper waits for each message handed to the engine, in order.
func (k *sink) reaper() {
	defer close(k.reaped)
	for f := range k.q {
		k.reap(f)
		k.win.release(f.size)
	}
}

// reap waits for one message's outcome and counts it. A mapped event the
// engine found invalid is stored unparsed instead.
func (k *sink) reap(f inflight) {
	_, err := f.b.Wait(k.r.ctx)
	var be *trail.BatchError
	switch {
	case err == nil && f.unparsed:
		k.c.unparsed.Inc()
		k.r.logs.warn(k.r.s.log, "unparsed", "syslog: message stored unparsed in "+UnparsedStream, "transport", f.o.transport, "peer", f.o.peer,
			"why", f.ev.OutcomeDesc)
	case err == nil:
		k.c.stored.Inc()
	case errors.As(err, &be) && !f.unparsed:
		var rc receivedDetails
		_ = json.Unmarshal(f.ev.Details, &rc) // written by detailsJSON
		ev := unparsedEvent(f.ev.Original.Data, rc.Received, "the mapped event is not valid: "+be.Err.Error())
		k.submit(f.o, ev, true, false)
	default:
		k.failed(f.o, err)
	}
}

// failed counts a message the engine did not store, and logs why.
func (k *sink) failed(o origin, err error) {
	k.c.failed.Inc()
	k.r.logs.warn(k.r.s.log, "failed", "syslog: message not stored: the engine takes no more events", "transport", o.transport,
		"peer", o.peer, "err", err)
}

// drain waits for every message handed to the engine; the sink takes no
// more.
func (k *sink) drain() {
	close(k.q)
	<-k.reaped
}

// inflight is a message handed to the engine.
type inflight struct {
	b        trail.BatchPending
	ev       trail.Event
	o        origin // as it was when read: the UDP peer changes
	unparsed bool
	size     int
}

// window bounds the messages handed to the engine and not yet resolved: at
// most max of them and maxBytes of originals (one message always fits).
type window struct {
	mu            sync.Mutex
	room          sync.Cond
	n, bytes      int
	max, maxBytes int
	peak          *peakCounter
}

func newWindow(max, maxBytes int, peak *peakCounter) *window {
	w := &window{max: max, maxBytes: maxBytes, peak: peak}
	w.room.L = &w.mu
	return w
}

// acquire waits for room for a message of size bytes.
func (w *window) acquire(size int) {
	w.mu.Lock()
	for w.n == w.max || w.n > 0 && w.bytes+size > w.maxBytes {
		w.room.Wait()
	}
	w.n++
	w.bytes += size
	w.peak.record(w.n)
	w.mu.Unlock()
}

func (w *window) release(size int) {
	w.mu.Lock()
	w.n--
	w.bytes -= size
	w.mu.Unlock()
	w.room.Signal()
}

// peakCounter keeps the most messages any window held.
type peakCounter struct{ v atomic.Int64 }

func (p *peakCounter) record(n int) {
	for {
		old := p.v.Load()
		if int64(n) <= old || p.v.CompareAndSwap(old, int64(n)) {
			return
		}
	}
}

func (p *peakCounter) load() int { return int(p.v.Load()) }
