package kafkalocal

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CreateTopics creates each topic with partitions partitions and one
// replica; a topic that already exists (a restarted DataDir) is fine.
func (b *Broker) CreateTopics(ctx context.Context, partitions int, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	for _, topic := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, int32(partitions), 1
		req.Topics = append(req.Topics, rt)
	}
	req.TimeoutMillis = 30_000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	for _, rt := range resp.Topics {
		if rt.ErrorCode == 0 || rt.ErrorCode == kerrTopicAlreadyExists {
			continue
		}
		msg := ""
		if rt.ErrorMessage != nil {
			msg = *rt.ErrorMessage
		}
		return fmt.Errorf("create topic %s: error code %d %s", rt.Topic, rt.ErrorCode, msg)
	}
	return nil
}

// kerrTopicAlreadyExists is Kafka's TOPIC_ALREADY_EXISTS error code.
const kerrTopicAlreadyExists = 36
