package server

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The console reads through the API's own handlers, in-process.

// apiHandler is an API endpoint's handler, as the console calls it.
type apiHandler func(http.ResponseWriter, *http.Request, *Principal) *problem

// captured is the answer of an API handler run in-process.
type captured struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *captured) Header() http.Header { return w.h }
func (w *captured) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
func (w *captured) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

// apiGet runs the API's handler h for GET path?q as p, in this process:
// the grant check, the read rate, the read audit (the record names the
// API's route and the parameters, with the browser's address and user
// agent) are the API's own. It returns the body of a 200, or the problem
// the API would have answered.
func (c *console) apiGet(r *http.Request, p *Principal, h apiHandler, path string, q url.Values, pathValues map[string]string) ([]byte, *problem) {
	req := c.apiRequest(r, path, q, pathValues)
	w := &captured{h: http.Header{}}
	if pr := h(w, req, p); pr != nil {
		return nil, pr
	}
	if w.status != http.StatusOK {
		return nil, newProblem(w.status, "console", fmt.Sprintf("the API answered %d %s", w.status, strings.TrimSpace(w.body.String())))
	}
	return w.body.Bytes(), nil
}

// apiRequest is the API's GET path?q as the browser's request r asks it:
// its address and user agent, none of its credentials or cookies.
func (c *console) apiRequest(r *http.Request, path string, q url.Values, pathValues map[string]string) *http.Request {
	req := r.Clone(r.Context())
	req.Method = http.MethodGet
	req.URL = &url.URL{Path: path, RawQuery: q.Encode()}
	req.RequestURI = req.URL.RequestURI()
	req.Body, req.ContentLength = http.NoBody, 0
	req.Header = http.Header{"User-Agent": {r.UserAgent()}}
	for _, f := range []string{"X-Forwarded-For"} {
		if v := r.Header.Values(f); len(v) > 0 {
			req.Header[f] = v
		}
	}
	for k, v := range pathValues {
		req.SetPathValue(k, v)
	}
	return req
}

// problemState sorts an API problem into a page's denied or error state.
func (c *console) problemState(pr *problem, denied, other *string) {
	if pr.Status == http.StatusForbidden {
		*denied = pr.Detail
		return
	}
	*other = fmt.Sprintf("%s (%d %s)", pr.Detail, pr.Status, http.StatusText(pr.Status))
}
