package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/server"
)

// mxReach is how soon a token change must reach a running server: the
// contract's second, stretched under the race detector, which slows the
// server's goroutines several times over (raceSlowdown).
const mxReach = time.Second * raceSlowdown

// mxFast is an engine configuration for tests that store many events and
// do not test durability.
func mxFast() trail.Config {
	cfg := trail.DefaultConfig()
	cfg.Sync = trail.SyncNone
	return cfg
}

// mxAddrs hands out client addresses, one per request, so that the
// failed-authentication limit (per address) stays out of tests that are not
// about it.
var mxAddrs atomic.Uint32

func mxAddr() string {
	n := mxAddrs.Add(1)
	return fmt.Sprintf("10.%d.%d.%d:40000", n>>16&0xff, n>>8&0xff, n&0xff)
}

// mxHead is a read of patient/1's head with token.
func mxHead(token string) mxRequest {
	return mxRequest{method: http.MethodGet, path: "/v1/streams/patient/1", token: token}
}

// mxWaitStatus repeats rq until it answers want and returns how long that
// took from since; it fails the test when it takes longer than mxReach.
// Every answer on the way must be want or other.
func mxWaitStatus(t *testing.T, s *mxServer, rq mxRequest, since time.Time, want, other int) time.Duration {
	t.Helper()
	for {
		r := mxServe(s.h, mxAddr(), rq)
		took := time.Since(since)
		switch {
		case r.status == want:
			return took
		case r.status != other:
			t.Fatalf("after %v: got %v, want %d or %d", took, r, want, other)
		case took > mxReach:
			t.Fatalf("still %d %v after the change: token changes must reach a running server within %v", r.status, took, mxReach)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTokenLifecycle: a token made with "trail token create" while the server
// runs works within a second; revoked, it is refused within a second, and
// stays refused; its name is not free again.
func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	s := mxStart(t, mxFast(), nil)
	mxAppend(t, s.l, mxEvent("patient/1", "1", "dr-one"))

	tok := mxCreate(t, s.dir, auth.Entry{Name: "late-comer", Read: []string{"patient/1"}})
	created := time.Now()
	if !strings.HasPrefix(tok, server.TokenPrefix) || len(tok) < len(server.TokenPrefix)+43 {
		t.Errorf("token %q: want %s and 32 random bytes", tok, server.TokenPrefix)
	}
	took := mxWaitStatus(t, s, mxHead(tok), created, http.StatusOK, http.StatusUnauthorized)
	t.Logf("created token honoured after %v", took)
	mxProblem(t, mxServe(s.h, mxAddr(), mxRequest{method: http.MethodGet, path: "/v1/streams/patient/2", token: tok}),
		http.StatusForbidden, "read grant", "patient/2")

	if err := auth.Revoke(s.dir, "late-comer", time.Now()); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	took = mxWaitStatus(t, s, mxHead(tok), revoked, http.StatusUnauthorized, http.StatusOK)
	t.Logf("revoked token refused after %v", took)
	time.Sleep(server.PolicyReload + 50*time.Millisecond)
	mxUnauthorized(t, mxServe(s.h, mxAddr(), mxHead(tok)))

	if _, err := auth.Create(s.dir, auth.Entry{Name: "late-comer"}, time.Now()); !errors.Is(err, auth.ErrExists) {
		t.Errorf("create a revoked name again: %v, want ErrExists (revoke does not free a name)", err)
	}
	if err := auth.Revoke(s.dir, "no-such-one", time.Now()); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("revoke an unknown name: %v, want ErrNotFound", err)
	}
}

// mxObs is one answer a principal's token got.
type mxObs struct {
	sent, got time.Time
	status    int
}

// mxChurn is a principal created and revoked while requests run.
type mxChurn struct {
	name, token       string
	created           time.Time // Create returned
	revoking, revoked time.Time // Revoke called, returned
	mu                sync.Mutex
	obs               []mxObs
}

// TestTokenPolicySwapUnderLoad: principals are created and revoked one after
// another while goroutines send requests with their tokens and with one
// token that never changes. The steady token always works; every other
// answer is 200/201 or 401 as the token's state allows (a change may take up
// to a second to arrive, never more), a token never flaps between working
// and refused, and nothing answers 500: no request sees a half-written
// policy.
func TestTokenPolicySwapUnderLoad(t *testing.T) {
	t.Parallel()
	s := mxStart(t, mxFast(), []auth.Entry{{Name: "steady", Read: []string{"patient/*"}, Append: []string{"patient/*"}}})
	mxAppend(t, s.l, mxEvent("patient/1", "1", "dr-one"))
	steady := &mxChurn{name: "steady", token: s.tokens["steady"]}

	var (
		mu    sync.Mutex
		churn = []*mxChurn{steady}
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for g := range 8 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				c := churn[rnd.IntN(len(churn))]
				mu.Unlock()
				rq := mxHead(c.token)
				if i%2 == 1 {
					rq = mxRequest{method: http.MethodPost, path: "/v1/events", token: c.token,
						body: []byte(`{"stream":"patient/` + strconv.Itoa(g) + `","type":"t","action":"C","actor":{"id":"` + c.name + `"}}`)}
				}
				o := mxObs{sent: time.Now()}
				o.status = mxServe(s.h, mxAddr(), rq).status
				o.got = time.Now()
				c.mu.Lock()
				c.obs = append(c.obs, o)
				c.mu.Unlock()
				time.Sleep(100 * time.Microsecond)
			}
		})
	}

	const n = 24
	var made []*mxChurn
	for i := range n {
		p := auth.Entry{Name: fmt.Sprintf("churn-%02d", i), Read: []string{"patient/1"}, Append: []string{"patient/*"}}
		c := &mxChurn{name: p.Name, token: mxCreate(t, s.dir, p), created: time.Now()}
		made = append(made, c)
		mu.Lock()
		churn = append(churn, c)
		mu.Unlock()
		time.Sleep(15 * time.Millisecond)
	}
	time.Sleep(2 * server.PolicyReload)
	for _, c := range made {
		c.revoking = time.Now()
		if err := auth.Revoke(s.dir, c.name, time.Now()); err != nil {
			t.Fatal(err)
		}
		c.revoked = time.Now()
		time.Sleep(15 * time.Millisecond)
	}
	time.Sleep(mxReach + 300*time.Millisecond)
	close(stop)
	wg.Wait()

	total := 0
	for _, o := range steady.obs {
		total++
		if o.status != http.StatusOK && o.status != http.StatusCreated {
			t.Errorf("steady token got %d at %v: a change of other principals must not disturb it", o.status, o.sent)
		}
	}
	for _, c := range made {
		total += len(c.obs)
		mxCheckChurn(t, c)
	}
	t.Logf("%d requests, %d principals created and revoked", total, n)
}

