package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// secretFile reports whether a name in the data directory is a secret file
// or its temporary file.
func secretFile(name string) bool {
	for _, s := range []string{"admin.token", "checkpoint.key", "tokens.json"} {
		if strings.HasPrefix(name, s) {
			return true
		}
	}
	return false
}

// watchModes looks at dir in a tight loop until stop is called and returns
// every secret file it saw that the group or others could read, and whether
// it saw dir itself with such bits.
func watchModes(dir string) (stop func() []string) {
	var mu sync.Mutex
	var bad []string
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			default:
			}
			if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o077 != 0 {
				mu.Lock()
				bad = append(bad, dir+" "+st.Mode().Perm().String())
				mu.Unlock()
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if !secretFile(e.Name()) {
					continue
				}
				st, err := os.Lstat(filepath.Join(dir, e.Name()))
				if err == nil && st.Mode().Perm()&0o077 != 0 {
					mu.Lock()
					bad = append(bad, e.Name()+" "+st.Mode().Perm().String())
					mu.Unlock()
				}
			}
		}
	}()
	return func() []string {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return bad
	}
}

// TestServeSecretFilesPrivate: while trail serve makes a new data directory,
// and while trail token writes the tokens file, no secret file (admin.token,
// checkpoint.key, tokens.json, nor their temporary files) is ever readable
// by the group or others, not even for a moment; the directory is 0700.
func TestServeSecretFilesPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	stop := watchModes(dir)
	p := startServe(t, dir)
	for _, name := range []string{"one", "two", "three", "four", "five"} {
		if _, errOut, code := runTrail(t, "token", "create", "--data", dir, "--name", name); code != 0 {
			t.Fatalf("token create: exit %d: %s", code, errOut)
		}
	}
	if _, errOut, code := runTrail(t, "token", "revoke", "--data", dir, "one"); code != 0 {
		t.Fatalf("token revoke: exit %d: %s", code, errOut)
	}
	time.Sleep(50 * time.Millisecond)
	if bad := stop(); len(bad) > 0 {
		t.Errorf("seen readable by others while being written: %v", bad[:min(len(bad), 10)])
	}
	for _, name := range []string{"", "admin.token", "checkpoint.key", "tokens.json"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if name == "" {
			want = 0o700
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", filepath.Join(dir, name), st.Mode().Perm(), want)
		}
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	<-p.exited
}

// TestServeDataDirRefused: trail serve refuses (exit 2, saying what to do)
// a data directory the group or others may use, new or not, and a non-empty
// directory that is not a Trail data directory, which it leaves untouched.
func TestServeDataDirRefused(t *testing.T) {
	base := t.TempDir()
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o755)
	shared := newDataDir(t)
	os.Chmod(shared, 0o750)
	foreign := filepath.Join(base, "foreign")
	if err := os.Mkdir(foreign, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, want string }{
		{open, "chmod 700 " + open},
		{shared, "chmod 700 " + shared},
		{foreign, "not a Trail data directory"},
	} {
		out, errOut, code := runTrail(t, "serve", "--data", c.dir, "--listen", "127.0.0.1:0")
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("serve --data %s: exit %d, %q %q; want exit 2 saying %q", c.dir, code, out, errOut, c.want)
		}
	}
	if entries, _ := os.ReadDir(foreign); len(entries) != 1 {
		t.Errorf("serve wrote into a directory that is not a data directory: %v", entries)
	}
}

// TestServePlainHTTPWarning: plain HTTP on an address other hosts can reach
// is served with a warning at start; on loopback there is none.
func TestServePlainHTTPWarning(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startServe(t, dir, "--listen", "0.0.0.0:0")
	if !strings.Contains(p.log(), "level=WARN") || !strings.Contains(p.log(), "plain HTTP") {
		t.Errorf("plain HTTP on 0.0.0.0 without a warning:\n%s", p.log())
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	<-p.exited
	p = startServe(t, dir)
	if strings.Contains(p.log(), "plain HTTP") {
		t.Errorf("a warning for plain HTTP on loopback:\n%s", p.log())
	}
}
