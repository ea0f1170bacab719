package lint

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestDockerfileLint runs BuildKit's Dockerfile checks (the rules behind
// docker build --check: stage names, casing, JSON arguments, undefined
// variables, secrets in ENV or ARG, and the rest) on deploy/Dockerfile and
// fails on any warning, as --check does on a build error.
func TestDockerfileLint(t *testing.T) {
	dt, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range lintDockerfile(t, dt) {
		t.Error(w)
	}
}

// TestDockerfileLintFinds: the checks above are wired: a Dockerfile with
// known faults gets their warnings.
func TestDockerfileLintFinds(t *testing.T) {
	bad := []byte("FROM golang:1.26 as build\nENV GOFLAGS -trimpath\nWORKDIR $UNDEFINED\nRUN go build -o /out/x\nfrom scratch\nCMD /x serve\n")
	got := strings.Join(lintDockerfile(t, bad), "\n")
	for _, rule := range []string{"FromAsCasing", "LegacyKeyValueFormat", "UndefinedVar", "ConsistentInstructionCasing", "JSONArgsRecommended"} {
		if !strings.Contains(got, rule) {
			t.Errorf("no %s warning for a Dockerfile that breaks it; got:\n%s", rule, got)
		}
	}
}

// lintDockerfile is what docker build --check says about dt: a build error
// or each warning, with its rule's name and the lines it is about.
func lintDockerfile(t *testing.T, dt []byte) []string {
	t.Helper()
	sourceMap := llb.NewSourceMap(nil, "deploy/Dockerfile", "Dockerfile", dt)
	sourceMap.Definition = &llb.Definition{}
	res, err := dockerfile2llb.DockerfileLint(context.Background(), dt, dockerfile2llb.ConvertOpt{
		SourceMap:      sourceMap,
		MetaResolver:   offlineImages{},
		TargetPlatform: &ocispecs.Platform{OS: "linux", Architecture: "amd64"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	if res.Error != nil {
		out = append(out, fmt.Sprintf("build error: %s (at %v)", res.Error.Message, res.Error.Location.Ranges))
	}
	for _, w := range res.Warnings {
		var b strings.Builder
		w.PrintTo(&b, res.Sources, nil)
		out = append(out, fmt.Sprintf("%s: %s\n%s", w.RuleName, w.Detail, b.String()))
	}
	return out
}

// offlineImages stands in for a registry: every base image is a Linux image
// with one layer and the usual PATH (the golang image's adds Go's). The
// rules need the base image's environment (UndefinedVar) and platform, not
// its files.
type offlineImages struct{}

var _ sourceresolver.ImageMetaResolver = offlineImages{}

func (offlineImages) ResolveImageConfig(ctx context.Context, ref string, opt sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if strings.Contains(ref, "golang") {
		env = []string{"PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GOLANG_VERSION=1.26.8", "GOTOOLCHAIN=local", "GOPATH=/go"}
	}
	img := ocispecs.Image{
		Platform: ocispecs.Platform{OS: "linux", Architecture: "amd64"},
		Config:   ocispecs.ImageConfig{Env: env},
		RootFS:   ocispecs.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromString(ref)}},
	}
	dt, err := json.Marshal(img)
	if err != nil {
		return "", "", nil, err
	}
	return ref, digest.FromBytes(dt), dt, nil
}
