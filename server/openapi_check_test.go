package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	bodycodec "github.com/pb33f/libopenapi-validator/content"
	liberrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/trailhq/trail/server"
)

// The end-to-end tests validate every request they make and every answer
// they get against the OpenAPI description the server serves
// (server/openapi.json), with checkAPI around the handler under test. The
// rules:
//
//   - Every answer of a path the description covers (/v1/…, /healthz,
//     /readyz, /metrics) must match it: status, Content-Type, headers it
//     requires, body. /fhir and /ui/ are outside it (the FHIR API is
//     described by its CapabilityStatement) and are not checked.
//   - A request is checked only when the server took it (2xx): tests send
//     malformed requests on purpose, and the server refusing them is what
//     they test; the refusal itself must still match the description. A
//     request the server took that the description says it refuses is an
//     error: the description would be narrower than the server.
//   - A path or method the description lacks is an error, unless the server
//     answered 404 or 405 (a problem document; 405 with Allow).
//   - HEAD, which every GET route answers, is checked as GET but for the
//     body.
//   - An answer to a client that went away (499) is not checked: nobody
//     receives it.
//   - A live tail (text/event-stream) is checked by its status and headers,
//     and each complete event among the first bytes it sent: its data must
//     be a stored event. The rest of an endless stream is not kept.

// apiSpec is the parsed description and its validators.
type apiSpec struct {
	v       validator.Validator
	head    validator.Validator // v without bodies: HEAD is checked as GET
	schemas schema_validation.SchemaValidator
	model   *v3.Document
	stored  *base.Schema // an event as stored, each event of a tail
	problem *base.Schema // the answer to any refused request
}

var loadSpec = sync.OnceValues(func() (*apiSpec, error) { return parseSpec(server.OpenAPI()) })

// parseSpec builds the validators of an OpenAPI 3.1 description.
func parseSpec(doc []byte) (*apiSpec, error) {
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		return nil, fmt.Errorf("parse the OpenAPI description: %w", err)
	}
	m, err := d.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("build the OpenAPI model: %w", err)
	}
	v, errs := validator.NewValidator(d, config.WithFormatAssertions(),
		config.WithBodyDecoder("application/x-ndjson", bodycodec.DecoderFunc(decodeNDJSON)))
	if len(errs) > 0 {
		return nil, fmt.Errorf("OpenAPI validator: %v", errs)
	}
	head, errs := validator.NewValidator(d, config.WithoutResponseBodyValidation())
	if len(errs) > 0 {
		return nil, fmt.Errorf("OpenAPI validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		return nil, fmt.Errorf("the OpenAPI description is not valid OpenAPI: %s", describe(verrs))
	}
	s := &apiSpec{v: v, head: head, model: &m.Model, schemas: schema_validation.NewSchemaValidator(config.WithFormatAssertions())}
	for name, dst := range map[string]**base.Schema{"StoredEvent": &s.stored, "Problem": &s.problem} {
		p, ok := m.Model.Components.Schemas.Get(name)
		if !ok {
			return nil, fmt.Errorf("the OpenAPI description has no schema %s", name)
		}
		if *dst = p.Schema(); *dst == nil {
			return nil, fmt.Errorf("schema %s: %v", name, p.GetBuildError())
		}
	}
	return s, nil
}

// decodeNDJSON decodes a batch body for validation as the array of its
// lines' JSON values (blank lines skipped), which its schema describes.
func decodeNDJSON(in *bodycodec.DecodeInput) (any, error) {
	body, err := io.ReadAll(in.Body)
	if err != nil {
		return nil, err
	}
	var lines []any
	for n, line := range bytes.Split(body, []byte{'\n'}) {
		if line = bytes.TrimSpace(line); len(line) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		lines = append(lines, v)
	}
	return bodycodec.Canonicalize(lines)
}

// describe joins validation errors into one message a person can act on.
func describe(errs []*liberrors.ValidationError) string {
	var b strings.Builder
	for i, e := range errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Message)
		if e.Reason != "" && e.Reason != e.Message {
			b.WriteString(": " + e.Reason)
		}
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, " [%s: %s]", f.FieldPath, f.Reason)
		}
	}
	return b.String()
}

// apiChecker collects what answers and requests broke the description.
// Handlers run on the server's goroutines, possibly after the test's
// function returned; the mismatches are reported by a cleanup that runs
// after the test server is closed, when every handler has returned.
type apiChecker struct {
	spec *apiSpec
	mu   sync.Mutex
	errs []string
	more int
}

