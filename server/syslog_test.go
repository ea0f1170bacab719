package server_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/server"
)

func mxPool(ca *mxCA) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// goldenEvent is an atna/testdata golden file: the event the mapping makes
// of a sample, and its problems.
type goldenEvent struct {
	Event    trail.Event `json:"event"`
	Problems []string    `json:"problems"`
}

// wantMapped checks a stored event against the golden mapping of sample
// and its origin: the original is the message byte for byte, details say
// how it came and hold the mapping's problems.
func wantMapped(t *testing.T, got trail.StoredEvent, name string, raw []byte, transport, principal string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "atna", "testdata", name+".golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g goldenEvent
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if got.Original == nil || got.Original.Format != trail.OriginalSyslog || !bytes.Equal(got.Original.Data, raw) {
		t.Errorf("%s: original %q, want the message as sent", name, got.Original)
	}
	d := receivedOf(t, got.Event)
	if d.Received.Transport != transport || d.Received.Principal != principal || !strings.HasPrefix(d.Received.Peer, "127.0.0.1:") ||
		d.Received.Hostname != "ehr1.example" || d.Received.AppName != "PACS" || d.Received.ProcID != "4242" ||
		d.Received.MsgID != "IHE+RFC-3881" || d.Received.Timestamp != "2026-12-07T09:15:02.123Z" || d.Received.Format != "rfc5424" || d.Unparsed != "" {
		t.Errorf("%s: details %s", name, got.Details)
	}
	if diff := cmp.Diff(g.Problems, d.Received.Problems); diff != "" {
		t.Errorf("%s: details.received.problems (-golden +got):\n%s", name, diff)
	}
	ev := got.Event
	ev.ID, ev.Details, ev.Original = "", nil, nil
	gotJSON, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := g.Event.MarshalJSON()
	if g.Event.Time.IsZero() { // the time recorded applies
		gotJSON = regexp.MustCompile(`"time":"[^"]*",`).ReplaceAll(gotJSON, nil)
	}
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("%s: stored event\n%s\nwant the golden mapping\n%s", name, gotJSON, wantJSON)
	}
}

// TestSyslogTCPStoresEverySample sends every sample message over TCP with
// octet counting and finds each stored as its golden mapping, in order,
// with its original and details.received, and through GET /v1/events.
func TestSyslogTCPStoresEverySample(t *testing.T) {
	s := startSyslog(t)
	names := samples(t)
	var msgs [][]byte
	for _, n := range names {
		msgs = append(msgs, rfc5424(sample(t, n)))
	}
	c := s.dial(t, server.TransportTCP)
	write(t, c, octet(msgs...))
	s.waitCount(t, server.TransportTCP, "stored", float64(len(msgs)))
	evs := s.storedEvents(t)
	if len(evs) != len(msgs) {
		t.Fatalf("%d events stored, want %d", len(evs), len(msgs))
	}
	for i, n := range names {
		wantMapped(t, evs[i], n, msgs[i], server.TransportTCP, atnaPrincipal)
	}
	got := s.query(t, "stream="+evs[0].Stream)
	if len(got) == 0 || !bytes.Equal(got[0], s.stored(t, 0)) {
		t.Errorf("GET /v1/events?stream=%s: %d events, the first %.200s", evs[0].Stream, len(got), got)
	}
	want := 0
	for _, ev := range evs {
		if ev.Type == "dicom:110110" {
			want++
		}
	}
	if got := s.query(t, "type=dicom:110110"); len(got) != want || want < 2 {
		t.Errorf("GET /v1/events?type=dicom:110110: %d events, want %d", len(got), want)
	}
}

// TestSyslogUDP stores one message per datagram, details naming udp.
func TestSyslogUDP(t *testing.T) {
	s := startSyslog(t)
	c := s.dial(t, server.TransportUDP)
	raw := rfc5424(sample(t, "110110-patient-record"))
	write(t, c, raw)
	s.waitCount(t, server.TransportUDP, "stored", 1)
	wantMapped(t, s.storedEvents(t)[0], "110110-patient-record", raw, server.TransportUDP, atnaPrincipal)
}

