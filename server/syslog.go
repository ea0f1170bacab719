package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Transports of the syslog receiver, as metrics and details.received name
// them.
const (
	TransportTLS = "tls" // RFC 5425
	TransportTCP = "tcp" // RFC 6587
	TransportUDP = "udp" // RFC 5426
)

// SyslogConfig configures the syslog receivers of IHE ATNA (ITI-20, Record
// Audit Event). The zero value of each limit means its default; at least
// one address must be set.
type SyslogConfig struct {
	// TLSAddr, TCPAddr and UDPAddr are the addresses to listen on; empty
	// means no such listener.
	TLSAddr, TCPAddr, UDPAddr string
	// TLS is the TLS configuration of TLSAddr: TLSFiles.SyslogConfig, which
	// requires a verified client certificate. Its subject CN names the
	// principal whose append grants apply, as for HTTPS.
	TLS *tls.Config
	// Allow lists the peers TCPAddr and UDPAddr take messages from (they
	// have no authentication); nil means loopback (127.0.0.0/8 and ::1).
	// Other TCP peers are disconnected at once, other UDP datagrams
	// dropped; both are counted and logged.
	Allow []netip.Prefix
	// Principal names the principal of the tokens file that TCPAddr and
	// UDPAddr append as; required with either. It is looked up for every
	// message, so a revocation takes effect at once.
	Principal string
	// MaxConns bounds the TLS and TCP connections open at once (default
	// 512); more are closed at once.
	MaxConns int
	// Window bounds the messages of one connection (or of the UDP socket)
	// handed to the engine and not yet stored (default 256), and WindowBytes
	// their size (default 1 MiB). When it is full the receiver waits for the
	// oldest before it reads on, so a sender faster than the disk is slowed
	// by TCP flow control (UDP: by the socket buffer, whose drops are
	// counted).
	Window, WindowBytes int
	// IdleTimeout closes a connection that sends nothing for so long
	// (default 10 minutes); FrameTimeout bounds the time a started message
	// takes to arrive (default 1 minute), and the TLS handshake.
	IdleTimeout, FrameTimeout time.Duration
}

// Syslog defaults.
const (
	DefaultSyslogMaxConns     = 512
	DefaultSyslogWindow       = 256
	DefaultSyslogWindowBytes  = 1 << 20
	DefaultSyslogIdleTimeout  = 10 * time.Minute
	DefaultSyslogFrameTimeout = time.Minute
)

// DefaultSyslogAllow is the default of SyslogConfig.Allow: loopback only.
var DefaultSyslogAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// Validate reports a configuration that cannot work.
func (c SyslogConfig) Validate() error {
	var errs []error
	if c.TLSAddr == "" && c.TCPAddr == "" && c.UDPAddr == "" {
		errs = append(errs, errors.New("syslog: no address to listen on"))
	}
	if c.TLSAddr != "" && c.TLS == nil {
		errs = append(errs, errors.New("syslog over TLS needs a TLS configuration (a certificate, its key and the client CA)"))
	}
	if (c.TCPAddr != "" || c.UDPAddr != "") && c.Principal == "" {
		errs = append(errs, errors.New("syslog over TCP and UDP has no authentication: name the principal it appends as (--syslog-principal)"))
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"max connections", c.MaxConns}, {"window", c.Window}, {"window bytes", c.WindowBytes}} {
		if v.n < 0 {
			errs = append(errs, fmt.Errorf("syslog %s %d: must be positive (0 for the default)", v.name, v.n))
		}
	}
	if c.IdleTimeout < 0 || c.FrameTimeout < 0 {
		errs = append(errs, errors.New("syslog timeouts must be positive (0 for the default)"))
	}
	return errors.Join(errs...)
}

func (c *SyslogConfig) fill() {
	if c.Allow == nil {
		c.Allow = DefaultSyslogAllow
	}
	c.MaxConns = cmpOr(c.MaxConns, DefaultSyslogMaxConns)
	c.Window = cmpOr(c.Window, DefaultSyslogWindow)
	c.WindowBytes = cmpOr(c.WindowBytes, DefaultSyslogWindowBytes)
	c.IdleTimeout = cmpOr(c.IdleTimeout, DefaultSyslogIdleTimeout)
	c.FrameTimeout = cmpOr(c.FrameTimeout, DefaultSyslogFrameTimeout)
}

