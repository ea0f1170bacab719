package server_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailhq/trail/server"
)

// hookCall is one request the test webhook received.
type hookCall struct {
	contentType string
	body        []byte
}

// withNotify points the server's webhook at url with a short backoff.
func withNotify(cfg server.NotifyConfig) func(*setup) {
	return func(s *setup) { s.server.Notify = cfg }
}

// notifyCount reads trail_notify_total{result} from /metrics.
func (s *testServer) notifyCount(t testing.TB, result string) float64 {
	t.Helper()
	r := s.do(t, http.MethodGet, "/metrics", "", nil)
	prefix := `trail_notify_total{result="` + result + `"} `
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s%s: %v", prefix, v, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", prefix)
	return 0
}

// waitNotify waits until trail_notify_total{result} reaches want.
func (s *testServer) waitNotify(t testing.TB, result string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.notifyCount(t, result) < want {
		if time.Now().After(deadline) {
			t.Fatalf("trail_notify_total{result=%q} is %v after 10s, want %v", result, s.notifyCount(t, result), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestNotifyPostsBreakGlassRecord: after an emergency read the webhook
// receives exactly the stored trail/break-glass record as JSON; an attempt
// answered 500 is retried, and each outcome is counted. Ordinary reads send
// nothing.
func TestNotifyPostsBreakGlassRecord(t *testing.T) {
	calls := make(chan hookCall, 8)
	var fails atomic.Int32
	fails.Store(1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls <- hookCall{r.Header.Get("Content-Type"), b}
		if fails.Add(-1) >= 0 { // the first call fails
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(hook.Close)
	s := start(t, withPrincipals(reviewPrincipals()), withNotify(server.NotifyConfig{URL: hook.URL, Backoff: 10 * time.Millisecond}))
	s.appendOne(t, event("", "patient/42"))
	if r := s.do(t, http.MethodGet, "/v1/events?stream=patient/42", tokClerk, nil); r.Status != http.StatusOK {
		t.Fatalf("ordinary read: %v", r)
	}
	bg := s.emergencyRead(t, tokClinician, "42")
	want := s.stored(t, bg)
	for i := range 2 {
		select {
		case c := <-calls:
			if c.contentType != "application/json" || !bytes.Equal(c.body, want) {
				t.Errorf("webhook call %d: %s %s, want application/json %s", i+1, c.contentType, c.body, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("webhook call %d did not come (the first answered 500 must be retried)", i+1)
		}
	}
	s.waitNotify(t, "sent", 1)
	if n := s.notifyCount(t, "retry"); n != 1 {
		t.Errorf("trail_notify_total{result=\"retry\"} = %v, want 1", n)
	}
	select {
	case c := <-calls:
		t.Errorf("webhook called again after a 2xx (or for an ordinary read): %s", c.body)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestNotifyHungWebhook: a webhook that never answers holds up neither the
// emergency read nor the next ones; with the sender stuck on the first and
// a queue of one, the next read is queued and the two after are dropped and
// counted.
func TestNotifyHungWebhook(t *testing.T) {
	arrived := make(chan struct{}, 8)
	release := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hook.Close)
	t.Cleanup(func() { close(release) }) // before hook.Close, which waits for the handler
	s := start(t, withPrincipals(reviewPrincipals()),
		withNotify(server.NotifyConfig{URL: hook.URL, Queue: 1, Timeout: time.Hour, RetryFor: time.Hour}))
	s.appendOne(t, event("", "patient/42"))
	// A read that waited for the webhook would never answer: the client
	// gives up long before the webhook does.
	s.client.Timeout = 10 * time.Second
	s.emergencyRead(t, tokClinician, "42")
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the webhook received nothing")
	}
	for range 3 {
		s.emergencyRead(t, tokClinician, "42") // fails the test if the read does not answer 200
	}
	if n := s.notifyCount(t, "dropped"); n != 2 {
		t.Errorf("trail_notify_total{result=\"dropped\"} = %v, want 2 (one in flight, one queued)", n)
	}
	if n := s.notifyCount(t, "sent"); n != 0 {
		t.Errorf("trail_notify_total{result=\"sent\"} = %v while the webhook hangs", n)
	}
}
