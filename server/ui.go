package server

import (
	"bytes"
	"crypto/rand"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/trailhq/trail/auth"
)

// The web console (/ui/): server-rendered pages for privacy officers and
// patients, built from the templates and static files embedded below, with
// nothing loaded from elsewhere. It is a client of the API in the same
// process: every read a page makes runs the API's handler with the
// session's principal (ui_api.go), so grants, rate limits and read records
// are exactly the API's.
//
// Sessions are kept server-side in ConsoleConfig.Sessions (ui_session.go).
// Sign-in takes a token, a verified client certificate under mTLS, or an
// OpenID Connect provider's ID token (ui_oidc.go).

//go:embed ui/templates/*.html ui/static/*
var uiFiles embed.FS

// ConsoleConfig configures the web console. The zero value works.
type ConsoleConfig struct {
	// Idle ends a session this long after the last page its user asked
	// for (default 15 minutes); automatic refreshes do not count.
	Idle time.Duration
	// MaxAge ends a session this long after sign-in whatever its use
	// (default 8 hours).
	MaxAge time.Duration
	// MaxSessions bounds the live sessions (default 10,000); a sign-in
	// past it gets 503.
	MaxSessions int
	// Sessions is where sessions are kept (default: in the process's
	// memory, so a restart signs everyone out). Processes that serve one
	// log share a store, so that each honours the sessions of all.
	Sessions auth.SessionStore
	// FlowKey seals OpenID Connect sign-ins in progress into their
	// cookies: a secret of 32 bytes or more that processes sharing
	// Sessions share too, so that a sign-in started at one finishes at
	// any (default: random, this process's own).
	FlowKey []byte
	// Disabled leaves /ui/ unserved (404).
	Disabled bool
	// OIDC, when set, adds sign-in through an OpenID Connect provider
	// (see OIDCConfig).
	OIDC *OIDCConfig
}

const (
	defaultConsoleIdle   = 15 * time.Minute
	defaultConsoleMaxAge = 8 * time.Hour
	defaultMaxSessions   = 10000
	// maxSessionsPerPrincipal bounds one principal's sessions: past it
	// its oldest one ends, so that one credential cannot fill the table.
	maxSessionsPerPrincipal = 32
)

func (c *ConsoleConfig) defaults() {
	if c.Idle <= 0 {
		c.Idle = defaultConsoleIdle
	}
	if c.MaxAge <= 0 {
		c.MaxAge = defaultConsoleMaxAge
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = defaultMaxSessions
	}
	if c.Sessions == nil {
		c.Sessions = auth.NewMemorySessions()
	}
	if c.FlowKey == nil {
		c.FlowKey = make([]byte, 32)
		rand.Read(c.FlowKey)
	}
}

// consoleCSP is the console's Content-Security-Policy: its own scripts,
// styles, images and requests only; no inline script or style, no framing.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// console is the web console's state.
type console struct {
	s        *Server
	cfg      ConsoleConfig
	sessions auth.SessionStore
	pages    map[string]*template.Template
	mux      *http.ServeMux
	log      *slog.Logger
	// oidc and oidcFlows serve sign-in through OpenID Connect; nil
	// without ConsoleConfig.OIDC.
	oidc      *oidcProvider
	oidcFlows *oidcFlows
	// ingest is the System page's ingest rate.
	ingest ingestSampler
}

// consoleRoutes registers the console under /ui/.
func (s *Server) consoleRoutes() {
	if s.cfg.Console.Disabled {
		return
	}
	cfg := s.cfg.Console
	cfg.defaults()
	c := &console{s: s, cfg: cfg, log: s.log, sessions: cfg.Sessions, pages: parsePages()}
	if cfg.OIDC != nil {
		if err := c.startOIDC(*cfg.OIDC, cfg.FlowKey); err != nil { // New checked FlowKey
			c.log.Error("console: OpenID Connect sign-in is off", "err", err)
		}
	}
	c.routes()
	s.handle("/ui/", s.instrument("/ui/", c.guard(c.mux)))
	s.handle("GET /ui", http.RedirectHandler("/ui/", http.StatusSeeOther))
}

