// Package localjvm holds what the local stack's JVM launchers share
// (store/ddblocal for DynamoDB Local, internal/kafkalocal for Apache Kafka):
// a cache-directory lock across processes, the capture of a JVM's output,
// and the JVM process itself ([Process]: started in its own process group
// that dies with ours, polled until ready, stopped with SIGTERM then
// SIGKILL, or killed), with the port helpers both use. Each launcher keeps
// only what is its JVM's own: arguments, configuration, readiness probe.
package localjvm
