// Package keydesign is the key arithmetic of Postflight's DynamoDB table:
// base keys, the sharded account/time index keys, shard schedules (epochs),
// shard sizing and page tokens. It is pure: no AWS imports, no I/O, no
// clocks of its own, so it can be fuzzed, property-tested and reused by the
// heat simulation in loadtest.
//
// # Layout
//
// Base table: partition key p = message SID, sort key s = account SID. Every
// message is its own partition key, so base-table writes spread evenly
// whatever the account mix, and get/update/delete by (account, SID) is one
// request. Including the account in the key keeps accounts apart even if a
// producer reused a SID.
//
// Index "by-date": partition key g = account SID + "#" + shard, sort key
// t = 13-digit date_created milliseconds + message SID. The shard is
// Shard(sid, n), where n is the account's shard count in the epoch that
// contains the message's date_created. t is unique and sorts newest-last, so
// one account's messages, newest first, are a k-way merge of n descending
// range queries, and a page token is just the last t returned.
//
// # Epochs
//
// An account's shard count changes by appending an Epoch to its Schedule;
// stored data is never rewritten. Reads query shards [0, max n over every
// epoch overlapping the range) over the whole range: each item lives under
// exactly one g, so nothing is read twice, and an item written under any
// overlapping epoch is found. Raising n takes effect at once (a writer still
// using the old, smaller n writes a shard the readers query anyway); lowering
// it must be dated at least a config-refresh interval plus the allowed clock
// skew into the future, so that no writer still uses the larger count for a
// date the readers will query with the smaller one. Schedule.Change enforces
// that rule.
package keydesign
