// Package kafkalocal fetches and runs a real Apache Kafka broker for tests
// and `postflight dev -kafka apache`: one node that is both broker and KRaft
// controller (no ZooKeeper), on Java 17.
//
// # Where the jars come from
//
// [Fetch] resolves the embedded pom.xml (org.apache.kafka:kafka_2.13 and
// kafka-tools 4.4.0, and log4j-slf4j-impl) from Maven Central with `mvn -C
// dependency:copy-dependencies` (Maven does the download; its settings and
// proxies apply), into a temporary directory of the cache directory
// ($POSTFLIGHT_CACHE_DIR, else ~/.cache/postflight), with Maven's own
// repository kept there too. Every jar is pinned by file name and sha256 in
// jars.sha256: the set must match exactly (nothing missing, nothing extra),
// on the download and on every later use, so a jar damaged in the cache is
// noticed and resolved again. Fetch serializes on a lock file, so parallel
// test binaries download once.
//
// # Logging
//
// Kafka logs through slf4j and Log4j 2. The resolved jars hold exactly one
// slf4j binding (log4j-slf4j-impl; kafka-tools' connect-runtime, which would
// bring Jetty and Jersey, is excluded), so nothing warns about several.
// [Start] writes a Log4j configuration that sends INFO and above to
// logs/server.log in the broker's data directory and only WARN and above to
// the console, which [Config.Log] receives at debug level and start errors
// quote.
//
// # Processes
//
// [Start] formats the data directory with kafka.tools.StorageTool (a random
// cluster id) unless it holds a broker's log already, runs kafka.Kafka in its
// own process group, and returns once the broker's Metadata lists itself
// (registered and unfenced: topics can be created). [Broker.Stop] sends
// SIGTERM and then SIGKILL; [Broker.Kill] is a crash (kill -9). Start on the
// config [Broker.Config] returns brings a stopped or killed broker back on
// the same ports and log. On Linux the JVM is killed with our process
// (Pdeathsig), so it never outlives a test binary. [RunTool] runs Kafka's
// command-line tools (e.g. [GroupsMain], kafka-consumer-groups) from the
// same jars.
package kafkalocal