// TestSyslogTLS: a client certificate signed by the client CA names the
// principal whose grants apply; without one, or with an unknown CN, the
// connection is refused; a principal without the grant has its messages
// refused and nothing stored.
func TestSyslogTLS(t *testing.T) {
	s := startSyslog(t, func(st *syslogSetup) { st.tls = true })
	raw := rfc5424(sample(t, "110110-patient-record"))

	pacs := s.ca.issue(t, pacsPrincipal, false)
	c, err := s.dialTLS(t, &pacs.tls)
	if err != nil {
		t.Fatalf("client with a known CN: %v", err)
	}
	if _, err := c.Write(octet(raw)); err != nil {
		t.Fatal(err)
	}
	s.waitCount(t, server.TransportTLS, "stored", 1)
	wantMapped(t, s.storedEvents(t)[0], "110110-patient-record", raw, server.TransportTLS, pacsPrincipal)

	if _, err := s.dialTLS(t, nil); err == nil {
		t.Error("a client without a certificate was served")
	}
	stranger := s.ca.issue(t, "stranger", false)
	if _, err := s.dialTLS(t, &stranger.tls); err == nil {
		t.Error("a client whose CN is no principal was served")
	}
	other := mxNewCA(t, "Other CA").issue(t, pacsPrincipal, false)
	if _, err := s.dialTLS(t, &other.tls); err == nil {
		t.Error("a client certificate from another CA was served")
	}
	if got := s.metric(t, "trail_syslog_connections_refused_total", map[string]string{"transport": "tls", "reason": "unknown_principal"}); got != 1 {
		t.Errorf("connections refused for an unknown principal: %v, want 1", got)
	}

	narrow := s.ca.issue(t, narrowPrincipal, false)
	c, err = s.dialTLS(t, &narrow.tls)
	if err != nil {
		t.Fatalf("client %s: %v", narrowPrincipal, err)
	}
	if _, err := c.Write(octet(raw, []byte("not xml"))); err != nil {
		t.Fatal(err)
	}
	s.waitCount(t, server.TransportTLS, "refused", 2)
	if n := s.l.Size(); n != 1 {
		t.Errorf("%d events stored, want 1: a principal without the grant had messages stored", n)
	}
}