// checkAPI returns h with every exchange validated against the OpenAPI
// description; a mismatch fails t. Call it before the test server that
// serves the handler is started, so that its report runs after that
// server's cleanup.
func checkAPI(t testing.TB, h http.Handler) http.Handler {
	t.Helper()
	spec, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	c := &apiChecker{spec: spec}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range c.errs {
			t.Errorf("OpenAPI: %s", e)
		}
		if c.more > 0 {
			t.Errorf("OpenAPI: %d more mismatches", c.more)
		}
	})
	return c.wrap(h)
}

// mismatches returns what was reported so far.
func (c *apiChecker) mismatches() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

func (c *apiChecker) report(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) < 20 {
		c.errs = append(c.errs, msg)
	} else {
		c.more++
	}
}

// described reports whether the description covers path.
func described(path string) bool {
	switch path {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return strings.HasPrefix(path, "/v1/")
}

// statusClientGone is the status an append answers when its client went
// away before its receipt (nginx's "client closed request"): nobody reads
// that answer, and the description does not list it.
const statusClientGone = 499

// Limits on what is kept of an exchange for validation.
const (
	maxKeptRequest = 16<<20 + 1 // a whole batch
	maxKeptAnswer  = 64 << 20   // a page of 1,000 events of 64 KiB
	maxKeptStream  = 1 << 20    // the first events of a tail
)

// wrap returns h, keeping what each exchange on a described path carries
// and reporting what in it is off the description once h has answered.
func (c *apiChecker) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !described(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		method, u, header := r.Method, *r.URL, r.Header.Clone()
		in := &keptBody{ReadCloser: r.Body, max: maxKeptRequest}
		if r.Body != nil && r.Body != http.NoBody {
			// A copy of the request carries the kept body: net/http looks
			// at the original's to decide whether to drain what the
			// handler left unread.
			r = r.WithContext(r.Context())
			r.Body = in
		}
		out := &keptAnswer{ResponseWriter: w}
		h.ServeHTTP(out, r)
		req := &http.Request{Method: method, URL: &u, Header: header, Body: io.NopCloser(bytes.NewReader(in.buf.Bytes()))}
		for _, msg := range c.spec.check(req, in, out) {
			c.report(fmt.Sprintf("%s %s → %d: %s", method, truncate([]byte(u.RequestURI()), 160), out.status(), msg))
		}
	})
}

// check validates one exchange and returns what is wrong with it.
func (s *apiSpec) check(req *http.Request, in *keptBody, out *keptAnswer) []string {
	status := out.status()
	if status == statusClientGone {
		return nil
	}
	vreq := forValidation(req)
	resp := &http.Response{StatusCode: status, Header: out.sent, Request: vreq,
		Body: io.NopCloser(bytes.NewReader(out.buf.Bytes()))}
	var msgs []string
	if mt, _, _ := mime.ParseMediaType(out.sent.Get("Content-Type")); mt == "text/event-stream" {
		// Only the first bytes of a live tail are kept: its body is checked
		// event by event here, and the validator sees its status and
		// headers alone.
		msgs = append(msgs, s.checkStream(out)...)
		resp.Body = io.NopCloser(strings.NewReader(""))
	} else if out.truncated {
		return append(msgs, fmt.Sprintf("answer over %d bytes: not validated", maxKeptAnswer))
	}
	v := s.v
	if req.Method == http.MethodHead {
		// Every GET route answers HEAD as GET without the body (net/http's
		// mux): the answer is checked as GET's, but for its body.
		vreq.Method, v = http.MethodGet, s.head
	}
	ok, errs := v.ValidateHttpResponse(vreq, resp)
	if !ok {
		if missingRoute(errs) {
			return s.checkNoRoute(status, out)
		}
		msgs = append(msgs, "answer: "+describe(errs))
	}
	if status/100 != 2 {
		return msgs
	}
	if in.truncated {
		return append(msgs, "request body too large to validate")
	}
	if ok, errs := v.ValidateHttpRequestSync(vreq); !ok {
		msgs = append(msgs, "request taken (status "+fmt.Sprint(status)+") but off the description: "+describe(errs))
	}
	return msgs
}

