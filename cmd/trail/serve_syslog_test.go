package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/internal/syslog"
)

// patientRecord is atna/testdata/110110-patient-record.xml and the stream
// the mapping puts it in.
const patientRecordStream = "patient/1.3.6.1.4.1.21367.2005.3.7:12345"

func patientRecord(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "atna", "testdata", "110110-patient-record.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

// syslogDataDir makes a data directory with the principal "atna", which
// may append to patient/* and atna/*.
func syslogDataDir(t *testing.T) string {
	t.Helper()
	dir := newDataDir(t)
	if _, errOut, code := runTrail(t, "token", "create", "--data", dir, "--name", "atna", "--append", "patient/*", "--append", "atna/*"); code != 0 {
		t.Fatalf("token create: exit %d: %s", code, errOut)
	}
	return dir
}

// syslogAddr reads the address a syslog transport listens on from the
// line trail serve logs when it serves.
func syslogAddr(t *testing.T, p *serveProc, transport string) string {
	t.Helper()
	m := regexp.MustCompile(`syslog_` + transport + `=(\S+)`).FindStringSubmatch(p.log())
	if m == nil {
		t.Fatalf("trail serve did not say where syslog over %s listens:\n%s", transport, p.log())
	}
	return m[1]
}

// streamLength asks the running server for a stream's length (0 when it
// has no events).
func streamLength(t *testing.T, p *serveProc, stream string) uint64 {
	t.Helper()
	req, _ := http.NewRequest("GET", p.url+"/v1/streams/"+stream, nil)
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0
	}
	var h struct{ Length uint64 }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	return h.Length
}

// TestServeSyslogKill: messages sent over TCP and visible through the API
// are all there after a SIGKILL of the server and a restart.
func TestServeSyslogKill(t *testing.T) {
	const n = 500
	dir := syslogDataDir(t)
	p := startServe(t, dir, "--syslog-tcp", "127.0.0.1:0", "--syslog-principal", "atna")
	c, err := net.Dial("tcp", syslogAddr(t, p, "tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := append([]byte("<85>1 2026-12-07T09:15:02Z ehr1 EHR - - - "), patientRecord(t)...)
	var frames []byte
	for range n {
		frames = syslog.AppendOctetCounted(frames, msg)
	}
	if _, err := c.Write(frames); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for streamLength(t, p, patientRecordStream) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages visible after 30s\n%s", streamLength(t, p, patientRecordStream), n, p.log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	p2 := startServe(t, dir)
	if got := streamLength(t, p2, patientRecordStream); got != n {
		t.Fatalf("after SIGKILL and restart the stream holds %d events, want %d", got, n)
	}
}

// TestServeSyslogLogger sends an AuditMessage with util-linux logger, a
// sender nobody here wrote, over TCP with octet counting to trail serve,
// and finds the mapped event with trail query.
func TestServeSyslogLogger(t *testing.T) {
	path, err := exec.LookPath("logger")
	if err != nil {
		t.Skip("logger (util-linux) is not installed: install util-linux (bsdutils on Debian) to run this test")
	}
	dir := syslogDataDir(t)
	p := startServe(t, dir, "--syslog-tcp", "127.0.0.1:0", "--syslog-principal", "atna")
	_, port, _ := net.SplitHostPort(syslogAddr(t, p, "tcp"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--tcp", "--octet-count", "--rfc5424", "-n", "127.0.0.1", "-P", port,
		"--tag", "PACS", "--msgid", "IHE+RFC-3881", "--priority", "authpriv.notice", "--size", "65536")
	cmd.Stdin = bytes.NewReader(append(bytes.ReplaceAll(patientRecord(t), []byte("\n"), nil), '\n'))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("logger: %v\n%s", err, out)
	}
	var out string
	deadline := time.Now().Add(30 * time.Second)
	for {
		var errOut string
		var code int
		out, errOut, code = trailCmd(t, p, "", "query", "--stream", patientRecordStream)
		if code != 0 {
			t.Fatalf("trail query: exit %d: %s", code, errOut)
		}
		if out != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("trail query found %d events, want 1:\n%s\n%s", len(lines), out, p.log())
	}
	ev, err := trail.ParseStored([]byte(lines[0]))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Received struct{ Transport, AppName, MsgID string }
	}
	json.Unmarshal(ev.Details, &d)
	if ev.Type != "dicom:110110" || ev.Actor.ID != "nurse.ratched" || ev.Patient != "12345^^^&1.3.6.1.4.1.21367.2005.3.7&ISO" ||
		ev.Original == nil || !bytes.Contains(ev.Original.Data, []byte("<AuditMessage>")) {
		t.Errorf("the event logger's message became: %s", lines[0])
	}
	if !strings.Contains(string(ev.Details), `"app_name":"PACS"`) || !strings.Contains(string(ev.Details), `"transport":"tcp"`) {
		t.Errorf("details: %s", ev.Details)
	}
}

// TestServeSyslogStartErrors: syslog over TCP or UDP without a principal,
// with one that does not exist, and over TLS without client certificates,
// are start-up errors (exit 2) that say what to do.
func TestServeSyslogStartErrors(t *testing.T) {
	dir := syslogDataDir(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--syslog-tcp", "127.0.0.1:0"}, "--syslog-principal"},
		{[]string{"--syslog-udp", "127.0.0.1:0", "--syslog-principal", "nobody"}, `"nobody" is not an active principal`},
		{[]string{"--syslog-tcp", "127.0.0.1:0", "--syslog-principal", "admin"}, "admin may append to any stream"},
		{[]string{"--syslog-tls", "127.0.0.1:0"}, "--client-ca"},
		{[]string{"--syslog-tcp", "127.0.0.1:0", "--syslog-principal", "atna", "--syslog-allow", "10.0.0.300/8"}, "--syslog-allow"},
	} {
		args := append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0"}, tc.args...)
		_, errOut, code := runTrail(t, args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("trail %s: exit %d, %q; want exit 2 saying %q", strings.Join(args, " "), code, errOut, tc.want)
		}
	}
}