func (c *console) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(uiFiles, "ui/static")
	m.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /ui/{$}", c.home)
	m.HandleFunc("GET /ui/signin", c.signinPage)
	m.HandleFunc("POST /ui/signin", c.signinToken)
	m.HandleFunc("POST /ui/signin/certificate", c.signinCertificate)
	m.HandleFunc("POST /ui/signout", c.signout)
	if c.oidc != nil {
		m.HandleFunc("GET /ui/signin/oidc", c.signinOIDC)
		m.HandleFunc("GET "+OIDCCallbackPath, c.oidcCallback)
	}
	m.Handle("GET /ui/search", c.page(c.search))
	m.Handle("GET /ui/events/{index}", c.page(c.event))
	m.Handle("GET /ui/events/{index}/proof", c.background(c.proof))
	m.Handle("GET /ui/patient", c.page(c.patient))
	m.Handle("GET /ui/patient/access.csv", c.page(c.accessCSV))
	m.Handle("GET /ui/me", c.page(c.myRecord))
	m.Handle("GET /ui/reviews", c.page(c.reviews))
	m.Handle("POST /ui/reviews", c.page(c.postReview))
	m.Handle("GET /ui/live", c.background(c.live))
	m.Handle("GET /ui/system", c.page(c.system))
	m.Handle("GET /ui/system/status", c.background(c.systemRefresh))
	m.Handle("GET /ui/system/consistency", c.background(c.systemConsistency))
	m.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		s, _, _ := c.current(r)
		c.render(w, r, http.StatusNotFound, "error", &pageData{Title: "Not found", Session: s,
			Error: "There is no console page at " + r.URL.Path + "."})
	})
	c.mux = m
}

// guard sets the headers of every console answer and refuses plain HTTP
// from anywhere but loopback: a session cookie and patients' records would
// cross the network in the clear.
func (c *console) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", consoleCSP)
		hd.Set("Cache-Control", "no-store")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		if _, ok := c.transport(r); !ok {
			c.render(w, r, http.StatusForbidden, "error", &pageData{Title: "HTTPS required",
				Error: "The console is served only over HTTPS, or over plain HTTP on this machine's loopback address: " +
					"your session and patients' records would otherwise cross the network unencrypted. " +
					"Ask the operator to start trail serve with --tls-cert and --tls-key, or to put it behind a TLS proxy " +
					"named with --trusted-proxy."})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// transport reports whether the browser reached the console over TLS
// (directly, or through a trusted proxy that says so with
// X-Forwarded-Proto), and whether the console may be served at all: over
// TLS, or over plain HTTP from a loopback client.
func (c *console) transport(r *http.Request) (secure, ok bool) {
	if r.TLS != nil {
		return true, true
	}
	proxies := c.s.cfg.TrustedProxies
	if peer, err := netip.ParseAddr(auth.PeerAddr(r)); err == nil && len(proxies) > 0 && proxies.Trusted(peer) &&
		r.Header.Get("X-Forwarded-Proto") == "https" {
		return true, true
	}
	client, err := netip.ParseAddr(proxies.ClientAddr(r))
	return false, err == nil && client.Unmap().IsLoopback()
}

// parsePages parses each page template with the shared layout.
func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"actionName": func(a string) string { return actionNames[a] },
		"shortTime":  shortTime,
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"signin", "search", "event", "patient", "reviews", "system", "error", "continue"} {
		pages[name] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(uiFiles, "ui/templates/layout.html", "ui/templates/parts.html", "ui/templates/"+name+".html"))
	}
	return pages
}

// pageData is what every page template gets; Page holds the page's own.
type pageData struct {
	Title   string
	Nav     string // the nav entry of the page: search, patient, me, reviews, system
	Session *session
	Menu    menu // what the navigation offers the signed-in principal
	CSRF    string
	Notice  string // a message shown on top (sign-in page)
	Error   string // the page could not be shown: why
	Page    any
}

// render writes a page. Templates are executed into a buffer first, so a
// template failure answers 500 rather than half a page.
func (c *console) render(w http.ResponseWriter, r *http.Request, status int, name string, d *pageData) {
	if d.Session != nil {
		d.CSRF = d.Session.csrf
		if p, ok := r.Context().Value(principalKey{}).(*Principal); ok {
			d.Menu = menuOf(p)
		}
	}
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, d); err != nil {
		c.log.Error("console: render page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered; see the server's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// menu is what the navigation offers: a patient's own principal its
// record, others the search and patient pages, reviewers the reviews.
type menu struct {
	Patient bool // a patient's own principal
	Review  bool
}

func menuOf(p *Principal) menu { return menu{Patient: p.Patient != "", Review: p.CanReview()} }

// principalKey carries a page request's principal to render.
type principalKey struct{}

// startPage is where a principal's console starts: a patient's own
// principal at its record, others at the search page.
func startPage(p *Principal) string {
	if p.Patient != "" {
		return "/ui/me"
	}
	return "/ui/search"
}

// home sends a signed-in user to their first page, others to sign in.
func (c *console) home(w http.ResponseWriter, r *http.Request) {
	if _, p, ok := c.current(r); ok {
		http.Redirect(w, r, startPage(p), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
}
