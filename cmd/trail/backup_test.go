package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/client"
	"github.com/trailhq/trail/internal/backup"
	"github.com/trailhq/trail/internal/store/files"
	"github.com/trailhq/trail/server"
	"github.com/trailhq/trail/verify"
)

// backupLoad appends events to a server from several goroutines until
// stopped, keeping every receipt.
type backupLoad struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	receipts []trail.Receipt
}

func startBackupLoad(t *testing.T, p *serveProc, producers int) *backupLoad {
	t.Helper()
	ld := &backupLoad{stop: make(chan struct{})}
	hc := &http.Client{Timeout: 10 * time.Second}
	for w := range producers {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-ld.stop:
					return
				default:
				}
				ev := fmt.Sprintf(`{"id":"w%d-%d","stream":"patient/%d","type":"patient-record.read","action":"R","actor":{"id":"dr-%d"},"patient":"%d"}`, w, i, i%9, w, i%9)
				req, _ := http.NewRequest("POST", p.url+"/v1/events", strings.NewReader(ev))
				req.Header.Set("Authorization", "Bearer "+p.token)
				resp, err := hc.Do(req)
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				var rc trail.Receipt
				err = json.NewDecoder(resp.Body).Decode(&rc)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated || err != nil {
					t.Errorf("append: %d %v", resp.StatusCode, err)
					return
				}
				ld.mu.Lock()
				ld.receipts = append(ld.receipts, rc)
				ld.mu.Unlock()
			}
		}()
	}
	return ld
}

// end stops the load and returns every receipt.
func (ld *backupLoad) end() []trail.Receipt {
	close(ld.stop)
	ld.wg.Wait()
	return ld.receipts
}

// serverCheckpoint returns a server's latest checkpoint, verified with vkey.
func serverCheckpoint(t *testing.T, url, vkey string) verify.Checkpoint {
	t.Helper()
	resp, err := http.Get(url + "/v1/checkpoint")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	cp, err := verify.ParseCheckpoint(b, vkey)
	if err != nil {
		t.Fatalf("checkpoint of %s: %v\n%s", url, err, b)
	}
	return cp
}

