package deploy

import (
	"context"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDockerfile checks what the image promises beyond BuildKit's lint
// rules (deploy/lint): a build stage and a minimal runtime stage, a static
// trimmed build, an unprivileged user, the data directory at mode 0700 in
// the volume, and the health check by trail healthcheck.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "Dockerfile")
	if len(stages) != 2 {
		t.Fatalf("%d stages, want two: a build stage and the runtime", len(stages))
	}
	build, run := stages[0], stages[1]
	if !strings.HasPrefix(build.from.args, "golang:") || !strings.HasSuffix(build.from.args, " AS build") {
		t.Errorf("FROM %s: want the golang image, named build", build.from.args)
	}
	if base := run.from.args; !strings.HasPrefix(base, "gcr.io/distroless/static") && base != "scratch" {
		t.Errorf("runtime FROM %s: want distroless/static or scratch", base)
	}
	goBuild := buildLine(t, build)
	for _, want := range []string{"CGO_ENABLED=0", "go build ", " -trimpath ", "-X main.version=$VERSION", "./cmd/trail"} {
		if !strings.Contains(goBuild.args, want) {
			t.Errorf("Dockerfile:%d: the go build line has no %q", goBuild.line, want)
		}
	}
	if u := run.one(t, "USER").args; u == "root" || u == "0" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
		t.Errorf("USER %s: want an unprivileged user", u)
	}
	if !regexp.MustCompile(`(?m)(^|&& )mkdir -p /out/data/trail && chmod 0700 /out/data/trail$`).MatchString(strings.Join(runArgs(build), "\n")) {
		t.Errorf("the build stage does not make /out/data/trail with mode 0700")
	}
	copies := map[string]bool{}
	for _, in := range run.all("COPY") {
		copies[in.args] = true
	}
	for _, want := range []string{"--from=build /out/trail /usr/local/bin/trail", "--from=build --chown=65532:65532 /out/data /data"} {
		if !copies[want] {
			t.Errorf("the runtime stage has no COPY %s", want)
		}
	}
	if v := run.one(t, "VOLUME").args; v != `["/data"]` {
		t.Errorf("VOLUME %s, want [\"/data\"]", v)
	}
	env := envOf(t, run)
	if env["TRAIL_DATA"] != "/data/trail" {
		t.Errorf("ENV TRAIL_DATA=%s, want /data/trail (inside the volume, not its root)", env["TRAIL_DATA"])
	}
	hc := run.one(t, "HEALTHCHECK")
	_, probe, ok := strings.Cut(hc.args, "CMD ")
	if !ok || probe != `["trail", "healthcheck"]` {
		t.Errorf("HEALTHCHECK %s: want CMD [\"trail\", \"healthcheck\"]", hc.args)
	}
	if got := execForm(t, run.one(t, "ENTRYPOINT")); len(got) != 1 || got[0] != "trail" {
		t.Errorf("ENTRYPOINT %v, want [trail]", got)
	}
	expose := run.one(t, "EXPOSE").args
	if port := env["TRAIL_LISTEN"][strings.LastIndex(env["TRAIL_LISTEN"], ":")+1:]; !strings.Contains(expose, port+"/tcp") {
		t.Errorf("EXPOSE %s does not name TRAIL_LISTEN's port %s", expose, port)
	}
}

// buildLine is the build stage's RUN instruction that runs go build.
func buildLine(t *testing.T, build stage) instruction {
	t.Helper()
	var found []instruction
	for _, in := range build.all("RUN") {
		if strings.Contains(in.args, "go build") {
			found = append(found, in)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d RUN instructions run go build, want one", len(found))
	}
	return found[0]
}

func runArgs(s stage) []string {
	var out []string
	for _, in := range s.all("RUN") {
		out = append(out, in.args)
	}
	return out
}

// TestImageBinary builds trail as the Dockerfile's build stage does, checks
// that the binary needs no dynamic loader nor shared library (the runtime
// image has none), then runs it as the image would: its ENTRYPOINT and CMD,
// only the ENV it sets, the data directory the build stage made (standing in
// for the volume's /data/trail); the HEALTHCHECK command answers 0 once it
// serves, and SIGTERM stops it cleanly.
func TestImageBinary(t *testing.T) {
	img := buildImage(t)
	bin := filepath.Join(img.out, "trail")
	t.Run("static", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s has a %v program header: it is dynamically linked", bin, p.Type)
			}
		}
		if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
			t.Errorf("%s needs shared libraries %v (%v)", bin, libs, err)
		}
		out, err := exec.Command(bin, "version", "--json").Output()
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Version  string `json:"version"`
			CGO      string `json:"cgo_enabled"`
			Trimpath bool   `json:"trimpath"`
		}
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatal(err)
		}
		if v.Version != img.version || v.CGO != "0" || !v.Trimpath {
			t.Errorf("trail version --json: %s; want version %s, CGO_ENABLED=0, -trimpath", out, img.version)
		}
	})
	t.Run("data directory", func(t *testing.T) {
		st, err := os.Stat(filepath.Join(img.out, "data", "trail"))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 || !st.IsDir() {
			t.Errorf("the build stage's /out/data/trail has mode %v, want a directory at 0700", st.Mode())
		}
	})
	t.Run("run", func(t *testing.T) { runAsImage(t, img) })
}

