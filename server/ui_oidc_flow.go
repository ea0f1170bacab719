package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// An OpenID Connect sign-in in progress is kept on the server: its state,
// nonce, PKCE verifier and the page to go to afterwards. The browser holds
// only a random id in a cookie (HttpOnly, Secure and __Host- prefixed over
// TLS) that the callback must bring back: a state or code obtained
// elsewhere cannot be completed in another browser (login CSRF). That
// cookie is SameSite=Lax, not Strict: the callback is a top-level
// navigation from the provider's site, on which browsers send Lax cookies
// but not Strict ones. It lives ten minutes and serves once.

const (
	oidcCookie       = "__Host-trail-oidc"
	oidcCookiePlain  = "trail-oidc"
	oidcFlowLifetime = 10 * time.Minute
	// maxOIDCFlows bounds the sign-ins in progress, so anonymous requests
	// cannot fill memory. Past it (after expired ones are dropped) the
	// oldest makes room: a new sign-in is never refused, so nobody can stop
	// others from signing in by starting sign-ins.
	maxOIDCFlows = 10000
	// maxOIDCFlowsPerClient bounds the sign-ins in progress that one
	// client address (an IPv6 /64) started; past it its oldest makes room,
	// so one address cannot push others' sign-ins out of the table.
	maxOIDCFlowsPerClient = 64
	// oidcRetry is how soon after a failed discovery another may be tried.
	oidcRetry = 10 * time.Second
	// oidcTimeout bounds each request to the provider.
	oidcTimeout = 10 * time.Second
)

// oidcFlow is one sign-in in progress.
type oidcFlow struct {
	state, nonce, verifier string
	next                   string // the console page to go to after
	client                 string // the auth.LimitKey of the address that started it
	created                time.Time
}

// oidcFlows holds the sign-ins in progress by the SHA-256 of their cookie.
type oidcFlows struct {
	mu       sync.Mutex
	byKey    map[[32]byte]*oidcFlow
	byClient map[string][][32]byte // the flows each client address started, oldest first
	now      func() time.Time
}

func newOIDCFlows() *oidcFlows {
	return &oidcFlows{byKey: map[[32]byte]*oidcFlow{}, byClient: map[string][][32]byte{}, now: time.Now}
}

// add starts a flow for a sign-in from client (its auth.LimitKey) and returns
// its cookie value. It makes room by dropping the client's oldest flow past
// maxOIDCFlowsPerClient, and past maxOIDCFlows the expired ones, else the
// oldest.
func (f *oidcFlows) add(next, client string) (string, *oidcFlow) {
	id := randomString(32)
	fl := &oidcFlow{state: randomString(32), nonce: randomString(32), verifier: oauth2.GenerateVerifier(), next: next,
		client: client, created: f.now()}
	f.mu.Lock()
	defer f.mu.Unlock()
	if mine := f.byClient[client]; len(mine) >= maxOIDCFlowsPerClient {
		f.drop(mine[0])
	}
	if len(f.byKey) >= maxOIDCFlows {
		now := f.now()
		var oldest [32]byte
		var oldestAt time.Time
		for k, o := range f.byKey {
			if now.Sub(o.created) >= oidcFlowLifetime {
				f.drop(k)
			} else if oldestAt.IsZero() || o.created.Before(oldestAt) {
				oldest, oldestAt = k, o.created
			}
		}
		if len(f.byKey) >= maxOIDCFlows {
			f.drop(oldest)
		}
	}
	key := sha256.Sum256([]byte(id))
	f.byKey[key] = fl
	f.byClient[client] = append(f.byClient[client], key)
	return id, fl
}

// drop forgets the flow of key; f.mu is held.
func (f *oidcFlows) drop(key [32]byte) {
	fl, ok := f.byKey[key]
	if !ok {
		return
	}
	delete(f.byKey, key)
	mine := slices.DeleteFunc(f.byClient[fl.client], func(k [32]byte) bool { return k == key })
	if len(mine) == 0 {
		delete(f.byClient, fl.client)
	} else {
		f.byClient[fl.client] = mine
	}
}

// take removes and returns the live flow of a cookie value, or nil: a flow
// serves one callback, whatever its outcome.
func (f *oidcFlows) take(id, state string) (fl *oidcFlow, mismatch bool) {
	key := sha256.Sum256([]byte(id))
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.byKey[key]
	if !ok {
		return nil, false
	}
	if f.now().Sub(fl.created) >= oidcFlowLifetime {
		f.drop(key)
		return nil, false
	}
	// A callback that does not carry the flow's state (a link another site
	// sent the browser to) leaves the sign-in in progress alone.
	if !fl.stateMatches(state) {
		return nil, true
	}
	f.drop(key)
	return fl, false
}

// stateMatches compares the state a callback brought with the flow's.
func (fl *oidcFlow) stateMatches(state string) bool {
	return state != "" && subtle.ConstantTimeCompare([]byte(state), []byte(fl.state)) == 1
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
func (c *console) startOIDC(cfg OIDCConfig) {
	c.oidc = newOIDCProvider(cfg, c.log)
	c.oidcFlows = newOIDCFlows()
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
}
