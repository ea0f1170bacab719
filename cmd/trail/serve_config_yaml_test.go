package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeYAMLConfig writes a trail serve config file named name (its
// extension picks YAML) and returns its path.
func writeYAMLConfig(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeConfigYAML: a config file named .yaml or .yml is YAML with the
// TOML file's keys, values and precedence: a string, a number, a duration,
// a boolean and a repeatable flag as a list, under the environment and the
// command line.
func TestServeConfigYAML(t *testing.T) {
	const text = `# trail serve
listen: 0.0.0.0:8443
max-tails: 7
body-timeout: 3s
tls-legacy-rsa: true
trusted-proxy: [10.0.0.0/8, 192.168.0.1]
read-rate: 50.5
`
	for _, name := range []string{"trail.yaml", "trail.YML"} {
		t.Run(name, func(t *testing.T) {
			file := writeYAMLConfig(t, name, text)
			o := newServeFlags(io.Discard)
			if err := o.parse([]string{"--config", file}, []string{"TRAIL_QUEUE_WAIT="}); err != nil {
				t.Fatal(err)
			}
			if *o.listen != "0.0.0.0:8443" || o.limits.maxTails != 7 || o.limits.bodyTimeout != 3*time.Second ||
				!o.tlsFiles.LegacyRSA || !slices.Equal(o.limits.proxies, []string{"10.0.0.0/8", "192.168.0.1"}) || o.limits.readRate != "50.5" {
				t.Fatalf("from %s: listen %s, max-tails %d, body-timeout %v, tls-legacy-rsa %v, trusted-proxy %v, read-rate %s",
					name, *o.listen, o.limits.maxTails, o.limits.bodyTimeout, o.tlsFiles.LegacyRSA, o.limits.proxies, o.limits.readRate)
			}
			o = newServeFlags(io.Discard)
			err := o.parse([]string{"--config", file, "--max-tails", "11"}, []string{"TRAIL_LISTEN=127.0.0.2:9000", "TRAIL_TRUSTED_PROXY=172.16.0.0/12"})
			if err != nil {
				t.Fatal(err)
			}
			if *o.listen != "127.0.0.2:9000" || o.limits.maxTails != 11 || !slices.Equal(o.limits.proxies, []string{"172.16.0.0/12"}) || o.limits.bodyTimeout != 3*time.Second {
				t.Fatalf("precedence: listen %s, max-tails %d, trusted-proxy %v, body-timeout %v", *o.listen, o.limits.maxTails, o.limits.proxies, o.limits.bodyTimeout)
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		o := newServeFlags(io.Discard)
		if err := o.parse([]string{"--config", writeYAMLConfig(t, "empty.yml", "# nothing yet\n")}, nil); err != nil {
			t.Fatal(err)
		}
		if *o.listen != "127.0.0.1:7070" {
			t.Fatalf("an empty file changed --listen to %s", *o.listen)
		}
	})
}

// TestServeConfigYAMLErrors: as with TOML, an unknown key, a value of the
// wrong type, a list for a flag of one value and a file that does not parse
// stop trail serve with the usage exit code, naming the key and the file; a
// secret's value is not repeated. YAML adds its own faults: null, a key
// given twice, a second document.
func TestServeConfigYAMLErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"unknown keys", "lisen: 127.0.0.1:0\nnot-a-flag-at-all: 1\n",
			[]string{`unknown key "lisen" (did you mean "listen"?)`, `unknown key "not-a-flag-at-all"`}},
		{"wrong types", "tls-legacy-rsa: maybe\ntls-key: [hunter2-secret]\nlisten: [a, b]\nmax-tails: lots\nbody-timeout: {a: 1}\n",
			[]string{"tls-legacy-rsa", "tls-key", "not an array", "--max-tails", "want an integer", "not a table"}},
		{"null", "listen:\n", []string{"listen", "not null"}},
		{"not YAML", "listen: [127.0.0.1:0\n", []string{"yaml"}},
		{"not a mapping", "- listen\n", []string{"yaml"}},
		{"a key twice", "listen: 127.0.0.1:0\nlisten: 127.0.0.1:1\n", []string{"already defined"}},
		{"two documents", "listen: 127.0.0.1:0\n---\nmax-tails: 3\n", []string{"more than one YAML document"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeYAMLConfig(t, "trail.yaml", tc.text)
			_, errOut, code := runTrail(t, "serve", "--data", dir, "--config", file)
			if code != 2 || !strings.Contains(errOut, file) {
				t.Fatalf("exit %d, want 2 naming %s: %s", code, file, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("the error does not say %q: %s", w, errOut)
				}
			}
			if strings.Contains(errOut, "hunter2") {
				t.Errorf("the error repeats a secret: %s", errOut)
			}
		})
	}
}
