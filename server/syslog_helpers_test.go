package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/internal/syslog"
	"github.com/trailhq/trail/server"
)

// Principals of the syslog tests' tokens file.
const (
	atnaPrincipal   = "atna"      // appends to patient/* and atna/*
	narrowPrincipal = "narrow"    // appends to other/* only
	unparsedOnly    = "unparsed"  // appends to atna/unparsed only
	pacsPrincipal   = "pacs.ward" // a TLS sender, as atna
)

// syslogServer is a real engine, the HTTP API and the syslog receivers of
// one server, on loopback.
type syslogServer struct {
	*testServer
	rx   *server.SyslogReceiver
	reg  *prometheus.Registry
	tlsF *server.TLSFiles
	ca   *mxCA
}

// syslogSetup is what a syslog test may change before the server starts.
type syslogSetup struct {
	engine trail.Config
	cfg    server.SyslogConfig
	tls    bool
}

// startSyslog starts a server whose tokens file holds the principals above
// and whose receivers listen on free loopback ports (TCP and UDP as
// atnaPrincipal unless changed; TLS when asked).
func startSyslog(t testing.TB, opts ...func(*syslogSetup)) *syslogServer {
	t.Helper()
	dir := t.TempDir()
	st := syslogSetup{engine: trail.DefaultConfig(),
		cfg: server.SyslogConfig{TCPAddr: "127.0.0.1:0", UDPAddr: "127.0.0.1:0", Principal: atnaPrincipal}}
	for _, o := range opts {
		o(&st)
	}
	for name, grants := range map[string][]string{
		atnaPrincipal: {"patient/*", "atna/*"}, narrowPrincipal: {"other/*"}, unparsedOnly: {"atna/unparsed"},
		pacsPrincipal: {"patient/*", "atna/*"},
	} {
		if _, err := auth.Create(dir, auth.Entry{Name: name, Append: grants}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	l, err := openEngine(t, dir, st.engine)
	if err != nil {
		t.Fatalf("open engine: %v", err)
	}
	tok, _, err := server.EnsureAdminToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	ta, err := server.NewTokenAuth(dir, tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &syslogServer{reg: prometheus.NewRegistry()}
	if st.tls {
		s.ca, s.tlsF = syslogTLSFiles(t)
		if st.cfg.TLS, err = s.tlsF.SyslogConfig(); err != nil {
			t.Fatal(err)
		}
		st.cfg.TLSAddr = "127.0.0.1:0"
	}
	srv, err := server.New(l, server.Config{Auth: ta, Registry: s.reg, ReadRate: unlimitedReads, AdminReadRate: unlimitedReads})
	if err != nil {
		t.Fatal(err)
	}
	if s.rx, err = srv.StartSyslog(st.cfg); err != nil {
		t.Fatalf("start syslog: %v", err)
	}
	ts := httptest.NewServer(checkAPI(t, srv.Handler()))
	t.Cleanup(func() { // the order trail serve stops in
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.rx.Shutdown(ctx); err != nil {
			t.Errorf("syslog shutdown: %v", err)
		}
		srv.Shutdown()
		ts.Close()
		ta.Close()
		if err := l.Close(ctx); err != nil {
			t.Errorf("close engine: %v", err)
		}
	})
	s.testServer = &testServer{dir: dir, l: l, srv: srv, ts: ts, tok: tok, client: ts.Client()}
	return s
}

// syslogTLSFiles writes a CA, and a server certificate for 127.0.0.1 it
// issued, as the files trail serve is given.
func syslogTLSFiles(t testing.TB) (*mxCA, *server.TLSFiles) {
	ca := mxNewCA(t, "Hospital CA")
	leaf := ca.issue(t, "trail.example", true)
	d := t.TempDir()
	f := &server.TLSFiles{Cert: filepath.Join(d, "cert.pem"), Key: filepath.Join(d, "key.pem"), ClientCA: filepath.Join(d, "ca.pem")}
	for path, b := range map[string][]byte{f.Cert: leaf.certPEM, f.Key: leaf.keyPEM, f.ClientCA: ca.pem} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, f
}

// dial connects to a transport's listener.
func (s *syslogServer) dial(t testing.TB, transport string) net.Conn {
	t.Helper()
	c, err := net.Dial(map[string]string{server.TransportTCP: "tcp", server.TransportUDP: "udp"}[transport], s.rx.Addr(transport).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialTLS connects over TLS with the client certificate cert (none when
// nil), trusting the test CA.
func (s *syslogServer) dialTLS(t testing.TB, cert *tls.Certificate) (*tls.Conn, error) {
	t.Helper()
	cfg := &tls.Config{RootCAs: mxPool(s.ca), ServerName: "127.0.0.1"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	c, err := tls.Dial("tcp", s.rx.Addr(server.TransportTLS).String(), cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	// TLS 1.3 reports a refused client certificate only on the first read.
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	c.SetReadDeadline(time.Time{})
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return c, nil
	}
	return nil, fmt.Errorf("the server closed the connection: %v", err)
}

// waitSize waits until the log holds n events.
func (s *syslogServer) waitSize(t testing.TB, n uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if n == 0 {
		return
	}
	if _, err := s.l.WaitSize(ctx, n-1); err != nil { // more than n-1
		t.Fatalf("waiting for %d events (have %d): %v", n, s.l.Size(), err)
	}
}

// waitCount waits until the syslog counter of transport and result reaches
// n: a message is counted once the engine answered.
func (s *syslogServer) waitCount(t testing.TB, transport, result string, n float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.count(t, transport, result) < n {
		if time.Now().After(deadline) {
			t.Fatalf("trail_syslog_messages_total{transport=%q,result=%q} = %v, want %v", transport, result, s.count(t, transport, result), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// count reads trail_syslog_messages_total{transport, result}.
func (s *syslogServer) count(t testing.TB, transport, result string) float64 {
	return s.metric(t, "trail_syslog_messages_total", map[string]string{"transport": transport, "result": result})
}

// metric reads a counter or gauge with the given labels (0 when absent).
func (s *syslogServer) metric(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok && v == lp.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// storedEvents returns every stored event, parsed.
func (s *syslogServer) storedEvents(t testing.TB) []trail.StoredEvent {
	t.Helper()
	var out []trail.StoredEvent
	for i := range s.l.Size() {
		se, err := trail.ParseStored(s.stored(t, i))
		if err != nil {
			t.Fatalf("stored event %d: %v", i, err)
		}
		out = append(out, se)
	}
	return out
}

// receivedOf decodes details.received and details.unparsed of an event.
type receivedDoc struct {
	Received struct {
		Transport, Peer, Principal, Format, Hostname string
		AppName                                      string `json:"app_name"`
		ProcID                                       string `json:"procid"`
		MsgID                                        string `json:"msgid"`
		Timestamp                                    string
		Problems                                     []string
		SyslogProblems                               []string `json:"syslog_problems"`
	}
	Unparsed string
}

func receivedOf(t testing.TB, ev trail.Event) receivedDoc {
	t.Helper()
	var d receivedDoc
	if err := json.Unmarshal(ev.Details, &d); err != nil {
		t.Fatalf("details %s: %v", ev.Details, err)
	}
	return d
}

// sample reads atna/testdata/NAME.xml, without the file's final LF: a
// Reader drops a LF that ends an octet-counted frame (some senders count
// it), so it would not be part of the message stored.
func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "atna", "testdata", name+".xml"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

// samples lists the names of atna/testdata/*.xml.
func samples(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "atna", "testdata", "*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for i, f := range files {
		files[i] = strings.TrimSuffix(filepath.Base(f), ".xml")
	}
	return files
}

// rfc5424 wraps body in an RFC 5424 header, as an ATNA sender does
// (facility authpriv, severity notice).
func rfc5424(body []byte) []byte {
	return append([]byte("<85>1 2026-12-07T09:15:02.123Z ehr1.example PACS 4242 IHE+RFC-3881 - "), body...)
}

// octet frames messages with octet counting.
func octet(msgs ...[]byte) []byte {
	var b []byte
	for _, m := range msgs {
		b = syslog.AppendOctetCounted(b, m)
	}
	return b
}

// write writes b to c, failing the test on error.
func write(t testing.TB, c net.Conn, b []byte) {
	t.Helper()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
}

// query asks GET /v1/events as the admin and returns the events.
func (s *syslogServer) query(t testing.TB, params string) []json.RawMessage {
	t.Helper()
	r := s.get(t, "/v1/events?"+params)
	if r.Status != http.StatusOK {
		t.Fatalf("query %s: %s", params, r)
	}
	var page struct{ Events []json.RawMessage }
	if err := json.Unmarshal(r.Body, &page); err != nil {
		t.Fatal(err)
	}
	return page.Events
}
