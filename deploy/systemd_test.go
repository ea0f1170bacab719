package deploy

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// maxExposure is the highest overall exposure systemd-analyze security may
// rate trail.service at (0 is the most sandboxed, 10 the least; systemd 252
// rates it 1.4: what is left is the network, which a server needs, the
// @resources system calls, the host's root directory and its users).
const maxExposure = 2.0

// systemdAnalyze is the path of systemd-analyze. Without it the test skips,
// except under CI, which installs it (.ci/run), where it fails.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("systemd-analyze not found under CI (.ci/run installs the systemd package): %v", err)
		}
		t.Skipf("systemd-analyze not found (the Debian package systemd has it): %v", err)
	}
	return p
}

// unitForTest is trail.service with ExecStart's binary the image's build
// (verify wants it to exist), written to a new directory as trail.service.
func unitForTest(t *testing.T, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile("trail.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	const bin = "ExecStart=/usr/local/bin/trail "
	if strings.Count(unit, bin) != 1 {
		t.Fatalf("trail.service has no line starting %q", bin)
	}
	unit = strings.Replace(unit, bin, "ExecStart="+filepath.Join(buildImage(t).out, "trail")+" ", 1)
	if edit != nil {
		unit = edit(unit)
	}
	path := filepath.Join(t.TempDir(), "trail.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSystemdUnit: systemd-analyze verify has nothing to say about
// trail.service (it does about a misspelt setting: the check is live), and
// systemd-analyze security rates its sandbox at most maxExposure.
func TestSystemdUnit(t *testing.T) {
	analyze := systemdAnalyze(t)
	verify := func(path string) (string, error) {
		out, err := exec.Command(analyze, "verify", path).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	t.Run("verify", func(t *testing.T) {
		if out, err := verify(unitForTest(t, nil)); err != nil || out != "" {
			t.Errorf("systemd-analyze verify trail.service: %v\n%s", err, out)
		}
		out, _ := verify(unitForTest(t, func(u string) string {
			return strings.Replace(u, "ProtectSystem=strict", "ProtectSytem=strict", 1)
		}))
		if !strings.Contains(out, "ProtectSytem") {
			t.Errorf("systemd-analyze verify says nothing of a misspelt setting: %q", out)
		}
	})
	t.Run("security", func(t *testing.T) {
		help, _ := exec.Command(analyze, "security", "--help").CombinedOutput()
		if !strings.Contains(string(help), "--offline") {
			if os.Getenv("CI") == "true" {
				t.Fatalf("this systemd-analyze has no security --offline (systemd 250 and later do)")
			}
			t.Skip("this systemd-analyze has no security --offline (systemd 250 and later do)")
		}
		out, err := exec.Command(analyze, "security", "--offline=true", unitForTest(t, nil)).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-analyze security --offline=true: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`Overall exposure level for trail\.service: ([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security gave no overall exposure:\n%s", out)
		}
		level, _ := strconv.ParseFloat(string(m[1]), 64)
		t.Logf("exposure %.1f (at most %.1f)", level, maxExposure)
		if level > maxExposure {
			t.Errorf("trail.service's exposure is %.1f, more than %.1f:\n%s", level, maxExposure, out)
		}
	})
}

// TestServiceConfig: the unit's command line names /etc/trail/trail.toml,
// and deploy/trail.toml, installed there, is a configuration trail serve
// takes (trail healthcheck reads it as trail serve does: a key or value it
// refuses is exit code 2; a server it cannot reach, 1).
func TestServiceConfig(t *testing.T) {
	b, err := os.ReadFile("trail.service")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^ExecStart=/usr/local/bin/trail serve --data %S/trail --config /etc/trail/trail.toml$`).Match(b) {
		t.Errorf("trail.service does not serve its StateDirectory with /etc/trail/trail.toml")
	}
	cmd := exec.Command(filepath.Join(buildImage(t).out, "trail"), "healthcheck", "--config", "trail.toml", "--timeout", "1ms")
	cmd.Env = []string{"HOME=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("trail healthcheck --config trail.toml: %v, want exit code 1 (configuration read, no server)\n%s", err, out)
	}
}
