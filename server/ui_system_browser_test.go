package server_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

// apiAppend stores an event through the API (POST /v1/events) as the admin.
func (e *uiEnv) apiAppend(t testing.TB, ev trail.Event) uint64 {
	t.Helper()
	body, _ := json.Marshal(ev)
	req, _ := http.NewRequest(http.MethodPost, e.url+"/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+string(e.admin))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rc trail.Receipt
	if err := json.NewDecoder(resp.Body).Decode(&rc); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /v1/events: %d %v", resp.StatusCode, err)
	}
	return rc.Index
}

// consistencyVerdict waits for the System page's consistency check and
// returns its result and text.
func (tb *tab) consistencyVerdict() (result, text string) {
	tb.t.Helper()
	tb.run(chromedp.WaitVisible(chromedp.CSS(`#consistency[data-result="pass"], #consistency[data-result="fail"]`)))
	return value(tb, chromedp.AttributeValue(chromedp.CSS("#consistency"), "data-result")).Value, tb.text("#cons-status")
}

// TestConsoleBrowserSystem: the System page shows the checkpoint, its age
// and readiness; the first visit pins the key and remembers the
// checkpoint; after appends the log is shown consistent with it; a
// remembered checkpoint the log does not extend (another root at a size,
// a larger size, another log) fails loudly and is kept, not replaced; when
// the session ends or the server cannot be reached the page says so. The
// page's RFC 6962 consistency check agrees with a reference.
func TestConsoleBrowserSystem(t *testing.T) {
	br := chromium(t)
	e := startUI(t, server.ConsoleConfig{})
	mxAppend(t, e.l, uiEvent("123", "patient-record.read", "R", "nurse-jane", "Jane Doe", "nurse", ""))
	e.waitCheckpoint(t)

	tb := e.tab(t, br)
	tb.signIn(string(e.admin))
	tb.clickAndLoad(`nav a[href="/ui/system"]`)
	if r, text := tb.consistencyVerdict(); r != "pass" || !strings.Contains(text, "now remembers the checkpoint") {
		t.Fatalf("first visit: %s %q; steps %q", r, text, tb.text("#cons-steps"))
	}
	if steps := tb.text("#cons-steps"); !strings.Contains(steps, "pinned the server's key") || !strings.Contains(steps, "signed by the pinned key") {
		t.Errorf("first visit's steps: %q", steps)
	}
	cp := e.l.Checkpoint()
	if got := tb.text("#cp-size"); got != fmt.Sprint(cp.Size) {
		t.Errorf("checkpoint size shown %q, want %d", got, cp.Size)
	}
	if age := tb.text("#cp-age"); !strings.HasSuffix(age, " ago") {
		t.Errorf("checkpoint age shown %q", age)
	}
	if ready := tb.text("#ready"); !strings.HasPrefix(ready, "Ready") {
		t.Errorf("readiness shown %q", ready)
	}
	if *storeFlag == "postgres" {
		if repl := tb.text("#replication"); !strings.Contains(repl, "no standby") {
			t.Errorf("the admin sees replication %q", repl)
		}
	} else if disk := tb.text("#disk"); !strings.Contains(disk, "free of") {
		t.Errorf("the admin sees disk space %q", disk)
	}
	tb.shot("system")

	for range 5 {
		e.apiAppend(t, uiEvent("456", "patient-record.update", "U", "dr-house", "", "", ""))
	}
	e.waitCheckpoint(t)
	tb.run(chromedp.Reload())
	if r, text := tb.consistencyVerdict(); r != "pass" || !strings.Contains(text, "Consistent: this log still contains everything it showed this browser on") {
		t.Fatalf("after appends: %s %q; steps %q", r, text, tb.text("#cons-steps"))
	}
	if steps := tb.text("#cons-steps"); !strings.Contains(steps, fmt.Sprintf("from the checkpoint of %d event", cp.Size)) {
		t.Errorf("after appends, steps %q; want a proof from the %d events seen before", steps, cp.Size)
	}
	if r := tb.text("#remembered"); !strings.HasPrefix(r, fmt.Sprint(e.l.Checkpoint().Size)+" events") {
		t.Errorf("remembered after a pass: %q", r)
	}

	// Checkpoints the log does not extend.
	cp = e.l.Checkpoint()
	for _, c := range []struct {
		name, planted, says string
	}{
		{"another root at a smaller size", fmt.Sprintf(`{"origin":%q,"size":%d,"root":%q,"when":"2026-01-02T03:04:05Z"}`, cp.Origin, cp.Size-2, strings.Repeat("ab", 32)), "it was rewritten"},
		{"another root at a size not a power of two", fmt.Sprintf(`{"origin":%q,"size":%d,"root":%q,"when":"2026-01-02T03:04:05Z"}`, cp.Origin, 3, strings.Repeat("ab", 32)), "it was rewritten"},
		{"another root at the same size", fmt.Sprintf(`{"origin":%q,"size":%d,"root":%q,"when":"2026-01-02T03:04:05Z"}`, cp.Origin, cp.Size, strings.Repeat("cd", 32)), "another root hash at the same size"},
		{"a larger size", fmt.Sprintf(`{"origin":%q,"size":%d,"root":%q,"when":"2026-01-02T03:04:05Z"}`, cp.Origin, cp.Size+100, strings.Repeat("ab", 32)), "the log shrank"},
		{"another log", fmt.Sprintf(`{"origin":"example.org/other","size":1,"root":%q,"when":"2026-01-02T03:04:05Z"}`, strings.Repeat("ab", 32)), "another log"},
	} {
		eval[bool](tb, fmt.Sprintf(`localStorage.setItem("trail.lastCheckpoint", %q); true`, c.planted))
		tb.run(chromedp.Reload())
		r, text := tb.consistencyVerdict()
		if r != "fail" || !strings.HasPrefix(text, "FAILED") || !strings.Contains(text, c.says) {
			t.Errorf("%s: %s %q; want a failure saying %q", c.name, r, text, c.says)
		}
		if role := value(tb, chromedp.AttributeValue(chromedp.ID("cons-status"), "role")).Value; role != "alert" {
			t.Errorf("%s: the failure's role is %q, want alert", c.name, role)
		}
		if kept := eval[string](tb, `localStorage.getItem("trail.lastCheckpoint")`); kept != c.planted {
			t.Errorf("%s: after the failure the browser remembers %s, want what it saw", c.name, kept)
		}
		if c.name == "another root at a smaller size" {
			tb.shot("system-inconsistent")
		}
	}
	eval[bool](tb, `localStorage.removeItem("trail.lastCheckpoint"); true`)
	tb.run(chromedp.Reload())
	if r, _ := tb.consistencyVerdict(); r != "pass" {
		t.Errorf("after forgetting the remembered checkpoint: %s", r)
	}
	checkConsistencyJS(t, tb)

	// The session ends: the next refresh says so, with a way to sign in.
	tb.expect("status of 401")
	eval[bool](tb, `(async () => {
		const f = new FormData(); f.set("csrf", document.querySelector('form[action="/ui/signout"] input[name=csrf]').value);
		await fetch("/ui/signout", {method: "POST", body: new URLSearchParams(f), credentials: "same-origin"});
		await TrailSystem.refresh();
		return true;
	})()`)
	if p := tb.text("#sys-problem"); !strings.Contains(p, "Your session has ended") || !strings.Contains(p, "Sign in again") {
		t.Errorf("after sign-out the System page says %q", p)
	}
	if href := value(tb, chromedp.AttributeValue(chromedp.CSS("#sys-problem a"), "href")).Value; !strings.HasPrefix(href, "/ui/signin") {
		t.Errorf("the sign-in link goes to %q", href)
	}
	tb.shot("system-ended")

	// The server cannot be reached.
	tb2 := e.tab(t, br)
	tb2.signIn(e.tokens["dr-house"])
	tb2.open("/ui/system")
	tb2.consistencyVerdict()
	if ops := tb2.text("#ops-admin"); !strings.Contains(ops, "administrators only") {
		t.Errorf("dr-house's System page says %q about operations", ops)
	}
	tb2.shot("system-clinician")
	tb2.expect("ERR_CONNECTION_REFUSED")
	tb2.expect("Failed to fetch")
	e.ts.CloseClientConnections()
	e.ts.Close()
	eval[bool](tb2, `TrailSystem.refresh().then(() => true)`)
	if p := tb2.text("#sys-problem"); !strings.Contains(p, "The server cannot be reached") || !strings.Contains(p, "Trying again every 10 s") {
		t.Errorf("with the server gone the System page says %q", p)
	}
	tb2.shot("system-unreachable")
	tb.clean()
	tb2.clean()
}

