package auth

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PolicyReload is how often TokenAuth looks for a changed tokens file: a
// created or revoked token takes effect within it.
const PolicyReload = 250 * time.Millisecond

// TokenAuth authenticates with the admin token, the principals of
// DIR/tokens.json (reloaded when the file changes, so "trail token create"
// and "revoke" take effect in a running server) or of another PolicySource
// (NewTokenAuthFrom: the database of trail serve --store, whose version is
// looked at as often), and, over TLS, a verified
// client certificate whose subject common name is a principal's name.
//
// A policy is swapped in whole (one atomic pointer), so no request sees a
// half-changed one; a missing file is an empty policy (only the admin token
// works). Tokens are compared by their SHA-256, in constant time, against
// every principal's. A token past its expiry time is refused (401) from that
// moment, with no change to the file.
//
// A changed file that cannot be read or parsed (a failed write, a file its
// user may not read, a reserved name) leaves the server unsure what the
// policy is: maybe a token was revoked. Until the file loads again, reads by
// anyone but the admin token's holder are refused (see ReadRefusal), while
// appends go on under the last policy read, so that no application is held
// up and no revoked reader sees more. The failure is logged every second and
// counted in trail_tokens_reload_errors_total (TokenAuth is a
// prometheus.Collector, registered by server.New).
type TokenAuth struct {
	src   PolicySource
	admin [32]byte
	log   *slog.Logger
	cur   atomic.Pointer[policyView]
	now   func() time.Time

	// stale holds why the file on disk is not the policy in force; nil
	// when it is.
	stale        atomic.Pointer[error]
	reloadErrors prometheus.Counter

	mu       sync.Mutex // guards seen and reported
	seen     string     // the version last loaded
	reported time.Time  // when a failed reload was last logged

	stop chan struct{}
	done chan struct{}
}

var _ prometheus.Collector = (*TokenAuth)(nil)

// policyView is a loaded policy.
type policyView struct {
	hashes []principalHash
	byName map[string]principalHash
}

type principalHash struct {
	hash    [32]byte
	p       *Principal
	expires time.Time // zero: never
}

// expired reports whether ph's token has expired at now.
func (ph principalHash) expired(now time.Time) bool {
	return !ph.expires.IsZero() && !now.Before(ph.expires)
}

// fileID tells a changed file: the rename of a new file changes the inode.
type fileID struct {
	ino   uint64
	size  int64
	mtime time.Time
}

// NewTokenAuth loads the policy of dir and starts watching it; Close stops.
func NewTokenAuth(dir string, admin Token, logger *slog.Logger) (*TokenAuth, error) {
	return NewTokenAuthFrom(FileSource(dir), HashToken(admin), logger)
}

// NewTokenAuthFrom loads the policy of src and starts watching it (every
// PolicyReload); Close stops. admin is the SHA-256 of the admin token.
func NewTokenAuthFrom(src PolicySource, admin [32]byte, logger *slog.Logger) (*TokenAuth, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &TokenAuth{src: src, admin: admin, log: logger, now: time.Now,
		stop: make(chan struct{}), done: make(chan struct{}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trail_tokens_reload_errors_total",
			Help: "Loads of a changed tokens file (or policy in the database) that failed; while it fails, reads other than the admin's are refused.",
		}),
	}
	if _, err := a.Reload(); err != nil {
		return nil, err
	}
	go a.watch()
	return a, nil
}

// Close stops watching the policy.
func (a *TokenAuth) Close() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
}

func (a *TokenAuth) watch() {
	defer close(a.done)
	t := time.NewTicker(PolicyReload)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
			changed, err := a.Reload()
			if err != nil {
				a.report(err)
			} else if changed {
				if _, ok := a.src.(fileSource); ok {
					a.log.Info("tokens file reloaded", "principals", len(a.cur.Load().byName))
				} else {
					a.log.Info("principals reloaded", "source", a.src.String(), "version", a.seenVersion(), "principals", len(a.cur.Load().byName))
				}
			}
		}
	}
}

// reportEvery is how often a tokens file that stays unreadable is logged.
const reportEvery = time.Second

// report logs a failed reload, at most once every reportEvery.
func (a *TokenAuth) report(err error) {
	a.mu.Lock()
	now := a.now()
	due := now.Sub(a.reported) >= reportEvery
	if due {
		a.reported = now
	}
	a.mu.Unlock()
	if !due {
		return
	}
	if _, ok := a.src.(fileSource); ok {
		a.log.Error("tokens file unreadable: reads other than the admin's are refused, appends go on under the previous policy, until it is repaired",
			"file", a.src.String(), "err", err)
		return
	}
	a.log.Error("principals unreadable: reads other than the admin's are refused, appends go on under the previous policy, until it is repaired",
		"source", a.src.String(), "err", err)
}

func (a *TokenAuth) seenVersion() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen
}

// loadTimeout bounds one look at the policy source.
const loadTimeout = 5 * time.Second

// Reload reads the policy if it changed since the last load; while the
// policy fails to load it is read again on every call, so that a repair of
// any kind (a chown or chmod changes no content) is seen.
func (a *TokenAuth) Reload() (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	v, err := a.src.Version(ctx)
	if err == nil && v == a.seen && a.cur.Load() != nil && a.stale.Load() == nil {
		return false, nil
	}
	var pol Policy
	if err == nil {
		pol, v, err = a.src.Load(ctx)
	}
	if err != nil {
		a.reloadErrors.Inc()
		a.stale.Store(&err)
		return false, err
	}
	a.cur.Store(newPolicyView(pol))
	a.seen = v
	a.stale.Store(nil)
	return true, nil
}

