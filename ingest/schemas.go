package ingest

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hamba/avro/v2"
)

// The event contract, copied from ../shared/contracts. Schema ID 1 is v1 and 2
// is v2 when no schema registry is configured.
var (
	//go:embed contracts/message_event.v1.avsc
	schemaV1JSON string
	//go:embed contracts/message_event.v2.avsc
	schemaV2JSON string
)

// Built-in schema IDs (no registry configured).
const (
	SchemaIDv1 uint32 = 1
	SchemaIDv2 uint32 = 2
)

// ErrUnknownSchema means an event names a schema ID that does not exist (or
// cannot be read into the current reader schema): the event is dead-lettered.
var ErrUnknownSchema = errors.New("unknown schema id")

// SchemaSource returns the writer schema of a schema ID. An error wrapping
// ErrUnknownSchema is permanent for that ID (the event is dead-lettered); any
// other error is transient (the registry is unreachable) and is retried.
type SchemaSource interface {
	WriterSchema(ctx context.Context, id uint32) (avro.Schema, error)
}

// StaticSchemas serves the two contract schemas under IDs 1 and 2.
type StaticSchemas struct{}

var _ SchemaSource = StaticSchemas{}

// WriterSchema implements SchemaSource.
func (StaticSchemas) WriterSchema(_ context.Context, id uint32) (avro.Schema, error) {
	switch id {
	case SchemaIDv1:
		return schemaV1, nil
	case SchemaIDv2:
		return schemaV2, nil
	}
	return nil, fmt.Errorf("%w %d", ErrUnknownSchema, id)
}

// RegistrySchemas resolves IDs through a Confluent Schema Registry
// (GET /schemas/ids/{id}). It tells "the registry answered and the schema is
// unusable" (a 404, a Protobuf or JSON schema, an Avro schema with
// references, one that does not parse: ErrUnknownSchema, permanent) from "no
// usable answer" (network errors, 5xx, 429, an unreadable body, an auth
// failure: transient, retried). The Decoder caches both schemas and
// permanent verdicts per ID (IDs are immutable in a registry).
type RegistrySchemas struct {
	base *url.URL
	user *url.Userinfo
	hc   *http.Client
}

var _ SchemaSource = (*RegistrySchemas)(nil)

// NewRegistrySchemas returns a SchemaSource backed by the registry at
// rawURL (user:password@ in it is sent as basic auth). hc should have a
// timeout.
func NewRegistrySchemas(rawURL string, hc *http.Client) (*RegistrySchemas, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("schema registry URL %q: want http(s)://host[:port][/path]", rawURL)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	user := u.User
	u.User = nil
	return &RegistrySchemas{base: u, user: user, hc: hc}, nil
}

// WriterSchema implements SchemaSource.
func (r *RegistrySchemas) WriterSchema(ctx context.Context, id uint32) (avro.Schema, error) {
	u := r.base.JoinPath("schemas", "ids", strconv.FormatUint(uint64(id), 10))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	req.Header.Set("Accept", "application/vnd.schemaregistry.v1+json, application/json")
	if r.user != nil {
		pw, _ := r.user.Password()
		req.SetBasicAuth(r.user.Username(), pw)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("schema registry: read answer: %w", err)
	}
	var info struct {
		Schema     string            `json:"schema"`
		SchemaType string            `json:"schemaType"`
		References []json.RawMessage `json:"references"`
		Message    string            `json:"message"`
	}
	jerr := json.Unmarshal(body, &info)
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%w %d: registry says %s", ErrUnknownSchema, id, cmp.Or(info.Message, "not found"))
	case resp.StatusCode != http.StatusOK:
		// 5xx, 429, and 401/403 (our credentials, not the event) alike.
		return nil, fmt.Errorf("schema registry: id %d: HTTP %d: %.200s", id, resp.StatusCode, body)
	case jerr != nil || info.Schema == "":
		return nil, fmt.Errorf("schema registry: id %d: unreadable answer: %.200s", id, body)
	case info.SchemaType != "" && !strings.EqualFold(info.SchemaType, "AVRO"):
		return nil, fmt.Errorf("%w %d: a %s schema, not Avro", ErrUnknownSchema, id, info.SchemaType)
	case len(info.References) > 0:
		return nil, fmt.Errorf("%w %d: an Avro schema with references, which are not supported", ErrUnknownSchema, id)
	}
	sch, err := avro.ParseWithCache(info.Schema, "", &avro.SchemaCache{})
	if err != nil {
		return nil, fmt.Errorf("%w %d: not a readable Avro schema: %w", ErrUnknownSchema, id, err)
	}
	return sch, nil
}

var (
	schemaV1 = avro.MustParse(schemaV1JSON)
	schemaV2 = avro.MustParse(schemaV2JSON)
	// readerSchema is the newest contract: every version is read into it.
	readerSchema = schemaV2
)

// resolvedSchemas caches, per schema ID, how its events are read: the
// writer schema resolved against the reader schema (Avro schema
// resolution), and whether it is a contract version the fast path reads
// (fastdecode.go). Decoding an ID costs one map lookup after its first use.
type resolvedSchemas struct {
	src SchemaSource
	mu  sync.RWMutex
	ids map[uint32]resolved
}

// resolved is how events of one schema ID are read, or, when err is set,
// the permanent verdict (wrapping ErrUnknownSchema) that they cannot be.
type resolved struct {
	schema avro.Schema
	layout layout
	err    error
}

func (r *resolvedSchemas) get(ctx context.Context, id uint32) (resolved, error) {
	r.mu.RLock()
	s, ok := r.ids[id]
	r.mu.RUnlock()
	if ok {
		return s, s.err
	}
	w, err := r.src.WriterSchema(ctx, id)
	switch {
	case errors.Is(err, ErrUnknownSchema):
		s = resolved{err: err}
	case err != nil:
		return resolved{}, err // transient: ask again next time
	default:
		rs, err := avro.NewSchemaCompatibility().Resolve(readerSchema, w)
		if err != nil {
			s = resolved{err: fmt.Errorf("%w %d: not readable as %s: %w", ErrUnknownSchema, id, readerSchema.(avro.NamedSchema).FullName(), err)}
		} else {
			s = resolved{schema: rs, layout: layoutOf(w)}
		}
	}
	r.mu.Lock()
	r.ids[id] = s
	r.mu.Unlock()
	return s, s.err
}
