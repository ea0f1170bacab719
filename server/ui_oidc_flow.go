package server

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// An OpenID Connect sign-in in progress (its state, nonce, PKCE verifier
// and the page to go to afterwards) travels sealed in a cookie: encrypted
// and authenticated (AES-256-GCM) under ConsoleConfig.FlowKey, which the
// processes serving one log share, so that the provider's callback may
// reach any of them, and anonymous visitors starting sign-ins cost the
// server nothing to keep. The callback must bring the cookie back: a state
// or code obtained elsewhere cannot be completed in another browser (login
// CSRF). The cookie (HttpOnly, Secure and __Host- prefixed over TLS) is
// SameSite=Lax, not Strict: the callback is a top-level navigation from the
// provider's site, on which browsers send Lax cookies but not Strict ones.
// It lives ten minutes and serves once: the callback clears it, and a
// completed sign-in is recorded in the session store (Claim), so that the
// same cookie and callback brought again are refused.

const (
	oidcCookie       = "__Host-trail-oidc"
	oidcCookiePlain  = "trail-oidc"
	oidcFlowLifetime = 10 * time.Minute
	// oidcRetry is how soon after a failed discovery another may be tried.
	oidcRetry = 10 * time.Second
	// oidcTimeout bounds each request to the provider.
	oidcTimeout = 10 * time.Second
	// oidcFlowAAD binds a sealed flow to its use.
	oidcFlowAAD = "trail console: OpenID Connect sign-in in progress v1"
	// maxOIDCCookie bounds the flow cookie read back.
	maxOIDCCookie = 4 << 10
)

// oidcFlow is one sign-in in progress.
type oidcFlow struct {
	ID       []byte    `json:"i"` // 16 random bytes: what Claim records once
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	Next     string    `json:"x,omitempty"` // the console page to go to after
	Created  time.Time `json:"t"`
}

// oidcFlows seals sign-ins in progress into their cookies.
type oidcFlows struct {
	aead cipher.AEAD
	now  func() time.Time
}

// newOIDCFlows seals under key (32 bytes or more; its SHA-256 keys the
// cipher).
func newOIDCFlows(key []byte) (*oidcFlows, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("the console's flow key has %d bytes, want at least 32", len(key))
	}
	k := sha256.Sum256(key)
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &oidcFlows{aead: aead, now: time.Now}, nil
}

// add starts a flow and returns its cookie value.
func (f *oidcFlows) add(next string) (string, *oidcFlow) {
	id := make([]byte, 16)
	rand.Read(id)
	fl := &oidcFlow{ID: id, State: randomString(32), Nonce: randomString(32), Verifier: oauth2.GenerateVerifier(), Next: next,
		Created: f.now().UTC()}
	plain, _ := json.Marshal(fl)
	nonce := make([]byte, f.aead.NonceSize(), f.aead.NonceSize()+len(plain)+f.aead.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(f.aead.Seal(nonce, nonce, plain, []byte(oidcFlowAAD))), fl
}

// open returns the live flow a cookie value seals, or nil (not one of
// ours, altered, or over oidcFlowLifetime old); mismatch reports a live
// flow whose state is not the callback's.
func (f *oidcFlows) open(value, state string) (fl *oidcFlow, mismatch bool) {
	if len(value) > maxOIDCCookie {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(b) < f.aead.NonceSize() {
		return nil, false
	}
	plain, err := f.aead.Open(nil, b[:f.aead.NonceSize()], b[f.aead.NonceSize():], []byte(oidcFlowAAD))
	if err != nil {
		return nil, false
	}
	fl = new(oidcFlow)
	if err := json.Unmarshal(plain, fl); err != nil || len(fl.ID) != 16 {
		return nil, false
	}
	if age := f.now().Sub(fl.Created); age >= oidcFlowLifetime || age < -time.Minute {
		return nil, false
	}
	// A callback that does not carry the flow's state (a link another site
	// sent the browser to) leaves the sign-in in progress alone.
	if !fl.stateMatches(state) {
		return nil, true
	}
	return fl, false
}

// stateMatches compares the state a callback brought with the flow's.
func (fl *oidcFlow) stateMatches(state string) bool {
	return state != "" && subtle.ConstantTimeCompare([]byte(state), []byte(fl.State)) == 1
}

// oidcCookieName is the flow cookie's name for r's transport.
func (c *console) oidcCookieName(r *http.Request) (string, bool) {
	if secure, _ := c.transport(r); secure {
		return oidcCookie, true
	}
	return oidcCookiePlain, false
}

// setOIDCCookie sets (maxAge > 0) or clears (maxAge < 0) the flow cookie.
func (c *console) setOIDCCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	name, secure := c.oidcCookieName(r)
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteLaxMode, MaxAge: maxAge})
}

// oidcProvider is the provider as discovered. Discovery is tried when the
// server starts, in the background, and again at a sign-in while it has
// not succeeded (at most every oidcRetry).
//
// The server does not refuse to start when the provider cannot be reached:
// a hospital's audit trail must keep taking events from its applications
// when the identity provider is down or starts after it (as after a power
// cut), and token and certificate sign-in still work. The failure is logged
// with the issuer at start and at each retry, and the sign-in page says
// the provider cannot be reached.
type oidcProvider struct {
	cfg    OIDCConfig
	client *http.Client
	log    *slog.Logger
	host   string // the issuer's host, for people

	mu       sync.Mutex // held through discovery: sign-ins wait for it
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
	tried    time.Time
	err      error
}

func newOIDCProvider(cfg OIDCConfig, log *slog.Logger) *oidcProvider {
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: oidcTimeout}
	}
	u, _ := url.Parse(cfg.Issuer)
	return &oidcProvider{cfg: cfg, client: client, log: log, host: u.Host}
}

// ctx carries the provider's HTTP client to go-oidc and oauth2.
func (o *oidcProvider) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, o.client)
}

// ready returns the OAuth 2.0 configuration and the ID token verifier,
// discovering the provider first when that has not succeeded yet.
func (o *oidcProvider) ready(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.oauth != nil {
		return o.oauth, o.verifier, nil
	}
	if o.err != nil && time.Since(o.tried) < oidcRetry {
		return nil, nil, o.err
	}
	o.tried = time.Now()
	dctx, cancel := context.WithTimeout(o.ctx(ctx), oidcTimeout)
	defer cancel()
	p, err := oidc.NewProvider(dctx, o.cfg.Issuer)
	if err != nil {
		o.err = fmt.Errorf("OpenID Connect provider %s cannot be reached or is not the issuer configured: %w", o.cfg.Issuer, err)
		o.log.Error("OpenID Connect discovery failed: sign-in through it is refused until it succeeds (retried at the next sign-in); token and certificate sign-in work",
			"issuer", o.cfg.Issuer, "err", err)
		return nil, nil, o.err
	}
	o.oauth = &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: o.cfg.RedirectURL, Scopes: o.cfg.scopes()}
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID})
	o.err = nil
	o.log.Info("OpenID Connect provider discovered", "issuer", o.cfg.Issuer)
	return o.oauth, o.verifier, nil
}

// startOIDC sets up sign-in through OpenID Connect and tries the
// provider's discovery in the background, so that the log says at start
// whether the provider answers.
func (c *console) startOIDC(cfg OIDCConfig, flowKey []byte) error {
	flows, err := newOIDCFlows(flowKey)
	if err != nil {
		return err
	}
	c.oidc = newOIDCProvider(cfg, c.log)
	c.oidcFlows = flows
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-c.s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	go func() {
		defer cancel()
		c.oidc.ready(ctx)
	}()
	return nil
}
