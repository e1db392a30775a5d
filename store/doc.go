// Package store keeps Postflight's message records in one DynamoDB table:
// creating it, writing final events conditionally and in batches, reading
// single messages and account/time ranges, API corrections, tombstones and
// per-account configuration (retention and index shard schedules).
//
// The key layout is keydesign's; this package turns it into DynamoDB calls.
// Attribute names are short because DynamoDB charges for names as well as
// values (see item.go).
package store
