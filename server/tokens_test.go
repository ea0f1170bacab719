package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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
	"github.com/trailhq/trail/internal/access"
	"github.com/trailhq/trail/server"
)

// mxReach is how soon a token change must reach a running server.
const mxReach = time.Second

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

	tok := mxCreate(t, s.dir, access.Principal{Name: "late-comer", Read: []string{"patient/1"}})
	created := time.Now()
	if !strings.HasPrefix(tok, server.TokenPrefix) || len(tok) < len(server.TokenPrefix)+43 {
		t.Errorf("token %q: want %s and 32 random bytes", tok, server.TokenPrefix)
	}
	took := mxWaitStatus(t, s, mxHead(tok), created, http.StatusOK, http.StatusUnauthorized)
	t.Logf("created token honoured after %v", took)
	mxProblem(t, mxServe(s.h, mxAddr(), mxRequest{method: http.MethodGet, path: "/v1/streams/patient/2", token: tok}),
		http.StatusForbidden, "read grant", "patient/2")

	if err := access.Revoke(s.dir, "late-comer", time.Now()); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	took = mxWaitStatus(t, s, mxHead(tok), revoked, http.StatusUnauthorized, http.StatusOK)
	t.Logf("revoked token refused after %v", took)
	time.Sleep(server.PolicyReload + 50*time.Millisecond)
	mxUnauthorized(t, mxServe(s.h, mxAddr(), mxHead(tok)))

	if _, err := access.Create(s.dir, access.Principal{Name: "late-comer"}, time.Now()); !errors.Is(err, access.ErrExists) {
		t.Errorf("create a revoked name again: %v, want ErrExists (revoke does not free a name)", err)
	}
	if err := access.Revoke(s.dir, "no-such-one", time.Now()); !errors.Is(err, access.ErrNotFound) {
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
	s := mxStart(t, mxFast(), []access.Principal{{Name: "steady", Read: []string{"patient/*"}, Append: []string{"patient/*"}}})
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
		p := access.Principal{Name: fmt.Sprintf("churn-%02d", i), Read: []string{"patient/1"}, Append: []string{"patient/*"}}
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
		if err := access.Revoke(s.dir, c.name, time.Now()); err != nil {
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

// TestTokenFileMalformed: a tokens file that does not parse, or parses into
// an invalid policy, leaves the previous policy in force; "trail token
// create" refuses to build on it; once repaired, changes apply again.
func TestTokenFileMalformed(t *testing.T) {
	t.Parallel()
	s := mxStart(t, mxFast(), []access.Principal{{Name: "steady", Read: []string{"patient/1"}}})
	mxAppend(t, s.l, mxEvent("patient/1", "1", "dr-one"))
	path := filepath.Join(s.dir, access.FileName)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	works := func(what string) {
		t.Helper()
		for _, tok := range []string{s.tokens["steady"], string(s.admin)} {
			if r := mxServe(s.h, mxAddr(), mxHead(tok)); r.status != http.StatusOK {
				t.Errorf("%s: got %v, want the previous policy in force (200)", what, r)
			}
		}
	}
	// Written in place, as an editor might, and picked up by the watcher.
	if err := os.WriteFile(path, []byte(`{"principals": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2*server.PolicyReload + 100*time.Millisecond)
	works("truncated JSON, after the watcher saw it")

	bad := map[string]string{
		"empty":          "",
		"half":           string(good[:len(good)/2]),
		"not an object":  `[1,2,3]`,
		"bad hash":       strings.Replace(string(good), `"token_sha256": "`, `"token_sha256": "zz`, 1),
		"duplicate name": `{"principals":[` + mxPrincipalJSON("a") + `,` + mxPrincipalJSON("a") + `]}`,
		"bad pattern":    `{"principals":[{"name":"x","token_sha256":"` + strings.Repeat("ab", 32) + `","read":["patient/../2"]}]}`,
	}
	for name, content := range bad {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := s.auth.Reload(); err == nil {
			t.Errorf("%s tokens file: reloaded without error", name)
		}
		works(name + " tokens file")
	}
	if _, err := access.Create(s.dir, access.Principal{Name: "on-broken"}, time.Now()); err == nil {
		t.Errorf("token create over a malformed tokens file succeeded: it must not replace what it cannot read")
	}

	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	tok := mxCreate(t, s.dir, access.Principal{Name: "after-repair", Read: []string{"patient/1"}})
	mxWaitStatus(t, s, mxHead(tok), time.Now(), http.StatusOK, http.StatusUnauthorized)
	works("repaired tokens file")
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
	s := mxStart(t, mxFast(), []access.Principal{{Name: "reader-1", Read: []string{"patient/1"}}})
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
		tok := access.NewToken()
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
	s := mxStart(t, mxFast(), []access.Principal{{Name: "watcher", Read: []string{"patient/*"}}})
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

	if err := access.Revoke(s.dir, "watcher", time.Now()); err != nil {
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
