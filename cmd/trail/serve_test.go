package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trailhq/trail"
)

var trailBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trail-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	trailBin = filepath.Join(dir, "trail")
	if out, err := exec.Command("go", "build", "-o", trailBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build trail: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// serveProc is a "trail serve" child process.
type serveProc struct {
	cmd    *exec.Cmd
	url    string
	token  string
	stderr *bytes.Buffer
	mu     *sync.Mutex
	exited chan error
}

var listenRE = regexp.MustCompile(`listen=(http://\S+)`)

// startServe starts "trail serve" on a free loopback port over dir and
// waits until it says where it listens.
func startServe(t *testing.T, dir string, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(trailBin, append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0"}, args...)...)
	return startServeCmd(t, cmd, dir)
}

// startServeCmd starts cmd, a "trail serve" over dir, and waits until it
// says where it listens.
func startServeCmd(t *testing.T, cmd *exec.Cmd, dir string) *serveProc {
	t.Helper()
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, stderr: new(bytes.Buffer), mu: new(sync.Mutex), exited: make(chan error, 1)}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	go func() { p.exited <- cmd.Wait(); pw.Close() }()
	select {
	case p.url = <-found:
	case err := <-p.exited:
		t.Fatalf("trail serve exited at start: %v\n%s", err, p.log())
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("trail serve did not start\n%s", p.log())
	}
	// A process serving a database another made may hold no admin token.
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	p.token = strings.TrimSpace(string(tok))
	t.Cleanup(func() { cmd.Process.Kill() })
	return p
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// TestServeGracefulStop: SIGTERM under load stops the server with exit 0,
// and every event acknowledged before it is in the log afterwards, which
// verifies whole.
func TestServeGracefulStop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startServe(t, dir)
	var mu sync.Mutex
	var acked []trail.Receipt
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hc := &http.Client{Timeout: 10 * time.Second}
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				body := fmt.Sprintf(`{"stream":"patient/%d","type":"patient-record.read","action":"R","actor":{"id":"dr-%d"},"patient":"%d"}`, g, i, g)
				req, _ := http.NewRequest("POST", p.url+"/v1/events", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+p.token)
				resp, err := hc.Do(req)
				if err != nil {
					return // the server is gone
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					if resp.StatusCode != http.StatusServiceUnavailable {
						t.Errorf("append: %d %s", resp.StatusCode, b)
					}
					continue
				}
				var r trail.Receipt
				if err := json.Unmarshal(b, &r); err != nil {
					t.Errorf("receipt %s: %v", b, err)
					return
				}
				mu.Lock()
				acked = append(acked, r)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("trail serve after SIGTERM: %v\n%s", err, p.log())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("trail serve did not stop after SIGTERM\n%s", p.log())
	}
	cancel()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatalf("no event was acknowledged before the stop\n%s", p.log())
	}
	if !strings.Contains(p.log(), "stopped") {
		t.Errorf("no stop message in the log:\n%s", p.log())
	}
	l, err := trail.Open(dir, trail.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	for _, r := range acked {
		rec, err := l.Read(r.Index)
		if err != nil {
			t.Fatalf("acknowledged event %d: %v", r.Index, err)
		}
		if trail.LeafHash(rec) != r.LeafHash {
			t.Fatalf("acknowledged event %d: leaf hash differs from its receipt", r.Index)
		}
	}
	if cp := l.Checkpoint(); cp.Size != l.Size() {
		t.Errorf("final checkpoint covers %d of %d events", cp.Size, l.Size())
	}
	if _, err := trail.Verify(context.Background(), dir, trail.VerifyOptions{}); err != nil {
		t.Fatalf("verify after the stop: %v", err)
	}
	t.Logf("%d events acknowledged before SIGTERM, all stored", len(acked))
}

// TestServeFirstStart: the first start creates the admin token (mode 0600)
// and the verifier key and says where they are; a second start reuses them.
func TestServeFirstStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startServe(t, dir)
	st, err := os.Stat(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("admin.token mode %v, want 0600", st.Mode().Perm())
	}
	vkey, err := os.ReadFile(filepath.Join(dir, "checkpoint.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"admin token created", "verifier_key=" + strings.TrimSpace(string(vkey)), "data="} {
		if !strings.Contains(p.log(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, p.log())
		}
	}
	if !strings.HasPrefix(p.token, "trail_") {
		t.Errorf("token %q lacks the trail_ prefix", p.token)
	}
	resp, err := http.Get(p.url + "/v1/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("checkpoint on a new server: %d", resp.StatusCode)
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	if err := <-p.exited; err != nil {
		t.Fatalf("stop: %v", err)
	}
	p2 := startServe(t, dir)
	if p2.token != p.token {
		t.Error("the admin token changed across restarts")
	}
	if strings.Contains(p2.log(), "admin token created") {
		t.Error("second start claims to have created the admin token")
	}
}
