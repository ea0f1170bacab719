package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// healthcheckCmd is "trail healthcheck": exit 0 when the server is ready,
// for container images without curl.
type healthcheckCmd struct {
	stdout, stderr io.Writer
}

func (c *healthcheckCmd) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	rawURL := fs.String("url", "", "the server's base `URL` (default: from trail serve's --listen and --tls-cert as TRAIL_LISTEN, TRAIL_TLS_CERT or the TRAIL_CONFIG file set them, else http://127.0.0.1:7070)")
	config := fs.String("config", "", "take --listen and --tls-cert from this trail serve config `file` (default $TRAIL_CONFIG)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	ca := fs.String("ca", "", "trust the server certificate's CA in this PEM `file` (https)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: trail healthcheck [flags]\n\nExits 0 when GET URL/readyz answers 200, else 1 and says why on stderr.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() > 0 {
		return &exitError{2, fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	base := *rawURL
	if base == "" {
		var err error
		if base, err = serveURL(*config, os.Environ()); err != nil {
			return &exitError{2, err}
		}
	}
	base = strings.TrimRight(base, "/")
	t := http.DefaultTransport.(*http.Transport).Clone()
	if *ca != "" {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			return &exitError{2, err}
		}
		t.TLSClientConfig = &tls.Config{RootCAs: x509.NewCertPool()}
		if !t.TLSClientConfig.RootCAs.AppendCertsFromPEM(pem) {
			return &exitError{2, fmt.Errorf("--ca %s holds no PEM certificate", *ca)}
		}
	}
	hc := &http.Client{Transport: uaTransport{t}, Timeout: *timeout}
	defer t.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return &exitError{2, err}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return &exitError{1, fmt.Errorf("not healthy: %w", err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		why := strings.TrimSpace(string(body))
		if why == "" {
			why = "(no body)"
		}
		return &exitError{1, fmt.Errorf("not ready: GET %s/readyz: %s: %s", base, resp.Status, why)}
	}
	return nil
}

// serveURL is the URL a trail serve configured by environ (and the config
// file configFile or TRAIL_CONFIG names) answers at on this host: its
// --listen address, with a wildcard host made loopback, over https when it
// has --tls-cert.
func serveURL(configFile string, environ []string) (string, error) {
	o := newServeFlags(io.Discard)
	var args []string
	if configFile != "" {
		args = []string{"--config", configFile}
	}
	if err := o.parse(args, environ); err != nil {
		return "", err
	}
	host, port, err := net.SplitHostPort(*o.listen)
	if err != nil {
		return "", fmt.Errorf("listen address %q: %w; pass --url", *o.listen, err)
	}
	if port == "0" || port == "" {
		return "", fmt.Errorf("listen address %q has no fixed port; pass --url", *o.listen)
	}
	switch ip := net.ParseIP(host); {
	case host == "" || ip != nil && ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	scheme := "http"
	if o.tlsFiles.Cert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}