// forValidation returns req as the validator needs it: a stream name's "/"
// escaped, since OpenAPI path parameters hold no "/" while the stream-head
// route takes the rest of the path; a body without Content-Type (the server
// reads the body whatever its type) given the type the description declares.
func forValidation(req *http.Request) *http.Request {
	r := req.Clone(req.Context())
	r.Body = req.Body
	if name, ok := strings.CutPrefix(r.URL.Path, "/v1/streams/"); ok {
		u := *r.URL
		u.RawPath = "/v1/streams/" + url.PathEscape(name)
		r.URL = &u
	}
	if r.Header.Get("Content-Type") == "" && r.Method == http.MethodPost {
		ct := "application/json"
		if r.URL.Path == "/v1/batch" {
			ct = "application/x-ndjson"
		}
		r.Header.Set("Content-Type", ct)
	}
	return r
}

// missingRoute reports whether errs say the description has no such path
// or method.
func missingRoute(errs []*liberrors.ValidationError) bool {
	for _, e := range errs {
		if e.IsPathMissingError() || e.IsOperationMissingError() {
			return true
		}
	}
	return false
}

// checkNoRoute checks the answer to a path or method the description does
// not have: 404, or 405 with Allow, as a problem document.
func (s *apiSpec) checkNoRoute(status int, out *keptAnswer) []string {
	switch status {
	case http.StatusNotFound:
	case http.StatusMethodNotAllowed:
		if out.sent.Get("Allow") == "" {
			return []string{"405 without Allow"}
		}
	default:
		return []string{"the description has no such route, yet the server did not answer 404 or 405"}
	}
	if mt, _, _ := mime.ParseMediaType(out.sent.Get("Content-Type")); mt != "application/problem+json" {
		return []string{fmt.Sprintf("Content-Type %q, want application/problem+json", mt)}
	}
	if ok, errs := s.schemas.ValidateSchemaBytes(s.problem, out.buf.Bytes()); !ok {
		return []string{"problem document: " + describe(errs)}
	}
	return nil
}

// checkStream validates the complete events among the first bytes of a
// tail: an id line with the index, a data line with a stored event.
func (s *apiSpec) checkStream(out *keptAnswer) []string {
	var msgs []string
	b := out.buf.Bytes()
	if i := bytes.LastIndex(b, []byte("\n\n")); i >= 0 {
		b = b[:i+2]
	} else {
		b = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxKeptStream)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "", strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
		case strings.HasPrefix(line, "data: "):
			if ok, errs := s.schemas.ValidateSchemaBytes(s.stored, []byte(line[len("data: "):])); !ok {
				msgs = append(msgs, "tail event: "+describe(errs))
			}
		default:
			msgs = append(msgs, fmt.Sprintf("tail line %q is not an SSE id, data or comment line", truncate([]byte(line), 80)))
		}
	}
	return msgs
}

// keptBody keeps what the handler read of a request body, up to max bytes.
type keptBody struct {
	io.ReadCloser
	max       int
	buf       bytes.Buffer
	truncated bool
}

func (b *keptBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if room := b.max - b.buf.Len(); room < n {
		b.buf.Write(p[:max(0, room)])
		b.truncated = true
	} else {
		b.buf.Write(p[:n])
	}
	return n, err
}

// keptAnswer passes an answer on and keeps its status, headers and first
// bytes. Unwrap lets http.ResponseController reach the connection (flushes
// and deadlines of tails and appends).
type keptAnswer struct {
	http.ResponseWriter
	code      int
	sent      http.Header // the headers as sent with the status
	buf       bytes.Buffer
	truncated bool
}

func (a *keptAnswer) WriteHeader(code int) {
	if a.code == 0 && code >= 200 {
		a.code = code
		a.sent = a.ResponseWriter.Header().Clone()
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *keptAnswer) Write(p []byte) (int, error) {
	if a.code == 0 {
		a.WriteHeader(http.StatusOK)
	}
	limit := maxKeptAnswer
	if mt, _, _ := mime.ParseMediaType(a.sent.Get("Content-Type")); mt == "text/event-stream" {
		limit = maxKeptStream
	}
	if room := limit - a.buf.Len(); room < len(p) {
		a.buf.Write(p[:max(0, room)])
		a.truncated = true
	} else {
		a.buf.Write(p)
	}
	return a.ResponseWriter.Write(p)
}

func (a *keptAnswer) FlushError() error {
	if a.code == 0 {
		a.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(a.ResponseWriter).Flush()
}

func (a *keptAnswer) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// status is the status sent (200 when the handler wrote nothing).
func (a *keptAnswer) status() int {
	if a.code == 0 {
		a.sent = a.ResponseWriter.Header().Clone()
		return http.StatusOK
	}
	return a.code
}
