package server_test

import (
	"net/http"
	"regexp"
	"testing"
)

// TestReadyMetric: trail_ready is 1 while /readyz answers 200.
func TestReadyMetric(t *testing.T) {
	t.Parallel()
	s := start(t)
	r := s.do(t, http.MethodGet, "/metrics", "", nil)
	if !regexp.MustCompile(`(?m)^trail_ready 1$`).Match(r.Body) {
		t.Errorf("/metrics has no trail_ready 1 while ready")
	}
	s.srv.Shutdown()
	r = s.do(t, http.MethodGet, "/metrics", "", nil)
	if !regexp.MustCompile(`(?m)^trail_ready 0$`).Match(r.Body) {
		t.Errorf("/metrics has no trail_ready 0 after Shutdown (readyz says shutting down)")
	}
}
