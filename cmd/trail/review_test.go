package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestTokenReviewEndToEnd: "trail token create --review" makes a reviewer
// that token list shows as one; against a running "trail serve
// --notify-url", a break-glass token's emergency read reaches the webhook,
// the reviewer reads trail/break-glass and marks the access reviewed, and
// the break-glass token (without the grant) may not.
func TestTokenReviewEndToEnd(t *testing.T) {
	dir := newDataDir(t)
	create := func(args ...string) string { t.Helper(); return createToken(t, dir, args...) }
	officer := create("--name", "officer", "--review")
	clinician := create("--name", "dr-grey", "--break-glass")

	out, errOut, code := runTrail(t, "token", "list", "--data", dir)
	if code != 0 {
		t.Fatalf("token list: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "REVIEW" {
			col = i
		}
	}
	if col < 0 || len(lines) != 3 {
		t.Fatalf("token list has no REVIEW column or not two principals:\n%s", out)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if want := fmt.Sprint(f[0] == "officer"); f[col] != want {
			t.Errorf("token list shows REVIEW %s for %s, want %s:\n%s", f[col], f[0], want, out)
		}
	}

	got := make(chan string, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer hook.Close()
	p := startServe(t, dir, "--notify-url", hook.URL)
	call := func(method, path, tok, body string) (int, string) {
		t.Helper()
		return p.call(t, method, path, tok, body)
	}
	if st, b := call("POST", "/v1/events", p.token, `{"stream":"patient/1","type":"patient-record.read","action":"R","actor":{"id":"dr-x"}}`); st != http.StatusCreated {
		t.Fatalf("append: %d %s", st, b)
	}
	if st, b := call("GET", "/v1/events?stream=patient/1&purpose=emergency&reason=arrest", clinician, ""); st != http.StatusOK {
		t.Fatalf("emergency read: %d %s", st, b)
	}
	var posted string
	select {
	case posted = <-got:
	case <-time.After(10 * time.Second):
		t.Fatalf("the webhook received nothing\n%s", p.log())
	}
	st, b := call("GET", "/v1/events?stream=trail/break-glass", officer, "")
	var page struct{ Events []json.RawMessage }
	if st != http.StatusOK || json.Unmarshal([]byte(b), &page) != nil || len(page.Events) != 1 {
		t.Fatalf("reviewer's query of trail/break-glass: %d %s", st, b)
	}
	if string(page.Events[0]) != posted {
		t.Errorf("webhook received %s, want the stored record %s", posted, page.Events[0])
	}
	var rec struct{ Index uint64 }
	json.Unmarshal(page.Events[0], &rec)
	body := fmt.Sprintf(`{"index":%d,"note":"justified"}`, rec.Index)
	if st, b := call("POST", "/v1/reviews", clinician, body); st != http.StatusForbidden || !strings.Contains(b, "review grant") {
		t.Errorf("review without the grant: %d %s, want 403 naming the review grant", st, b)
	}
	if st, b := call("POST", "/v1/reviews", officer, body); st != http.StatusCreated || !strings.Contains(b, `"stream":"trail/review"`) {
		t.Errorf("review: %d %s, want 201 with a receipt in trail/review", st, b)
	}
}

// TestServeNotifyURL: --notify-url takes only an absolute http(s) URL; any
// other is refused at start (exit 2) naming the flag.
func TestServeNotifyURL(t *testing.T) {
	for _, bad := range []string{"ftp://hook.example/x", "hook.example/x", "http://", "https:///path", ":bad"} {
		dir := t.TempDir()
		_, errOut, code := runTrail(t, "serve", "--data", dir, "--listen", "127.0.0.1:0", "--notify-url", bad)
		if code != 2 || !strings.Contains(errOut, "--notify-url") {
			t.Errorf("--notify-url %q: exit %d, %q; want exit 2 naming the flag", bad, code, errOut)
		}
	}
}