// checkConsistencyJS: the page's RFC 6962 consistency check accepts the
// reference's proof between every pair of sizes up to 40, and refuses it
// with either root altered, with a hash of the proof altered, and for
// another first size.
func checkConsistencyJS(t *testing.T, tb *tab) {
	type consistencyCase struct {
		Size1  uint64   `json:"size1"`
		Size2  uint64   `json:"size2"`
		Root1  string   `json:"root1"`
		Root2  string   `json:"root2"`
		Hashes []string `json:"hashes"`
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	for i := range 40 {
		tree.AppendData([]byte(fmt.Sprintf("leaf %d", i)))
	}
	var cases []consistencyCase
	for size2 := uint64(1); size2 <= tree.Size(); size2++ {
		for size1 := uint64(0); size1 <= size2; size1++ {
			p, err := tree.ConsistencyProof(size1, size2)
			if err != nil {
				t.Fatal(err)
			}
			c := consistencyCase{Size1: size1, Size2: size2, Root1: hex.EncodeToString(tree.HashAt(size1)), Root2: hex.EncodeToString(tree.HashAt(size2)), Hashes: []string{}}
			for _, h := range p {
				c.Hashes = append(c.Hashes, hex.EncodeToString(h))
			}
			cases = append(cases, c)
		}
	}
	js, _ := json.Marshal(cases)
	res := eval[map[string]int](tb, `(async (cases) => {
		const h = s => new Uint8Array(s.match(/../g).map(b => parseInt(b, 16)));
		const flip = s => (s[0] === "0" ? "1" : "0") + s.slice(1);
		const out = {ok: 0, bad: 0, refused: 0, accepted: 0};
		const refuses = async (s1, s2, r1, r2, hs) => {
			try { await TrailVerify.verifyConsistency(s1, s2, h(r1), h(r2), hs); out.accepted++; } catch (e) { out.refused++; }
		};
		for (const c of cases) {
			try { await TrailVerify.verifyConsistency(c.size1, c.size2, h(c.root1), h(c.root2), c.hashes); out.ok++; } catch (e) { out.bad++; }
			if (c.size1 === 0) continue; // every tree extends the empty one
			await refuses(c.size1, c.size2, flip(c.root1), c.root2, c.hashes);
			await refuses(c.size1, c.size2, c.root1, flip(c.root2), c.hashes);
			for (let i = 0; i < c.hashes.length; i++) {
				const hs = c.hashes.slice(); hs[i] = flip(hs[i]);
				await refuses(c.size1, c.size2, c.root1, c.root2, hs);
			}
			if (c.size1 + 1 < c.size2) await refuses(c.size1 + 1, c.size2, c.root1, c.root2, c.hashes);
			if (c.size1 < c.size2) await refuses(c.size2, c.size1, c.root2, c.root1, c.hashes);
		}
		return out;
	})(`+string(js)+`)`)
	if res["ok"] != len(cases) || res["bad"] != 0 || res["accepted"] != 0 || res["refused"] == 0 {
		t.Errorf("consistency proofs checked in the page: %v of %d cases; want every one accepted and every altered one refused", res, len(cases))
	}
}

// TestConsoleBrowserLive: a privacy officer searches by patient, follows
// new events, and sees only the matching ones appear, announced; the tail
// is recorded in trail/access; following on the patient page works the
// same; sign-out ends the live view and its tail.
func TestConsoleBrowserLive(t *testing.T) {
	br := chromium(t)
	e := startUI(t, server.ConsoleConfig{})
	mxAppend(t, e.l, uiEvent("123", "patient-record.read", "R", "nurse-jane", "Jane Doe", "nurse", ""))
	tb := e.tab(t, br)
	tb.signIn(e.tokens["officer"])
	tb.open("/ui/search?patient=123")
	if n := len(tb.rows("table.events")); n != 1 {
		t.Fatalf("search shows %d rows, want 1", n)
	}
	tb.shot("search-follow-off")
	tb.run(chromedp.Click(chromedp.ID("follow")), chromedp.WaitVisible(chromedp.CSS(`#live[data-state="following"]`)))
	for deadline := time.Now().Add(5 * time.Second); e.srv.LiveTails() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no live tail 5s after following")
		}
	}
	e.apiAppend(t, uiEvent("123", "patient-record.update", "U", "dr-house", "Gregory House", "physician", ""))
	e.apiAppend(t, uiEvent("456", "patient-record.update", "U", "dr-house", "Gregory House", "physician", ""))
	e.apiAppend(t, uiEvent("123", "prescription.create", "C", "dr-house", "Gregory House", "physician", "minor-failure"))
	tb.run(chromedp.WaitVisible(chromedp.CSS(`#live[data-count="2"]`)))
	time.Sleep(1200 * time.Millisecond) // the announcement, and anything that should not come
	rows := tb.rows("table.events")
	if len(rows) != 3 || !strings.Contains(rows[0], "prescription.create") || !strings.Contains(rows[0], "minor-failure") ||
		!strings.Contains(rows[1], "patient-record.update") || !strings.Contains(rows[1], "Gregory House") || strings.Contains(strings.Join(rows, " "), "456") {
		t.Errorf("after following, rows %q; want the two new events of patient 123 on top", rows)
	}
	if s := tb.text("#live-status"); !strings.Contains(s, "2 new events") {
		t.Errorf("live region says %q", s)
	}
	if live := value(tb, chromedp.AttributeValue(chromedp.ID("live-status"), "aria-live")).Value; live != "polite" {
		t.Errorf("live region aria-live=%q", live)
	}
	tb.shot("search-following")
	var tails int
	for _, r := range e.accessRecords(t, "123") {
		if r.Details.Endpoint == "GET /v1/tail" && r.Actor.ID == "officer" && r.Details.Params["patient"] == "123" {
			tails++
		}
	}
	if tails < 2 {
		t.Errorf("%d read records of the officer's tail; want its start and its delivery", tails)
	}

	// The page keeps the newest 500 rows.
	var more []trail.Event
	for i := range 505 {
		more = append(more, uiEvent("123", fmt.Sprintf("bulk.%d", i), "R", "batch-job", "", "", ""))
	}
	mxAppend(t, e.l, more...)
	tb.run(chromedp.WaitVisible(chromedp.CSS(`#live[data-count="507"]`)))
	if rows := tb.rows("table.events"); len(rows) != 500 || !strings.Contains(rows[0], "bulk.504") {
		t.Errorf("after 507 new events the page keeps %d rows, the first %q; want the newest 500", len(rows), rows[0])
	}

	// Stopping ends the tail.
	tb.run(chromedp.Click(chromedp.ID("follow")))
	for deadline := time.Now().Add(5 * time.Second); e.srv.LiveTails() != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the tail is live 5s after stopping")
		}
	}

	// The patient page's timeline, from empty.
	tb.open("/ui/patient?patient=789")
	tb.run(chromedp.Click(chromedp.ID("follow")), chromedp.WaitVisible(chromedp.CSS(`#live[data-state="following"]`)))
	tb.shot("patient-following-empty")
	e.apiAppend(t, uiEvent("789", "lab-result.create", "C", "lab-system", "", "", ""))
	tb.run(chromedp.WaitVisible(chromedp.CSS(`#live[data-count="1"]`)))
	if rows := tb.rows("table.events"); len(rows) != 1 || !strings.Contains(rows[0], "lab-result.create") {
		t.Errorf("patient 789's timeline after following: %q", rows)
	}
	tb.shot("patient-following")

	// Sign-out (in another page of the session) ends the live view.
	eval[bool](tb, `(async () => {
		const f = new FormData(); f.set("csrf", document.querySelector('form[action="/ui/signout"] input[name=csrf]').value);
		await fetch("/ui/signout", {method: "POST", body: new URLSearchParams(f), credentials: "same-origin"});
		return true;
	})()`)
	tb.run(chromedp.WaitVisible(chromedp.CSS(`#live[data-state="ended"]`)))
	if p := tb.text("#live-problem"); !strings.Contains(p, "Your session has ended") || !strings.Contains(p, "signed out") {
		t.Errorf("after sign-out the live view says %q", p)
	}
	for deadline := time.Now().Add(5 * time.Second); e.srv.LiveTails() != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the tail is live 5s after sign-out")
		}
	}
	tb.shot("patient-follow-ended")
	tb.clean()

	// Denied: the API's refusal, as the page shows it.
	tb = e.tab(t, br)
	tb.expect("status of 403")
	tb.signIn(e.tokens["dr-house"])
	tb.open("/ui/search?patient=123")
	eval[bool](tb, `document.getElementById("live").dataset.query = "stream=trail%2Faccess"; true`)
	tb.run(chromedp.Click(chromedp.ID("follow")), chromedp.WaitVisible(chromedp.CSS(`#live[data-state="denied"]`)))
	if p := tb.text("#live-problem"); !strings.Contains(p, "Access denied") || !strings.Contains(p, `Principal "dr-house" has no read grant for stream "trail/access". Ask your administrator`) {
		t.Errorf("denied live view says %q", p)
	}
	tb.shot("search-follow-denied")
	tb.clean()
}
