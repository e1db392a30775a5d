package testenv

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// KafkaPartitions is the partition count of every topic Kafka creates,
// seeded or created later without a count.
const KafkaPartitions = 8

// Kafka starts an in-process Kafka (kfake, one broker on an ephemeral
// 127.0.0.1 port) with topics created, each with KafkaPartitions partitions,
// and closes it when the test ends. It returns the seed addresses for clients
// and the cluster, for faults via ControlKey.
func Kafka(t testing.TB, topics ...string) (seedAddrs []string, c *kfake.Cluster) {
	t.Helper()
	opts := []kfake.Opt{kfake.Ports(0), kfake.DefaultNumPartitions(KafkaPartitions)}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(KafkaPartitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("testenv: start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs(), c
}
