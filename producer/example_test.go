package producer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/producer"
)

// A service publishes a message's final event and learns where Kafka put it.
func Example() {
	p, err := producer.New(producer.Config{Brokers: []string{"kafka-1:9092", "kafka-2:9092"}})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	body := "Your code is 123456"
	now := time.Now()
	ev := postflight.Event{
		EventID:    "7d8f4e2a-1c3b-4a5d-9e6f-0a1b2c3d4e5f",
		AccountSID: "AC0123456789abcdef0123456789abcdef",
		MessageSID: "SM0123456789abcdef0123456789abcdef",
		Sequence:   3, Status: postflight.StatusDelivered,
		Channel: postflight.ChannelSMS, Direction: postflight.DirectionOutboundAPI,
		From: "+15550000001", To: "+15550000002", Body: &body, NumSegments: 1,
		DateCreated: now.Add(-2 * time.Second), EventTime: now,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	acks, err := p.Publish(ctx, []postflight.Event{ev})
	var invalid *producer.ValidationError
	switch {
	case errors.As(err, &invalid):
		log.Fatal(invalid) // names events[i].field; nothing was sent
	case err != nil:
		log.Fatal(err) // not acknowledged: safe to send again
	}
	fmt.Println(acks[0].Partition, acks[0].Offset)
}
