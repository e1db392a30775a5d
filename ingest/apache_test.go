package ingest_test

// The rig on a real Apache Kafka broker (the binary's shared one, from
// testenv): each test gets its own events and dead-letter topics and group,
// and what kfake's introspection gives the kfake rig is asked of the broker
// over the protocol (ListOffsets, OffsetFetch, DescribeGroups).

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/postflight/postflight/internal/testenv"
)

// apachePartitions is the partition count of an Apache rig's topics, as
// kfake's (testenv.KafkaPartitions).
const apachePartitions = testenv.KafkaPartitions

// newApacheRig is newRig on the binary's shared Apache Kafka broker, with
// topics of the test's own.
func newApacheRig(t *testing.T, endpoint string) *rig {
	t.Helper()
	return newApacheRigWith(t, endpoint, apachePartitions)
}

// newApacheRigWith is newApacheRig with an events topic of the given
// partition count.
func newApacheRigWith(t *testing.T, endpoint string, partitions int) *rig {
	t.Helper()
	k := testenv.ApacheKafka(t)
	topic := testenv.TopicName(t, "events")
	dlq := topic + ".dlq"
	k.CreateTopic(t, topic, partitions)
	k.CreateTopic(t, dlq, apachePartitions)
	return newRigOn(t, endpoint, &rig{brokers: k.Addrs(), apache: k, topic: topic, dlq: dlq})
}

// adminClient is a client for the rig's broker, closed when the test ends.
func (r *rig) adminClient() *kgo.Client {
	r.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...))
	if err != nil {
		r.t.Fatal(err)
	}
	return cl
}

// highWatermarks returns the log end offset of each partition of topic.
func (r *rig) highWatermarks(topic string) map[int32]int64 {
	r.t.Helper()
	out := map[int32]int64{}
	if r.kafka != nil {
		for _, pi := range r.kafka.PartitionInfos(topic) {
			out[pi.Partition] = pi.HighWatermark
		}
		return out
	}
	cl := r.adminClient()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(r.t.Context(), 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range int32(r.partitions(ctx, cl, topic)) {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1 // latest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	shards := cl.RequestSharded(ctx, req)
	for _, sh := range shards {
		if sh.Err != nil {
			r.t.Fatalf("list offsets of %s: %v", topic, sh.Err)
		}
		for _, t := range sh.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					r.t.Fatalf("list offsets of %s/%d: error code %d", topic, p.Partition, p.ErrorCode)
				}
				out[p.Partition] = p.Offset
			}
		}
	}
	return out
}

// partitions returns topic's partition count.
func (r *rig) partitions(ctx context.Context, cl *kgo.Client, topic string) int {
	r.t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		r.t.Fatalf("metadata of %s: %v %+v", topic, err, resp)
	}
	return len(resp.Topics[0].Partitions)
}

// commits returns the group's committed offset per partition of the events
// topic (partitions without a commit are absent).
func (r *rig) commits() map[int32]int64 {
	r.t.Helper()
	if r.apache != nil {
		return r.apacheCommits()
	}
	out := map[int32]int64{}
	if gi := r.kafka.GroupInfo(r.group); gi != nil {
		for p, c := range gi.Commits[r.topic] {
			out[p] = c.Offset
		}
	}
	return out
}

func (r *rig) apacheCommits() map[int32]int64 {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), 30*time.Second)
	defer cancel()
	for {
		c, err := r.tryCommits(ctx)
		switch {
		case err == nil:
			return c
		case ctx.Err() != nil || !kerr.IsRetriable(err):
			r.t.Fatal(err)
		}
		// The coordinator still loading or moving (COORDINATOR_NOT_AVAILABLE
		// right after the broker or the group started): ask again.
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tryCommits asks the broker (OffsetFetch, every topic of the group) for the
// group's committed offsets on the events topic.
func (r *rig) tryCommits(ctx context.Context) (map[int32]int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Group = r.group
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("offset fetch of group %s: %w", r.group, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("offset fetch of group %s: %w", r.group, err)
	}
	out := map[int32]int64{}
	for _, t := range resp.Topics {
		if t.Topic != r.topic {
			continue
		}
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 && p.Offset >= 0 {
				out[p.Partition] = p.Offset
			}
		}
	}
	return out, nil
}

func (r *rig) apacheCommitted() (done, total int64) {
	commits := r.apacheCommits()
	for p, hw := range r.highWatermarks(r.topic) {
		total += hw
		if c, ok := commits[p]; ok {
			done += min(c, hw)
		}
	}
	return done, total
}

// apacheWaitMembers waits until the group is Stable with n members, each
// assigned partitions, as the broker's DescribeGroups says.
func (r *rig) apacheWaitMembers(n int) {
	r.t.Helper()
	cl := r.adminClient()
	defer cl.Close()
	testenv.Eventually(r.t, 2*time.Minute, fmt.Sprintf("group %s stable with %d members", r.group, n), func() string {
		ctx, cancel := context.WithTimeout(r.t.Context(), 10*time.Second)
		defer cancel()
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{r.group}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err.Error()
		}
		g := resp.Groups[0]
		if g.ErrorCode != 0 || g.State != "Stable" || len(g.Members) != n {
			return fmt.Sprintf("state %s, %d members (error code %d)", g.State, len(g.Members), g.ErrorCode)
		}
		for _, m := range g.Members {
			var a kmsg.ConsumerMemberAssignment
			if err := a.ReadFrom(m.MemberAssignment); err != nil || len(a.Topics) == 0 {
				return fmt.Sprintf("member %s has no partitions", m.MemberID)
			}
		}
		return ""
	})
}
