package server

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
)

// openAPIDoc is the OpenAPI 3.1 description of the v1 API, served at GET
// /v1/openapi.json. The end-to-end tests validate every request and answer
// they make against it, so it cannot drift from what the server does.
//
//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.1 description of the v1 API (JSON).
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }

// openAPIETag is the strong entity tag of openAPIDoc: it changes only with
// the binary.
var openAPIETag = func() string {
	sum := sha256.Sum256(openAPIDoc)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}()

// openAPI serves GET /v1/openapi.json (public: the API's documentation).
// The ETag lets a client revalidate its copy with If-None-Match.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("ETag", openAPIETag)
	h.Set("Cache-Control", "no-cache")
	if r.Header.Get("If-None-Match") == openAPIETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	w.Write(openAPIDoc)
}