// TestSyslogTLSPolicy: the syslog TLS listener holds to the HTTPS listener's
// policy (TestTLSPolicy): a TLS 1.2 handshake offering only RSA key exchange
// (TLS_RSA_WITH_AES_128_GCM_SHA256, as old ATNA senders do) is refused, and
// accepted with LegacyRSA (--tls-legacy-rsa); ECDHE is accepted either way.
func TestSyslogTLSPolicy(t *testing.T) {
	ca := mxNewCA(t, "Hospital CA")
	// RSA key exchange needs an RSA server key.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "trail.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	d := t.TempDir()
	pacs := ca.issue(t, pacsPrincipal, false)
	for _, legacy := range []bool{false, true} {
		f := &server.TLSFiles{Cert: filepath.Join(d, "rsa.pem"), Key: filepath.Join(d, "rsa.key"), ClientCA: filepath.Join(d, "ca.pem"), LegacyRSA: legacy}
		for path, b := range map[string][]byte{
			f.Cert:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			f.Key:      pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
			f.ClientCA: ca.pem,
		} {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s := startSyslog(t, func(st *syslogSetup) {
			var err error
			if st.cfg.TLS, err = f.SyslogConfig(); err != nil {
				t.Fatal(err)
			}
			st.cfg.TLSAddr = "127.0.0.1:0"
		})
		for _, c := range []struct {
			name             string
			suite            uint16
			ok, okWithLegacy bool
		}{
			{"TLS 1.2 RSA key exchange AES-GCM", tls.TLS_RSA_WITH_AES_128_GCM_SHA256, false, true},
			{"TLS 1.2 ECDHE AES-GCM", tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, true, true},
		} {
			want := c.ok
			if legacy {
				want = c.okWithLegacy
			}
			conf := &tls.Config{RootCAs: mxPool(ca), ServerName: "127.0.0.1", Certificates: []tls.Certificate{pacs.tls},
				MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{c.suite}}
			conn, err := tls.Dial("tcp", s.rx.Addr(server.TransportTLS).String(), conf)
			switch {
			case err == nil && !want:
				t.Errorf("legacy-rsa %v: %s accepted by the syslog TLS listener (%s), want refused", legacy, c.name, tls.CipherSuiteName(conn.ConnectionState().CipherSuite))
			case err != nil && want:
				t.Errorf("legacy-rsa %v: %s refused by the syslog TLS listener: %v", legacy, c.name, err)
			case err == nil && conn.ConnectionState().CipherSuite != c.suite:
				t.Errorf("legacy-rsa %v: %s negotiated %s", legacy, c.name, tls.CipherSuiteName(conn.ConnectionState().CipherSuite))
			case err == nil:
				// Accepted: the receiver keeps the connection to read messages.
				conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				_, rerr := conn.Read(make([]byte, 1))
				if ne, ok := rerr.(net.Error); !ok || !ne.Timeout() {
					t.Errorf("legacy-rsa %v: %s: the receiver closed the connection: %v", legacy, c.name, rerr)
				}
			}
			if conn != nil {
				conn.Close()
			}
		}
	}
}

// TestSyslogGrants: over TCP the configured principal's grants apply, to
// mapped and unparsed messages alike.
func TestSyslogGrants(t *testing.T) {
	for _, tc := range []struct {
		principal        string
		stored, unparsed float64
	}{
		{atnaPrincipal, 1, 1},
		{unparsedOnly, 0, 1},
		{narrowPrincipal, 0, 0},
	} {
		t.Run(tc.principal, func(t *testing.T) {
			s := startSyslog(t, func(st *syslogSetup) { st.cfg.Principal = tc.principal; st.cfg.UDPAddr = "" })
			c := s.dial(t, server.TransportTCP)
			write(t, c, octet(rfc5424(sample(t, "110110-patient-record")), rfc5424([]byte("hello"))))
			refused := 2 - tc.stored - tc.unparsed
			s.waitCount(t, server.TransportTCP, "refused", refused)
			s.waitCount(t, server.TransportTCP, "stored", tc.stored)
			s.waitCount(t, server.TransportTCP, "unparsed", tc.unparsed)
			c.Close()
			time.Sleep(50 * time.Millisecond)
			if n := s.l.Size(); float64(n) != tc.stored+tc.unparsed {
				t.Errorf("%d events stored, want %v", n, tc.stored+tc.unparsed)
			}
		})
	}
}

// TestSyslogFraming sends frames as real senders do, well and badly, and
// checks what is stored (and that a broken stream is closed with what came
// before it kept).
func TestSyslogFraming(t *testing.T) {
	msg := rfc5424(sample(t, "110110-patient-record"))
	bom := rfc5424(append([]byte("\xef\xbb\xbf"), sample(t, "110110-patient-record")...))
	big := rfc5424(padTo(t, sample(t, "110110-patient-record"), 64<<10-len(rfc5424(nil))))
	for _, tc := range []struct {
		name     string
		writes   [][]byte
		mapped   int  // events of type dicom:110110
		unparsed int  // atna.unparsed
		closed   bool // the server closes the connection
	}{
		{"one frame in many writes", split(octet(msg), 7), 1, 0, false},
		{"several frames in one write", [][]byte{octet(msg, msg, msg)}, 3, 0, false},
		{"BOM, CRLF and trailing LF inside the count", [][]byte{octet(bom, append(append([]byte{}, msg...), "\r\n"...), append(append([]byte{}, msg...), '\n'))}, 3, 0, false},
		{"LF after each frame", [][]byte{append(octet(msg), '\n'), append(octet(msg), "\n\n"...)}, 2, 0, false},
		{"a 64 KiB message", [][]byte{octet(big)}, 1, 0, false},
		{"over 64 KiB", [][]byte{octet(msg, append(big, ' '))}, 1, 0, true},
		{"garbage between frames", [][]byte{octet(msg), []byte("garbage"), octet(msg)}, 1, 0, true},
		{"length too short", [][]byte{append([]byte("20 "), msg...)}, 0, 1, true},
		{"length too long, then close", [][]byte{octet(msg), append([]byte("99999 "), msg...)}, 1, 0, true},
		{"LF framing", [][]byte{[]byte(string(flat(msg)) + "\n" + string(flat(msg)) + "\r\n")}, 2, 0, false},
		{"LF framing, no final LF", [][]byte{flat(msg)}, 1, 0, true},
		{"LF framing of a pretty-printed message", [][]byte{append(append([]byte{}, msg...), '\n')}, 0, len(bytes.FieldsFunc(msg, func(r rune) bool { return r == '\n' })), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startSyslog(t)
			c := s.dial(t, server.TransportTCP)
			for _, w := range tc.writes {
				write(t, c, w)
				time.Sleep(2 * time.Millisecond)
			}
			if !tc.closed || strings.Contains(tc.name, "close") || strings.Contains(tc.name, "no final") {
				c.(*net.TCPConn).CloseWrite()
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the server did not close the connection: %v", err)
			}
			s.waitCount(t, server.TransportTCP, "received", float64(tc.mapped+tc.unparsed))
			s.waitSize(t, uint64(tc.mapped+tc.unparsed))
			time.Sleep(20 * time.Millisecond)
			var mapped, unparsed int
			for _, ev := range s.storedEvents(t) {
				switch ev.Type {
				case "dicom:110110":
					mapped++
				case server.UnparsedType:
					unparsed++
				}
			}
			if mapped != tc.mapped || unparsed != tc.unparsed {
				t.Errorf("stored %d mapped and %d unparsed events, want %d and %d", mapped, unparsed, tc.mapped, tc.unparsed)
			}
			frameErrs := 0.0
			for _, k := range []string{"bad_frame", "too_large", "truncated"} {
				frameErrs += s.metric(t, "trail_syslog_frame_errors_total", map[string]string{"transport": "tcp", "kind": k})
			}
			if tc.closed != (frameErrs > 0) {
				t.Errorf("frame errors counted: %v; want some: %v", frameErrs, tc.closed)
			}
		})
	}
}

