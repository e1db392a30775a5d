// Package localjvm holds what the local stack's JVM launchers share
// (store/ddblocal for DynamoDB Local, internal/kafkalocal for Apache Kafka):
//   - the cache directory, and a directory in it downloaded once under a
//     cross-process lock and verified on every use ([CachedDir]);
//   - short commands (npm, mvn, Kafka's tools) run in their own process
//     group ([Run]);
//   - the JVM process ([Process]): started in its own process group that
//     dies with ours, polled until ready, stopped with SIGTERM then
//     SIGKILL, or killed; its output captured ([Output]); the port
//     helpers both use.
//
// Each launcher keeps only what is its own: where its jars come from and
// how they are pinned, its JVM's arguments and configuration, its
// readiness probe.
package localjvm
