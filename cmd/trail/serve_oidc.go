package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/trailhq/trail/server"
)

// serveOIDC are the flags of trail serve that add sign-in to the console
// through an OpenID Connect provider.
type serveOIDC struct {
	issuer, clientID, secretFile, redirectURL string
	principalClaim, patientClaim, scopes      string
}

func (o *serveOIDC) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.issuer, "oidc-issuer", "", "sign in to the console through the OpenID Connect provider of this issuer `URL` (https; discovered at start, retried while it cannot be reached)")
	fs.StringVar(&o.clientID, "oidc-client-id", "", "the console's client `id` at the provider")
	fs.StringVar(&o.secretFile, "oidc-client-secret-file", "", "read the client secret from this `file` (not readable by the group or others); none: a public client")
	fs.StringVar(&o.redirectURL, "oidc-redirect-url", "", "the console's callback as browsers reach it, registered at the provider: https://HOST"+server.OIDCCallbackPath)
	fs.StringVar(&o.principalClaim, "oidc-principal-claim", "sub", "the ID token `claim` whose value is a principal's name in tokens.json; only a claim the provider assigns, never one its users may choose (\"\": none)")
	fs.StringVar(&o.patientClaim, "oidc-patient-claim", "", "the ID token `claim` whose value is a patient's identifier: who has no principal signs in as that patient's own principal (patient:<id>)")
	fs.StringVar(&o.scopes, "oidc-scopes", "openid,profile", "the `scopes` asked for, comma-separated (openid is always asked for)")
}

// config returns the console's OpenID Connect configuration, nil without
// --oidc-issuer.
func (o *serveOIDC) config() (*server.OIDCConfig, error) {
	if o.issuer == "" {
		if o.clientID != "" || o.secretFile != "" || o.redirectURL != "" || o.patientClaim != "" {
			return nil, errors.New("--oidc-client-id, --oidc-client-secret-file, --oidc-redirect-url and --oidc-patient-claim need --oidc-issuer")
		}
		return nil, nil
	}
	if o.clientID == "" {
		return nil, errors.New("--oidc-issuer needs --oidc-client-id: the client id the provider registered for the console")
	}
	if o.redirectURL == "" {
		return nil, fmt.Errorf("--oidc-issuer needs --oidc-redirect-url: the console's callback as browsers reach it, e.g. https://trail.example.org%s, registered at the provider (never taken from a request's Host header)", server.OIDCCallbackPath)
	}
	c := &server.OIDCConfig{Issuer: o.issuer, ClientID: o.clientID, RedirectURL: o.redirectURL,
		PrincipalClaim: o.principalClaim, PatientClaim: o.patientClaim}
	for s := range strings.SplitSeq(o.scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.Scopes = append(c.Scopes, s)
		}
	}
	if o.secretFile != "" {
		var err error
		if c.ClientSecret, err = readSecretFile(o.secretFile); err != nil {
			return nil, fmt.Errorf("--oidc-client-secret-file %w", err)
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// readSecretFile reads a secret from a regular file that only its owner
// may read (a secret on the command line would show in ps and in shell
// history).
func readSecretFile(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", path)
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		return "", fmt.Errorf("%s (mode %04o): the group or others may read the secret; run chmod 600 %s", path, mode, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" || strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s: want the secret alone on one line", path)
	}
	return s, nil
}
