package ingest

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/registry"
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
// (GET /schemas/ids/{id}); the client caches every schema it has fetched.
type RegistrySchemas struct {
	client *registry.Client
}

var _ SchemaSource = (*RegistrySchemas)(nil)

// NewRegistrySchemas returns a SchemaSource backed by the registry at url.
func NewRegistrySchemas(url string, hc *http.Client) (*RegistrySchemas, error) {
	c, err := registry.NewClient(url, registry.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("schema registry client: %w", err)
	}
	return &RegistrySchemas{client: c}, nil
}

// WriterSchema implements SchemaSource.
func (r *RegistrySchemas) WriterSchema(ctx context.Context, id uint32) (avro.Schema, error) {
	s, err := r.client.GetSchema(ctx, int(id))
	if err != nil {
		var rerr registry.Error
		if errors.As(err, &rerr) && rerr.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("%w %d: %s", ErrUnknownSchema, id, rerr.Message)
		}
		return nil, fmt.Errorf("schema registry: %w", err)
	}
	return s, nil
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

type resolved struct {
	schema avro.Schema
	layout layout
}

func (r *resolvedSchemas) get(ctx context.Context, id uint32) (resolved, error) {
	r.mu.RLock()
	s, ok := r.ids[id]
	r.mu.RUnlock()
	if ok {
		return s, nil
	}
	w, err := r.src.WriterSchema(ctx, id)
	if err != nil {
		return resolved{}, err
	}
	rs, err := avro.NewSchemaCompatibility().Resolve(readerSchema, w)
	if err != nil {
		return resolved{}, fmt.Errorf("%w %d: not readable as %s: %w", ErrUnknownSchema, id, readerSchema.(avro.NamedSchema).FullName(), err)
	}
	s = resolved{schema: rs, layout: layoutOf(w)}
	r.mu.Lock()
	r.ids[id] = s
	r.mu.Unlock()
	return s, nil
}
