package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
)

// runProduce sends the lifecycle events of one or more messages (testing and
// the README's example) and prints each message's SID.
func runProduce(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("postflight produce", stderr)
	brokers := fs.String("brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	topic := fs.String("topic", "message-events", "topic of message events")
	account := fs.String("account", "AC00000000000000000000000000000001", "account SID")
	sid := fs.String("sid", "", "message SID (default: random; with --count > 1 always random)")
	statuses := fs.String("statuses", "queued,sent,delivered", "lifecycle, in order; sequences are 1, 2, …")
	body := fs.String("body", "Hello from Postflight", "message body")
	from := fs.String("from", "+15550000001", "sender")
	to := fs.String("to", "+15550000002", "recipient")
	schemaID := fs.Uint("schema-id", 2, "schema ID of the events: 1 (v1) or 2 (v2)")
	count := fs.Int("count", 1, "number of messages")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	var lifecycle []postflight.Status
	for _, name := range splitList(*statuses) {
		st, ok := postflight.ParseStatus(strings.ToLower(name))
		if !ok {
			return fmt.Errorf("--statuses: unknown status %q", name)
		}
		lifecycle = append(lifecycle, st)
	}
	if len(lifecycle) == 0 || *count < 1 {
		return fmt.Errorf("need at least one status and one message")
	}
	cfg := sarama.NewConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewHashPartitioner
	prod, err := sarama.NewSyncProducer(splitList(*brokers), cfg)
	if err != nil {
		return fmt.Errorf("kafka producer: %w", err)
	}
	defer prod.Close()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for range *count {
		msid := *sid
		if msid == "" || *count > 1 {
			msid = randomSID("SM")
		}
		var batch []*sarama.ProducerMessage
		for i, st := range lifecycle {
			ev := postflight.Event{
				EventID: randomUUID(), AccountSID: *account, MessageSID: msid, Sequence: int64(i + 1),
				Status: st, Channel: postflight.ChannelSMS, Direction: postflight.DirectionOutboundAPI,
				From: *from, To: *to, Body: body, NumSegments: 1,
				DateCreated: now, EventTime: now.Add(time.Duration(i) * time.Second),
			}
			if err := ev.Validate(time.Now(), time.Hour); err != nil {
				return fmt.Errorf("event: %w", err)
			}
			v, err := ingest.Encode(uint32(*schemaID), &ev)
			if err != nil {
				return err
			}
			batch = append(batch, &sarama.ProducerMessage{Topic: *topic, Key: sarama.StringEncoder(msid), Value: sarama.ByteEncoder(v)})
		}
		if err := prod.SendMessages(batch); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		fmt.Fprintln(stdout, msid)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

func randomSID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