// mxCheckChurn checks the answers one churned token got.
func mxCheckChurn(t *testing.T, c *mxChurn) {
	t.Helper()
	ok := func(o mxObs) bool { return o.status == http.StatusOK || o.status == http.StatusCreated }
	var firstOK, lastOK *mxObs
	for i := range c.obs {
		o := &c.obs[i]
		switch {
		case o.status != http.StatusUnauthorized && !ok(*o):
			t.Errorf("%s: answer %d: only 200/201 or 401 may be", c.name, o.status)
		case ok(*o) && o.sent.After(c.revoked.Add(mxReach)):
			t.Errorf("%s: %d for a request sent %v after its revocation", c.name, o.status, o.sent.Sub(c.revoked))
		case !ok(*o) && o.sent.After(c.created.Add(mxReach)) && o.got.Before(c.revoking):
			t.Errorf("%s: 401 for a request sent %v after its creation, before its revocation", c.name, o.sent.Sub(c.created))
		}
		if ok(*o) {
			if firstOK == nil || o.got.Before(firstOK.got) {
				firstOK = o
			}
			if lastOK == nil || o.sent.After(lastOK.sent) {
				lastOK = o
			}
		}
	}
	if firstOK == nil || !slices.ContainsFunc(c.obs, func(o mxObs) bool { return o.status == http.StatusUnauthorized && o.sent.After(c.revoked) }) {
		t.Errorf("%s: %d requests, none that worked or none refused after its revocation: the test did not exercise it", c.name, len(c.obs))
	}
	// Once working, refused, then working again: a policy went backwards.
	for _, o := range c.obs {
		if o.status == http.StatusUnauthorized && firstOK != nil && firstOK.got.Before(o.sent) && lastOK.sent.After(o.got) {
			t.Errorf("%s: 401 at %v between answers that worked (%v, %v): the policy flapped", c.name,
				o.sent.Sub(c.created), firstOK.got.Sub(c.created), lastOK.sent.Sub(c.created))
			return
		}
	}
}

