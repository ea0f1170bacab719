package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/trailhq/trail/server"
)

// TestConsoleBrowserReview: an emergency read reaches the webhook and
// appears on the review page as unreviewed; a reviewer writes a note and
// marks it; it leaves the unreviewed ones and trail/review holds the note
// under the reviewer's name. A reviewer who made an emergency read is not
// offered to review it.
func TestConsoleBrowserReview(t *testing.T) {
	br := chromium(t)
	hooked := make(chan string, 8)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooked <- string(b)
	}))
	t.Cleanup(hook.Close)
	e := startUIWith(t, server.Config{Notify: server.NotifyConfig{URL: hook.URL, Backoff: 10 * time.Millisecond}})
	mxAppend(t, e.l, uiEvent("123", "patient-record.read", "R", "nurse-jane", "Jane Doe", "nurse", ""),
		uiEvent("456", "patient-record.read", "R", "nurse-jane", "Jane Doe", "nurse", ""))
	if st := e.apiRead(t, "er-doc", "/v1/events?patient=123&purpose=emergency&reason=cardiac+arrest+in+ER"); st != http.StatusOK {
		t.Fatalf("break-glass read: %d", st)
	}
	if st := e.apiRead(t, "er-reviewer", "/v1/events?patient=456&purpose=emergency&reason=unconscious"); st != http.StatusOK {
		t.Fatalf("break-glass read: %d", st)
	}
	bg := e.breakGlass(t)
	for range bg {
		select {
		case b := <-hooked:
			if !strings.Contains(b, `"stream":"trail/break-glass"`) {
				t.Errorf("webhook received %s, want a trail/break-glass record", b)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the webhook was not told of every emergency access")
		}
	}

	tb := e.tab(t, br)
	tb.signIn(e.tokens["reviewer"])
	tb.run(chromedp.Click(chromedp.CSS(`nav a[href="/ui/reviews"]`)), chromedp.WaitVisible(chromedp.CSS("ol.reviews")))
	tb.checkPage()
	if c := tb.text("#review-count"); !strings.Contains(c, "2 unreviewed") {
		t.Errorf("review page count: %q, want 2 unreviewed", c)
	}
	tb.shot("reviews-unreviewed")
	note := "Justified: arrived in cardiac arrest; confirmed with Dr. Grey."
	first := `#access-` + itoa(bg[0])
	tb.run(chromedp.SendKeys(chromedp.CSS(first+" textarea"), note))
	tb.clickAndLoad(first + ` button[type=submit]`)
	if s := tb.text(`.state.notice[role=status]`); !strings.Contains(s, "marked reviewed") {
		t.Errorf("after marking: %q", s)
	}
	if c := tb.text("#review-count"); !strings.Contains(c, "1 unreviewed") {
		t.Errorf("after marking, count: %q, want 1 unreviewed", c)
	}
	// The unreviewed one first, the reviewed one after it with the note.
	order := eval[[]string](tb, `[...document.querySelectorAll("ol.reviews > li")].map(li => li.id + ":" + li.querySelector(".badge").innerText)`)
	if len(order) != 2 || order[0] != "access-"+itoa(bg[1])+":Unreviewed" || order[1] != "access-"+itoa(bg[0])+":Reviewed" {
		t.Errorf("review list after marking: %q", order)
	}
	if n := tb.text(first + " .marks .note"); n != note {
		t.Errorf("the mark's note shows %q, want %q", n, note)
	}
	tb.shot("reviews-marked")
	m := e.marks(t)
	if len(m) != 1 || m[0].Actor.ID != "reviewer" || m[0].Details.Note != note || m[0].Details.Index != bg[0] {
		t.Errorf("trail/review holds %+v", m)
	}
	tb.clean()

	own := e.tab(t, br)
	own.signIn(e.tokens["er-reviewer"])
	own.open("/ui/reviews")
	if s := own.text("#access-" + itoa(bg[1]) + " .state.notice"); !strings.Contains(s, "your own emergency access") {
		t.Errorf("er-reviewer's own access: %q", s)
	}
	if n := eval[int](own, `document.querySelectorAll("#access-`+itoa(bg[1])+` textarea").length`); n != 0 {
		t.Errorf("er-reviewer is offered to review its own access")
	}
	own.clean()
}

// TestConsoleBrowserMyRecord: a clinician reads a patient; the patient
// signs in with their own principal's token, lands on their record, and
// sees that read and no other patient's.
func TestConsoleBrowserMyRecord(t *testing.T) {
	br := chromium(t)
	e := startUI(t, server.ConsoleConfig{})
	mxAppend(t, e.l,
		uiEvent("7", "lab-result.create", "C", "lab-system", "", "", ""),
		uiEvent("7", "patient-record.update", "U", "dr-house", "Gregory House", "physician", ""),
		uiEvent("70", "prescription.create", "C", "dr-wilson", "James Wilson", "oncologist", ""))
	for _, path := range []string{"/v1/events?patient=7&purpose=treatment", "/v1/events?patient=70"} {
		if st := e.apiRead(t, "dr-house", path); st != http.StatusOK {
			t.Fatalf("clinician's read %s: %d", path, st)
		}
	}
	tb := e.tab(t, br)
	tb.signIn(e.tokens["patient-7"])
	if loc := tb.location(); loc != "/ui/me" {
		t.Errorf("a patient lands on %s, want /ui/me", loc)
	}
	if h := tb.text("h1"); h != "My record" {
		t.Errorf("heading %q", h)
	}
	access := tb.rows("table.access")
	found := false
	for _, r := range access {
		if strings.Contains(r, "dr-house") && strings.Contains(r, "treatment") {
			found = true
		}
		if strings.Contains(r, "=70") || strings.Contains(r, "patient/70") {
			t.Errorf("patient 7 sees a read of patient 70: %q", r)
		}
	}
	if !found {
		t.Errorf("patient 7 does not see dr-house's read: %q", access)
	}
	events := tb.rows("table.events")
	if len(events) != 2 {
		t.Errorf("patient 7's events: %q, want 2", events)
	}
	body := tb.text("main")
	for _, leak := range []string{"prescription.create", "dr-wilson", "James Wilson"} {
		if strings.Contains(body, leak) {
			t.Errorf("patient 7's page shows %q", leak)
		}
	}
	tb.shot("my-record")
	tb.clean()
}

func itoa(i uint64) string { return strconv.FormatUint(i, 10) }
