package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// instruction is one Dockerfile instruction, its continuation lines joined.
type instruction struct {
	line int    // where it starts, from 1
	cmd  string // upper case: FROM, RUN, …
	args string // the rest, as written
}

// stage is a FROM and the instructions up to the next.
type stage struct {
	from         instruction
	instructions []instruction
}

// parseDockerfile splits a Dockerfile into stages. It understands what
// deploy/Dockerfile uses: comments, parser directives (comments too), and
// lines continued with a backslash.
func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ins []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || line == "" && cur.Len() == 0 {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		more := strings.HasSuffix(line, `\`)
		cur.WriteString(strings.TrimSuffix(line, `\`))
		if more {
			cur.WriteString(" ")
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		ins = append(ins, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: the last instruction is continued past the end", path)
	}
	var stages []stage
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, stage{from: in})
			continue
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				continue
			}
			t.Fatalf("%s:%d: %s before the first FROM", path, in.line, in.cmd)
		}
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
	}
	return stages
}

// all is every instruction cmd of the stage.
func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instructions {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// one is the stage's only instruction cmd.
func (s stage) one(t *testing.T, cmd string) instruction {
	t.Helper()
	ins := s.all(cmd)
	if len(ins) != 1 {
		t.Fatalf("the stage FROM %s has %d %s instructions, want one", s.from.args, len(ins), cmd)
	}
	return ins[0]
}

// execForm is the JSON array of an exec-form instruction (CMD, ENTRYPOINT).
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(in.args), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("Dockerfile:%d: %s %s: want the exec form, a JSON array (%v)", in.line, in.cmd, in.args, err)
	}
	return argv
}

// envOf is the variables a stage's ENV instructions set, in the key=value
// form (the values deploy/Dockerfile sets need no quotes).
func envOf(t *testing.T, s stage) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, in := range s.all("ENV") {
		for _, kv := range strings.Fields(in.args) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || strings.ContainsAny(v, `"'$`) {
				t.Fatalf("Dockerfile:%d: ENV %s: want KEY=value with a plain value", in.line, kv)
			}
			env[k] = v
		}
	}
	return env
}

// image is what the image's build stage makes, made here: the RUN
// instructions of deploy/Dockerfile's build stage run as they are written,
// in the repository (the build context), with /out — where the stage puts
// what the runtime stage copies — moved into a temporary directory.
type image struct {
	out     string // the build stage's /out
	version string // the VERSION build argument given
	err     error
	log     string
}

var (
	imageOnce sync.Once
	built     image
)

// buildImage runs the build stage once for the package's tests.
func buildImage(t *testing.T) image {
	t.Helper()
	imageOnce.Do(func() {
		dir, err := os.MkdirTemp("", "trail-image-")
		if err != nil {
			built.err = err
			return
		}
		built = runBuildStage(t, dir)
	})
	if built.err != nil {
		t.Fatalf("the Dockerfile's build stage: %v\n%s", built.err, built.log)
	}
	return built
}

// runBuildStage runs the build stage's RUN instructions into dir.
func runBuildStage(t *testing.T, dir string) image {
	stages := parseDockerfile(t, "Dockerfile")
	img := image{out: filepath.Join(dir, "out"), version: "v0.0.0-deploytest"}
	args := map[string]string{"VERSION": img.version, "TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH}
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRAIL_") && !strings.HasPrefix(kv, "GOFLAGS=") && !strings.HasPrefix(kv, "CGO_ENABLED=") {
			env = append(env, kv)
		}
	}
	for k, v := range args {
		env = append(env, k+"="+v)
	}
	// The build context leaves .git out (.dockerignore): no VCS stamp.
	env = append(env, "GOFLAGS=-buildvcs=false")
	var log strings.Builder
	for _, in := range stages[0].all("RUN") {
		script := strings.ReplaceAll(in.args, "/out/", img.out+"/")
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = ".."
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		fmt.Fprintf(&log, "Dockerfile:%d: RUN %s\n%s", in.line, script, out)
		if err != nil {
			img.err = fmt.Errorf("Dockerfile:%d: %w", in.line, err)
			break
		}
	}
	img.log = log.String()
	return img
}

// freePort is a TCP port free on loopback a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// syncBuffer is an io.Writer many goroutines may write while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.out != "" {
		os.RemoveAll(filepath.Dir(built.out))
	}
	os.Exit(code)
}
