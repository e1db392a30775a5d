// Package postflight holds the domain of Postflight: the finalized message
// record, the lifecycle event it is built from, their enumerations, the rule
// for when a message is final, and SID validation.
//
// It imports nothing of Postflight's own; every other package imports it. The
// DynamoDB code lives in store/, Kafka and Avro in ingest/, HTTP in api/, and
// the key arithmetic in keydesign/.
package postflight
