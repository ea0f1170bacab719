package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/checkpoint"
	"github.com/trailhq/trail/internal/pgtest"
)

// pgServe starts "trail serve --store" on the cluster's database with the
// shared key, its tokens in dir. With like, dir starts as a copy of like's
// admin token and verifier key, so that one token works on every process.
func pgServe(t *testing.T, c *pgtest.Cluster, keyFile, dir, like string, args ...string) *serveProc {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if like != "" {
		for _, name := range []string{"admin.token", "checkpoint.vkey"} {
			b, err := os.ReadFile(filepath.Join(like, name))
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, name), b, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.Contains(args, "--listen") {
		args = append(args, "--listen", "127.0.0.1:0")
	}
	cmd := exec.Command(trailBin, append([]string{"serve", "--data", dir,
		"--store", c.ConnString(), "--signing-key", keyFile, "--checkpoint-interval", "200ms"}, args...)...)
	return startServeCmd(t, cmd, dir)
}

// pgLoad appends events with client-chosen ids through a set of servers,
// each event to the first server that acknowledges it (retrying with the
// same id, on the others too, as a client that fails over would), and
// records the receipts.
type pgLoad struct {
	t       *testing.T
	mu      sync.Mutex
	urls    []string
	token   string
	acked   map[string]trail.Receipt
	refused atomic.Int64
	hc      *http.Client
}

func (l *pgLoad) servers() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.urls...)
}

func (l *pgLoad) setServers(urls ...string) {
	l.mu.Lock()
	l.urls = urls
	l.mu.Unlock()
}

// append stores one event, retrying for up to a minute.
func (l *pgLoad) append(ctx context.Context, id, stream string) bool {
	body := fmt.Sprintf(`{"id":%q,"stream":%q,"type":"patient-record.read","action":"R","actor":{"id":"dr-1"}}`, id, stream)
	deadline := time.Now().Add(time.Minute)
	for k := 0; time.Now().Before(deadline); k++ {
		urls := l.servers()
		u := urls[k%len(urls)]
		req, _ := http.NewRequestWithContext(ctx, "POST", u+"/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+l.token)
		resp, err := l.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusCreated, http.StatusOK:
			var r trail.Receipt
			if err := json.Unmarshal(b, &r); err != nil {
				l.t.Errorf("receipt %s: %v", b, err)
				return false
			}
			l.mu.Lock()
			if old, ok := l.acked[id]; ok && old != r {
				l.t.Errorf("id %s acknowledged twice, differently: %+v and %+v", id, old, r)
			}
			l.acked[id] = r
			l.mu.Unlock()
			return true
		case http.StatusServiceUnavailable:
			l.refused.Add(1)
			time.Sleep(50 * time.Millisecond)
		default:
			l.t.Errorf("append %s to %s: %d %s", id, u, resp.StatusCode, b)
			return false
		}
	}
	l.t.Errorf("append %s: not acknowledged within a minute", id)
	return false
}

// run starts producers that append until stop is closed.
func (l *pgLoad) run(ctx context.Context, producers int, prefix string) *sync.WaitGroup {
	var wg sync.WaitGroup
	for g := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				l.append(ctx, fmt.Sprintf("%s-%d-%d", prefix, g, i), fmt.Sprintf("patient/%d", (g+i)%5))
			}
		}()
	}
	return &wg
}