// runAsImage runs the built binary with the runtime stage's ENV,
// ENTRYPOINT and CMD, and probes it with its HEALTHCHECK.
func runAsImage(t *testing.T, img image) {
	run := parseDockerfile(t, "Dockerfile")[1]
	env, data := imageEnv(t, img, run)
	argv := append(execForm(t, run.one(t, "ENTRYPOINT")), execForm(t, run.one(t, "CMD"))...)
	_, hc, _ := strings.Cut(run.one(t, "HEALTHCHECK").args, "CMD ")
	var probeArgv []string
	json.Unmarshal([]byte(hc), &probeArgv)
	command := func(argv []string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(img.out, argv[0]), argv[1:]...)
		cmd.Env = env
		return cmd
	}
	serve := command(argv)
	var stderr syncBuffer
	serve.Stderr = &stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() { serve.Process.Kill() })

	healthy := func() (bool, string) { return probe(command(probeArgv)) }
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, out := healthy()
		if ok {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("%v exited at start: %v\n%s", argv, err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v never healthy: %s\n%s", probeArgv, out, stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The server answers /readyz from the moment it listens, which can be
	// just before it logs that it serves.
	said := func(log string) bool {
		return strings.Contains(log, "trail serving") && strings.Contains(log, "serving plain HTTP on an address other hosts can reach")
	}
	log := stderr.String()
	for wait := time.Now().Add(10 * time.Second); !said(log) && time.Now().Before(wait); log = stderr.String() {
		time.Sleep(20 * time.Millisecond)
	}
	if !said(log) {
		t.Errorf("the log says neither that it serves nor that it serves plain HTTP on every address:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(data, "trail", "admin.token")); err != nil {
		t.Errorf("no admin token in the volume's trail/: %v", err)
	}
	serve.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("still running 40 s after SIGTERM\n%s", stderr.String())
	}
	if ok, _ := healthy(); ok {
		t.Errorf("%v answers 0 with the server stopped", probeArgv)
	}
}

// probe runs a health check as Docker does, with a bound on its time, and
// says whether it answered 0.
func probe(cmd *exec.Cmd) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.Env = cmd.Env
	out, err := c.CombinedOutput()
	return err == nil, string(out)
}

// imageEnv is the environment of the image's processes: its PATH, where
// trail is, and its ENV, with the data directory in a copy of the image's
// /data (as a new named volume starts) and the API on a port free here.
func imageEnv(t *testing.T, img image, run stage) (env []string, data string) {
	t.Helper()
	data = t.TempDir()
	if err := os.CopyFS(data, os.DirFS(filepath.Join(img.out, "data"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(data, "trail"), 0o700); err != nil { // CopyFS leaves directories 0777 &^ umask
		t.Fatal(err)
	}
	env = []string{"PATH=" + img.out, "HOME=" + t.TempDir()} // the image's PATH holds /usr/local/bin, where trail is
	for k, v := range envOf(t, run) {
		switch k {
		case "TRAIL_DATA":
			v = filepath.Join(data, strings.TrimPrefix(v, "/data/"))
		case "TRAIL_LISTEN": // the image's address, on a port free here
			host, _, _ := strings.Cut(v, ":")
			v = host + ":" + freePort(t)
		}
		env = append(env, k+"="+v)
	}
	return env, data
}