func cmpOr[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Principals finds principals otherwise than from an HTTP request: by name
// (the principal a listener without authentication appends as) and by a
// verified client certificate. TokenAuth is one; AdminOnly is not, since
// its only principal, the admin, may append anywhere.
type Principals interface {
	PrincipalByName(name string) (*Principal, error)
	PrincipalByCertificate(c *x509.Certificate) (*Principal, error)
}

var _ Principals = (*TokenAuth)(nil)

// SyslogReceiver takes IHE ATNA audit messages over syslog and stores each
// as an event (see StartSyslog).
type SyslogReceiver struct {
	s       *Server
	cfg     SyslogConfig
	dir     Principals
	m       *syslogMetrics
	lns     map[string]net.Listener
	udp     *net.UDPConn
	slots   chan struct{} // one per open TLS or TCP connection
	ctx     context.Context
	cancel  context.CancelFunc // ends waits for the engine: the hard stop
	stopped chan struct{}      // closed by Shutdown: read no more
	wg      sync.WaitGroup     // listeners and connections

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	peak peakCounter // the most messages one window held unresolved
	logs logLimiter
}

// StartSyslog starts the syslog receivers of cfg: RFC 5425 over TLS, RFC
// 6587 over TCP (octet counting or LF framing, detected), RFC 5426 over
// UDP. Each message is parsed (syslog, then the ATNA AuditMessage it
// carries), mapped (atna.Map) and appended with the message as the event's
// original and details.received saying how it came; a message that cannot
// be parsed or mapped is stored as type atna.unparsed in atna/unparsed. A
// message whose principal may not append to its stream is refused
// (counted, logged, not stored). Metrics go on the server's registry.
//
// It fails when an address cannot be listened on, when cfg is not valid,
// or when the server's authenticator cannot name principals (AdminOnly) or
// cfg.Principal is not one.
func (s *Server) StartSyslog(cfg SyslogConfig) (*SyslogReceiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.fill()
	dir, ok := s.auth.(Principals)
	if !ok {
		return nil, errors.New("syslog: the server's authenticator cannot name principals; syslog needs the principals of a tokens file (TokenAuth)")
	}
	if cfg.TCPAddr != "" || cfg.UDPAddr != "" {
		p, err := dir.PrincipalByName(cfg.Principal)
		if err != nil {
			return nil, fmt.Errorf("syslog principal %q: %w", cfg.Principal, err)
		}
		if len(p.Append) == 0 && !p.Admin {
			return nil, fmt.Errorf("syslog principal %q has no append grant: every message would be refused (grant it patient/* and atna/*)", cfg.Principal)
		}
	}
	m, err := newSyslogMetrics(s.reg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &SyslogReceiver{s: s, cfg: cfg, dir: dir, m: m, lns: map[string]net.Listener{},
		slots: make(chan struct{}, cfg.MaxConns), ctx: ctx, cancel: cancel,
		stopped: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	m.peak = &r.peak
	if err := r.listen(); err != nil {
		r.closeListeners()
		cancel()
		return nil, err
	}
	for transport, ln := range r.lns {
		r.wg.Add(1)
		go r.accept(transport, ln)
	}
	if r.udp != nil {
		r.wg.Add(1)
		go r.serveUDP()
	}
	return r, nil
}

// listen opens every configured listener.
func (r *SyslogReceiver) listen() error {
	for _, a := range []struct{ transport, addr string }{{TransportTLS, r.cfg.TLSAddr}, {TransportTCP, r.cfg.TCPAddr}} {
		if a.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", a.addr)
		if err != nil {
			return fmt.Errorf("syslog over %s: %w", a.transport, err)
		}
		r.lns[a.transport] = ln
	}
	if r.cfg.UDPAddr != "" {
		c, err := listenUDP(r.cfg.UDPAddr)
		if err != nil {
			return err
		}
		r.udp = c
	}
	return nil
}

func (r *SyslogReceiver) closeListeners() {
	for _, ln := range r.lns {
		ln.Close()
	}
	if r.udp != nil {
		r.udp.Close()
	}
}

// Addr returns the address a transport listens on (TransportTLS,
// TransportTCP or TransportUDP), or nil when it is not served.
func (r *SyslogReceiver) Addr(transport string) net.Addr {
	if transport == TransportUDP {
		if r.udp == nil {
			return nil
		}
		return r.udp.LocalAddr()
	}
	if ln, ok := r.lns[transport]; ok {
		return ln.Addr()
	}
	return nil
}

// PeakInFlight returns the most messages one connection (or the UDP
// socket) has held handed to the engine and not yet stored: at most
// SyslogConfig.Window.
func (r *SyslogReceiver) PeakInFlight() int { return r.peak.load() }

// Shutdown stops the receivers: it stops accepting, stops reading every
// connection (messages already read are still handled), waits until every
// message handed to the engine is stored or refused, and closes the
// connections. The engine must stay open until it returns. When ctx ends
// first it stops waiting for the engine and returns ctx.Err().
func (r *SyslogReceiver) Shutdown(ctx context.Context) error {
	select {
	case <-r.stopped:
	default:
		close(r.stopped)
		r.closeListeners()
		r.mu.Lock()
		for c := range r.conns {
			c.SetReadDeadline(time.Now()) // the reading loop ends, then drains its window
		}
		r.mu.Unlock()
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		r.cancel()
		<-done
		return ctx.Err()
	}
}

// stopping reports whether Shutdown has begun.
func (r *SyslogReceiver) stopping() bool {
	select {
	case <-r.stopped:
		return true
	default:
		return false
	}
}

// allowed reports whether a TCP or UDP peer may send.
func (r *SyslogReceiver) allowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.cfg.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// accept serves the connections of one TLS or TCP listener.
func (r *SyslogReceiver) accept(transport string, ln net.Listener) {
	defer r.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if r.stopping() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, or a connection reset before it was
			// accepted: wait a little and go on, as net/http does.
			r.logs.warn(r.s.log, "accept", "syslog: accept failed; retrying", "transport", transport, "err", err)
			time.Sleep(acceptRetry)
			continue
		}
		if !r.admit(transport, nc) {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer func() { <-r.slots }()
			r.serveConn(transport, nc)
		}()
	}
}

// admit takes a connection slot for nc, or closes it: past MaxConns, or for
// TCP from a peer outside Allow.
func (r *SyslogReceiver) admit(transport string, nc net.Conn) bool {
	peer := nc.RemoteAddr().String()
	if transport == TransportTCP {
		ap, err := netip.ParseAddrPort(peer)
		if err != nil || !r.allowed(ap.Addr()) {
			nc.Close()
			r.m.refusedConn(transport, "not_allowed")
			r.logs.warn(r.s.log, "refused", "syslog: connection refused: peer not in --syslog-allow", "transport", transport, "peer", peer)
			return false
		}
	}
	select {
	case r.slots <- struct{}{}:
		return true
	default:
		nc.Close()
		r.m.refusedConn(transport, "too_many")
		r.logs.warn(r.s.log, "too_many", "syslog: connection refused: too many connections", "transport", transport, "peer", peer, "max", r.cfg.MaxConns)
		return false
	}
}

// track registers an open connection so Shutdown can stop its reads; it
// reports false when Shutdown has begun.
func (r *SyslogReceiver) track(nc net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping() {
		return false
	}
	r.conns[nc] = struct{}{}
	return true
}

func (r *SyslogReceiver) untrack(nc net.Conn) {
	r.mu.Lock()
	delete(r.conns, nc)
	r.mu.Unlock()
}

// logLimiter keeps a flood of one kind of refusal to one log line a second.
type logLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
	hush map[string]int // lines left out since the last
}

func (l *logLimiter) warn(log interface {
	Warn(msg string, args ...any)
}, kind, msg string, args ...any) {
	l.mu.Lock()
	if l.last == nil {
		l.last, l.hush = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if now.Sub(l.last[kind]) < time.Second {
		l.hush[kind]++
		l.mu.Unlock()
		return
	}
	n := l.hush[kind]
	l.last[kind], l.hush[kind] = now, 0
	l.mu.Unlock()
	if n > 0 {
		args = append(args, "similar_not_logged", n)
	}
	log.Warn(msg, args...)
}

// acceptRetry is how long a listener waits after a failed accept.
const acceptRetry = 50 * time.Millisecond