// TestTokenFileMalformed: a changed tokens file that does not parse, parses
// into an invalid policy, names a reserved principal, or cannot be read at
// all leaves the server unsure whether a token was revoked: every read but
// the admin's is refused with 503 (within a second, saying why), appends go
// on under the previous policy, each failed load is counted in
// trail_tokens_reload_errors_total; "trail token create" refuses to build on
// it; once repaired, reads work again and changes apply.
func TestTokenFileMalformed(t *testing.T) {
	t.Parallel()
	s := mxStart(t, mxFast(), []auth.Entry{{Name: "steady", Read: []string{"patient/1"}, Append: []string{"patient/*"}}})
	mxAppend(t, s.l, mxEvent("patient/1", "1", "dr-one"))
	path := filepath.Join(s.dir, auth.TokensFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	steady := s.tokens["steady"]
	works := func(what string) {
		t.Helper()
		for _, tok := range []string{steady, string(s.admin)} {
			if r := mxServe(s.h, mxAddr(), mxHead(tok)); r.status != http.StatusOK {
				t.Errorf("%s: got %v, want reads back (200)", what, r)
			}
		}
	}
	refused := func(what string) {
		t.Helper()
		mxWaitStatus(t, s, mxHead(steady), time.Now(), http.StatusServiceUnavailable, http.StatusOK)
		r := mxServe(s.h, mxAddr(), mxHead(steady))
		mxProblem(t, r, http.StatusServiceUnavailable, "tokens file", "unreadable")
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", what)
		}
		q := mxServe(s.h, mxAddr(), mxRequest{method: http.MethodGet, path: "/v1/events", query: url.Values{"stream": {"patient/1"}}, token: steady})
		mxProblem(t, q, http.StatusServiceUnavailable, "tokens file")
		if r := mxServe(s.h, mxAddr(), mxHead(string(s.admin))); r.status != http.StatusOK {
			t.Errorf("%s: the admin's read got %v, want 200", what, r)
		}
		b := []byte(`{"stream":"patient/2","type":"t","action":"C","actor":{"id":"app"}}`)
		if r := mxServe(s.h, mxAddr(), mxRequest{method: http.MethodPost, path: "/v1/events", body: b, token: steady}); r.status != http.StatusCreated {
			t.Errorf("%s: an append under the previous policy got %v, want 201", what, r)
		}
	}
	// Written in place, as an editor might, and picked up by the watcher.
	before := mxReloadErrors(t, s)
	if err := os.WriteFile(path, []byte(`{"principals": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	refused("truncated JSON")
	time.Sleep(2 * server.PolicyReload)
	if n := mxReloadErrors(t, s); n < before+2 {
		t.Errorf("trail_tokens_reload_errors_total went from %v to %v while the file stayed broken, want it counting", before, n)
	}

	bad := map[string]string{
		"empty":          "",
		"half":           string(good[:len(good)/2]),
		"not an object":  `[1,2,3]`,
		"bad hash":       strings.Replace(string(good), `"token_sha256": "`, `"token_sha256": "zz`, 1),
		"duplicate name": `{"principals":[` + mxPrincipalJSON("a") + `,` + mxPrincipalJSON("a") + `]}`,
		"bad pattern":    `{"principals":[{"name":"x","token_sha256":"` + strings.Repeat("ab", 32) + `","read":["patient/../2"]}]}`,
		"admin":          `{"principals":[` + mxPrincipalJSON("admin") + `]}`,
		"trail prefix":   `{"principals":[` + mxPrincipalJSON("trail-sync") + `]}`,
	}
	for name, content := range bad {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.auth.Reload(); err == nil {
			t.Errorf("%s tokens file: reloaded without error", name)
		}
		refused(name + " tokens file")
		if err := os.WriteFile(path, good, 0o600); err != nil {
			t.Fatal(err)
		}
		mxWaitStatus(t, s, mxHead(steady), time.Now(), http.StatusOK, http.StatusServiceUnavailable)
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Create(s.dir, auth.Entry{Name: "on-broken"}, time.Now()); err == nil {
		t.Errorf("token create over a malformed tokens file succeeded: it must not replace what it cannot read")
	}

	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	tok := mxCreate(t, s.dir, auth.Entry{Name: "after-repair", Read: []string{"patient/1"}})
	mxWaitStatus(t, s, mxHead(tok), time.Now(), http.StatusOK, http.StatusUnauthorized)
	works("repaired tokens file")
}

// TestTokenFileUnreadable: a tokens file the server cannot read at all — the
// finding was a root-owned 0600 file and a server running as another user;
// the tests run as root, which ignores modes, so here a directory and a
// symbolic-link loop stand in its place, which fail for root too — refuses
// reads but the admin's and keeps appends, until the file is back; a
// revocation the server could not read is then in force.
func TestTokenFileUnreadable(t *testing.T) {
	t.Parallel()
	s := mxStart(t, mxFast(), []auth.Entry{
		{Name: "reader", Read: []string{"patient/1"}, Append: []string{"patient/*"}},
		{Name: "kept", Read: []string{"patient/1"}},
	})
	mxAppend(t, s.l, mxEvent("patient/1", "1", "dr-one"))
	path := filepath.Join(s.dir, auth.TokensFile)
	reader := s.tokens["reader"]
	for _, c := range []struct {
		name    string
		breakIt func() error
	}{
		{"directory", func() error { return os.Mkdir(path, 0o700) }},
		{"symlink loop", func() error { return os.Symlink(auth.TokensFile, path) }},
	} {
		// The revocation is written, then the file made unreadable.
		if err := auth.Revoke(s.dir, "reader", time.Now()); err != nil {
			t.Fatal(err)
		}
		good, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		before := mxReloadErrors(t, s)
		if err := c.breakIt(); err != nil {
			t.Fatal(err)
		}
		mxWaitStatus(t, s, mxHead(s.tokens["kept"]), time.Now(), http.StatusServiceUnavailable, http.StatusOK)
		mxProblem(t, mxServe(s.h, mxAddr(), mxHead(s.tokens["kept"])), http.StatusServiceUnavailable, "tokens file")
		// The watcher may have seen the revocation before the file broke
		// (401); either way the revoked reader reads nothing.
		if r := mxServe(s.h, mxAddr(), mxHead(reader)); r.status != http.StatusServiceUnavailable && r.status != http.StatusUnauthorized {
			t.Errorf("%s: the revoked reader got %v, want 503 or 401", c.name, r)
		}
		if r := mxServe(s.h, mxAddr(), mxHead(string(s.admin))); r.status != http.StatusOK {
			t.Errorf("%s: the admin's read got %v, want 200", c.name, r)
		}
		b := []byte(`{"stream":"patient/2","type":"t","action":"C","actor":{"id":"app"}}`)
		if r := mxServe(s.h, mxAddr(), mxRequest{method: http.MethodPost, path: "/v1/events", body: b, token: string(s.admin)}); r.status != http.StatusCreated {
			t.Errorf("%s: an append got %v, want 201", c.name, r)
		}
		if n := mxReloadErrors(t, s); n <= before {
			t.Errorf("%s: trail_tokens_reload_errors_total %v, was %v: the failure is not counted", c.name, n, before)
		}

		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, good, 0o600); err != nil {
			t.Fatal(err)
		}
		mxWaitStatus(t, s, mxHead(s.tokens["kept"]), time.Now(), http.StatusOK, http.StatusServiceUnavailable)
		mxUnauthorized(t, mxServe(s.h, mxAddr(), mxHead(reader)))
		// The next round revokes a principal that is revoked already.
	}
}

// mxReloadErrors reads trail_tokens_reload_errors_total from /metrics.
func mxReloadErrors(t *testing.T, s *mxServer) float64 {
	t.Helper()
	r := mxServe(s.h, mxAddr(), mxRequest{method: http.MethodGet, path: "/metrics"})
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, "trail_tokens_reload_errors_total "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("/metrics has no trail_tokens_reload_errors_total:\n%s", r.body)
	return 0
}

func mxPrincipalJSON(name string) string {
	return `{"name":"` + name + `","token_sha256":"` + strings.Repeat("ab", 32) + `","created":"2026-01-01T00:00:00Z"}`
}

// TestFailedAuthRateLimit: an address that sends more than 20 invalid
// credentials quickly gets 429 with Retry-After, and no record; a valid
// token from another address still works, public endpoints stay open, and
// after Retry-After the address may try again.
func TestFailedAuthRateLimit(t *testing.T) {
	t.Parallel()
	s := mxStart(t, mxFast(), []auth.Entry{{Name: "reader-1", Read: []string{"patient/1"}}})
	s.serve(t)
	mxAppend(t, s.l, mxEvent("patient/1", "1", "dr-one"))
	guesser, other := mxClientFrom(t, "127.0.0.20"), mxClientFrom(t, "127.0.0.21")
	send := func(c *http.Client, rq mxRequest) mxReply {
		t.Helper()
		r, err := mxSend(t.Context(), c, s.url, rq)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	size := s.l.Size()
	var r mxReply
	tries := 0
	for tries = 1; tries <= 40; tries++ {
		tok := string(auth.NewToken())
		if tries%3 == 0 {
			tok = "" // no token counts as a failure too
		}
		r = send(guesser, mxHead(tok))
		if r.status != http.StatusUnauthorized {
			break
		}
	}
	if tries <= 20 {
		t.Errorf("limited after %d failures, want the 21st at the earliest", tries-1)
	}
	mxProblem(t, r, http.StatusTooManyRequests)
	ra, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Errorf("429 with Retry-After %q, want a number of seconds ≥ 1", r.header.Get("Retry-After"))
	}

	if r := send(other, mxHead(s.tokens["reader-1"])); r.status != http.StatusOK {
		t.Errorf("valid token from another address: got %v, want 200", r)
	}
	if r := send(guesser, mxRequest{method: http.MethodGet, path: "/v1/checkpoint"}); r.status != http.StatusOK {
		t.Errorf("public checkpoint from the limited address: got %v, want 200", r)
	}
	if got := mxSince(t, s.l, size); len(got) != 1 || got[0].Actor.ID != "reader-1" {
		t.Errorf("stored %+v, want only the valid read's record (401s and 429s are not recorded)", got)
	}

	time.Sleep(time.Duration(ra)*time.Second + 50*time.Millisecond)
	if r := send(guesser, mxHead(s.tokens["reader-1"])); r.status != http.StatusOK {
		t.Errorf("valid token from the limited address after Retry-After: got %v, want 200", r)
	}
	// The same holds for many addresses on the handler itself.
	for i := range 21 {
		r := mxServe(s.h, "[2001:db8::7]:1", mxRequest{method: http.MethodGet, path: "/v1/events", query: url.Values{"limit": {"1"}}, token: "trail_x"})
		if want := http.StatusUnauthorized; i < 20 && r.status != want {
			t.Fatalf("failure %d from an IPv6 address: %v", i+1, r)
		}
		if i == 20 {
			mxProblem(t, r, http.StatusTooManyRequests)
		}
	}
}

// TestRevokeEndsLiveTail: revoking a principal stops what its token can
// read, live tails included: an event stored more than a second after the
// revocation never reaches a tail the principal opened before it.
func TestRevokeEndsLiveTail(t *testing.T) {
	t.Parallel()
	s := mxStart(t, mxFast(), []auth.Entry{{Name: "watcher", Read: []string{"patient/*"}}})
	s.serve(t)
	mxAppend(t, s.l, mxEvent("patient/1", "1", "dr-one"))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v1/tail?stream=patient/1", nil)
	req.Header.Set("Authorization", "Bearer "+s.tokens["watcher"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tail: %d", resp.StatusCode)
	}
	ids := make(chan uint64, 16)
	go func() {
		defer close(ids)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				ids <- n
			}
		}
	}()
	before := mxAppend(t, s.l, mxEvent("patient/1", "1", "dr-one"))[0]
	if got := <-ids; got != before {
		t.Fatalf("tail sent %d, want %d", got, before)
	}

	if err := auth.Revoke(s.dir, "watcher", time.Now()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(mxReach + 200*time.Millisecond)
	mxUnauthorized(t, mxServe(s.h, mxAddr(), mxHead(s.tokens["watcher"])))
	after := mxAppend(t, s.l, mxEvent("patient/1", "1", "dr-one"))[0]
	select {
	case got, open := <-ids:
		if open {
			t.Errorf("event %d, stored %v after its principal was revoked, was sent on the principal's live tail (got id %d): revocation does not reach open tails",
				after, mxReach+200*time.Millisecond, got)
		}
	case <-time.After(time.Second):
		t.Logf("the tail is still open but sent nothing")
	}
}

// TestTokenExpires: a token created with an expiry works until then and is
// refused (401) from that moment, with no change to the tokens file; a live
// tail of it ends.
func TestTokenExpires(t *testing.T) {
	t.Parallel()
	s := mxStart(t, mxFast(), []auth.Entry{{Name: "steady", Read: []string{"patient/1"}}})
	mxAppend(t, s.l, mxEvent("patient/1", "1", "dr-one"))
	expires := time.Now().Add(1500 * time.Millisecond)
	tok := mxCreate(t, s.dir, auth.Entry{Name: "temp", Read: []string{"patient/1"}, Expires: &expires})
	mxWaitStatus(t, s, mxHead(tok), time.Now(), http.StatusOK, http.StatusUnauthorized)
	st, err := os.Stat(filepath.Join(s.dir, auth.TokensFile))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(expires))
	r := mxServe(s.h, mxAddr(), mxHead(tok))
	mxUnauthorized(t, r)
	if !strings.Contains(string(r.body), "expired") {
		t.Errorf("401 for an expired token does not say it expired: %s", r.body)
	}
	if r := mxServe(s.h, mxAddr(), mxHead(s.tokens["steady"])); r.status != http.StatusOK {
		t.Errorf("another principal's read after the expiry: %v", r)
	}
	if st2, err := os.Stat(filepath.Join(s.dir, auth.TokensFile)); err != nil || !st2.ModTime().Equal(st.ModTime()) {
		t.Errorf("the tokens file changed (%v): expiry must not need a change", err)
	}
	if _, err := auth.Create(s.dir, auth.Entry{Name: "past", Expires: &expires}, time.Now()); err == nil {
		t.Errorf("created a principal that expired already")
	}
}

// TestTokenFileFailureLogged: while the tokens file stays unreadable the
// failure is logged about once a second, not once and not on every check.
func TestTokenFileFailureLogged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mxCreate(t, dir, auth.Entry{Name: "one"})
	var buf mxLockedBuffer
	a, err := server.NewTokenAuth(dir, server.NewToken(), slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := os.WriteFile(filepath.Join(dir, auth.TokensFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3*time.Second + server.PolicyReload)
	// Once a second is 3 or 4 times; a loaded machine may delay a check,
	// and every check (4 a second) would be 13.
	if n := strings.Count(buf.String(), "tokens file unreadable"); n < 2 || n > 5 {
		t.Errorf("logged %d times in about 3 s, want once a second:\n%s", n, buf.String())
	}
}

// mxLockedBuffer is a bytes.Buffer safe for a logger's goroutine.
type mxLockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *mxLockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *mxLockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
