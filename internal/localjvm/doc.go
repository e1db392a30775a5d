// Package localjvm holds what the local stack's JVM launchers share
// (store/ddblocal for DynamoDB Local, internal/kafkalocal for Apache Kafka):
// a cache-directory lock across processes, and the capture of a JVM's output.
package localjvm
