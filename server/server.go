package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/auth"
)

// Config configures a Server. The zero value of each field but the
// authentication works.
type Config struct {
	// AdminToken admits its holder with every grant. Used when Auth is nil.
	AdminToken Token
	// Auth authenticates requests; nil means AdminOnly(AdminToken).
	Auth Authenticator
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
	// Registry, when set, gets the server's and the engine's metrics; nil
	// makes a registry of the server's own, served at /metrics.
	Registry *prometheus.Registry
	// QueueWait is how long an append waits for room in a full engine queue
	// before it is refused with 503 and Retry-After (default 1s).
	QueueWait time.Duration
	// MaxBatchEvents and MaxBatchBytes bound one batch (defaults 10,000 and
	// 16 MiB); a larger batch gets 413.
	MaxBatchEvents int
	MaxBatchBytes  int
	// TrustedProxies are reverse proxies whose X-Forwarded-For names the
	// client (for the failed-authentication limit and read records).
	TrustedProxies Proxies
	// BodyTimeout bounds how long a request body may take to arrive
	// (default 60s); a slower body ends the connection.
	BodyTimeout time.Duration
	// MaxTails is the most live tails one principal holds (default 32);
	// more get 429.
	MaxTails int
	// ReadRate and AdminReadRate limit reads per principal (defaults 50/s
	// with bursts of 200, and 1,000/s with bursts of 2,000 for the admin);
	// past them a read gets 429 with Retry-After and leaves no record. They
	// count read records: a read takes one, and every further record it
	// appends (one per patient whose events it returned, an emergency
	// read's copy, a tail's later records) is charged to the same principal,
	// into a debt of at most maxReadRecords, so its next reads wait until
	// the records are paid for.
	ReadRate, AdminReadRate Rate
	// TailRecordEvery is how often a live tail that delivers events is
	// recorded in trail/access (default 1s).
	TailRecordEvery time.Duration
	// TailWriteTimeout ends a live tail whose client takes longer than this
	// to take a page of events or a keep-alive (default 30s): a client that
	// stops reading does not keep its connection and tail slot, nor the
	// events queried for it, past a revocation.
	TailWriteTimeout time.Duration
	// Console configures the web console at /ui/ (see ConsoleConfig).
	Console ConsoleConfig
	// Notify configures the webhook told of each emergency access (see
	// NotifyConfig); no URL, no webhook.
	Notify NotifyConfig
}

const (
	defaultQueueWait      = time.Second
	defaultMaxBatchEvents = 10000
	defaultMaxBatchBytes  = 16 << 20
	defaultBodyTimeout    = 60 * time.Second
	defaultMaxTails       = 32
)

// Read rates per principal (ReadRate in Config).
const (
	defaultReadRate       = 50
	defaultReadBurst      = 200
	defaultAdminReadRate  = 1000
	defaultAdminReadBurst = 2000
)

// Server is the HTTP face of one engine.
type Server struct {
	l        *trail.Log
	cfg      Config
	auth     Authenticator
	log      *slog.Logger
	reg      *prometheus.Registry
	metrics  *metrics
	mux      *http.ServeMux
	patterns []string      // every pattern mux has, in the order registered
	failures *auth.Limiter // failed authentication, by client address (/64 for IPv6)
	reads    *auth.Limiter // reads, by principal
	admin    *auth.Limiter // reads of admin principals, by principal
	tails    tailCount
	notify   *notifier     // posts emergency accesses to Config.Notify.URL; nil without one
	stop     chan struct{} // closed by Shutdown: live tails end
}

