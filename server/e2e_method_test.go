package server_test

import (
	"net/http"
	"testing"
)

// TestMethodNotAllowed: a known path asked with a method it does not take
// answers 405 with an Allow header listing the methods it takes, as a
// problem; an unknown path still answers 404.
func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	s := start(t)
	for _, tt := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodDelete, "/v1/events", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{http.MethodPut, "/v1/events", http.StatusMethodNotAllowed, "GET, HEAD, POST"},
		{http.MethodPost, "/v1/checkpoint", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodDelete, "/v1/events/0", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodGet, "/v1/batch", http.StatusMethodNotAllowed, "POST"},
		{http.MethodGet, "/v1/nope", http.StatusNotFound, ""},
		{http.MethodDelete, "/v1/nope", http.StatusNotFound, ""},
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := s.do(t, tt.method, tt.path, admin, nil)
			p := wantProblem(t, r, tt.status)
			if got := r.Header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow: %q, want %q", got, tt.allow)
			}
			if tt.status == http.StatusMethodNotAllowed && p.Detail == "" {
				t.Errorf("405 without a detail: %v", r)
			}
		})
	}
}