// checkStored checks that every acknowledged event is stored once, at the
// index and stream_seq of its receipt, and that every stream's stream_seq
// runs 1, 2, 3… without a gap.
func (l *pgLoad) checkStored(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, r := range l.acked {
		var idx, seq int64
		var stream string
		if err := conn.QueryRow(ctx, "SELECT idx, stream, stream_seq FROM trail_events WHERE id = $1", id).Scan(&idx, &stream, &seq); err != nil {
			t.Errorf("acknowledged event %s (index %d): %v", id, r.Index, err)
			continue
		}
		if uint64(idx) != r.Index || stream != r.Stream || uint64(seq) != r.StreamSeq {
			t.Errorf("event %s stored at %d %s#%d, its receipt says %d %s#%d", id, idx, stream, seq, r.Index, r.Stream, r.StreamSeq)
		}
	}
	var gaps int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT stream, count(*) AS n, max(stream_seq) AS m FROM trail_events GROUP BY stream) s WHERE n <> m`).Scan(&gaps)
	if err != nil || gaps != 0 {
		t.Errorf("streams whose stream_seq has a gap or repeat: %d (%v)", gaps, err)
	}
	var n, maxIdx int64
	if err := conn.QueryRow(ctx, "SELECT count(*), coalesce(max(idx), -1) FROM trail_events").Scan(&n, &maxIdx); err != nil || n != maxIdx+1 {
		t.Errorf("%d events with indexes up to %d: a gap in the log (%v)", n, maxIdx, err)
	}
	t.Logf("%d events stored, %d acknowledged", n, len(l.acked))
}

// verifyStore runs trail verify --store with the key's verifier key.
func verifyStore(t *testing.T, url, keyFile string) string {
	t.Helper()
	_, vkey, err := checkpoint.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	vkeyFile := filepath.Join(t.TempDir(), "vkey")
	if err := os.WriteFile(vkeyFile, []byte(vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(trailBin, "verify", "--store", url, "--vkey", vkeyFile, "--quiet").CombinedOutput()
	if err != nil || !bytes.HasPrefix(out, []byte("OK ")) {
		t.Fatalf("trail verify --store: %v\n%s", err, out)
	}
	return string(out)
}

// checkpointSize reads a server's latest checkpoint size.
func checkpointSize(t *testing.T, p *serveProc) uint64 {
	t.Helper()
	code, body := p.call(t, "GET", "/v1/checkpoint", p.token, "")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/checkpoint: %d %s", code, body)
	}
	var size uint64
	lines := strings.Split(body, "\n")
	if len(lines) < 2 {
		t.Fatalf("checkpoint: %q", body)
	}
	fmt.Sscan(lines[1], &size)
	return size
}

// TestServePostgresTwoProcesses: two trail serve processes share one
// database under concurrent load from several clients; one is killed with
// SIGKILL and its clients fail over to the other with the same ids. Every
// acknowledged event is stored once at its receipt's place, stream_seq has
// no gap, the other process takes over signing checkpoints within seconds,
// and trail verify --store passes.
func TestServePostgresTwoProcesses(t *testing.T) {
	ctx := context.Background()
	c := pgtest.Start(t)
	base := t.TempDir()
	keyFile := filepath.Join(base, "signing.key")
	a := pgServe(t, c, keyFile, filepath.Join(base, "a"), "")
	b := pgServe(t, c, keyFile, filepath.Join(base, "b"), filepath.Join(base, "a"))
	if b.token != a.token {
		t.Fatal("the processes do not share the admin token")
	}
	load := &pgLoad{t: t, token: a.token, acked: map[string]trail.Receipt{}, hc: &http.Client{Timeout: 10 * time.Second}}
	load.setServers(a.url, b.url)
	lctx, stop := context.WithCancel(ctx)
	wg := load.run(lctx, 8, "two")
	time.Sleep(1500 * time.Millisecond)

	// Kill the first process, the signer (it started first), mid-load.
	const signs = "this process signs the log's checkpoints"
	if !strings.Contains(a.log(), signs) || strings.Contains(b.log(), signs) {
		t.Fatalf("the first process should be the only signer\nfirst:\n%s\nsecond:\n%s", a.log(), b.log())
	}
	a.cmd.Process.Kill()
	<-a.exited
	load.setServers(b.url)
	killedAt := checkpointSize(t, b)
	time.Sleep(1500 * time.Millisecond)
	stop()
	wg.Wait()

	// The survivor signs now: a checkpoint past the kill within seconds.
	deadline := time.Now().Add(10 * time.Second)
	for checkpointSize(t, b) <= killedAt {
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint past size %d 10s after the signer died\n%s", killedAt, b.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(b.log(), signs) {
		t.Errorf("the second process did not take over signing\n%s", b.log())
	}
	load.checkStored(t, c.ConnString())
	if len(load.acked) < 100 {
		t.Errorf("only %d events acknowledged", len(load.acked))
	}
	t.Log(verifyStore(t, c.ConnString(), keyFile))
}

// TestServePostgresDatabaseCrash: PostgreSQL is stopped as by pg_ctl -m
// immediate under load and started again: appends in flight fail with 503
// and a Retry-After, the clients retry with the same ids, Trail reconnects
// by itself, every acknowledged event is stored once, and verify passes.
func TestServePostgresDatabaseCrash(t *testing.T) {
	ctx := context.Background()
	c := pgtest.Start(t)
	base := t.TempDir()
	keyFile := filepath.Join(base, "signing.key")
	p := pgServe(t, c, keyFile, filepath.Join(base, "a"), "")
	load := &pgLoad{t: t, token: p.token, acked: map[string]trail.Receipt{}, hc: &http.Client{Timeout: 10 * time.Second}}
	load.setServers(p.url)
	lctx, stop := context.WithCancel(ctx)
	wg := load.run(lctx, 8, "crash")
	time.Sleep(time.Second)
	before := len(load.snapshot())
	if err := c.Crash(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	stop()
	wg.Wait()
	after := len(load.snapshot())
	if after <= before {
		t.Errorf("no event acknowledged after the database came back (%d before the crash, %d after)\n%s", before, after, p.log())
	}
	if load.refused.Load() == 0 {
		t.Errorf("no append was refused with 503 while the database was down")
	}
	load.checkStored(t, c.ConnString())
	t.Log(verifyStore(t, c.ConnString(), keyFile))
	select {
	case err := <-p.exited:
		t.Fatalf("trail serve exited: %v\n%s", err, p.log())
	default:
	}
}

func (l *pgLoad) snapshot() map[string]trail.Receipt {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]trail.Receipt, len(l.acked))
	for k, v := range l.acked {
		m[k] = v
	}
	return m
}

// TestRedactURL: a connection string's password never reaches the logs or
// trail verify's output, in URL or key=value form.
func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, secret string }{
		{"postgres://trail:s3cret@db1:5432/trail?sslmode=require", "s3cret"},
		{"host=db1 user=trail password=s3cret dbname=trail", "s3cret"},
		{"host=db1 password = 'se cret\\' x' dbname=trail", "se cret"},
	} {
		if got := redactURL(tc.in); strings.Contains(got, tc.secret) || !strings.Contains(got, "db1") {
			t.Errorf("redactURL(%q) = %q", tc.in, got)
		}
	}
}