// waitCheckpoint waits until the server's checkpoint covers n events.
func waitCheckpoint(t *testing.T, url, vkey string, n uint64) verify.Checkpoint {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cp := serverCheckpoint(t, url, vkey)
		if cp.Size >= n {
			return cp
		}
		if time.Now().After(deadline) {
			t.Fatalf("the checkpoint of %s covers %d events after 30s, want %d", url, cp.Size, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readEvents reads the first n events of a server (admin, purpose=system).
func readEvents(t *testing.T, url, token string, n uint64) [][]byte {
	t.Helper()
	cl, err := client.New(url, client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close(context.Background())
	var evs [][]byte
	after := ""
	for uint64(len(evs)) < n {
		page, err := cl.Query(context.Background(), client.Query{After: after, Limit: 1000, Purpose: "system"})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			if uint64(len(evs)) < n {
				evs = append(evs, ev)
			}
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	if uint64(len(evs)) != n {
		t.Fatalf("%s serves %d events, want %d", url, len(evs), n)
	}
	return evs
}

// streamEvents reads the events of a stream below index n, as reader.
func streamEvents(t *testing.T, url, token, stream string, n uint64) []string {
	t.Helper()
	cl, err := client.New(url, client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close(context.Background())
	var evs []string
	after := ""
	for {
		page, err := cl.Query(context.Background(), client.Query{Stream: stream, After: after, Limit: 1000})
		if err != nil {
			t.Fatalf("query %s on %s: %v", stream, url, err)
		}
		for _, ev := range page.Events {
			var h struct{ Index uint64 }
			json.Unmarshal(ev, &h)
			if h.Index < n {
				evs = append(evs, string(ev))
			}
		}
		if page.Next == "" {
			return evs
		}
		after = page.Next
	}
}

func readManifest(t *testing.T, dir string) backup.Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, backup.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var m backup.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestBackupUnderLoad: while six clients append to a server without a
// pause, trail backup --data (the server's directory) and trail backup
// --server take backups; each verifies and restores; the restored server
// serves the backup's checkpoint, every event up to it byte for byte as the
// original does (every receipt below it with its leaf hash), the original's
// later checkpoint is consistent with the backup's (a consistency proof
// verifies against both roots), its queries answer as the original's (the
// index store rebuilt, the principals kept), and it takes new appends.
func TestBackupUnderLoad(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	p := startServe(t, dir, "--checkpoint-interval", "30ms")
	vkeyFile := filepath.Join(dir, "checkpoint.vkey")
	vkeyB, err := os.ReadFile(vkeyFile)
	if err != nil {
		t.Fatal(err)
	}
	vkey := string(vkeyB)
	reader := createToken(t, dir, "--name", "reader", "--read", "patient/*")
	ld := startBackupLoad(t, p, 6)
	waitCheckpoint(t, p.url, vkey, 300)
	backups := []struct {
		name string
		args []string
		env  []string
	}{
		{"data", []string{"backup", "--data", dir}, nil},
		{"server", []string{"backup"}, []string{"TRAIL_SERVER=" + p.url, "TRAIL_TOKEN=" + p.token}},
		{"data-again", []string{"backup", "--data", dir, "--no-key"}, nil},
	}
	for _, b := range backups {
		out, errOut, code := runTrailEnv(t, b.env, append(b.args, "--to", filepath.Join(tmp, "backup-"+b.name), "--vkey", vkeyFile)...)
		if code != 0 || !strings.HasPrefix(out, "OK backup of ") {
			ld.end()
			t.Fatalf("trail %v under load: exit %d\n%s%s", b.args, code, out, errOut)
		}
	}
	last := readManifest(t, filepath.Join(tmp, "backup-data-again")).Size
	waitCheckpoint(t, p.url, vkey, last+200) // appends go on after the backups
	receipts := ld.end()
	orig := waitCheckpoint(t, p.url, vkey, uint64(len(receipts)))
	for _, b := range backups {
		t.Run(b.name, func(t *testing.T) {
			m := readManifest(t, filepath.Join(tmp, "backup-"+b.name))
			if m.Size == 0 || m.Size >= orig.Size {
				t.Fatalf("backup of %d events; the original has %d", m.Size, orig.Size)
			}
			restored := filepath.Join(tmp, "restored-"+b.name)
			args := []string{"restore", "--from", filepath.Join(tmp, "backup-"+b.name), "--data", restored, "--vkey", vkeyFile}
			if b.name != "data" {
				args = append(args, "--signing-key", filepath.Join(dir, "checkpoint.key"))
			}
			if out, errOut, code := runTrail(t, args...); code != 0 || !strings.HasPrefix(out, "OK restored ") {
				t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
			}
			q := startServe(t, restored)
			if cp := serverCheckpoint(t, q.url, vkey); string(cp.Signed) != m.Checkpoint {
				t.Fatalf("the restored server's checkpoint:\n%s\nthe backup's:\n%s", cp.Signed, m.Checkpoint)
			}
			backupCP, err := verify.ParseCheckpoint([]byte(m.Checkpoint), vkey)
			if err != nil {
				t.Fatal(err)
			}
			a, r := readEvents(t, p.url, p.token, m.Size), readEvents(t, q.url, q.token, m.Size)
			for i := range a {
				if string(a[i]) != string(r[i]) {
					t.Fatalf("event %d: restored %s, original %s", i, r[i], a[i])
				}
			}
			// The index store, rebuilt at restore, answers queries as the
			// original's does; the principals came with the backup.
			if a, r := streamEvents(t, p.url, reader, "patient/3", m.Size), streamEvents(t, q.url, reader, "patient/3", m.Size); len(a) == 0 || strings.Join(a, "\n") != strings.Join(r, "\n") {
				t.Fatalf("patient/3 below %d: the restored server answers %d events, the original %d", m.Size, len(r), len(a))
			}
			below := 0
			for _, rc := range receipts {
				if rc.Index < m.Size {
					below++
					if trail.LeafHash(r[rc.Index]) != rc.LeafHash {
						t.Fatalf("receipt %+v: the restored event hashes to %s", rc, trail.LeafHash(r[rc.Index]))
					}
				}
			}
			if below == 0 {
				t.Fatal("no acknowledged event is in the backup")
			}
			cl, err := client.New(p.url)
			if err != nil {
				t.Fatal(err)
			}
			cons, err := cl.ConsistencyProof(context.Background(), m.Size, orig.Size)
			if err != nil {
				t.Fatal(err)
			}
			hashes := make([][]byte, len(cons.Hashes))
			for i := range cons.Hashes {
				hashes[i] = cons.Hashes[i][:]
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, m.Size, orig.Size, hashes, backupCP.Root[:], orig.Root[:]); err != nil {
				t.Fatalf("the original's checkpoint of %d is not consistent with the backup's of %d: %v", orig.Size, m.Size, err)
			}
			code, body := q.call(t, "POST", "/v1/events", q.token, `{"stream":"patient/1","type":"t","action":"R","actor":{"id":"after-restore"}}`)
			if code != http.StatusCreated {
				t.Fatalf("append to the restored server: %d %s", code, body)
			}
			q.cmd.Process.Signal(syscall.SIGTERM)
			<-q.exited
			if out, errOut, code := runVerify(t, "--data", restored, "--vkey", vkeyFile); code != 0 {
				t.Fatalf("verify the restored directory after appends: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}

// TestBackupServerCutShort: a backup whose archive is cut short on the
// way (the server or the connection dying mid-stream) exits 1 and leaves
// nothing: no target, no temporary directory.
func TestBackupServerCutShort(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	appendEvents(t, dir, "dr-a", 40)
	p := startServe(t, dir)
	var cut atomic.Int64 // bytes to pass before cutting; -1 for all (the server's handler reads it)
	cut.Store(-1)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequest(r.Method, p.url+r.URL.RequestURI(), nil)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		n := cut.Load()
		if n < 0 {
			io.Copy(w, resp.Body)
			return
		}
		io.CopyN(w, resp.Body, n)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	defer proxy.Close()
	env := []string{"TRAIL_SERVER=" + proxy.URL, "TRAIL_TOKEN=" + p.token}
	whole := filepath.Join(tmp, "whole")
	if out, errOut, code := runTrailEnv(t, env, "backup", "--to", whole); code != 0 {
		t.Fatalf("whole backup: exit %d\n%s%s", code, out, errOut)
	}
	var total int64
	for _, f := range readManifest(t, whole).Files {
		total += f.Size
	}
	for _, c := range []int64{0, 100, 1500, total / 2, total} {
		cut.Store(c)
		target := filepath.Join(tmp, fmt.Sprintf("cut-%d", c))
		out, errOut, code := runTrailEnv(t, env, "backup", "--to", target)
		if code != 1 {
			t.Errorf("archive cut after %d bytes: exit %d, want 1\n%s%s", c, code, out, errOut)
		}
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			t.Errorf("archive cut after %d bytes: %s exists", c, target)
		}
	}
	left, _ := filepath.Glob(filepath.Join(tmp, ".*"))
	if len(left) > 0 {
		t.Errorf("failed backups left %v", left)
	}
}

// TestRestoreRefuses: trail restore refuses, with exit 1 and nothing
// written, a backup with a byte flipped in a segment (caught by the
// manifest, and with the manifest rewritten to match, by verification
// naming the index), one without its manifest, one whose checkpoints are
// not signed by the trusted key, one whose signing key is another log's;
// and with exit 2 a target that is not empty, which it leaves as it was
// (as trail backup does, and a target inside the data directory).
func TestRestoreRefuses(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	appendEvents(t, dir, "dr-a", 30)
	good := filepath.Join(tmp, "backup")
	if out, errOut, code := runTrail(t, "backup", "--data", dir, "--to", good); code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	other := filepath.Join(tmp, "other")
	appendEvents(t, other, "dr-b", 3) // the same origin, another key
	seg := "log/00000000000000000000.seg"
	flip := func(t *testing.T, b string) {
		p := filepath.Join(b, seg)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		i := strings.Index(string(data), "dr-a")
		data[i] = 'x'
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name   string
		tamper func(t *testing.T, b string)
		args   []string
		says   string
	}{
		{"segment byte", flip, nil, "differs from the file the backup wrote"},
		{"segment byte and manifest", func(t *testing.T, b string) {
			flip(t, b)
			m := readManifest(t, b)
			for i := range m.Files {
				if m.Files[i].Name == seg {
					sum, _ := os.ReadFile(filepath.Join(b, seg))
					m.Files[i].SHA256 = fmt.Sprintf("%x", sha256Sum(sum))
				}
			}
			mb, _ := json.Marshal(m)
			os.WriteFile(filepath.Join(b, backup.ManifestFile), mb, 0o600)
		}, nil, "index "},
		{"no manifest", func(t *testing.T, b string) { os.Remove(filepath.Join(b, backup.ManifestFile)) }, nil, "no BACKUP manifest"},
		{"untrusted key", func(*testing.T, string) {}, []string{"--vkey", filepath.Join(other, "checkpoint.vkey")}, "trusted key"},
		{"another log's signing key", func(t *testing.T, b string) {
			k, _ := os.ReadFile(filepath.Join(other, "checkpoint.key"))
			os.WriteFile(filepath.Join(b, "checkpoint.key"), k, 0o600)
			m := readManifest(t, b)
			for i := range m.Files {
				if m.Files[i].Name == "checkpoint.key" {
					m.Files[i].Size, m.Files[i].SHA256 = int64(len(k)), fmt.Sprintf("%x", sha256Sum(k))
				}
			}
			mb, _ := json.Marshal(m)
			os.WriteFile(filepath.Join(b, backup.ManifestFile), mb, 0o600)
		}, nil, "not the log's"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := filepath.Join(t.TempDir(), "backup")
			copyTree(t, good, b)
			c.tamper(t, b)
			target := filepath.Join(filepath.Dir(b), "restored")
			out, errOut, code := runTrail(t, append([]string{"restore", "--from", b, "--data", target}, c.args...)...)
			if code != 1 || !strings.Contains(out, "FAIL") || !strings.Contains(out, c.says) {
				t.Errorf("exit %d, want 1 saying %q\n%s%s", code, c.says, out, errOut)
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(b), "*restore*")); len(left) > 0 {
				t.Errorf("a refused restore left %v", left)
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Errorf("a refused restore made %s", target)
			}
		})
	}
	busy := filepath.Join(tmp, "busy")
	os.Mkdir(busy, 0o700)
	os.WriteFile(filepath.Join(busy, "keep"), []byte("x"), 0o600)
	if _, errOut, code := runTrail(t, "backup", "--data", dir, "--to", filepath.Join(dir, "b")); code != 2 || !strings.Contains(errOut, "inside the data directory") {
		t.Errorf("backup into the data directory: exit %d\n%s", code, errOut)
	}
	for _, args := range [][]string{
		{"restore", "--from", good, "--data", busy},
		{"backup", "--data", dir, "--to", busy},
	} {
		out, errOut, code := runTrail(t, args...)
		if code != 2 || !strings.Contains(errOut, "not empty") {
			t.Errorf("trail %s into a non-empty directory: exit %d, want 2\n%s%s", args[0], code, out, errOut)
		}
		if entries, _ := os.ReadDir(busy); len(entries) != 1 {
			t.Errorf("trail %s changed the non-empty target: %v", args[0], entries)
		}
	}
	// The good backup restores into an empty directory.
	empty := filepath.Join(tmp, "empty")
	os.Mkdir(empty, 0o700)
	if out, errOut, code := runTrail(t, "restore", "--from", good, "--data", empty); code != 0 {
		t.Fatalf("restore into an empty directory: exit %d\n%s%s", code, out, errOut)
	}
	for name, want := range map[string]os.FileMode{".": 0o700, "checkpoint.key": 0o600} {
		if st, err := os.Stat(filepath.Join(empty, name)); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", name, st.Mode().Perm(), err, want)
		}
	}
}

// TestBackupAdminOnly: GET /v1/admin/backup is the admin's: another
// principal gets 403 (and trail backup --server exit 1), recorded in
// trail/access as a refused read; the admin's backup is recorded as a
// read with purpose=system, counting the events it carried, naming no
// patient. A server whose log is in PostgreSQL answers 501 naming pg_dump.
func TestBackupAdminOnly(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	p := startServe(t, dir, "--checkpoint-interval", "20ms")
	reader := createToken(t, dir, "--name", "reader", "--read", "patient/*")
	time.Sleep(1100 * time.Millisecond) // tokens reach the server within 1s
	for range 5 {
		p.call(t, "POST", "/v1/events", p.token, `{"stream":"patient/7","type":"t","action":"R","actor":{"id":"a"},"patient":"7"}`)
	}
	if code, body := p.call(t, "GET", "/v1/admin/backup", reader, ""); code != http.StatusForbidden {
		t.Fatalf("reader: %d %s", code, body)
	}
	if code, body := p.call(t, "HEAD", "/v1/admin/backup", p.token, ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("HEAD: %d %s", code, body)
	}
	out, errOut, code := runTrailEnv(t, []string{"TRAIL_SERVER=" + p.url, "TRAIL_TOKEN=" + reader}, "backup", "--to", filepath.Join(tmp, "b-reader"))
	if code != 1 || !strings.Contains(errOut, "403") {
		t.Fatalf("trail backup with the reader's token: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runTrailEnv(t, []string{"TRAIL_SERVER=" + p.url, "TRAIL_TOKEN=" + p.token}, "backup", "--to", filepath.Join(tmp, "b-admin"))
	if code != 0 {
		t.Fatalf("trail backup with the admin's token: exit %d\n%s%s", code, out, errOut)
	}
	m := readManifest(t, filepath.Join(tmp, "b-admin"))
	code, body := p.call(t, "GET", "/v1/events?stream=trail/access&limit=1000", p.token, "")
	if code != http.StatusOK {
		t.Fatalf("read trail/access: %d %s", code, body)
	}
	var page struct{ Events []json.RawMessage }
	json.Unmarshal([]byte(body), &page)
	var refused, allowed int
	for _, raw := range page.Events {
		var rec struct {
			Actor   struct{ ID string }
			Outcome string
			Purpose string
			Patient string
			Details struct {
				Endpoint string
				Count    uint64
			}
		}
		json.Unmarshal(raw, &rec)
		if rec.Details.Endpoint != "GET /v1/admin/backup" {
			continue
		}
		switch {
		case rec.Actor.ID == "reader" && rec.Outcome == "minor-failure" && rec.Details.Count == 0:
			refused++
		case rec.Actor.ID == "admin" && rec.Outcome == "success" && rec.Purpose == "system" && rec.Patient == "" && rec.Details.Count == m.Size:
			allowed++
		default:
			t.Errorf("unexpected backup read record: %s", raw)
		}
	}
	if refused != 2 || allowed != 1 {
		t.Errorf("records of the reader's refused backups: %d, want 2; of the admin's: %d, want 1", refused, allowed)
	}

	// A log kept elsewhere than a data directory (as with --store).
	st, _, err := files.Open(files.Options{Dir: filepath.Join(tmp, "store")})
	if err != nil {
		t.Fatal(err)
	}
	l, err := trail.OpenStore(st, trail.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())
	srv, err := server.New(l, server.Config{AdminToken: "trail_pgadmin"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	out, errOut, code = runTrailEnv(t, []string{"TRAIL_SERVER=" + hs.URL, "TRAIL_TOKEN=trail_pgadmin"}, "backup", "--to", filepath.Join(tmp, "b-pg"))
	if code != 1 || !strings.Contains(errOut, "501") || !strings.Contains(errOut, "pg_dump") {
		t.Fatalf("trail backup of a server without a data directory: exit %d\n%s%s", code, out, errOut)
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// bigDataDir makes a data directory of n events in 64 KiB segments.
func bigDataDir(t *testing.T, dir string, n int) {
	t.Helper()
	ctx := context.Background()
	l, err := trail.Open(dir, trail.Config{SegmentSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	ps := make([]*trail.Pending, n)
	for i := range ps {
		ps[i], err = l.Enqueue(ctx, trail.Event{Stream: fmt.Sprintf("patient/%d", i%50), Type: "patient-record.read", Action: "R",
			Actor: trail.Actor{ID: fmt.Sprintf("dr-%d", i%7)}, Details: json.RawMessage(`{"note":"` + strings.Repeat("x", 300) + `"}`)})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range ps {
		if _, err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestBackupKilled: trail backup --data killed with SIGKILL at moments
// spread over its run leaves either a whole backup under its target's name,
// which restores, or no target at all and at most a temporary directory,
// which restore refuses (exit 1) unless it has its manifest, which Commit
// writes only once the backup was checked, just before the rename.
func TestBackupKilled(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "data")
	bigDataDir(t, dir, 6000)
	start := time.Now()
	if out, errOut, code := runTrail(t, "backup", "--data", dir, "--to", filepath.Join(tmp, "timed")); code != 0 {
		t.Fatalf("backup: exit %d\n%s%s", code, out, errOut)
	}
	took := time.Since(start)
	whole, partial := 0, 0
	for k := range 8 {
		target := filepath.Join(tmp, fmt.Sprintf("killed-%d", k))
		cmd := exec.Command(trailBin, "backup", "--data", dir, "--to", target)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(took * time.Duration(k) / 8)
		cmd.Process.Kill()
		cmd.Wait()
		left, _ := filepath.Glob(filepath.Join(tmp, fmt.Sprintf(".killed-%d.partial-*", k)))
		if _, err := os.Stat(target); err == nil {
			whole++
			if out, errOut, code := runTrail(t, "restore", "--from", target, "--data", target+"-restored"); code != 0 {
				t.Errorf("kill %d: the backup under its name does not restore: exit %d\n%s%s", k, code, out, errOut)
			}
			continue
		}
		for _, p := range left {
			partial++
			// Commit writes the manifest of a checked backup moments before
			// the rename: a kill between the two leaves it whole.
			want := 1
			if _, err := os.Stat(filepath.Join(p, backup.ManifestFile)); err == nil {
				want = 0
			}
			if out, errOut, code := runTrail(t, "restore", "--from", p, "--data", p+"-restored"); code != want {
				t.Errorf("kill %d: restore of the partial %s: exit %d, want %d\n%s%s", k, p, code, want, out, errOut)
			}
		}
	}
	t.Logf("a backup takes %v; killed runs left %d whole backups and %d partial directories", took, whole, partial)
}
