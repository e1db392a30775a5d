package producer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/producer"
)

// brokers returns the Kafka the tests run on: kfake from internal/testenv
// (the broker address is all the tests use, so a real broker can stand in).
var brokers = func(t *testing.T, topics ...string) []string {
	addrs, _ := testenv.Kafka(t, topics...)
	return addrs
}

const (
	acc  = "AC0123456789abcdef0123456789abcdef"
	sid1 = "SM0123456789abcdef0123456789abcd01"
	sid2 = "SM0123456789abcdef0123456789abcd02"
)

func event(sid string, seq int64, st postflight.Status) postflight.Event {
	body := "hi"
	now := time.Now().UTC().Truncate(time.Millisecond)
	return postflight.Event{
		EventID: "123e4567-e89b-42d3-a456-42661417400" + string(rune('0'+seq%10)), AccountSID: acc, MessageSID: sid,
		Sequence: seq, Status: st, Channel: postflight.ChannelSMS, Direction: postflight.DirectionOutboundAPI,
		From: "+15550000001", To: "+15550000002", Body: &body, NumSegments: 1,
		DateCreated: now.Add(-time.Minute), EventTime: now,
	}
}

// TestPublishReadBack publishes a batch and reads every record back from
// the topic through ingest's own decoder: same key, same event.
func TestPublishReadBack(t *testing.T) {
	addrs := brokers(t, "message-events")
	p, err := producer.New(producer.Config{Brokers: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	evs := []postflight.Event{event(sid1, 1, postflight.StatusSent), event(sid1, 2, postflight.StatusDelivered), event(sid2, 1, postflight.StatusFailed)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	acks, err := p.Publish(ctx, evs)
	if err != nil {
		t.Fatal(err)
	}
	if len(acks) != 3 || acks[0].Partition != acks[1].Partition || acks[1].Offset != acks[0].Offset+1 {
		t.Fatalf("acks %+v: one message's events must land in order on one partition", acks)
	}
	c, err := sarama.NewConsumer(addrs, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dec := ingest.NewDecoder(ingest.StaticSchemas{}, 15*time.Minute, nil)
	for i, a := range acks {
		if a.MessageSID != evs[i].MessageSID {
			t.Errorf("ack %d names %s, want %s", i, a.MessageSID, evs[i].MessageSID)
		}
		pc, err := c.ConsumePartition("message-events", a.Partition, a.Offset)
		if err != nil {
			t.Fatal(err)
		}
		var rec *sarama.ConsumerMessage
		select {
		case rec = <-pc.Messages():
		case <-ctx.Done():
			t.Fatal("record not readable")
		}
		pc.Close()
		if string(rec.Key) != evs[i].MessageSID {
			t.Errorf("key %q, want the message SID", rec.Key)
		}
		got, err := dec.Decode(ctx, rec.Value)
		if err != nil {
			t.Fatalf("ingest cannot decode what the producer wrote: %v", err)
		}
		if got.MessageSID != evs[i].MessageSID || got.Sequence != evs[i].Sequence || got.Status != evs[i].Status || *got.Body != *evs[i].Body ||
			!got.EventTime.Equal(evs[i].EventTime) || rec.Value[4] != byte(ingest.SchemaIDv2) {
			t.Errorf("event %d read back as %+v", i, got)
		}
	}
}

// TestPublishRejectsWholeBatch: one invalid event and nothing is produced;
// the error names every bad event and its field.
func TestPublishRejectsWholeBatch(t *testing.T) {
	addrs := brokers(t, "message-events")
	p, err := producer.New(producer.Config{Brokers: addrs})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	bad1 := event(sid1, 2, postflight.StatusDelivered)
	bad1.AccountSID = "AC123"
	bad3 := event(sid2, 1, postflight.StatusDelivered)
	bad3.NumMedia = -1
	_, err = p.Publish(context.Background(), []postflight.Event{event(sid1, 1, postflight.StatusSent), bad1, event(sid2, 2, postflight.StatusRead), bad3})
	var ve *producer.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err %v, want a *ValidationError", err)
	}
	if len(ve.Events) != 2 || ve.Events[0].Index != 1 || ve.Events[0].Err.Field != "account_sid" ||
		ve.Events[1].Index != 3 || ve.Events[1].Err.Field != "num_media" {
		t.Fatalf("invalid events %+v", ve.Events)
	}
	client, err := sarama.NewClient(addrs, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	parts, err := client.Partitions("message-events")
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range parts {
		if hw, err := client.GetOffset("message-events", part, sarama.OffsetNewest); err != nil || hw != 0 {
			t.Fatalf("partition %d high watermark %d (%v): a rejected batch must produce nothing", part, hw, err)
		}
	}
}

func TestPublishAfterClose(t *testing.T) {
	p, err := producer.New(producer.Config{Brokers: brokers(t, "message-events")})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := p.Publish(context.Background(), []postflight.Event{event(sid1, 1, postflight.StatusSent)}); !errors.Is(err, producer.ErrClosed) {
		t.Fatalf("err %v, want ErrClosed", err)
	}
}