// New returns a server for l.
func New(l *trail.Log, cfg Config) (*Server, error) {
	if cfg.Auth == nil {
		if cfg.AdminToken == "" {
			return nil, errors.New("server: no Auth and no AdminToken: nobody could use the API")
		}
		cfg.Auth = AdminOnly(cfg.AdminToken)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Console.validate(cfg.Auth); err != nil {
		return nil, err
	}
	if cfg.QueueWait <= 0 {
		cfg.QueueWait = defaultQueueWait
	}
	if cfg.MaxBatchEvents <= 0 {
		cfg.MaxBatchEvents = defaultMaxBatchEvents
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = defaultMaxBatchBytes
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = defaultBodyTimeout
	}
	if cfg.TailWriteTimeout <= 0 {
		cfg.TailWriteTimeout = 30 * time.Second
	}
	if cfg.TailRecordEvery <= 0 {
		cfg.TailRecordEvery = time.Second
	}
	if cfg.MaxTails <= 0 {
		cfg.MaxTails = defaultMaxTails
	}
	if !cfg.ReadRate.IsSet() {
		cfg.ReadRate = Rate{PerSecond: defaultReadRate, Burst: defaultReadBurst}
	}
	if !cfg.AdminReadRate.IsSet() {
		cfg.AdminReadRate = Rate{PerSecond: defaultAdminReadRate, Burst: defaultAdminReadBurst}
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{l: l, cfg: cfg, auth: cfg.Auth, log: cfg.Logger, reg: reg, stop: make(chan struct{}),
		failures: auth.NewLimiter(auth.FailRate, auth.FailBurst, auth.MaxBuckets),
		reads:    auth.NewLimiter(cfg.ReadRate.PerSecond, float64(max(1, cfg.ReadRate.Burst)), auth.MaxBuckets).AllowDebt(maxReadRecords),
		admin:    auth.NewLimiter(cfg.AdminReadRate.PerSecond, float64(max(1, cfg.AdminReadRate.Burst)), auth.MaxBuckets).AllowDebt(maxReadRecords),
		tails:    tailCount{n: map[string]int{}},
	}
	m, err := newMetrics(reg, l)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trail_live_tails", Help: "Live tails (GET /v1/tail) being served.",
	}, func() float64 { return float64(s.LiveTails()) })); err != nil {
		return nil, err
	}
	if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trail_ready", Help: "1 while GET /readyz answers 200 (appends are acknowledged), 0 otherwise.",
	}, func() float64 {
		if s.notReady() != "" {
			return 0
		}
		return 1
	})); err != nil {
		return nil, err
	}
	if dir := l.Dir(); dir != "" {
		if err := reg.Register(diskCollector{dir}); err != nil {
			return nil, err
		}
	}
	if err := registerAuth(reg, cfg.Auth); err != nil {
		return nil, err
	}
	if s.notify, err = newNotifier(cfg.Notify, l, cfg.Logger, reg); err != nil {
		return nil, err
	}
	if k := cfg.Console.FlowKey; k != nil && len(k) < 32 {
		return nil, fmt.Errorf("server: the console's flow key has %d bytes, want at least 32", len(k))
	}
	s.routes()
	return s, nil
}

// registerAuth registers the authenticator's metrics, when it has any, on
// the server's registry.
func registerAuth(reg prometheus.Registerer, a Authenticator) error {
	if c, ok := a.(prometheus.Collector); ok {
		return reg.Register(c)
	}
	return nil
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler {
	// The mux would redirect a stream name with "." or ".." segments or
	// empty ones to a cleaned path, that is to another stream: such names
	// are invalid, and are answered as the stream-head route answers them
	// (after authentication).
	bad := s.instrument(routeStreamHead, s.authenticated(func(w http.ResponseWriter, r *http.Request, p *Principal) *problem {
		_, pr := streamName(strings.TrimPrefix(r.URL.Path, "/v1/streams/"))
		return pr
	}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, ok := strings.CutPrefix(r.URL.Path, "/v1/streams/"); ok && r.Method == http.MethodGet {
			if _, pr := streamName(name); pr != nil {
				bad.ServeHTTP(w, r)
				return
			}
		}
		s.mux.ServeHTTP(w, r)
	})
}

// LiveTails is the number of live tails. A tail counts until its closing
// read record is stored.
func (s *Server) LiveTails() int { return s.tails.total() }

// routeStreamHead is the stream-head route, also the name of its metrics.
const routeStreamHead = "GET /v1/streams/{stream...}"

// Shutdown ends live tails and the webhook's sender, so that
// http.Server.Shutdown can finish; the caller then closes the engine, which
// drains and writes a final checkpoint.
func (s *Server) Shutdown() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.notify.close()
}

// routes registers every endpoint. Public ones reveal sizes and hashes only.
func (s *Server) routes() {
	s.mux = http.NewServeMux()
	public := func(pattern string, h http.HandlerFunc) { s.handle(pattern, s.instrument(pattern, h)) }
	private := func(pattern string, h func(http.ResponseWriter, *http.Request, *Principal) *problem) {
		s.handle(pattern, s.instrument(pattern, s.authenticated(h)))
	}
	public("GET /healthz", s.healthz)
	public("GET /readyz", s.readyz)
	s.handle("GET /metrics", s.metricsHandler())
	public("GET /v1/checkpoint", s.checkpoint)
	public("GET /v1/proof/consistency", s.consistency)
	public("GET /v1/openapi.json", s.openAPI)
	private("POST /v1/events", s.appendOne)
	private("POST /v1/batch", s.appendBatch)
	private("GET /v1/events", s.query)
	private("GET /v1/events/{index}", s.getEvent)
	private("GET /v1/events/{index}/proof", s.inclusion)
	private(routeStreamHead, s.streamHead)
	private("GET /v1/tail", s.tail)
	private(routeReviews, s.review)
	private(routeBackup, s.backup)
	s.fhirRoutes()    // FHIR R4 AuditEvent API under /fhir (fhir.go)
	s.consoleRoutes() // the web console under /ui/ (ui.go)
	s.handle("/", s.instrument("other", http.HandlerFunc(s.noRoute)))
}

