package loadtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/postflight/postflight/ingest"
)

// errEmptySlot: the slot had nothing to send (only possible in the last
// slots, whose messages sent everything already). Not a failure.
var errEmptySlot = errors.New("nothing to send in this slot")

// producerConfig is ingest's sarama configuration turned into a load
// producer's: key = message SID with the hash partitioner (one message's
// events stay in order on one partition), acks from every in-sync replica,
// successes returned so each operation can wait for its acknowledgements,
// and batching that keeps up with 100k events/s from one process.
func producerConfig(brokers []string) *sarama.Config {
	sc := (&ingest.Config{Brokers: brokers}).SaramaConfig()
	sc.ClientID = "postflight-loadtest"
	sc.ChannelBufferSize = 4096
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.Compression = sarama.CompressionNone
	sc.Producer.Flush.Frequency = time.Millisecond
	sc.Producer.Flush.Bytes = 256 << 10
	sc.Producer.Flush.MaxMessages = 4096
	sc.Producer.Retry.Max = 3
	sc.Producer.Timeout = 10 * time.Second
	sc.Net.MaxOpenRequests = 5
	return sc
}

// kafkaWriter is the write side of --mode kafka. Its op sends the emissions
// the slot plan puts in one slot, Avro-encoded with Confluent framing, and
// returns when Kafka has acknowledged all of them (the write latency is the
// acknowledgement's, from the slot's intended start). Its ops are safe for
// concurrent use; close stops the producer once no op runs.
type kafkaWriter struct {
	prod   sarama.AsyncProducer
	topic  string
	slots  slotPlan
	plans  *planCache
	events atomic.Int64 // events acknowledged
	acks   sync.WaitGroup
}

// produceAck is one op's outstanding acknowledgements.
type produceAck struct {
	left atomic.Int32
	err  atomic.Pointer[error]
	done chan struct{}
}

func (a *produceAck) finish(err error) {
	if err != nil {
		a.err.CompareAndSwap(nil, &err)
	}
	if a.left.Add(-1) == 0 {
		close(a.done)
	}
}

// newKafkaWriter connects a producer to brokers. The writer's goroutines
// (the acknowledgement readers) end in close.
func newKafkaWriter(brokers []string, topic string, slots slotPlan, plans *planCache) (*kafkaWriter, error) {
	prod, err := sarama.NewAsyncProducer(brokers, producerConfig(brokers))
	if err != nil {
		return nil, fmt.Errorf("kafka producer: %w", err)
	}
	k := &kafkaWriter{prod: prod, topic: topic, slots: slots, plans: plans}
	k.acks.Go(func() {
		for m := range prod.Successes() {
			m.Metadata.(*produceAck).finish(nil)
		}
	})
	k.acks.Go(func() {
		for pe := range prod.Errors() {
			pe.Msg.Metadata.(*produceAck).finish(pe.Err)
		}
	})
	return k, nil
}

// op sends slot's emissions and waits for their acknowledgements.
func (k *kafkaWriter) op(ctx context.Context, slot int64) error {
	var buf [8]*sarama.ProducerMessage
	batch := buf[:0]
	ack := &produceAck{done: make(chan struct{})}
	var encErr error
	k.slots.each(slot, func(m int64, e int) {
		p := k.plans.get(m)
		if e >= len(p.Emissions) || encErr != nil {
			return
		}
		em := p.Emissions[e]
		v, err := ingest.Encode(em.SchemaID, em.Event)
		if err != nil {
			encErr = fmt.Errorf("message %s: %w", p.SID, err)
			return
		}
		batch = append(batch, &sarama.ProducerMessage{Topic: k.topic, Key: sarama.ByteEncoder(p.SID), Value: sarama.ByteEncoder(v), Metadata: ack})
	})
	switch {
	case encErr != nil:
		return encErr
	case len(batch) == 0:
		return errEmptySlot
	}
	ack.left.Store(int32(len(batch)))
	for i, pm := range batch {
		select {
		case k.prod.Input() <- pm:
			continue
		case <-ctx.Done():
			for range batch[i:] {
				ack.finish(ctx.Err())
			}
		}
		break
	}
	select {
	case <-ack.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := ack.err.Load(); err != nil {
		return *err
	}
	k.events.Add(int64(len(batch)))
	return nil
}

// close flushes and closes the producer and waits until its
// acknowledgement readers have seen the last of them. Call it after every op
// has returned.
func (k *kafkaWriter) close() {
	k.prod.AsyncClose()
	k.acks.Wait()
}