// split cuts b into writes of n bytes.
func split(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// flat puts a pretty-printed message on one line, for LF framing.
func flat(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), nil) }

// padTo pads an AuditMessage with a comment before its end so that it is n
// bytes long.
func padTo(t *testing.T, xml []byte, n int) []byte {
	t.Helper()
	end := []byte("</AuditMessage>")
	i := bytes.LastIndex(xml, end)
	pad := n - len(xml) - len("<!---->")
	if i < 0 || pad < 0 {
		t.Fatal("cannot pad the sample")
	}
	out := append([]byte{}, xml[:i]...)
	out = append(out, "<!--"...)
	out = append(out, bytes.Repeat([]byte("x"), pad)...)
	out = append(out, "-->"...)
	return append(out, xml[i:]...)
}

// TestSyslogUnparsed: a message that cannot be parsed or mapped is stored
// in atna/unparsed, as the principal, with why in details and its bytes as
// the original, byte for byte (invalid UTF-8 too).
func TestSyslogUnparsed(t *testing.T) {
	noAction := bytes.Replace(sample(t, "110110-patient-record"), []byte(`EventActionCode="R" `), nil, 1)
	cases := []struct {
		name string
		raw  []byte
		why  string
	}{
		{"not XML", rfc5424([]byte("user nurse.ratched read patient 12345")), "not an XML document"},
		{"XML, not an AuditMessage", rfc5424([]byte(`<?xml version="1.0"?><Order id="1"/>`)), "not an AuditMessage"},
		{"unmappable", rfc5424(noAction), "cannot be mapped"},
		{"invalid UTF-8", rfc5424([]byte("caf\xe9 \xff\xfe\x00 <b>")), "not an XML document"},
		{"DOCTYPE", rfc5424([]byte(`<!DOCTYPE AuditMessage [<!ENTITY x "y">]><AuditMessage/>`)), "DOCTYPE"},
		{"raw bytes, no syslog header", []byte("\x00\x01\x02 binary"), "not an XML document"},
	}
	s := startSyslog(t)
	c := s.dial(t, server.TransportTCP)
	for _, tc := range cases {
		write(t, c, octet(tc.raw))
	}
	s.waitCount(t, server.TransportTCP, "unparsed", float64(len(cases)))
	evs := s.storedEvents(t)
	if len(evs) != len(cases) {
		t.Fatalf("%d events stored, want %d", len(evs), len(cases))
	}
	for i, tc := range cases {
		ev := evs[i]
		if ev.Stream != server.UnparsedStream || ev.Type != server.UnparsedType || ev.Action != "E" || ev.Actor.ID != atnaPrincipal ||
			ev.Outcome != trail.OutcomeMinorFailure || ev.Actor.Address != "127.0.0.1" {
			t.Errorf("%s: stored as %s %s %s %+v %s", tc.name, ev.Stream, ev.Type, ev.Action, ev.Actor, ev.Outcome)
		}
		if ev.Original == nil || !bytes.Equal(ev.Original.Data, tc.raw) {
			t.Errorf("%s: original %q, want %q", tc.name, ev.Original, tc.raw)
		}
		d := receivedOf(t, ev.Event)
		if !strings.Contains(d.Unparsed, tc.why) || d.Received.Transport != "tcp" || d.Received.Principal != atnaPrincipal {
			t.Errorf("%s: details %s, want why to say %q", tc.name, ev.Details, tc.why)
		}
	}
	if got := s.query(t, "stream=atna/unparsed"); len(got) != len(cases) {
		t.Errorf("GET /v1/events?stream=atna/unparsed: %d events, want %d", len(got), len(cases))
	}
}

