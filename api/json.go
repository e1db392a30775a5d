package api

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
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

// writeJSONBody writes an encoded JSON body.
func writeJSONBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func randomKey() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// decodeBody strictly decodes a JSON object body into v (a pointer to a
// struct): the content type must be one of types, the body at most limit
// bytes and a single JSON object whose member names are exactly v's JSON
// field names (encoding/json alone would accept "BODY" for "body"), each
// given once and not null (a merge patch's null would remove the member,
// which no resource here allows). A failure is returned as a Problem whose
// invalid_params names the member at fault, or "body".
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
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return bodyProblem(err, limit)
	}
	if p := checkMembers(data, v); p != nil {
		return p
	}
	dec := json.NewDecoder(bytes.NewReader(data))
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

// checkMembers checks the top level of a JSON body: an object whose member
// names are exactly json field names of v's struct type, each once, none
// null. Syntax errors are left to the decoder (it reports the offset).
func checkMembers(data []byte, v any) *Problem {
	bad := func(detail, name, reason string) *Problem {
		p := badRequest(detail, InvalidParam{Name: name, Reason: reason})
		return &p
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return bad("the body must be a JSON object", "body", "want a JSON object")
	}
	fields := memberTypes(reflect.TypeOf(v).Elem())
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil
		}
		typ, known := fields[name]
		switch {
		case !known:
			return bad("unknown field "+strconv.Quote(truncate(name, 64)), truncate(name, 64), "not a field of this resource (names are case-sensitive)")
		case seen[name]:
			return bad(name+" is given more than once", name, "given more than once")
		case string(raw) == "null":
			return bad(name+" may not be null", name, "may not be null")
		case typ == reflect.TypeFor[json.Number]() && (len(raw) == 0 || raw[0] == '"'):
			// encoding/json would take "5" for the number 5.
			return bad("a field has the wrong type", name, "want a number")
		}
		seen[name] = true
	}
	return nil
}

// memberTypes returns the JSON member names of a struct type's exported
// fields, with each field's type (pointers dereferenced).
func memberTypes(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
		case "":
			out[f.Name] = ft
		default:
			out[name] = ft
		}
	}
	return out
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
	case errors.As(err, &typ) && typ.Field != "":
		p = badRequest("a field has the wrong type", InvalidParam{Name: typ.Field, Reason: "want " + jsonType(typ.Type)})
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

// jsonType names a Go type the way a JSON client thinks of it.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[json.Number]():
		return "a number"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		return "an object"
	}
	return t.String()
}
