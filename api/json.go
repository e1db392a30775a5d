package api

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, internalError())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func randomKey() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// decodeBody strictly decodes a JSON object body into v: the content type
// must be one of types, the body at most limit bytes, no unknown fields and
// nothing after the object. A failure is returned as a Problem.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any, types ...string) *Problem {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	ok := false
	for _, t := range types {
		ok = ok || (err == nil && mt == t)
	}
	if !ok {
		p := unsupportedMediaType(types...)
		return &p
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return bodyProblem(err, limit)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		p := badRequest("the body must be a single JSON object", InvalidParam{Name: "body", Reason: "trailing data after the JSON object"})
		return &p
	}
	return nil
}

func bodyProblem(err error, limit int64) *Problem {
	var tooBig *http.MaxBytesError
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var p Problem
	switch {
	case errors.As(err, &tooBig):
		p = payloadTooLarge(limit)
	case errors.As(err, &syn):
		p = badRequest("the body is not valid JSON", InvalidParam{Name: "body", Reason: fmt.Sprintf("syntax error at byte %d", syn.Offset)})
	case errors.As(err, &typ):
		p = badRequest("a field has the wrong type", InvalidParam{Name: typ.Field, Reason: "want " + typ.Type.String()})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		p = badRequest("unknown field "+name, InvalidParam{Name: name, Reason: "not a field of this resource"})
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		p = badRequest("the body is empty or truncated", InvalidParam{Name: "body", Reason: "want a JSON object"})
	default:
		p = badRequest("the body is not a valid JSON object", InvalidParam{Name: "body", Reason: "want a JSON object"})
	}
	return &p
}
