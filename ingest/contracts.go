package ingest

import "github.com/hamba/avro/v2"

// Contract is one shipped version of the event contract.
type Contract struct {
	Version  int
	Path     string // under ingest/, e.g. contracts/message_event.v2.avsc
	SchemaID uint32 // its built-in schema ID (no registry configured)
	JSON     string
	Schema   avro.Schema
}

// Contracts returns every shipped version of the event contract, oldest
// first; the last is the newest, the one producers write and ingest reads into.
func Contracts() []Contract {
	return []Contract{
		{Version: 1, Path: "contracts/message_event.v1.avsc", SchemaID: SchemaIDv1, JSON: schemaV1JSON, Schema: schemaV1},
		{Version: 2, Path: "contracts/message_event.v2.avsc", SchemaID: SchemaIDv2, JSON: schemaV2JSON, Schema: schemaV2},
	}
}
