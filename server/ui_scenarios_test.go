package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/server"
)

// uiEvent is an event of the console's scenarios.
func uiEvent(patient, typ, action, actor, name, role, outcome string) trail.Event {
	return trail.Event{Stream: "patient/" + patient, Patient: patient, Type: typ, Action: action, Outcome: outcome,
		Actor: trail.Actor{ID: actor, Name: name, Role: role}}
}

// rows returns the text of each row of a table's body.
func (tb *tab) rows(table string) []string {
	tb.t.Helper()
	return eval[[]string](tb, `[...document.querySelectorAll("`+table+` tbody tr")].map(tr => tr.innerText.replace(/\s+/g, " ").trim())`)
}

// clickAndLoad clicks and waits for the next page's h1.
func (tb *tab) clickAndLoad(sel string) {
	tb.t.Helper()
	tb.loadAfter(chromedp.Click(chromedp.CSS(sel)))
	tb.checkPage()
}

// loadAfter runs steps that navigate, and waits until the next page has
// loaded: the old page is marked first, so that its own elements cannot
// pass for the new page's while the browser is still between the two.
func (tb *tab) loadAfter(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	eval[bool](tb, `window.trailPageLeft = true; true`)
	tb.run(steps...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!window.trailPageLeft && document.readyState === "complete"`))
		cancel()
		if err == nil && loaded {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("browser: no new page loaded within 20s (last: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsoleBrowserSearchAndVerify: a privacy officer signs in with a
// token, searches by patient and time range and sees only the matching
// events; opens one and sees it verified in the browser; the verification
// fails, saying why, when the bytes the page shows are altered and when the
// pinned verifier key is not the one that signed the checkpoint; pasting
// the right key makes it pass; the JavaScript Ed25519 (for browsers without
// it in WebCrypto) verifies too, and agrees with RFC 8032's test vectors.
// A search that matches nothing shows its empty state.
func TestConsoleBrowserSearchAndVerify(t *testing.T) {
	br := chromium(t)
	e := startUI(t, server.ConsoleConfig{})
	mxAppend(t, e.l,
		uiEvent("123", "patient-record.read", "R", "nurse-jane", "Jane Doe", "nurse", ""),
		uiEvent("456", "patient-record.read", "R", "nurse-jane", "Jane Doe", "nurse", ""))
	since := time.Now().UTC().Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(since) + 20*time.Millisecond)
	late := mxAppend(t, e.l,
		uiEvent("123", "patient-record.update", "U", "dr-house", "Gregory House", "physician", ""),
		uiEvent("123", "prescription.create", "C", "dr-house", "Gregory House", "physician", "minor-failure"),
		uiEvent("456", "patient-record.update", "U", "dr-house", "Gregory House", "physician", ""))
	e.waitCheckpoint(t)

	tb := e.tab(t, br)
	tb.open("/ui/signin")
	tb.shot("signin")
	// From the keyboard: the first Tab reaches the skip link, which moves
	// the focus to the main content; the next Tab reaches the token field.
	tb.run(chromedp.KeyEvent("\t"))
	if f := eval[string](tb, `document.activeElement.className + ":" + document.activeElement.textContent`); f != "skip:Skip to main content" {
		t.Errorf("first Tab focuses %q, want the skip link", f)
	}
	tb.run(chromedp.KeyEvent("\r"), chromedp.KeyEvent("\t"))
	if f := eval[string](tb, `document.activeElement.id`); f != "token" {
		t.Errorf("after the skip link, Tab focuses %q, want the token field", f)
	}
	tb.signIn(e.tokens["officer"])
	tb.shot("search-start")

	// A search that matches nothing says so, with no table and no count.
	tb.run(chromedp.SendKeys(chromedp.ID("f-patient"), "no-such-patient"))
	tb.clickAndLoad(`form.filters button[type=submit]`)
	if empty := tb.text("#results-h ~ p.state.empty#live-empty"); empty != "No events match these filters among the streams you may read." {
		t.Errorf("a search matching nothing shows %q", empty)
	}
	if shown := eval[bool](tb, `[...document.querySelectorAll("table.events, p.count")].some(el => el.offsetParent !== null)`); shown {
		t.Errorf("a search matching nothing shows a table or a count")
	}
	tb.shot("search-empty")
	eval[bool](tb, `document.getElementById("f-patient").value = ""; true`)

	tb.run(chromedp.SendKeys(chromedp.ID("f-patient"), "123"))
	eval[bool](tb, fmt.Sprintf(`document.getElementById("f-since").value = %q; document.getElementById("f-until").value = %q; true`,
		since.Format("2006-01-02T15:04:05"), since.Add(time.Hour).Format("2006-01-02T15:04:05")))
	tb.clickAndLoad(`form.filters button[type=submit]`)
	got := tb.rows("table.events")
	if len(got) != 2 || !strings.Contains(got[0], "prescription.create") || !strings.Contains(got[0], "minor-failure") ||
		!strings.Contains(got[1], "patient-record.update") || !strings.Contains(got[1], "Gregory House") {
		t.Fatalf("search for patient 123 since %s shows %q; want the two later events of patient 123, newest first", since, got)
	}
	tb.shot("search-results")

	tb.clickAndLoad(fmt.Sprintf(`a[href="/ui/events/%d"]`, late[1]))
	if r, text := tb.waitVerdict(); r != "pass" || !strings.Contains(text, "Verified") {
		t.Fatalf("event %d: verification %s: %q; steps %q", late[1], r, text, tb.text("#verify-steps"))
	}
	if steps := tb.text("#verify-steps"); !strings.Contains(steps, "pinned the server's key") {
		t.Errorf("first verification in this browser does not say it pinned the key: %q", steps)
	}
	tb.shot("event-verified")

	// The page's bytes altered: the leaf does not match the log's.
	eval[bool](tb, `const s = document.getElementById("stored"); s.textContent = s.textContent.replace("Gregory", "Gregor"); document.getElementById("verify").dataset.result = ""; true`)
	tb.run(chromedp.Click(chromedp.ID("verify-again")))
	if r, text := tb.waitVerdict(); r != "fail" || !strings.Contains(text, "do not hash to the log's leaf") {
		t.Errorf("altered bytes: verification %s: %q", r, text)
	}
	tb.shot("event-tampered")

	// Another key pinned: the checkpoint carries no signature by it.
	_, impostor, err := note.GenerateKey(rand.Reader, "trail/impostor")
	if err != nil {
		t.Fatal(err)
	}
	eval[bool](tb, fmt.Sprintf(`localStorage.setItem("trail.verifierKey", JSON.stringify({key: %q, how: "pasted", when: "2026-01-01T00:00:00Z"})); true`, impostor))
	tb.run(chromedp.Reload())
	if r, text := tb.waitVerdict(); r != "fail" || !strings.Contains(text, "no signature by the pinned key trail/impostor") {
		t.Errorf("checkpoint under another key than the pinned one: verification %s: %q", r, text)
	}
	tb.run(chromedp.Click(chromedp.CSS("#key-panel summary")))
	tb.shot("event-wrong-key")

	// A damaged key is refused, saying why; the right key pasted by the
	// user is pinned.
	tb.run(chromedp.SendKeys(chromedp.ID("paste-key"), strings.Replace(e.l.VerifierKey(), "+", "+0", 1)), chromedp.Click(chromedp.ID("pin-key")),
		chromedp.WaitVisible(chromedp.ID("paste-error")))
	if msg := tb.text("#paste-error"); !strings.Contains(msg, "cannot be pinned") {
		t.Errorf("a damaged key pasted: %q", msg)
	}
	eval[bool](tb, `document.getElementById("paste-key").value = ""; document.getElementById("verify").dataset.result = ""; true`)
	tb.run(chromedp.SendKeys(chromedp.ID("paste-key"), e.l.VerifierKey()), chromedp.Click(chromedp.ID("pin-key")))
	if r, text := tb.waitVerdict(); r != "pass" {
		t.Errorf("after pasting the server's key: verification %s: %q", r, text)
	}
	if pinned := tb.text("#pinned-key"); pinned != e.l.VerifierKey() {
		t.Errorf("pinned key shown %q, want %q", pinned, e.l.VerifierKey())
	}

	// The JavaScript Ed25519.
	eval[bool](tb, `localStorage.setItem("trail.ed25519", "js"); true`)
	tb.run(chromedp.Reload())
	if r, text := tb.waitVerdict(); r != "pass" || !strings.Contains(tb.text("#verify-steps"), "checked with JavaScript") {
		t.Errorf("with the JavaScript Ed25519: %s: %q; steps %q", r, text, tb.text("#verify-steps"))
	}
	vectors := eval[[]bool](tb, `(async () => {
		const h = s => new Uint8Array(s.match(/../g).map(b => parseInt(b, 16)));
		const v = [
			["d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "", "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"],
			["3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72", "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"],
		];
		const out = [];
		for (const [pub, msg, sig] of v) {
			out.push(await TrailEd25519.verify(h(pub), msg ? h(msg) : new Uint8Array(0), h(sig)));
			const bad = h(sig); bad[10] ^= 1;
			out.push(await TrailEd25519.verify(h(pub), msg ? h(msg) : new Uint8Array(0), bad));
			out.push(await TrailEd25519.verify(h(pub), new Uint8Array([1]), h(sig)));
		}
		return out;
	})()`)
	if fmt.Sprint(vectors) != "[true false false true false false]" {
		t.Errorf("JavaScript Ed25519 on RFC 8032 vectors (valid, altered signature, other message): %v", vectors)
	}
	checkInclusionJS(t, tb)
	tb.clean()
}

// checkInclusionJS: the page's RFC 6962 inclusion check agrees with a
// reference tree for every index of every size up to 70, and a proof given
// for the neighbouring index leads elsewhere. (The root a proof leads to
// does not depend on the size when the path has the same shape: the page
// compares it with the root of the checkpoint the proof was asked for.)
func checkInclusionJS(t *testing.T, tb *tab) {
	type inclusionCase struct {
		Index  uint64   `json:"index"`
		Size   uint64   `json:"size"`
		Leaf   string   `json:"leaf"`
		Root   string   `json:"root"`
		Hashes []string `json:"hashes"`
	}
	tree := testonly.New(rfc6962.DefaultHasher)
	for i := range 70 {
		tree.AppendData([]byte(fmt.Sprintf("leaf %d", i)))
	}
	var cases []inclusionCase
	for size := uint64(1); size <= tree.Size(); size++ {
		for i := uint64(0); i < size; i++ {
			p, err := tree.InclusionProof(i, size)
			if err != nil {
				t.Fatal(err)
			}
			c := inclusionCase{Index: i, Size: size, Leaf: hex.EncodeToString(tree.LeafHash(i)), Root: hex.EncodeToString(tree.HashAt(size)), Hashes: []string{}}
			for _, h := range p {
				c.Hashes = append(c.Hashes, hex.EncodeToString(h))
			}
			cases = append(cases, c)
		}
	}
	js, _ := json.Marshal(cases)
	res := eval[map[string]int](tb, `(async (cases) => {
		const h = s => new Uint8Array(s.match(/../g).map(b => parseInt(b, 16)));
		const hex = b => [...b].map(x => x.toString(16).padStart(2, "0")).join("");
		const out = {ok: 0, bad: 0, refused: 0, accepted: 0};
		for (const c of cases) {
			const root = hex(await TrailVerify.rootFromProof(c.index, c.size, h(c.leaf), c.hashes));
			root === c.root ? out.ok++ : out.bad++;
			const other = c.index ^ 1;
			if (other >= c.size) continue;
			try {
				const r = hex(await TrailVerify.rootFromProof(other, c.size, h(c.leaf), c.hashes));
				r === c.root ? out.accepted++ : out.refused++;
			} catch (e) { out.refused++; }
		}
		return out;
	})(`+string(js)+`)`)
	if res["ok"] != len(cases) || res["bad"] != 0 || res["accepted"] != 0 {
		t.Errorf("inclusion proofs checked in the page: %v of %d cases; want every one right and none accepted for the neighbouring index", res, len(cases))
	}
}

// TestConsoleBrowserPatientAccess: a clinician reads a patient through the
// API and through the console (where "who accessed" is denied, naming the
// grant it needs); an emergency physician reads with break-glass; the
// privacy officer's patient page lists those reads, the emergency one
// marked with its reason, and no other patient's; each read shows the
// reader's role from the tokens file (dr-house's physician). The admin's read with
// purpose=system (a backup's) is recorded but neither listed nor in the
// CSV; the admin's ordinary read is in both. Also the printable page.
func TestConsoleBrowserPatientAccess(t *testing.T) {
	br := chromium(t)
	e := startUI(t, server.ConsoleConfig{})
	mxAppend(t, e.l,
		uiEvent("123", "patient-record.read", "R", "nurse-jane", "Jane Doe", "nurse", ""),
		uiEvent("123", "lab-result.create", "C", "lab-system", "", "", ""),
		uiEvent("123", "patient-record.update", "U", "dr-house", "Gregory House", "physician", ""),
		uiEvent("456", "patient-record.read", "R", "nurse-jane", "Jane Doe", "nurse", ""))
	if st := e.apiRead(t, "dr-house", "/v1/events?patient=123&purpose=treatment"); st != http.StatusOK {
		t.Fatalf("clinician's API read: %d", st)
	}
	if st := e.apiRead(t, "dr-house", "/v1/events?patient=456"); st != http.StatusOK {
		t.Fatalf("clinician's API read: %d", st)
	}

	doc := e.tab(t, br)
	doc.expect("status of 403")
	doc.signIn(e.tokens["dr-house"])
	doc.open("/ui/patient?patient=123")
	if got := doc.rows("table.events"); len(got) != 3 {
		t.Errorf("clinician's timeline of patient 123: %q, want 3 events", got)
	}
	if denied := doc.text("section[aria-labelledby=access-h] .state.denied"); !strings.Contains(denied, `principal "dr-house" has no read grant for stream "trail/access"`) {
		t.Errorf("clinician's access list: %q; want a denial naming the trail/access grant", denied)
	}
	doc.shot("patient-clinician")
	doc.clean()

	if st := e.apiRead(t, "er-doc", "/v1/events?patient=123&purpose=emergency&reason=cardiac+arrest+in+ER"); st != http.StatusOK {
		t.Fatalf("break-glass read: %d", st)
	}
	// The admin's system read (a backup's) is recorded but shown in no
	// patient's view; the admin's ordinary read is.
	for _, purpose := range []string{"&purpose=system", ""} {
		if st := e.apiRead(t, auth.AdminName, "/v1/events?stream=patient/123"+purpose); st != http.StatusOK {
			t.Fatalf("admin's read%s: %d", purpose, st)
		}
	}
	if n := e.systemReads(t); n != 1 {
		t.Fatalf("%d system reads in trail/access, want the admin's 1", n)
	}

	off := e.tab(t, br)
	off.signIn(e.tokens["officer"])
	off.open("/ui/search")
	off.run(chromedp.Click(chromedp.CSS(`nav a[href="/ui/patient"]`)), chromedp.WaitVisible(chromedp.ID("p-patient")),
		chromedp.SendKeys(chromedp.ID("p-patient"), "123"))
	off.clickAndLoad(`form.filters button[type=submit]`)
	if got := off.rows("table.events"); len(got) != 3 {
		t.Errorf("officer's timeline of patient 123: %q; want its 3 events, without Trail's read records", got)
	}
	got := off.rows("table.access")
	want := []string{
		"officer — — searched events (patient=123): ", // the timeline just shown, read records included
		// the admin's ordinary read, and not the admin's system read before it
		"admin — — searched events (stream=patient/123): 3 returned allowed",
		"er-doc — Emergency searched events (patient=123): 3 returned; emergency reason: cardiac arrest in ER allowed",
		"dr-house physician — searched events (patient=123, stream=trail/access): 0 returned refused",
		"dr-house physician — searched events (patient=123): 3 returned allowed",
		"dr-house physician treatment searched events (patient=123): 3 returned allowed",
	}
	if len(got) != len(want) {
		t.Fatalf("who accessed patient 123: %q; want %d reads", got, len(want))
	}
	for i, w := range want {
		if _, rest, ok := strings.Cut(got[i], " UTC "); !ok || rest != w && !(i == 0 && strings.HasPrefix(rest, w)) {
			t.Errorf("who accessed, row %d: %q; want <date> UTC %q", i, got[i], w)
		}
	}
	if n := eval[int](off, `document.querySelectorAll("table.access tr.emergency .badge.emergency").length`); n != 1 {
		t.Errorf("%d rows marked as emergency, want 1", n)
	}
	for _, r := range got {
		if strings.Contains(r, "456") {
			t.Errorf("patient 123's accesses show a read of patient 456: %q", r)
		}
	}
	csv := eval[string](off, `fetch("/ui/patient/access.csv?patient=123").then(r => r.text())`)
	if !strings.Contains(csv, ",admin,,,searched events (stream=patient/123): 3 returned,allowed\r\n") {
		t.Errorf("the CSV lacks the admin's ordinary read:\n%s", csv)
	}
	if strings.Contains(csv, "system") || strings.Count(csv, ",admin,") != 1 {
		t.Errorf("the CSV shows the admin's system read:\n%s", csv)
	}
	off.shot("patient-officer")
	off.run(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: "print"})
		return err
	}))
	if visible := eval[bool](off, `getComputedStyle(document.querySelector("header.top")).display !== "none" || getComputedStyle(document.getElementById("print")).display !== "none"`); visible {
		t.Errorf("the printed page shows the navigation or the buttons")
	}
	off.shot("patient-print")
	off.clean()
}

// TestConsoleBrowserCSV: the accounting of disclosures downloaded by the
// privacy officer is, byte for byte, the header and one line per read of
// the patient (newest first), RFC 4180 quoting, a cell starting with "-"
// neutralised, the emergency reason included, the reader's role (from the
// tokens file) in the role column. The patient page's
// "Download CSV" link is a download link to that export, and fetching
// through it gives the same lines below the officer's own later reads.
func TestConsoleBrowserCSV(t *testing.T) {
	br := chromium(t)
	e := startUI(t, server.ConsoleConfig{})
	mxAppend(t, e.l,
		uiEvent("csv-7", "patient-record.read", "R", "nurse-jane", "", "", ""),
		uiEvent("csv-7", "patient-record.update", "U", "dr-house", "", "", ""))
	for _, r := range []struct {
		who, path string
		status    int
	}{
		{"dr-house", "/v1/events?patient=csv-7&purpose=-2", http.StatusOK},
		{"billing", "/v1/events?stream=patient/csv-7", http.StatusForbidden},
		{"er-doc", "/v1/events?patient=csv-7&purpose=emergency&reason=cardiac+arrest,+bay+4", http.StatusOK},
	} {
		if st := e.apiRead(t, r.who, r.path); st != r.status {
			t.Fatalf("%s GET %s: %d, want %d", r.who, r.path, st, r.status)
		}
	}
	recs := e.accessRecords(t, "csv-7")
	if len(recs) != 3 {
		t.Fatalf("%d read records name csv-7, want 3", len(recs))
	}
	if roles := []string{recs[0].Actor.Role, recs[1].Actor.Role, recs[2].Actor.Role}; roles[2] != "physician" || roles[0] != "" || roles[1] != "" {
		t.Errorf("read records' actor.role: %q; want dr-house's physician, none for the others", roles)
	}
	want := "date,who,role,purpose,what,outcome\r\n" +
		recs[0].Time + `,er-doc,,emergency,"searched events (patient=csv-7): 2 returned; emergency reason: cardiac arrest, bay 4",allowed` + "\r\n" +
		recs[1].Time + ",billing,,,searched events (stream=patient/csv-7): 0 returned,refused\r\n" +
		recs[2].Time + ",dr-house,physician,'-2,searched events (patient=csv-7): 2 returned,allowed\r\n"

	tb := e.tab(t, br)
	tb.signIn(e.tokens["officer"])
	got := eval[map[string]string](tb, `fetch("/ui/patient/access.csv?patient=csv-7").then(async r => ({
		body: await r.text(), type: r.headers.get("Content-Type"), disposition: r.headers.get("Content-Disposition")}))`)
	if got["body"] != want {
		t.Errorf("CSV:\n%q\nwant\n%q", got["body"], want)
	}
	if got["type"] != "text/csv; charset=utf-8; header=present" || got["disposition"] != `attachment; filename="accesses-csv-7.csv"` {
		t.Errorf("CSV answered as %q, %q", got["type"], got["disposition"])
	}

	// The patient page's "Download CSV" link is that export: fetched
	// through the link, it is the same CSV, now with the officer's own
	// reads (the export just made and the page) on top.
	tb.open("/ui/patient?patient=csv-7")
	link := eval[map[string]string](tb, `(() => {
		const a = [...document.querySelectorAll("a")].find(a => a.textContent.trim() === "Download CSV");
		return a ? {href: a.getAttribute("href"), download: String(a.hasAttribute("download"))} : {};
	})()`)
	if link["href"] != "/ui/patient/access.csv?patient=csv-7" || link["download"] != "true" {
		t.Fatalf("the Download CSV link: %q, want a download link to /ui/patient/access.csv?patient=csv-7", link)
	}
	recs = e.accessRecords(t, "csv-7")
	got = eval[map[string]string](tb, `fetch([...document.querySelectorAll("a[download]")].find(a => a.textContent.trim() === "Download CSV").href).then(async r => ({
		body: await r.text(), type: r.headers.get("Content-Type"), disposition: r.headers.get("Content-Disposition")}))`)
	lines := strings.Split(strings.TrimSuffix(got["body"], "\r\n"), "\r\n")
	_, older, _ := strings.Cut(want, "\r\n")
	if lines[0] != "date,who,role,purpose,what,outcome" || !strings.HasSuffix(got["body"], "\r\n"+older) || len(lines)-1 != len(recs) {
		t.Errorf("CSV through the link:\n%q\nwant the header, a line for each of the %d read records, ending with\n%q", got["body"], len(recs), older)
	}
	for _, l := range lines[1 : len(lines)-3] {
		if !strings.Contains(l, ",officer,,,") || !strings.Contains(l, "searched events (patient=csv-7") {
			t.Errorf("CSV through the link: %q, want only the officer's own reads above the earlier ones", l)
		}
	}
	if got["type"] != "text/csv; charset=utf-8; header=present" || got["disposition"] != `attachment; filename="accesses-csv-7.csv"` {
		t.Errorf("CSV through the link answered as %q, %q", got["type"], got["disposition"])
	}
	tb.clean()
}

// TestConsoleBrowserDenied: a principal without the grant sees a clear
// denial naming it, on the search page and on an event's page.
func TestConsoleBrowserDenied(t *testing.T) {
	br := chromium(t)
	e := startUI(t, server.ConsoleConfig{})
	idx := mxAppend(t, e.l, uiEvent("123", "patient-record.read", "R", "nurse-jane", "", "", ""))
	tb := e.tab(t, br)
	tb.expect("status of 403")
	tb.signIn(e.tokens["billing"])
	tb.run(chromedp.SendKeys(chromedp.ID("f-stream"), "patient/123"))
	tb.clickAndLoad(`form.filters button[type=submit]`)
	if d := tb.text(".state.denied"); !strings.Contains(d, "Access denied") || !strings.Contains(d, `principal "billing" has no read grant for stream "patient/123"`) {
		t.Errorf("search denial: %q", d)
	}
	tb.shot("search-denied")
	tb.open(fmt.Sprintf("/ui/events/%d", idx[0]))
	if d := tb.text(".state.denied"); !strings.Contains(d, `principal "billing" has no read grant for the stream of event 0`) {
		t.Errorf("event denial: %q", d)
	}
	tb.shot("event-denied")
	tb.clean()
}

// TestConsoleBrowserSession: the session cookie is HttpOnly and
// SameSite=Strict; a form posted without its CSRF token is refused (403)
// and the session goes on; sign-out ends the session so that its cookie
// opens nothing; an idle session ends; a revoked token's session ends on
// its next request. The sign-in page says why each time.
func TestConsoleBrowserSession(t *testing.T) {
	br := chromium(t)
	e := startUI(t, server.ConsoleConfig{Idle: 2 * time.Second})
	tb := e.tab(t, br)
	tb.expect("status of 403")
	tb.signIn(e.tokens["officer"])
	cookies := value(tb, func(ctx context.Context, _ *chromedp.Target) ([]*network.Cookie, error) {
		r, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{})
		return r.Cookies, err
	})
	var session *network.Cookie
	for _, c := range cookies {
		if c.Name == "trail-session" {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie %+v; want trail-session, HttpOnly, SameSite=Strict", session)
	}

	eval[bool](tb, `document.querySelector('form[action="/ui/signout"] input[name=csrf]').remove(); true`)
	tb.clickAndLoad(`button.signout`)
	if h := tb.text("h1"); h != "Form expired" {
		t.Errorf("sign-out without its CSRF token shows %q, want the refusal", h)
	}
	tb.shot("csrf-refused")
	tb.open("/ui/search")
	if loc := tb.location(); loc != "/ui/search" {
		t.Fatalf("after a refused form the session is gone: at %s", loc)
	}

	tb.clickAndLoad(`button.signout`)
	if loc, n := tb.location(), tb.text(".state.notice"); !strings.HasPrefix(loc, "/ui/signin?ended=signout") || n != "You have signed out." {
		t.Errorf("after sign-out: at %s, notice %q", loc, n)
	}
	req, _ := http.NewRequest(http.MethodGet, e.url+"/ui/search", nil)
	req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/ui/signin" {
		t.Errorf("the signed-out session's cookie still opens %s", resp.Request.URL)
	}

	tb.signIn(e.tokens["officer"])
	time.Sleep(2100 * time.Millisecond)
	tb.open("/ui/patient")
	if loc, n := tb.location(), tb.text(".state.notice"); !strings.HasPrefix(loc, "/ui/signin?ended=idle") || !strings.Contains(n, "without activity") {
		t.Errorf("after 2s idle: at %s, notice %q", loc, n)
	}
	tb.shot("signin-idle")

	tb.signIn(e.tokens["dr-house"])
	if err := auth.Revoke(e.dir, "dr-house", time.Now()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * server.PolicyReload)
	tb.open("/ui/search")
	if loc, n := tb.location(), tb.text(".state.notice"); !strings.HasPrefix(loc, "/ui/signin?ended=revoked") || !strings.Contains(n, "no longer valid") {
		t.Errorf("after revocation: at %s, notice %q", loc, n)
	}
	tb.clean()
}
