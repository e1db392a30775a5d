package api

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"net/http"
	"time"
)

// openAPISpec is the OpenAPI 3 description of the REST API (DESIGN.md §3).
// Keep it in step with the handlers: api/openapitest validates real
// responses against it.
//
//go:embed openapi.json
var openAPISpec []byte

// openAPIETag is a strong ETag of openAPISpec.
var openAPIETag = func() string {
	sum := sha256.Sum256(openAPISpec)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}()

// OpenAPISpec returns a copy of the OpenAPI 3 document served at
// GET /openapi.json.
func OpenAPISpec() []byte { return bytes.Clone(openAPISpec) }

// handleOpenAPI serves GET /openapi.json: the embedded document as
// application/json, with an ETag, answering If-None-Match with 304 and
// Range requests as net/http does. No authentication.
func handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("ETag", openAPIETag)
	h.Set("Cache-Control", "public, max-age=300")
	http.ServeContent(w, r, "openapi.json", time.Time{}, bytes.NewReader(openAPISpec))
}
