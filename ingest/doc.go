// Package ingest consumes message-lifecycle events from Kafka and writes the
// final ones to the store, at least once from Kafka and idempotently into
// DynamoDB.
//
// The pipeline reads top to bottom, one stage per file:
//
//	consumer.go  sarama consumer group; one goroutine per claimed partition
//	decode.go    Confluent framing + Avro → validated postflight.Event, or a DLQ reason
//	             (fastdecode.go reads the contract versions without reflection)
//	decide.go    drop non-final events; keep the highest sequence per message
//	batch.go     pending messages → batches of ≤ 25, never two in flight for one message
//	write.go     writers: Writer.WriteBatch with retries, AIMD concurrency, circuit breaker
//	commit.go    per-partition tracker: commit only the contiguous prefix that is done
//	dlq.go       dead letters, acknowledged before their offsets count as done
//	pause.go     why consumption is paused; readiness and a gauge say so
//
// Backpressure: the batcher's pending buffer is bounded in bytes; when it is
// full, Add blocks, ConsumeClaim stops reading claim.Messages(), and the
// backlog waits in Kafka rather than in our heap. When the breaker opens the
// consumer group's fetching is paused too.
package ingest
