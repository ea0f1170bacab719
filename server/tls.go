package server

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSFiles serves TLS from certificate files that are read again when they
// change, so a renewed certificate (or client CA bundle) takes effect
// without a restart, under TLSPolicy. With a client CA, clients may
// present a certificate signed by it; a verified certificate's subject
// common name names the principal (TokenAuth). Clients without one still
// authenticate with a bearer token.
type TLSFiles struct {
	Cert, Key string // PEM certificate chain and private key
	ClientCA  string // PEM bundle of CAs for client certificates; empty: none asked
	// LegacyRSA also accepts TLS 1.2 suites with RSA key exchange (see
	// TLSPolicy).
	LegacyRSA bool

	mu       sync.Mutex
	checked  time.Time
	sums     [3][32]byte // SHA-256 of Cert, Key, ClientCA as last loaded
	cert     *tls.Certificate
	clientCA *x509.CertPool
}

// TLSPolicy returns the TLS settings of every listener of a Trail server
// (HTTPS, and syslog over TLS), so that they cannot drift apart: TLS 1.2 and
// 1.3, and in TLS 1.2 only suites with ephemeral ECDHE key exchange (forward
// secrecy) and an AEAD cipher, AES-GCM or ChaCha20-Poly1305, as BCP 195
// (RFC 9325) recommends. TLS 1.3's suites all qualify and are not
// configurable. TLS 1.0 and 1.1, CBC and 3DES suites are refused.
//
// With legacyRSA, TLS 1.2 suites with RSA key exchange are accepted too:
// old IHE ATNA senders offer nothing else (ATNA long required
// TLS_RSA_WITH_AES_128_CBC_SHA). They have no forward secrecy — whoever
// later gets the server's key can read recorded traffic — so they are off
// unless asked for (trail serve --tls-legacy-rsa).
func TLSPolicy(legacyRSA bool) *tls.Config {
	suites := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
	if legacyRSA {
		suites = append(suites,
			tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_RSA_WITH_AES_128_CBC_SHA,
		)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, CipherSuites: suites}
}

// recheck is how often the files are read again.
const recheck = time.Second

// Config returns the server TLS configuration. It fails if the files cannot
// be loaded now.
func (f *TLSFiles) Config() (*tls.Config, error) {
	return f.config([]string{"h2", "http/1.1"}, tls.VerifyClientCertIfGiven)
}

// SyslogConfig returns the TLS configuration of syslog over TLS (RFC 5425):
// the same files and policy as HTTPS, but a client certificate verified
// against ClientCA is required, since syslog has no other authentication.
// It fails without a ClientCA or if the files cannot be loaded now.
func (f *TLSFiles) SyslogConfig() (*tls.Config, error) {
	if f.ClientCA == "" {
		return nil, errors.New("syslog over TLS needs client certificates: give the CA bundle that signs them (--client-ca)")
	}
	return f.config(nil, tls.RequireAndVerifyClientCert)
}

func (f *TLSFiles) config(protos []string, clientAuth tls.ClientAuthType) (*tls.Config, error) {
	if _, _, err := f.load(); err != nil {
		return nil, err
	}
	base := TLSPolicy(f.LegacyRSA)
	base.NextProtos = protos
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, pool, err := f.load()
		if err != nil {
			return nil, err
		}
		c := base.Clone()
		c.GetConfigForClient = nil
		c.Certificates = []tls.Certificate{*cert}
		if pool != nil {
			c.ClientCAs = pool
			c.ClientAuth = clientAuth
		}
		return c, nil
	}
	return base, nil
}

// load returns the current certificate and client CAs, reading the files
// again (at most once a second) and taking them when their content changed,
// whatever their modification times say. Files that changed but do not load
// leave the previous ones in use.
func (f *TLSFiles) load() (*tls.Certificate, *x509.CertPool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cert != nil && time.Since(f.checked) < recheck {
		return f.cert, f.clientCA, nil
	}
	f.checked = time.Now()
	var sum [3][32]byte
	for i, name := range []string{f.Cert, f.Key, f.ClientCA} {
		if name == "" {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			if f.cert != nil {
				return f.cert, f.clientCA, nil
			}
			return nil, nil, err
		}
		sum[i] = sha256.Sum256(b)
	}
	if f.cert != nil && sum == f.sums {
		return f.cert, f.clientCA, nil
	}
	cert, pool, err := f.read()
	if err != nil {
		if f.cert != nil {
			return f.cert, f.clientCA, nil // keep serving with the previous files
		}
		return nil, nil, err
	}
	f.cert, f.clientCA, f.sums = cert, pool, sum
	return cert, pool, nil
}

func (f *TLSFiles) read() (*tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("TLS certificate %s and key %s: %w", f.Cert, f.Key, err)
	}
	if f.ClientCA == "" {
		return &cert, nil, nil
	}
	pem, err := os.ReadFile(f.ClientCA)
	if err != nil {
		return nil, nil, fmt.Errorf("client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, errors.New("client CA " + f.ClientCA + " holds no PEM certificate")
	}
	return &cert, pool, nil
}
