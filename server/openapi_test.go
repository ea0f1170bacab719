package server_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/trailhq/trail"
	"github.com/trailhq/trail/server"
)

// TestOpenAPIDocument checks that GET /v1/openapi.json serves, without a
// token, an OpenAPI 3.1 description that is valid, names every operation,
// and describes exactly the routes the server has (outside /fhir and /ui/,
// which it does not cover): a new route without a description fails here.
func TestOpenAPIDocument(t *testing.T) {
	s := start(t)
	r := s.do(t, http.MethodGet, "/v1/openapi.json", "", nil)
	if r.Status != http.StatusOK || mediaType(r.Header) != "application/json" {
		t.Fatalf("GET /v1/openapi.json without a token: %v, want 200 application/json", r)
	}
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Errorf("GET /v1/openapi.json: no ETag")
	}
	req, _ := http.NewRequest(http.MethodGet, s.ts.URL+"/v1/openapi.json", nil)
	req.Header.Set("If-None-Match", etag)
	if resp, err := s.client.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusNotModified {
		t.Errorf("GET /v1/openapi.json with If-None-Match its ETag: status %d, want 304", resp.StatusCode)
	}

	spec, err := parseSpec(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v := spec.model.Version; v != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", v)
	}
	described := map[string]bool{} // "GET /v1/events/{index}"
	ids := map[string]string{}
	for path, item := range spec.model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			route := strings.ToUpper(method) + " " + path
			described[route] = true
			switch {
			case op.OperationId == "":
				t.Errorf("%s has no operationId", route)
			case ids[op.OperationId] != "":
				t.Errorf("%s and %s share operationId %q", ids[op.OperationId], route, op.OperationId)
			}
			ids[op.OperationId] = route
			if op.Responses == nil || op.Responses.Codes.Len() == 0 {
				t.Errorf("%s has no responses", route)
			}
		}
	}
	var served []string
	for _, p := range server.Patterns(s.srv) {
		method, path, ok := strings.Cut(p, " ")
		if !ok || !isDescribedPath(path) {
			continue
		}
		route := method + " " + strings.ReplaceAll(path, "...}", "}")
		served = append(served, route)
		if !described[route] {
			t.Errorf("the server has route %q, which the OpenAPI description lacks", p)
		}
	}
	for route := range described {
		if !slices.Contains(served, route) {
			t.Errorf("the OpenAPI description has %s, which the server does not serve", route)
		}
	}
}

// isDescribedPath reports whether a route's path is one the description
// covers.
func isDescribedPath(path string) bool {
	return described(strings.ReplaceAll(path, "{", "x"))
}

