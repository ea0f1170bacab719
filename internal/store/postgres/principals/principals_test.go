package principals_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trailhq/trail/auth"
	"github.com/trailhq/trail/auth/sessiontest"
	"github.com/trailhq/trail/internal/pgtest"
	"github.com/trailhq/trail/internal/store/postgres"
	"github.com/trailhq/trail/internal/store/postgres/principals"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// newLog makes a log in a database of its own on the shared server (as trail
// serve --store does) and returns its URL.
func newLog(t *testing.T) string {
	t.Helper()
	if err := pgtest.Installed(); err != nil {
		t.Fatalf("PostgreSQL is not installed: %v", err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	url, err := pgtest.DatabaseFor(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	signer, vkey, err := pgtest.KeyFor(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := postgres.Open(ctx, postgres.Options{URL: url, Signer: signer, VerifierKey: vkey})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	return url
}

func openPrincipals(t *testing.T, url string) *principals.Source {
	t.Helper()
	p, err := principals.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func entry(name string, read ...string) auth.Entry {
	h := auth.HashToken(auth.NewToken())
	return auth.Entry{Name: name, TokenSHA256: fmt.Sprintf("%x", h[:]), Read: read, Created: time.Now().UTC().Truncate(time.Second)}
}

// TestPolicyRoundTrip: a policy changed in the database loads back field for
// field, stored as the tokens file's bytes, at the next version; a new log
// has the empty policy at version 0; a database without a log is refused.
func TestPolicyRoundTrip(t *testing.T) {
	ctx := context.Background()
	url := newLog(t)
	p := openPrincipals(t, url)
	pol, v, err := p.Load(ctx)
	if err != nil || v != "0" || len(pol.Principals) != 0 {
		t.Fatalf("new log: %+v, version %q, %v", pol, v, err)
	}
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	e := entry("reader", "patient/*")
	e.Append, e.Expires, e.BreakGlass = []string{"ehr/*"}, &exp, true
	pat := entry("p-1")
	pat.Read, pat.Patient = nil, "1"
	if err := p.Update(ctx, "test", func(pol *auth.Policy) error {
		pol.Principals = append(pol.Principals, e, pat)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	pol, v, err = p.Load(ctx)
	if err != nil || v != "1" {
		t.Fatalf("version %q, %v", v, err)
	}
	want, _ := auth.Marshal(auth.Policy{Principals: []auth.Entry{e, pat}})
	got, _ := auth.Marshal(pol)
	if string(got) != string(want) {
		t.Errorf("loaded\n%s\nwant\n%s", got, want)
	}
	hist, err := p.History(ctx)
	if err != nil || len(hist) != 1 || string(hist[0].Policy) != string(want) || hist[0].By != "test" {
		t.Errorf("stored %+v (%v), want the tokens file's bytes\n%s", hist, err, want)
	}
	if v, err := p.Version(ctx); err != nil || v != "1" {
		t.Errorf("Version: %q %v", v, err)
	}

	// A token made and revoked through auth's functions.
	tok, err := auth.CreateIn(p.Updater(ctx, "test"), auth.Entry{Name: "writer", Append: []string{"ehr/*"}}, time.Now())
	if err != nil || !strings.HasPrefix(tok, auth.TokenPrefix) {
		t.Fatalf("CreateIn: %q %v", tok, err)
	}
	if _, err := auth.CreateIn(p.Updater(ctx, "test"), auth.Entry{Name: "writer"}, time.Now()); !errors.Is(err, auth.ErrExists) {
		t.Errorf("a second writer: %v, want ErrExists", err)
	}
	if err := auth.RevokeIn(p.Updater(ctx, "test"), "writer", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := auth.RevokeIn(p.Updater(ctx, "test"), "nobody", time.Now()); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("revoke nobody: %v, want ErrNotFound", err)
	}
	pol, v, _ = p.Load(ctx)
	if v != "3" || len(pol.Principals) != 3 || pol.Principals[2].Revoked == nil {
		t.Errorf("after create and revoke: version %s, %+v", v, pol)
	}

	// A database holding no log is refused.
	empty, err := pgtest.DatabaseFor(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := principals.Open(ctx, empty); !errors.Is(err, principals.ErrNoLog) {
		t.Errorf("a database without a log: %v, want ErrNoLog", err)
	}
}

// TestPolicyConcurrentUpdates: changes made together, from separate
// connections, all take effect, each as its own version.
func TestPolicyConcurrentUpdates(t *testing.T) {
	ctx := context.Background()
	url := newLog(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- principals.UpdatePolicy(ctx, url, "test", func(pol *auth.Policy) error {
				time.Sleep(20 * time.Millisecond) // widen the window a lost update would need
				pol.Principals = append(pol.Principals, entry(fmt.Sprintf("p-%d", i), "patient/*"))
				return nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	p := openPrincipals(t, url)
	pol, v, err := p.Load(ctx)
	if err != nil || v != fmt.Sprint(n) || len(pol.Principals) != n {
		t.Fatalf("version %s, %d principals, %v; want %d of each", v, len(pol.Principals), err, n)
	}
	hist, err := p.History(ctx)
	if err != nil || len(hist) != n {
		t.Fatalf("history: %d versions, %v", len(hist), err)
	}
	for i, h := range hist {
		old, err := auth.Parse(h.Policy)
		if h.Version != int64(i+1) || err != nil || len(old.Principals) != i+1 {
			t.Errorf("version %d: %d principals, %v", h.Version, len(old.Principals), err)
		}
	}
}

// TestPolicyRefusesReservedNames: a change naming a reserved principal, or a
// patient's principal with other grants, is refused and stores nothing.
func TestPolicyRefusesReservedNames(t *testing.T) {
	ctx := context.Background()
	url := newLog(t)
	p := openPrincipals(t, url)
	if err := p.Update(ctx, "test", func(pol *auth.Policy) error {
		pol.Principals = append(pol.Principals, entry("ok", "patient/*"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	bad := []auth.Entry{entry("admin"), entry("trail-sync"), entry("patient:42"), entry("p", "ehr/*")}
	bad[3].Patient = "42"
	for _, e := range bad {
		err := p.Update(ctx, "test", func(pol *auth.Policy) error {
			pol.Principals = append(pol.Principals, e)
			return nil
		})
		if err == nil {
			t.Errorf("%q (patient %q) accepted", e.Name, e.Patient)
		}
	}
	if v, err := p.Version(ctx); err != nil || v != "1" {
		t.Errorf("version %s (%v) after refused changes, want 1", v, err)
	}
	// fn's own error stores nothing either.
	boom := errors.New("boom")
	if err := p.Update(ctx, "test", func(*auth.Policy) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("fn's error: %v", err)
	}
	if v, _ := p.Version(ctx); v != "1" {
		t.Errorf("version %s after a failed fn", v)
	}
}

// TestPolicyUnreadableVersion: a latest version that does not parse is an
// error for the reader and is not built upon by a change; a good version
// after it is in force again, and the history keeps every one.
func TestPolicyUnreadableVersion(t *testing.T) {
	ctx := context.Background()
	url := newLog(t)
	p := openPrincipals(t, url)
	if err := p.Update(ctx, "test", func(pol *auth.Policy) error {
		pol.Principals = append(pol.Principals, entry("ok", "patient/*"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "INSERT INTO trail_policy (version, policy, changed_by) VALUES (2, 'not json', 'vandal')"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Load(ctx); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("Load of a garbage version: %v", err)
	}
	if err := p.Update(ctx, "test", func(*auth.Policy) error { return nil }); err == nil || !strings.Contains(err.Error(), "good version") {
		t.Errorf("Update on a garbage version: %v", err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO trail_policy (version, policy, changed_by) SELECT 3, policy, 'repair' FROM trail_policy WHERE version = 1"); err != nil {
		t.Fatal(err)
	}
	if pol, v, err := p.Load(ctx); err != nil || v != "3" || len(pol.Principals) != 1 {
		t.Errorf("after the repair: %+v, version %s, %v", pol, v, err)
	}
	if hist, err := p.History(ctx); err != nil || len(hist) != 3 || hist[1].By != "vandal" {
		t.Errorf("history %+v, %v", hist, err)
	}
}

// TestAdminRecordedOnce: the first process records the admin token of its
// data directory (made, mode 0600, when missing); a second one accepts only
// that token, whatever its own file holds, and makes none.
func TestAdminRecordedOnce(t *testing.T) {
	ctx := context.Background()
	url := newLog(t)
	p := openPrincipals(t, url)
	if _, ok, err := p.AdminHash(ctx); ok || err != nil {
		t.Fatalf("a new log has an admin token: %v", err)
	}
	a := filepath.Join(t.TempDir(), "a")
	h, created, err := p.EnsureAdmin(ctx, a, nil)
	if err != nil || !created {
		t.Fatalf("first process: created %v, %v", created, err)
	}
	b, err := os.ReadFile(filepath.Join(a, auth.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(a, auth.AdminTokenFile)); st.Mode().Perm() != 0o600 {
		t.Errorf("admin token mode %v", st.Mode().Perm())
	}
	if auth.HashToken(auth.Token(strings.TrimSpace(string(b)))) != h {
		t.Error("the recorded hash is not the file's token's")
	}
	// A second process with a token of its own.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, auth.AdminTokenFile), []byte(auth.NewToken()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h2, created, err := p.EnsureAdmin(ctx, other, nil)
	if err != nil || created || h2 != h {
		t.Errorf("second process: created %v, same hash %v, %v", created, h2 == h, err)
	}
	// And one with none.
	none := t.TempDir()
	h3, created, err := p.EnsureAdmin(ctx, none, nil)
	if err != nil || created || h3 != h {
		t.Errorf("third process: created %v, same hash %v, %v", created, h3 == h, err)
	}
	if _, err := os.Stat(filepath.Join(none, auth.AdminTokenFile)); !os.IsNotExist(err) {
		t.Errorf("a process that did not make the database wrote an admin token: %v", err)
	}
}

// TestImportFile: a log without principals takes the tokens file of the
// first process's data directory as its first version, once; an empty or
// missing file imports nothing.
func TestImportFile(t *testing.T) {
	ctx := context.Background()
	url := newLog(t)
	p := openPrincipals(t, url)
	if ok, err := p.ImportFile(ctx, t.TempDir(), "test"); ok || err != nil {
		t.Fatalf("a missing tokens file imported: %v %v", ok, err)
	}
	dir := t.TempDir()
	if _, err := auth.Create(dir, auth.Entry{Name: "reader", Read: []string{"patient/*"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if ok, err := p.ImportFile(ctx, dir, "test"); !ok || err != nil {
		t.Fatalf("import: %v %v", ok, err)
	}
	file, _ := os.ReadFile(filepath.Join(dir, auth.TokensFile))
	if hist, err := p.History(ctx); err != nil || len(hist) != 1 || string(hist[0].Policy) != string(file) {
		t.Errorf("history %+v (%v), want the file's bytes", hist, err)
	}
	if ok, err := p.ImportFile(ctx, dir, "test"); ok || err != nil {
		t.Errorf("a second import: %v %v", ok, err)
	}
}

// TestSessions: console sessions kept in the database behave as the
// console relies on (auth/sessiontest), seen from one process or another.
func TestSessions(t *testing.T) {
	url := newLog(t)
	sessiontest.Run(t, openPrincipals(t, url).Sessions(), func(time.Time) {})
}