// statFile identifies the policy file of dir; a missing file has the zero
// id.
func statFile(dir string) (fileID, error) {
	var id fileID
	st, err := os.Stat(filepath.Join(dir, TokensFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return id, err
	default:
		id = fileID{size: st.Size(), mtime: st.ModTime()}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			id.ino = sys.Ino
		}
	}
	return id, nil
}

func newPolicyView(pol Policy) *policyView {
	v := &policyView{byName: map[string]principalHash{}}
	for _, pr := range pol.Principals {
		if pr.Revoked != nil {
			continue
		}
		var ph principalHash
		hex.Decode(ph.hash[:], []byte(pr.TokenSHA256))
		ph.p = pr.Principal()
		if pr.Expires != nil {
			ph.expires = *pr.Expires
		}
		v.hashes = append(v.hashes, ph)
		v.byName[pr.Name] = ph
	}
	return v
}

// ReadRefusal returns why p may not read now, or nil: while the tokens file
// cannot be loaded, only the admin token's holder may read.
func (a *TokenAuth) ReadRefusal(p *Principal) error {
	if p == adminPrincipal {
		return nil
	}
	if err := a.stale.Load(); err != nil {
		return *err
	}
	return nil
}

// Describe implements prometheus.Collector.
func (a *TokenAuth) Describe(ch chan<- *prometheus.Desc) { a.reloadErrors.Describe(ch) }

// Collect implements prometheus.Collector.
func (a *TokenAuth) Collect(ch chan<- prometheus.Metric) { a.reloadErrors.Collect(ch) }

var adminPrincipal = &Principal{Name: AdminName, Admin: true}

// Authenticate implements Authenticator.
func (a *TokenAuth) Authenticate(r *http.Request) (*Principal, error) {
	v := a.cur.Load()
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return v.byCertificate(r.TLS.VerifiedChains[0][0], a.now())
	}
	tok, ok := Bearer(r)
	if !ok {
		return nil, ErrUnauthenticated
	}
	return a.AuthenticateTokenHash(HashToken(tok))
}

// AuthenticateTokenHash returns the principal of the token whose SHA-256 is
// h, as Authenticate does for that token: a console session signed in with
// a token keeps only its hash and is authenticated again by it.
func (a *TokenAuth) AuthenticateTokenHash(h [32]byte) (*Principal, error) {
	v := a.cur.Load()
	var found *Principal
	if subtle.ConstantTimeCompare(h[:], a.admin[:]) == 1 {
		found = adminPrincipal
	}
	var expired time.Time
	now := a.now()
	for _, ph := range v.hashes { // every one, so the time does not tell which matched
		if subtle.ConstantTimeCompare(h[:], ph.hash[:]) == 1 {
			found = ph.p
			if ph.expired(now) {
				found, expired = nil, ph.expires
			}
		}
	}
	if !expired.IsZero() {
		return nil, fmt.Errorf("%w: the token expired at %s", ErrUnauthenticated, expired.UTC().Format(time.RFC3339))
	}
	if found == nil {
		return nil, ErrUnauthenticated
	}
	return found, nil
}

// byCertificate maps a verified client certificate to the principal its
// subject common name names.
func (v *policyView) byCertificate(c *x509.Certificate, now time.Time) (*Principal, error) {
	ph, ok := v.byName[c.Subject.CommonName]
	if !ok {
		return nil, fmt.Errorf("%w: client certificate subject CN=%q is not an active principal", ErrUnauthenticated, c.Subject.CommonName)
	}
	if ph.expired(now) {
		return nil, fmt.Errorf("%w: principal %q expired at %s", ErrUnauthenticated, c.Subject.CommonName, ph.expires.UTC().Format(time.RFC3339))
	}
	return ph.p, nil
}

// PrincipalByName returns the active principal of the tokens file named
// name, for listeners that do not authenticate their peers themselves
// (syslog over TCP and UDP append as one named principal). It refuses the
// admin token's holder: it may append anywhere, and an unauthenticated
// listener must carry only the grants it needs. A revoked or expired
// principal is refused from that moment, so callers look it up per use.
func (a *TokenAuth) PrincipalByName(name string) (*Principal, error) {
	if name == AdminName {
		return nil, errAdminPrincipal
	}
	ph, ok := a.cur.Load().byName[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q is not an active principal of %s (create it with trail token create --name %s --append PATTERN)",
			ErrUnauthenticated, name, TokensFile, name)
	}
	if ph.expired(a.now()) {
		return nil, fmt.Errorf("%w: principal %q expired at %s", ErrUnauthenticated, name, ph.expires.UTC().Format(time.RFC3339))
	}
	return ph.p, nil
}

// PrincipalByCertificate returns the principal a verified client
// certificate names by its subject common name, as HTTPS maps it.
func (a *TokenAuth) PrincipalByCertificate(c *x509.Certificate) (*Principal, error) {
	return a.cur.Load().byCertificate(c, a.now())
}

// errAdminPrincipal refuses the admin as a listener's principal.
var errAdminPrincipal = fmt.Errorf("%w: the admin may append to any stream; give the listener a principal of its own with only the append grants it needs", ErrUnauthenticated)