// handle registers h for pattern and keeps the pattern, so that tests can
// hold the routes against the API's OpenAPI description.
func (s *Server) handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.patterns = append(s.patterns, pattern)
}

// noRoute answers the requests no other pattern takes: 405 with an Allow
// header when the path is served with other methods, else 404. (The
// catch-all pattern keeps the mux from answering 405 itself, in plain text.)
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	if allow := s.allowed(r); len(allow) > 0 {
		list := strings.Join(allow, ", ")
		w.Header().Set("Allow", list)
		s.writeProblem(w, r, newProblem(http.StatusMethodNotAllowed, "method_not_allowed",
			r.URL.Path+" does not take "+r.Method+"; it takes "+list))
		return
	}
	s.writeProblem(w, r, notFound("no such endpoint: "+r.Method+" "+r.URL.Path+" (see the v1 API)"))
}

// routeMethods are the methods a route may be registered for.
var routeMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// allowed lists the methods of routeMethods that a pattern other than the
// catch-all takes for r's path.
func (s *Server) allowed(r *http.Request) []string {
	var allow []string
	for _, m := range routeMethods {
		if m == r.Method {
			continue
		}
		other := r.WithContext(r.Context())
		other.Method = m
		if _, pattern := s.mux.Handler(other); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	return allow
}

// authenticated runs h for an authenticated principal; others get 401.
// Failed attempts are limited per client address: once an address has used
// its burst, requests from it without valid credentials get 429 (counted and
// logged like a 401, and never recorded in the trail). Requests with valid
// credentials are never refused by it, so nobody locks out an application
// by sending bad tokens from its address.
func (s *Server) authenticated(h func(http.ResponseWriter, *http.Request, *Principal) *problem) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.auth.Authenticate(r)
		if err == nil {
			if pr := h(w, r, p); pr != nil {
				s.writeProblem(w, r, pr)
			}
			return
		}
		addr := s.cfg.TrustedProxies.ClientAddr(r)
		key := auth.LimitKey(addr)
		if blocked, wait := s.failures.Blocked(key); blocked {
			pr := newProblem(http.StatusTooManyRequests, "auth_rate_limited",
				"too many requests with invalid credentials from "+addr+"; wait and send a valid token")
			pr.retryAfter = wait
			s.writeProblem(w, r, pr)
			return
		}
		s.failures.Spend(key)
		s.log.Info("unauthenticated request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "client", addr, "err", err)
		s.writeProblem(w, r, newProblem(http.StatusUnauthorized, "unauthenticated",
			"this endpoint needs a valid token: send Authorization: Bearer <token> ("+err.Error()+")"))
	})
}

// readAllowed takes one read from p's rate; a read past it gets 429 with
// Retry-After, before anything is recorded (so one reader cannot fill the
// disk with read records).
func (s *Server) readAllowed(p *Principal) *problem {
	ok, wait := s.readLimiter(p).Take(p.Name)
	if ok {
		return nil
	}
	pr := newProblem(http.StatusTooManyRequests, "read_rate_limited",
		fmt.Sprintf("principal %q reads faster than its limit allows; retry after %s", p.Name, wait.Round(time.Millisecond)))
	pr.retryAfter = wait
	return pr
}

// readLimiter is the table of read buckets p's reads count against.
func (s *Server) readLimiter(p *Principal) *auth.Limiter {
	if p.Admin {
		return s.admin
	}
	return s.reads
}

// chargeRecords charges p's read rate for n read records appended past the
// one its read already took (see ReadRate in Config).
func (s *Server) chargeRecords(p *Principal, n int) {
	s.readLimiter(p).Charge(p.Name, float64(n))
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readyz answers 200 while the engine acknowledges writes, else 503 with why.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if why := s.notReady(); why != "" {
		s.writeProblem(w, r, newProblem(http.StatusServiceUnavailable, "not_ready", why))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ready\n"))
}

// notReady says why the server does not acknowledge writes, or "" while it
// does (GET /readyz, and the console's System page).
func (s *Server) notReady() string {
	if err := s.l.Err(); err != nil {
		return err.Error()
	}
	select {
	case <-s.stop:
		return "shutting down"
	default:
	}
	return ""
}

// queueContext bounds how long a request waits for room in the queue.
func (s *Server) queueContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.QueueWait)
}
