package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestVerifyDataLive: trail verify --data on the directory of a running
// server, while appends go on, checks what is on disk so far and says OK:
// the server's writes in progress (a batch half written, a checkpoint not
// yet signed over it) are never taken for damage, and each run sees at
// least what the previous one did.
func TestVerifyDataLive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startServe(t, dir)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 10 * time.Second}
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ev := fmt.Sprintf(`{"stream":"patient/%d","type":"patient-record.read","action":"R","actor":{"id":"dr-%d"},"patient":"%d"}`, i%9, w, i%9)
				req, _ := http.NewRequest("POST", p.url+"/v1/events", strings.NewReader(ev))
				req.Header.Set("Authorization", "Bearer "+p.token)
				resp, err := hc.Do(req)
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					t.Errorf("append: %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	seen := regexp.MustCompile(`^OK \S+: (\d+) events`)
	last := 0
	for run := range 12 {
		out, errOut, code := runTrail(t, "verify", "--data", dir)
		m := seen.FindStringSubmatch(out)
		if code != 0 || m == nil {
			close(stop)
			wg.Wait()
			t.Fatalf("verify --data run %d on a live directory: exit %d\n%s%s", run+1, code, out, errOut)
		}
		n, _ := strconv.Atoi(m[1])
		if n < last {
			t.Errorf("run %d saw %d events, the one before %d", run+1, n, last)
		}
		last = n
	}
	close(stop)
	wg.Wait()
	if last == 0 || !strings.Contains(p.log(), "trail serving") {
		t.Errorf("the runs saw %d events; the appends went on meanwhile", last)
	}
}
