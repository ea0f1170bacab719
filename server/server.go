package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trailhq/trail"
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
}

const (
	defaultQueueWait      = time.Second
	defaultMaxBatchEvents = 10000
	defaultMaxBatchBytes  = 16 << 20
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
	failures *failLimiter
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
	if cfg.QueueWait <= 0 {
		cfg.QueueWait = defaultQueueWait
	}
	if cfg.MaxBatchEvents <= 0 {
		cfg.MaxBatchEvents = defaultMaxBatchEvents
	}
	if cfg.MaxBatchBytes <= 0 {
		cfg.MaxBatchBytes = defaultMaxBatchBytes
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{l: l, cfg: cfg, auth: cfg.Auth, log: cfg.Logger, reg: reg, stop: make(chan struct{}), failures: newFailLimiter()}
	m, err := newMetrics(reg, l)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if err := registerAuth(reg, cfg.Auth); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
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

// routeStreamHead is the stream-head route, also the name of its metrics.
const routeStreamHead = "GET /v1/streams/{stream...}"

// Shutdown ends live tails, so that http.Server.Shutdown can finish; the
// caller then closes the engine, which drains and writes a final checkpoint.
func (s *Server) Shutdown() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
}

// routes registers every endpoint. Public ones reveal sizes and hashes only.
func (s *Server) routes() {
	s.mux = http.NewServeMux()
	public := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.instrument(pattern, h)) }
	private := func(pattern string, h func(http.ResponseWriter, *http.Request, *Principal) *problem) {
		s.mux.Handle(pattern, s.instrument(pattern, s.authenticated(h)))
	}
	public("GET /healthz", s.healthz)
	public("GET /readyz", s.readyz)
	s.mux.Handle("GET /metrics", s.metricsHandler())
	public("GET /v1/checkpoint", s.checkpoint)
	public("GET /v1/proof/consistency", s.consistency)
	private("POST /v1/events", s.appendOne)
	private("POST /v1/batch", s.appendBatch)
	private("GET /v1/events", s.query)
	private("GET /v1/events/{index}", s.getEvent)
	private("GET /v1/events/{index}/proof", s.inclusion)
	private(routeStreamHead, s.streamHead)
	private("GET /v1/tail", s.tail)
	s.mux.Handle("/", s.instrument("other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeProblem(w, r, notFound("no such endpoint: "+r.Method+" "+r.URL.Path+" (see the v1 API)"))
	})))
}

// authenticated runs h for an authenticated principal; others get 401.
func (s *Server) authenticated(h func(http.ResponseWriter, *http.Request, *Principal) *problem) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := clientIP(r)
		if blocked, wait := s.failures.blocked(addr); blocked {
			pr := newProblem(http.StatusTooManyRequests, "auth_rate_limited",
				"too many requests with invalid credentials from "+addr+"; wait and send a valid token")
			pr.retryAfter = wait
			s.writeProblem(w, r, pr)
			return
		}
		p, err := s.auth.Authenticate(r)
		if err != nil {
			s.failures.failed(addr)
			s.log.Info("unauthenticated request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			s.writeProblem(w, r, newProblem(http.StatusUnauthorized, "unauthenticated",
				"this endpoint needs a valid token: send Authorization: Bearer <token> ("+err.Error()+")"))
			return
		}
		if pr := h(w, r, p); pr != nil {
			s.writeProblem(w, r, pr)
		}
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readyz answers 200 while the engine acknowledges writes, else 503 with why.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.l.Err(); err != nil {
		s.writeProblem(w, r, newProblem(http.StatusServiceUnavailable, "not_ready", err.Error()))
		return
	}
	select {
	case <-s.stop:
		s.writeProblem(w, r, newProblem(http.StatusServiceUnavailable, "not_ready", "shutting down"))
		return
	default:
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ready\n"))
}

// queueContext bounds how long a request waits for room in the queue.
func (s *Server) queueContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.QueueWait)
}
