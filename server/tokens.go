package server

import (
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

	"github.com/trailhq/trail/internal/access"
)

// PolicyReload is how often TokenAuth looks for a changed tokens file: a
// created or revoked token takes effect within it.
const PolicyReload = 250 * time.Millisecond

// TokenAuth authenticates with the admin token, the principals of
// DIR/tokens.json (reloaded when the file changes, so "trail token create"
// and "revoke" take effect in a running server), and, over TLS, a verified
// client certificate whose subject common name is a principal's name.
//
// A policy is swapped in whole (one atomic pointer), so no request sees a
// half-changed one. A malformed file leaves the previous policy in force; a
// missing file is an empty policy (only the admin token works). Tokens are compared by their SHA-256, in constant time,
// against every principal's.
type TokenAuth struct {
	dir   string
	admin [32]byte
	log   *slog.Logger
	cur   atomic.Pointer[policyView]

	mu     sync.Mutex // guards seen and failed
	seen   fileID     // the file last loaded
	failed fileID     // the file last found malformed

	stop chan struct{}
	done chan struct{}
}

// policyView is a loaded policy.
type policyView struct {
	hashes []principalHash
	byName map[string]*Principal
}

type principalHash struct {
	hash [32]byte
	p    *Principal
}

// fileID tells a changed file: the rename of a new file changes the inode.
type fileID struct {
	ino   uint64
	size  int64
	mtime time.Time
}

// NewTokenAuth loads the policy of dir and starts watching it; Close stops.
func NewTokenAuth(dir string, admin Token, logger *slog.Logger) (*TokenAuth, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	a := &TokenAuth{dir: dir, admin: HashToken(admin), log: logger, stop: make(chan struct{}), done: make(chan struct{})}
	if _, err := a.Reload(); err != nil {
		return nil, err
	}
	go a.watch()
	return a, nil
}

// Close stops watching the policy file.
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
				a.log.Error("tokens file not reloaded; the previous policy stays in force", "err", err)
			} else if changed {
				a.log.Info("tokens file reloaded", "principals", len(a.cur.Load().byName))
			}
		}
	}
}

// Reload reads the policy file if it changed since the last load.
func (a *TokenAuth) Reload() (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	path := filepath.Join(a.dir, access.FileName)
	var id fileID
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return false, err
	default:
		id = fileID{size: st.Size(), mtime: st.ModTime()}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			id.ino = sys.Ino
		}
	}
	if id == a.seen && a.cur.Load() != nil {
		return false, nil
	}
	pol, err := access.Load(a.dir)
	if err != nil {
		if a.failed == id {
			return false, nil // reported when it appeared
		}
		a.failed = id
		return false, err
	}
	a.failed = fileID{}
	v := &policyView{byName: map[string]*Principal{}}
	for _, pr := range pol.Principals {
		if pr.Revoked != nil {
			continue
		}
		var ph principalHash
		hex.Decode(ph.hash[:], []byte(pr.TokenSHA256))
		ph.p = &Principal{Name: pr.Name, Admin: pr.Admin, BreakGlass: pr.BreakGlass, Append: pr.Append, Read: pr.Read}
		v.hashes = append(v.hashes, ph)
		v.byName[pr.Name] = ph.p
	}
	a.cur.Store(v)
	a.seen = id
	return true, nil
}

var adminPrincipal = &Principal{Name: access.AdminName, Admin: true}

// Authenticate implements Authenticator.
func (a *TokenAuth) Authenticate(r *http.Request) (*Principal, error) {
	v := a.cur.Load()
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return v.byCertificate(r.TLS.VerifiedChains[0][0])
	}
	tok, ok := bearer(r)
	if !ok {
		return nil, ErrUnauthenticated
	}
	h := HashToken(tok)
	var found *Principal
	if subtle.ConstantTimeCompare(h[:], a.admin[:]) == 1 {
		found = adminPrincipal
	}
	for _, ph := range v.hashes { // every one, so the time does not tell which matched
		if subtle.ConstantTimeCompare(h[:], ph.hash[:]) == 1 {
			found = ph.p
		}
	}
	if found == nil {
		return nil, ErrUnauthenticated
	}
	return found, nil
}

// byCertificate maps a verified client certificate to the principal its
// subject common name names.
func (v *policyView) byCertificate(c *x509.Certificate) (*Principal, error) {
	p, ok := v.byName[c.Subject.CommonName]
	if !ok {
		return nil, fmt.Errorf("%w: client certificate subject CN=%q is not an active principal", ErrUnauthenticated, c.Subject.CommonName)
	}
	return p, nil
}
