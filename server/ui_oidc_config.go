package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// OIDCConfig configures sign-in to the console through an OpenID Connect
// provider: the authorization code flow with PKCE (S256), state and nonce.
// The provider is registered with the client id, the secret and the
// redirect URL given here.
//
// The ID token's claims name who signs in: PrincipalClaim a principal of
// the tokens file (revoked or expired, it is refused, and its sessions end),
// else PatientClaim a patient's identifier, for the patient's own principal
// "patient:<id>". Only a claim the provider assigns, never one its users
// may choose, can name a principal: "sub" is the one every provider
// guarantees unique and never reassigned.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL (https, or http on loopback),
	// where /.well-known/openid-configuration is found.
	Issuer string
	// ClientID and ClientSecret are the console's client at the provider.
	// An empty secret makes a public client (PKCE only).
	ClientID     string
	ClientSecret string
	// RedirectURL is the console's callback as the browser reaches it,
	// https://HOST/ui/signin/oidc/callback, registered at the provider. It
	// is never derived from a request's Host header, which the browser's
	// user chooses.
	RedirectURL string
	// PrincipalClaim names the ID token claim whose value is a principal's
	// name in the tokens file; "" signs in patients only.
	PrincipalClaim string
	// PatientClaim names the claim whose value is a patient's identifier;
	// "" signs in named principals only.
	PatientClaim string
	// Scopes are asked for (default openid and profile); openid is always
	// asked for.
	Scopes []string
	// HTTPClient reaches the provider (default: a client with a 10-second
	// timeout).
	HTTPClient *http.Client
}

// OIDCCallbackPath is the console's OpenID Connect callback.
const OIDCCallbackPath = "/ui/signin/oidc/callback"

// LogValue leaves the client secret out of logs.
func (c *OIDCConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("issuer", c.Issuer), slog.String("client_id", c.ClientID),
		slog.String("redirect_url", c.RedirectURL), slog.String("principal_claim", c.PrincipalClaim),
		slog.String("patient_claim", c.PatientClaim))
}

// Validate checks c, saying which field is wrong and how to fix it.
func (c *OIDCConfig) Validate() error {
	if err := checkOIDCURL("issuer", c.Issuer); err != nil {
		return err
	}
	if c.ClientID == "" {
		return errors.New("OpenID Connect: no client id: give the one the provider registered for the console")
	}
	if c.RedirectURL == "" {
		return fmt.Errorf("OpenID Connect: no redirect URL: give the console's callback as browsers reach it, e.g. https://trail.example.org%s, as registered at the provider", OIDCCallbackPath)
	}
	if err := checkOIDCURL("redirect URL", c.RedirectURL); err != nil {
		return err
	}
	if u, _ := url.Parse(c.RedirectURL); u.Path != OIDCCallbackPath || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("OpenID Connect: redirect URL %q: its path must be %s, with no query", c.RedirectURL, OIDCCallbackPath)
	}
	if c.PrincipalClaim == "" && c.PatientClaim == "" {
		return errors.New("OpenID Connect: neither a principal claim nor a patient claim: nobody could sign in")
	}
	return nil
}

// checkOIDCURL accepts an absolute https URL, or http on a loopback host
// (a provider or console on the same machine, as in tests).
func checkOIDCURL(what, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil {
		return fmt.Errorf("OpenID Connect: %s %q: want an absolute https URL", what, s)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("OpenID Connect: %s %q: want https (plain http only on loopback): codes and tokens would cross the network unencrypted", what, s)
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// scopes are the scopes asked for, openid first.
func (c *OIDCConfig) scopes() []string {
	s := c.Scopes
	if len(s) == 0 {
		s = []string{"profile"}
	}
	out := []string{"openid"}
	for _, v := range s {
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// validate checks the console's OpenID Connect configuration, when there is
// one, against the authenticator that will find its principals.
func (c *ConsoleConfig) validate(auth Authenticator) error {
	if c.OIDC == nil || c.Disabled {
		return nil
	}
	if err := c.OIDC.Validate(); err != nil {
		return err
	}
	if _, ok := auth.(Principals); !ok && c.OIDC.PrincipalClaim != "" {
		return errors.New("OpenID Connect: a principal claim needs principals found by name (a tokens file); this server has only the admin token")
	}
	return nil
}
