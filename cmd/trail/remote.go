package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"

	"github.com/trailhq/trail/client"
)

// remoteFlags are the flags of the commands that talk to a server.
type remoteFlags struct {
	server, token *string
	ca, cert, key *string
}

func addRemoteFlags(fs *flag.FlagSet) remoteFlags {
	return remoteFlags{
		server: fs.String("server", "", "server `URL` (default $TRAIL_SERVER)"),
		token:  fs.String("token", "", "bearer token (default $TRAIL_TOKEN)"),
		ca:     fs.String("ca", "", "trust the server certificate's CA in this PEM `file` (https)"),
		cert:   fs.String("cert", "", "authenticate with this PEM client certificate `file` (with --key)"),
		key:    fs.String("key", "", "the PEM private key `file` of --cert"),
	}
}

// tlsConfig builds the client TLS configuration of --ca, --cert, --key.
func (r remoteFlags) tlsConfig() (*tls.Config, error) {
	if r.ca == nil || *r.ca == "" && *r.cert == "" && *r.key == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS13}
	if *r.ca != "" {
		pem, err := os.ReadFile(*r.ca)
		if err != nil {
			return nil, err
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s holds no PEM certificate", *r.ca)
		}
	}
	if (*r.cert == "") != (*r.key == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if *r.cert != "" {
		c, err := tls.LoadX509KeyPair(*r.cert, *r.key)
		if err != nil {
			return nil, err
		}
		conf.Certificates = []tls.Certificate{c}
	}
	return conf, nil
}

// serverURL is --server, or without it $TRAIL_SERVER.
func (r remoteFlags) serverURL() string {
	if *r.server != "" {
		return *r.server
	}
	return os.Getenv("TRAIL_SERVER")
}

// client returns a client of the server the flags name.
func (r remoteFlags) client(opts ...client.Option) (*client.Client, error) {
	server := r.serverURL()
	if server == "" {
		return nil, &exitError{code: 2, err: errors.New("no server: pass --server URL or set TRAIL_SERVER (e.g. http://127.0.0.1:7070)")}
	}
	tok := *r.token
	if tok == "" {
		tok = os.Getenv("TRAIL_TOKEN")
	}
	conf, err := r.tlsConfig()
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return client.New(server, append([]client.Option{client.WithToken(tok), client.WithHTTPClient(cliHTTPClient(conf))}, opts...)...)
}

// errNoToken is the usage error of a command that needs credentials and
// was given none.
var errNoToken = &exitError{code: 2, err: errors.New("no token: give --token or set TRAIL_TOKEN")}

// authClient is client for the commands whose endpoints need credentials:
// without a token (--token or $TRAIL_TOKEN) or a client certificate
// (--cert) it refuses with the usage exit code rather than sending a
// request the server can only answer 401.
func (r remoteFlags) authClient(opts ...client.Option) (*client.Client, error) {
	if err := r.checkToken(); err != nil {
		return nil, err
	}
	return r.client(opts...)
}

// checkToken is errNoToken when a server is named but no credentials.
func (r remoteFlags) checkToken() error {
	if r.serverURL() != "" && *r.token == "" && os.Getenv("TRAIL_TOKEN") == "" && (r.cert == nil || *r.cert == "") {
		return errNoToken
	}
	return nil
}

// cliHTTPClient is the HTTP client of the commands: its requests say
// User-Agent: trail/<version>. Like the client package's own, it keeps
// an idle connection per lane (trail bench --lanes) and trusts conf.
func cliHTTPClient(conf *tls.Config) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if conf != nil {
		t.TLSClientConfig = conf
	}
	t.MaxIdleConnsPerHost = 1024 + 4 // the most lanes, and a few for reads
	t.MaxIdleConns = max(t.MaxIdleConns, 1024+4)
	return &http.Client{Transport: uaTransport{t}}
}
