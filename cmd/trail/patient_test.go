package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestTokenPatientEndToEnd: "trail token create --patient" makes a patient's
// own principal that token list shows; against a running "trail serve" it
// reads its patient's stream and the read records naming its patient, and
// nothing else. A patient id that is not a stream segment is refused.
func TestTokenPatientEndToEnd(t *testing.T) {
	dir := newDataDir(t)
	create := func(args ...string) string { t.Helper(); return createToken(t, dir, args...) }
	for _, bad := range []string{"1/2", "a b", "..", "é"} {
		_, errOut, code := runTrail(t, "token", "create", "--data", dir, "--name", "p-bad", "--patient", bad)
		if code != 2 || !strings.Contains(errOut, "patient") {
			t.Errorf("token create --patient %q: exit %d %q, want exit 2 naming the patient", bad, code, errOut)
		}
	}
	for _, extra := range [][]string{{"--admin"}, {"--read", "patient/*"}, {"--break-glass"}, {"--review"}, {"--append", "patient/1"}} {
		args := append([]string{"token", "create", "--data", dir, "--name", "p-extra", "--patient", "1"}, extra...)
		if _, errOut, code := runTrail(t, args...); code != 2 || !strings.Contains(errOut, "nothing else") {
			t.Errorf("token create --patient 1 %v: exit %d %q, want exit 2", extra, code, errOut)
		}
	}
	patient := create("--name", "patient-4711", "--patient", "4711")
	doctor := create("--name", "dr-grey", "--read", "patient/*")

	out, _, _ := runTrail(t, "token", "list", "--data", dir)
	if !strings.Contains(out, "PATIENT") || !strings.Contains(out, "4711") {
		t.Errorf("token list does not show the patient:\n%s", out)
	}

	p := startServe(t, dir)
	call := func(method, path, tok, body string) (int, string) {
		t.Helper()
		return p.call(t, method, path, tok, body)
	}
	for _, s := range []string{"patient/4711", "patient/47111", "patient/4711/labs"} {
		ev := `{"stream":"` + s + `","type":"patient-record.update","action":"U","actor":{"id":"dr-x"}}`
		if st, b := call("POST", "/v1/events", p.token, ev); st != http.StatusCreated {
			t.Fatalf("append: %d %s", st, b)
		}
	}
	if st, b := call("GET", "/v1/events?stream=patient/4711", doctor, ""); st != http.StatusOK {
		t.Fatalf("doctor's read: %d %s", st, b)
	}
	if st, b := call("GET", "/v1/events?stream=patient/47111", doctor, ""); st != http.StatusOK {
		t.Fatalf("doctor's read: %d %s", st, b)
	}
	var page struct {
		Events []struct {
			Stream  string
			Patient string
			Actor   struct{ ID string }
		}
	}
	st, b := call("GET", "/v1/events", patient, "")
	if st != http.StatusOK || json.Unmarshal([]byte(b), &page) != nil {
		t.Fatalf("patient's query: %d %s", st, b)
	}
	if len(page.Events) != 2 || page.Events[0].Stream != "patient/4711" || page.Events[1].Stream != "patient/4711/labs" {
		t.Errorf("patient's query returned %+v, want its two events", page.Events)
	}
	st, b = call("GET", "/v1/events?stream=trail/access&patient=4711", patient, "")
	page.Events = nil
	if st != http.StatusOK || json.Unmarshal([]byte(b), &page) != nil {
		t.Fatalf("patient's read of its read records: %d %s", st, b)
	}
	doctorReads := 0
	for _, e := range page.Events {
		if e.Patient != "4711" {
			t.Errorf("patient 4711 got a read record of patient %q", e.Patient)
		}
		if e.Actor.ID == "dr-grey" {
			doctorReads++
		}
	}
	if doctorReads != 1 {
		t.Errorf("patient 4711 sees %d reads by dr-grey, want 1: %s", doctorReads, b)
	}
	if st, b := call("GET", "/v1/events?stream=trail/access&patient=47111", patient, ""); st != http.StatusForbidden {
		t.Errorf("patient 4711 reading patient 47111's read records: %d %s, want 403", st, b)
	}
}
