package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/client"
	"github.com/trailhq/trail/server"
)

// mxCA is a certificate authority made for a test.
type mxCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func mxNewCA(t testing.TB, name string) *mxCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &mxCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// mxLeaf is a certificate the CA issued, with its key.
type mxLeaf struct {
	certPEM, keyPEM []byte
	tls             tls.Certificate
	serial          *big.Int
}

// issue makes a server certificate for 127.0.0.1, or a client certificate
// whose subject CN is cn.
func (ca *mxCA) issue(t testing.TB, cn string, forServer bool) mxLeaf {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if forServer {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	l := mxLeaf{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		serial:  serial,
	}
	if l.tls, err = tls.X509KeyPair(l.certPEM, l.keyPEM); err != nil {
		t.Fatal(err)
	}
	return l
}

// mxWriteFile replaces a file atomically, as a certificate renewal does.
func mxWriteFile(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// mxRenew replaces a file that exists with one whose modification time
// differs from the old one's (file times are as coarse as the kernel's
// clock tick, a few milliseconds): a renewal as it happens, long after the
// file was written. TestTLSFilesSameModTime covers the other case.
func mxRenew(t testing.TB, path string, b []byte) {
	t.Helper()
	old, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	for {
		mxWriteFile(t, path, b)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !st.ModTime().Equal(old.ModTime()) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// mxTLS is a server on loopback over TLS from certificate files, with
// client certificates of ca.
type mxTLS struct {
	*mxServer
	ca       *mxCA
	files    *server.TLSFiles
	addr     string
	certPath string
	keyPath  string
}

func mxServeTLS(t *testing.T, s *mxServer) *mxTLS {
	t.Helper()
	ca := mxNewCA(t, "Trail test CA")
	dir := t.TempDir()
	m := &mxTLS{mxServer: s, ca: ca, certPath: filepath.Join(dir, "server.pem"), keyPath: filepath.Join(dir, "server.key")}
	leaf := ca.issue(t, "trail.test", true)
	mxWriteFile(t, m.certPath, leaf.certPEM)
	mxWriteFile(t, m.keyPath, leaf.keyPEM)
	mxWriteFile(t, filepath.Join(dir, "clients.pem"), ca.pem)
	m.files = &server.TLSFiles{Cert: m.certPath, Key: m.keyPath, ClientCA: filepath.Join(dir, "clients.pem")}
	conf, err := m.files.Config()
	if err != nil {
		t.Fatalf("TLS config: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: s.h, TLSConfig: conf, ErrorLog: log.New(io.Discard, "", 0)}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })
	t.Cleanup(s.srv.Shutdown)
	m.addr = ln.Addr().String()
	m.url = "https://" + m.addr
	return m
}

// clientConf trusts the test CA and, when cert is set, presents it. With
// always, it presents cert even when the server's list of acceptable CAs
// does not name its issuer.
func (m *mxTLS) clientConf(cert *tls.Certificate, always bool) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(m.ca.cert)
	conf := &tls.Config{RootCAs: roots}
	switch {
	case cert != nil && always:
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	case cert != nil:
		conf.Certificates = []tls.Certificate{*cert}
	}
	return conf
}

func (m *mxTLS) client(t testing.TB, conf *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestTLS: TLS 1.2 with ECDHE and TLS 1.3 (TestTLSPolicy has the rest of
// the policy); a client certificate of the test CA authenticates
// as the principal its subject CN names (grants and read record included);
// an unknown, revoked or admin CN is 401; a certificate of another CA does
// not authenticate; without a certificate a bearer token still works; and a
// renewed server certificate is served without a restart.
func TestTLS(t *testing.T) {
	t.Parallel()
	s := mxStart(t, mxFast(), []auth.Entry{
		{Name: "clinic-app", Read: []string{"patient/1"}, Append: []string{"patient/*"}},
		{Name: "revoked-app", Read: []string{"patient/*"}},
		{Name: "bearer-user", Read: []string{"patient/1"}},
	}, "revoked-app")
	mxAppend(t, s.l, mxEvent("patient/1", "1", "dr-one"), mxEvent("patient/2", "2", "dr-two"))
	m := mxServeTLS(t, s)
	app := m.ca.issue(t, "clinic-app", false)
	ctx := t.Context()
	send := func(c *http.Client, rq mxRequest) mxReply {
		t.Helper()
		r, err := mxSend(ctx, c, m.url, rq)
		if err != nil {
			t.Fatalf("%s %s: %v", rq.method, rq.path, err)
		}
		return r
	}

	t.Run("TLS 1.2 with ECDHE", func(t *testing.T) {
		conf := m.clientConf(nil, false)
		conf.MaxVersion = tls.VersionTLS12
		c, err := tls.Dial("tcp", m.addr, conf)
		if err != nil {
			t.Fatalf("TLS 1.2 handshake: %v", err)
		}
		defer c.Close()
		if st := c.ConnectionState(); st.Version != tls.VersionTLS12 || !strings.HasPrefix(tls.CipherSuiteName(st.CipherSuite), "TLS_ECDHE_") {
			t.Errorf("negotiated %s %s, want TLS 1.2 with an ECDHE suite", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
		}
	})
	t.Run("TLS 1.3", func(t *testing.T) {
		c, err := tls.Dial("tcp", m.addr, m.clientConf(nil, false))
		if err != nil {
			t.Fatalf("TLS 1.3 handshake: %v", err)
		}
		defer c.Close()
		if v := c.ConnectionState().Version; v != tls.VersionTLS13 {
			t.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(v))
		}
	})
	t.Run("client certificate of a principal", func(t *testing.T) {
		hc := m.client(t, m.clientConf(&app.tls, false))
		before := s.l.Size()
		if r := send(hc, mxHead("")); r.status != http.StatusOK {
			t.Fatalf("read patient/1 with clinic-app's certificate: %v", r)
		}
		mxProblem(t, send(hc, mxRequest{method: http.MethodGet, path: "/v1/streams/patient/2"}), http.StatusForbidden, "clinic-app", "patient/2")
		got := mxSince(t, s.l, before)
		if len(got) != 2 || got[0].Actor.ID != "clinic-app" || got[0].Outcome != trail.OutcomeSuccess ||
			got[1].Actor.ID != "clinic-app" || got[1].Outcome != trail.OutcomeMinorFailure {
			t.Errorf("read records %+v, want clinic-app's allowed and refused reads", got)
		}
		b := []byte(`{"stream":"patient/3","type":"t","action":"C","actor":{"id":"app"}}`)
		if r := send(hc, mxRequest{method: http.MethodPost, path: "/v1/events", body: b}); r.status != http.StatusCreated {
			t.Errorf("append with the certificate: %v", r)
		}
	})
	t.Run("certificates that do not authenticate", func(t *testing.T) {
		for _, cn := range []string{"stranger", "revoked-app", "admin"} {
			leaf := m.ca.issue(t, cn, false)
			before := s.l.Size()
			mxUnauthorized(t, send(m.client(t, m.clientConf(&leaf.tls, false)), mxHead("")))
			if got := mxSince(t, s.l, before); len(got) != 0 {
				t.Errorf("CN=%s: stored %+v", cn, got)
			}
		}
	})
	t.Run("certificate of another CA", func(t *testing.T) {
		rogue := mxNewCA(t, "Rogue CA").issue(t, "clinic-app", false)
		for _, always := range []bool{false, true} {
			r, err := mxSend(ctx, m.client(t, m.clientConf(&rogue.tls, always)), m.url, mxHead(""))
			switch {
			case err != nil:
				t.Logf("always sent %v: the handshake failed: %v", always, err)
			case r.status == http.StatusUnauthorized:
				t.Logf("always sent %v: 401", always)
				mxUnauthorized(t, r)
			default:
				t.Errorf("certificate of another CA with CN=clinic-app (always sent: %v): got %v, want a failed handshake or 401", always, r)
			}
		}
	})
	t.Run("bearer token without a certificate", func(t *testing.T) {
		hc := m.client(t, m.clientConf(nil, false))
		for _, tok := range []string{s.tokens["bearer-user"], string(s.admin)} {
			if r := send(hc, mxHead(tok)); r.status != http.StatusOK {
				t.Errorf("bearer token over TLS: %v", r)
			}
		}
		mxUnauthorized(t, send(hc, mxHead("")))
	})
	t.Run("Go client", func(t *testing.T) {
		c, err := client.New(m.url, client.WithTLS(m.clientConf(&app.tls, false)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		rc, err := c.Append(ctx, mxEvent("patient/1", "1", "dr-client"))
		if err != nil {
			t.Fatalf("append through client.WithTLS with a certificate: %v", err)
		}
		page, err := c.Query(ctx, client.Query{Stream: "patient/1"})
		if err != nil || len(page.Events) == 0 {
			t.Fatalf("query through the client: %d events, %v", len(page.Events), err)
		}
		if last := mxParse(t, page.Events[len(page.Events)-1]); last.Index != rc.Index {
			t.Errorf("query's last event %d, want the appended %d", last.Index, rc.Index)
		}
		var ce *client.Error
		if _, err := c.Stream(ctx, "patient/2"); !errors.As(err, &ce) || ce.Status != http.StatusForbidden {
			t.Errorf("stream head of patient/2 through the client: %v, want 403", err)
		}
		tc, err := client.New(m.url, client.WithTLS(m.clientConf(nil, false)), client.WithToken(s.tokens["bearer-user"]))
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close(context.Background())
		if _, err := tc.Stream(ctx, "patient/1"); err != nil {
			t.Errorf("client with WithTLS and WithToken: %v", err)
		}
	})
	// Last two: the files change under the other subtests.
	t.Run("client CA replaced", func(t *testing.T) {
		// A session made with the old CA's certificate, then the CA is
		// replaced: neither a new handshake nor a resumed session may
		// authenticate with that certificate.
		conf := m.clientConf(&app.tls, true)
		conf.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		fresh := func() *http.Client {
			return &http.Client{Transport: &http.Transport{TLSClientConfig: conf, DisableKeepAlives: true}}
		}
		if r := send(fresh(), mxHead("")); r.status != http.StatusOK {
			t.Fatalf("before the change: %v", r)
		}
		mxRenew(t, m.files.ClientCA, mxNewCA(t, "Next CA").pem)
		changed := time.Now()
		for {
			c, err := tls.Dial("tcp", m.addr, m.clientConf(&app.tls, true))
			if err == nil {
				// TLS 1.3: the server's verdict on the client certificate
				// comes after the client's handshake.
				c.SetDeadline(time.Now().Add(200 * time.Millisecond))
				_, err = c.Read(make([]byte, 1))
				c.Close()
			}
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if time.Since(changed) > 2500*time.Millisecond {
				t.Fatalf("the client CA file was replaced %v ago, and certificates of the old CA are still accepted", time.Since(changed))
			}
			time.Sleep(50 * time.Millisecond)
		}
		var resumed bool
		rctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			TLSHandshakeDone: func(cs tls.ConnectionState, _ error) { resumed = cs.DidResume },
		})
		r, err := mxSend(rctx, fresh(), m.url, mxHead(""))
		if err == nil && r.status == http.StatusOK {
			t.Errorf("a TLS session (resumed: %v) authenticated with a certificate of the replaced CA: %v", resumed, r)
		}
		t.Logf("after the change (session resumed: %v): %v %v", resumed, r.status, err)
		mxRenew(t, m.files.ClientCA, m.ca.pem)
	})
	// The server certificate is renewed.
	t.Run("renewed certificate", func(t *testing.T) {
		renewed := m.ca.issue(t, "trail.test", true)
		mxRenew(t, m.keyPath, renewed.keyPEM)
		mxRenew(t, m.certPath, renewed.certPEM)
		changed := time.Now()
		for {
			c, err := tls.Dial("tcp", m.addr, m.clientConf(nil, false))
			if err == nil {
				serial := c.ConnectionState().PeerCertificates[0].SerialNumber
				c.Close()
				if serial.Cmp(renewed.serial) == 0 {
					t.Logf("renewed certificate served after %v", time.Since(changed))
					break
				}
			}
			if time.Since(changed) > 2500*time.Millisecond {
				t.Fatalf("the certificate files were replaced %v ago, and the old certificate is still served (last error %v)", time.Since(changed), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if r := send(m.client(t, m.clientConf(&app.tls, false)), mxHead("")); r.status != http.StatusOK {
			t.Errorf("client certificate after the renewal: %v", r)
		}
	})
}

// TestTLSFilesSameModTime: a certificate file replaced by one with another
// certificate is read again even when its modification time is the old
// one's, as after "cp -p", "rsync -t" or "install -p", or when two writes
// fall within one tick of the file system's clock.
func TestTLSFilesSameModTime(t *testing.T) {
	t.Parallel()
	ca := mxNewCA(t, "Trail test CA")
	dir := t.TempDir()
	files := &server.TLSFiles{Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server.key")}
	first, renewed := ca.issue(t, "trail.test", true), ca.issue(t, "trail.test", true)
	mxWriteFile(t, files.Cert, first.certPEM)
	mxWriteFile(t, files.Key, first.keyPEM)
	conf, err := files.Config()
	if err != nil {
		t.Fatal(err)
	}
	served := func() *big.Int {
		c, err := conf.GetConfigForClient(&tls.ClientHelloInfo{})
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificates[0].Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber
	}
	if served().Cmp(first.serial) != 0 {
		t.Fatal("not serving the first certificate")
	}
	for _, f := range []struct {
		path string
		b    []byte
	}{{files.Cert, renewed.certPEM}, {files.Key, renewed.keyPEM}} {
		st, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		mxWriteFile(t, f.path, f.b)
		if err := os.Chtimes(f.path, st.ModTime(), st.ModTime()); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2500 * time.Millisecond)
	for served().Cmp(renewed.serial) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("certificate and key files replaced (same modification times, other content and inode), still serving the old certificate after 2.5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTLSPolicy: every listener's policy (BCP 195): TLS 1.2 with ECDHE and
// an AEAD cipher and TLS 1.3 are accepted; RSA key exchange only with
// LegacyRSA; CBC with ECDHE, TLS 1.1 and TLS 1.0 never. The server has an
// RSA certificate, so that RSA key exchange would be possible at all.
func TestTLSPolicy(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trail.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "rsa.pem"), filepath.Join(dir, "rsa.key")
	mxWriteFile(t, certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	mxWriteFile(t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	roots := x509.NewCertPool()
	roots.AddCert(cert)

	cases := []struct {
		name     string
		min, max uint16
		suite    uint16 // 0: the client's defaults
		ok       bool   // accepted without LegacyRSA
		legacyOK bool   // accepted with it
	}{
		{"TLS 1.3", tls.VersionTLS13, tls.VersionTLS13, 0, true, true},
		{"TLS 1.2 ECDHE AES-GCM", tls.VersionTLS12, tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, true, true},
		{"TLS 1.2 ECDHE AES-256-GCM", tls.VersionTLS12, tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, true, true},
		{"TLS 1.2 ECDHE ChaCha20-Poly1305", tls.VersionTLS12, tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, true, true},
		{"TLS 1.2 ECDHE CBC", tls.VersionTLS12, tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, false, false},
		{"TLS 1.2 RSA key exchange AES-GCM", tls.VersionTLS12, tls.VersionTLS12, tls.TLS_RSA_WITH_AES_128_GCM_SHA256, false, true},
		{"TLS 1.2 RSA key exchange AES-CBC (IHE ATNA)", tls.VersionTLS12, tls.VersionTLS12, tls.TLS_RSA_WITH_AES_128_CBC_SHA, false, true},
		{"TLS 1.1", tls.VersionTLS11, tls.VersionTLS11, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, false, false},
		{"TLS 1.0", tls.VersionTLS10, tls.VersionTLS10, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, false, false},
	}
	for _, legacy := range []bool{false, true} {
		files := &server.TLSFiles{Cert: certPath, Key: keyPath, LegacyRSA: legacy}
		conf, err := files.Config()
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: http.NotFoundHandler(), TLSConfig: conf, ErrorLog: log.New(io.Discard, "", 0)}
		go hs.ServeTLS(ln, "", "")
		for _, c := range cases {
			conf := &tls.Config{RootCAs: roots, MinVersion: c.min, MaxVersion: c.max}
			if c.suite != 0 {
				conf.CipherSuites = []uint16{c.suite}
			}
			want := c.ok
			if legacy {
				want = c.legacyOK
			}
			conn, err := tls.Dial("tcp", ln.Addr().String(), conf)
			switch {
			case err == nil && !want:
				st := conn.ConnectionState()
				t.Errorf("legacy-rsa %v: %s accepted (%s %s), want refused", legacy, c.name, tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
			case err != nil && want:
				t.Errorf("legacy-rsa %v: %s refused: %v", legacy, c.name, err)
			case err == nil && c.suite != 0 && conn.ConnectionState().CipherSuite != c.suite:
				t.Errorf("legacy-rsa %v: %s negotiated %s", legacy, c.name, tls.CipherSuiteName(conn.ConnectionState().CipherSuite))
			}
			if conn != nil {
				conn.Close()
			}
		}
		hs.Close()
	}
}