// TestSyslogAllow: TCP connections and UDP datagrams from peers outside
// Allow are refused and counted, and nothing they send is stored.
func TestSyslogAllow(t *testing.T) {
	s := startSyslog(t, func(st *syslogSetup) { st.cfg.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	raw := octet(rfc5424(sample(t, "110110-patient-record")))
	c := s.dial(t, server.TransportTCP)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a peer outside --syslog-allow kept its connection: %v", err)
	}
	c.Write(raw) // may fail: the connection is closed
	u := s.dial(t, server.TransportUDP)
	write(t, u, rfc5424(sample(t, "110110-patient-record")))
	deadline := time.Now().Add(10 * time.Second)
	for s.count(t, "udp", "dropped") < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.count(t, "udp", "dropped"); got != 1 {
		t.Errorf("UDP datagrams dropped: %v, want 1", got)
	}
	if got := s.metric(t, "trail_syslog_connections_refused_total", map[string]string{"transport": "tcp", "reason": "not_allowed"}); got != 1 {
		t.Errorf("TCP connections refused: %v, want 1", got)
	}
	if n := s.l.Size(); n != 0 || s.count(t, "tcp", "received") != 0 || s.count(t, "udp", "received") != 0 {
		t.Errorf("%d events stored from peers not allowed", n)
	}
}

// TestSyslogBackpressure: a sender much faster than the disk (every event
// fsynced) never has more than the window of its messages held by the
// server, and every message it wrote is stored once it closes.
func TestSyslogBackpressure(t *testing.T) {
	t.Run("slow disk", func(t *testing.T) { testBackpressure(t, 0) })
	t.Run("tiny engine queue", func(t *testing.T) { testBackpressure(t, 2) })
}

func testBackpressure(t *testing.T, queue int) {
	const window, n = 8, 3000
	s := startSyslog(t, func(st *syslogSetup) { st.cfg.Window = window; st.engine.QueueSize = queue })
	c := s.dial(t, server.TransportTCP)
	msg := octet(rfc5424(sample(t, "110110-patient-record")))
	go func() {
		w := bytes.Repeat(msg, 100)
		for range n / 100 {
			if _, err := c.Write(w); err != nil {
				return
			}
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	s.waitCount(t, server.TransportTCP, "stored", n)
	s.waitSize(t, n)
	if p := s.rx.PeakInFlight(); p > window || p < 2 {
		t.Errorf("peak messages in flight: %d, want 2..%d (bounded, and more than one at a time)", p, window)
	}
	if got := s.metric(t, "trail_syslog_window_peak_messages", nil); got != float64(s.rx.PeakInFlight()) {
		t.Errorf("trail_syslog_window_peak_messages = %v", got)
	}
}

// TestSyslogStartErrors: tcp and udp need a principal of the tokens file
// with an append grant, never the admin; TLS needs client certificates.
func TestSyslogStartErrors(t *testing.T) {
	s := startSyslog(t, func(st *syslogSetup) { st.cfg = server.SyslogConfig{UDPAddr: "127.0.0.1:0", Principal: atnaPrincipal} })
	for _, tc := range []struct {
		name string
		cfg  server.SyslogConfig
		want string
	}{
		{"no principal", server.SyslogConfig{TCPAddr: "127.0.0.1:0"}, "--syslog-principal"},
		{"unknown principal", server.SyslogConfig{TCPAddr: "127.0.0.1:0", Principal: "nobody"}, `"nobody" is not an active principal`},
		{"admin", server.SyslogConfig{TCPAddr: "127.0.0.1:0", Principal: "admin"}, "admin may append to any stream"},
		{"TLS without a configuration", server.SyslogConfig{TLSAddr: "127.0.0.1:0"}, "TLS configuration"},
		{"nothing to listen on", server.SyslogConfig{}, "no address"},
	} {
		if _, err := s.srv.StartSyslog(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	f := &server.TLSFiles{Cert: "c", Key: "k"}
	if _, err := f.SyslogConfig(); err == nil || !strings.Contains(err.Error(), "--client-ca") {
		t.Errorf("TLS without a client CA: %v", err)
	}
	l, err := trail.Open(t.TempDir(), trail.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(t.Context())
	adminOnly, err := server.New(l, server.Config{AdminToken: server.NewToken()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adminOnly.StartSyslog(server.SyslogConfig{TCPAddr: "127.0.0.1:0", Principal: "admin"}); err == nil || !strings.Contains(err.Error(), "tokens file") {
		t.Errorf("syslog on a server with AdminOnly: %v", err)
	}
}

// TestSyslogRevoked: the principal is looked up for every message, so a
// revoked one has the next messages of an open connection refused.
func TestSyslogRevoked(t *testing.T) {
	s := startSyslog(t)
	c := s.dial(t, server.TransportTCP)
	raw := octet(rfc5424(sample(t, "110110-patient-record")))
	write(t, c, raw)
	s.waitCount(t, server.TransportTCP, "stored", 1)
	if err := auth.Revoke(s.dir, atnaPrincipal, time.Now()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * server.PolicyReload)
	write(t, c, raw)
	s.waitCount(t, server.TransportTCP, "refused", 1)
	if n := s.l.Size(); n != 1 {
		t.Errorf("%d events stored, want 1: a revoked principal's message was stored", n)
	}
}

// TestSyslogShutdown: a shutdown in the middle of a stream stops reading,
// and every message read by then is stored before it returns: none is
// left counted as received and not resolved, and none failed.
func TestSyslogShutdown(t *testing.T) {
	s := startSyslog(t)
	c := s.dial(t, server.TransportTCP)
	msg := octet(rfc5424(sample(t, "110110-patient-record")))
	go func() {
		w := bytes.Repeat(msg, 50)
		for {
			if _, err := c.Write(w); err != nil {
				return
			}
		}
	}()
	s.waitCount(t, server.TransportTCP, "stored", 200)
	if err := s.rx.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	received, stored := s.count(t, "tcp", "received"), s.count(t, "tcp", "stored")
	if received != stored || s.count(t, "tcp", "failed") != 0 || float64(s.l.Size()) != stored {
		t.Errorf("after shutdown: %v received, %v stored, %v failed, %d in the log", received, stored, s.count(t, "tcp", "failed"), s.l.Size())
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the connection is still open after shutdown: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if got := s.count(t, "tcp", "received"); got != received {
		t.Errorf("%v messages read after shutdown returned", got-received)
	}
}

// TestSyslogConnectionLimits: past MaxConns a connection is closed at once;
// an idle connection is closed after IdleTimeout.
func TestSyslogConnectionLimits(t *testing.T) {
	s := startSyslog(t, func(st *syslogSetup) { st.cfg.MaxConns = 1; st.cfg.IdleTimeout = 300 * time.Millisecond })
	first := s.dial(t, server.TransportTCP)
	write(t, first, octet(rfc5424([]byte("hello"))))
	s.waitCount(t, server.TransportTCP, "received", 1)
	second := s.dial(t, server.TransportTCP)
	second.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := second.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a connection past MaxConns was kept: %v", err)
	}
	start := time.Now()
	first.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := first.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("an idle connection was kept: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("an idle connection was closed after %s, want about 300ms", d)
	}
	if got := s.metric(t, "trail_syslog_connections_refused_total", map[string]string{"transport": "tcp", "reason": "too_many"}); got != 1 {
		t.Errorf("connections refused as too many: %v, want 1", got)
	}
}

// TestSyslogDetailsBounded: a message whose mapping lists thousands of
// problems, and a 64 KiB one, are still stored mapped, with details under
// 16 KiB and the event under 64 KiB; an RFC 3164 message is mapped too.
func TestSyslogDetailsBounded(t *testing.T) {
	rec := sample(t, "110110-patient-record")
	end := bytes.LastIndex(rec, []byte("</AuditMessage>"))
	many := append(append(append([]byte{}, rec[:end]...), bytes.Repeat([]byte("<Unknown/>"), 3000)...), rec[end:]...)
	i := bytes.Index(rec, []byte("Doe^Jane"))
	escaped := append(append(append([]byte{}, rec[:i]...), bytes.Repeat([]byte(`"`), 31000)...), rec[i+len("Doe^Jane"):]...) // twice as long in JSON
	msgs := [][]byte{
		rfc5424(many),
		rfc5424(escaped),
		append([]byte("<85>Dec  7 09:15:02 ehr1 PACS[4242]: "), rec...),
		rfc5424(bytes.Replace(many, []byte("Doe^Jane"), bytes.Repeat([]byte(`"`), 28000), 1)), // fits without details only
	}
	s := startSyslog(t)
	write(t, s.dial(t, server.TransportTCP), octet(msgs...))
	s.waitCount(t, server.TransportTCP, "stored", float64(len(msgs)))
	for i, ev := range s.storedEvents(t) {
		if ev.Type != "dicom:110110" {
			t.Errorf("message %d stored as %s: %s", i, ev.Type, ev.OutcomeDesc)
		}
		if len(ev.Details) > trail.MaxDetailsSize {
			t.Errorf("message %d: details of %d bytes", i, len(ev.Details))
		}
		ev.Original = nil
		if b, err := ev.MarshalJSON(); err != nil || len(b) > trail.MaxEventSize {
			t.Errorf("message %d: event of %d bytes (%v)", i, len(b), err)
		}
		d := receivedOf(t, ev.Event)
		switch i {
		case 0:
			if n := len(d.Received.Problems); n < 10 || !strings.HasPrefix(d.Received.Problems[n-1], "and ") {
				t.Errorf("message 0: %d problems kept, the last %q", n, d.Received.Problems[n-1])
			}
		case 3:
			if len(d.Received.Problems) != 1 || !strings.Contains(d.Received.Problems[0], "problems left out") {
				t.Errorf("message 3: problems %q, want them left out", d.Received.Problems)
			}
		case 2:
			if d.Received.Format != "rfc3164" || d.Received.Hostname != "ehr1" || d.Received.AppName != "PACS" || d.Received.ProcID != "4242" {
				t.Errorf("RFC 3164 message: details %s", ev.Details)
			}
		}
	}
}
