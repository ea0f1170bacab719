package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// version, when set at link time (go build -ldflags "-X main.version=v1.2.3"),
// is the version trail reports; otherwise it is the module version of the
// build information.
var version string

// buildInfo is what trail version reports.
type buildInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Dirty    bool   `json:"dirty,omitempty"`
	Time     string `json:"time,omitempty"`
	Go       string `json:"go"`
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CGO      string `json:"cgo_enabled,omitempty"`
	Trimpath bool   `json:"trimpath"`
	Tags     string `json:"tags,omitempty"`
}

// readBuildInfo gathers the build information of the running binary.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: version, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if b.Version == "" {
			b.Version = "devel"
		}
		return b
	}
	if b.Version == "" {
		b.Version = bi.Main.Version
	}
	if b.Version == "" || b.Version == "(devel)" {
		b.Version = "devel"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Commit = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Dirty = s.Value == "true"
		case "CGO_ENABLED":
			b.CGO = s.Value
		case "-trimpath":
			b.Trimpath, _ = strconv.ParseBool(s.Value)
		case "-tags":
			b.Tags = s.Value
		}
	}
	return b
}

// userAgent is the User-Agent of the command line's HTTP requests:
// trail/<version>.
func userAgent() string {
	v := readBuildInfo().Version
	// A product version is an HTTP token: no spaces, parentheses or slashes.
	v = strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) {
			return '_'
		}
		return r
	}, v)
	return "trail/" + v
}

// uaTransport sets the User-Agent of each request it carries.
type uaTransport struct {
	next http.RoundTripper
}

func (t uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("User-Agent") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("User-Agent", userAgent())
	}
	return t.next.RoundTrip(r)
}

// versionCmd is "trail version".
type versionCmd struct {
	stdout, stderr io.Writer
}

func (c *versionCmd) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	asJSON := fs.Bool("json", false, "print the build information as one JSON object")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: trail version [--json]\n\nPrints the version, commit and build settings of this binary.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageError(err)
	}
	if fs.NArg() > 0 {
		return &exitError{2, fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	b := readBuildInfo()
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	}
	fmt.Fprintf(c.stdout, "trail %s\n", b.Version)
	if b.Commit != "" {
		commit := b.Commit
		if b.Dirty {
			commit += "-dirty"
		}
		fmt.Fprintf(c.stdout, "commit:   %s\n", commit)
	}
	if b.Time != "" {
		fmt.Fprintf(c.stdout, "time:     %s\n", b.Time)
	}
	fmt.Fprintf(c.stdout, "go:       %s\n", b.Go)
	fmt.Fprintf(c.stdout, "platform: %s/%s\n", b.OS, b.Arch)
	build := []string{}
	if b.CGO != "" {
		build = append(build, "CGO_ENABLED="+b.CGO)
	}
	if b.Trimpath {
		build = append(build, "-trimpath")
	}
	if b.Tags != "" {
		build = append(build, "-tags="+b.Tags)
	}
	if len(build) > 0 {
		fmt.Fprintf(c.stdout, "build:    %s\n", strings.Join(build, " "))
	}
	return nil
}

// usageError gives a flag parsing error the usage exit code (2); -h stays
// flag.ErrHelp.
func usageError(err error) error {
	if err == flag.ErrHelp {
		return err
	}
	return &exitError{2, err}
}