// TestOpenAPICheckFails shows that the validation of the end-to-end tests
// catches answers and requests off the description, and lets through what
// is on it.
func TestOpenAPICheckFails(t *testing.T) {
	spec, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	const receipt = `{"id":"e1","index":0,"stream":"patient/1","stream_seq":1,"recorded":"2026-11-25T10:00:00.123456789Z","leaf_hash":"` +
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `"}`
	const event = `{"stream":"patient/1","type":"patient-record.read","action":"R","actor":{"id":"dr-house"}}`
	answer := func(status int, contentType, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			r.Body.Read(make([]byte, 1<<10))
			if contentType != "" {
				w.Header().Set("Content-Type", contentType)
			}
			w.WriteHeader(status)
			w.Write([]byte(body))
		}
	}
	problem := `{"type":"about:blank","title":"Not Found","status":404,"detail":"no such endpoint"}`
	for _, tc := range []struct {
		name         string
		method, path string
		body         string
		h            http.HandlerFunc
		want         string // in the mismatch; "" for none
	}{
		{"receipt", "POST", "/v1/events", event, answer(201, "application/json", receipt), ""},
		{"receipt without leaf_hash", "POST", "/v1/events", event,
			answer(201, "application/json", strings.Replace(receipt, `,"leaf_hash"`, `,"leaf"`, 1)), "leaf_hash"},
		{"upper-case hash", "POST", "/v1/events", event, answer(201, "application/json", strings.Replace(receipt, "abcdef", "ABCDEF", 1)), "leaf_hash"},
		{"undeclared status", "POST", "/v1/events", event, answer(202, "application/json", receipt), "202"},
		{"problem as plain text", "GET", "/v1/events/7", "", answer(404, "text/plain", "not found"), "text/plain"},
		{"event taken with a bad action", "POST", "/v1/events", strings.Replace(event, `"R"`, `"X"`, 1),
			answer(201, "application/json", receipt), "request taken"},
		{"event taken with an unknown member", "POST", "/v1/events", strings.Replace(event, `"type"`, `"typo":1,"type"`, 1),
			answer(201, "application/json", receipt), "request taken"},
		{"refused event", "POST", "/v1/events", strings.Replace(event, `"R"`, `"X"`, 1),
			answer(400, "application/problem+json", strings.ReplaceAll(problem, "404", "400")), ""},
		{"401 without WWW-Authenticate", "GET", "/v1/events", "",
			answer(401, "application/problem+json", strings.ReplaceAll(problem, "404", "401")), "WWW-Authenticate"},
		{"Retry-After not in seconds", "POST", "/v1/events", event, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "soon")
			answer(503, "application/problem+json", strings.ReplaceAll(problem, "404", "503"))(w, r)
		}, "retry-after"},
		{"HEAD", "HEAD", "/v1/checkpoint", "", answer(200, "text/plain; charset=utf-8", ""), ""},
		{"HEAD of a route not described", "HEAD", "/v1/secret", "", answer(200, "application/json", ""), "no such route"},
		{"route not described", "GET", "/v1/secret", "", answer(200, "application/json", `{}`), "no such route"},
		{"unknown path", "GET", "/v1/secret", "", answer(404, "application/problem+json", problem), ""},
		{"stream head", "GET", "/v1/streams/patient/1", "",
			answer(200, "application/json", `{"stream":"patient/1","length":1,"head_index":0,"head_leaf_hash":"`+strings.Repeat("ab", 32)+`"}`), ""},
		{"tail sending a bad event", "GET", "/v1/tail", "", answer(200, "text/event-stream", "id: 0\ndata: {\"stream\":\"x\"}\n\n"), "tail event"},
		{"FHIR is not checked", "GET", "/fhir/metadata", "", answer(200, "text/plain", "anything"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &apiChecker{spec: spec}
			var body *strings.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			} else {
				body = strings.NewReader("")
			}
			req := httptest.NewRequest(tc.method, tc.path, body)
			c.wrap(tc.h).ServeHTTP(httptest.NewRecorder(), req)
			got := strings.Join(c.mismatches(), "\n")
			switch {
			case tc.want == "" && got != "":
				t.Errorf("mismatch reported for an exchange on the description: %s", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("mismatches %q, want one naming %q", got, tc.want)
			}
		})
	}
}

// FuzzEventSchema checks the description's Event schema against the
// engine's parser: every event the parser takes, the schema must take too,
// or the description would call valid requests invalid. (The schema may
// take events the parser refuses: it cannot count bytes or see NUL.) The
// seeds are the engine's own fuzz corpus and a few events with nulls.
func FuzzEventSchema(f *testing.F) {
	spec, err := loadSpec()
	if err != nil {
		f.Fatal(err)
	}
	p, _ := spec.model.Components.Schemas.Get("Event")
	schema := p.Schema()
	for _, s := range []string{
		`{"stream":"patient/1","type":"t","action":"R","actor":{"id":"a"}}`,
		`{"id":null,"stream":"patient/1","time":null,"type":"t","subtypes":null,"action":"R","outcome":null,"actor":{"id":"a"},"patient":null,"entities":null,"source":null,"purpose":null,"details":null}`,
		`{"id":"a.b-1","stream":"a/.b/..c/...","time":"2026-11-25T10:00:00.123456789+01:00","type":"t","action":"E","actor":{"id":"a","name":"n","role":"r","address":"::1","user_agent":"u"},"entities":[{"id":"1"}],"source":{},"details":{}}`,
	} {
		f.Add([]byte(s))
	}
	seeds, _ := filepath.Glob(filepath.Join("..", "testdata", "fuzz", "FuzzParseEvent", "*"))
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		_, lit, ok := strings.Cut(string(b), "\n[]byte(")
		if s, err := strconv.Unquote(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(lit), ")"))); ok && err == nil {
			f.Add([]byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := trail.ParseEvent(data); err != nil {
			return
		}
		if ok, errs := spec.schemas.ValidateSchemaBytes(schema, data); !ok {
			t.Errorf("the engine takes %s, the Event schema does not: %s", data, describe(errs))
		}
	})
}
