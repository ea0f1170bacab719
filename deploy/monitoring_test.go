package deploy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// metricRE finds the metric names of Trail in a rule file or a dashboard.
var metricRE = regexp.MustCompile(`\btrail_[a-z0-9_]+\b`)

// TestMonitoringMetrics: every metric deploy/prometheus/alerts.yml and
// deploy/grafana/trail.json name is one a running trail serve exports (a
// typo or a renamed metric would leave an alert that never fires, or an
// empty panel, without a word).
func TestMonitoringMetrics(t *testing.T) {
	exported := scrapeServe(t)
	for _, file := range []string{"prometheus/alerts.yml", "grafana/trail.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		names := metricRE.FindAllString(string(b), -1)
		slices.Sort(names)
		names = slices.Compact(names)
		if len(names) < 10 {
			t.Errorf("%s names only %d metrics: %v", file, len(names), names)
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("%s uses %s, which trail serve does not export", file, n)
			}
		}
		t.Logf("%s: %d metrics, all exported", file, len(names))
	}
}

// scrapeServe starts trail serve on a new data directory, gives it the
// traffic that makes its labelled series appear (an append, a query, a
// refused request), and returns the names /metrics then has, histogram
// series (_bucket, _sum, _count) included.
func scrapeServe(t *testing.T) map[string]bool {
	t.Helper()
	bin := filepath.Join(buildImage(t).out, "trail")
	dir := filepath.Join(t.TempDir(), "data")
	addr := "127.0.0.1:" + freePort(t)
	cmd := exec.Command(bin, "serve", "--data", dir, "--listen", addr, "--checkpoint-interval", "100ms")
	cmd.Env = []string{"HOME=" + t.TempDir()}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + addr
	do := func(method, path, token, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for deadline := time.Now().Add(30 * time.Second); do("GET", "/readyz", "", "") != http.StatusOK; {
		if time.Now().After(deadline) {
			t.Fatalf("trail serve not ready in 30 s\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := strings.TrimSpace(string(tok))
	ev := `{"stream":"patient/1","type":"patient-record.read","action":"R","actor":{"id":"dr-a"}}`
	if code := do("POST", "/v1/events", admin, ev); code != http.StatusCreated {
		t.Fatalf("POST /v1/events: %d\n%s", code, stderr.String())
	}
	if code := do("GET", "/v1/events?stream=patient/1", admin, ""); code != http.StatusOK {
		t.Fatalf("GET /v1/events: %d", code)
	}
	if code := do("GET", "/v1/events", "not-a-token", ""); code != http.StatusUnauthorized {
		t.Fatalf("GET /v1/events with a bad token: %d, want 401", code)
	}
	time.Sleep(300 * time.Millisecond) // a checkpoint of the grown log
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	names := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			names[strings.Fields(rest)[0]] = true
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}
