package main

// The walking skeleton's end-to-end test, on real parts: kfake (a Kafka
// broker in Go, over TCP) and DynamoDB Local, both started by
// internal/testenv. Events are produced with sarama as Avro, ingested by
// the real serve wiring, and read back through the HTTP API with a token.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/api"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	testToken    = "pf_test_admin_token"
	supportToken = "pf_test_support_token"
)

// stack is a running `serve` on real Kafka and DynamoDB Local.
type stack struct {
	brokers []string
	topic   string // the events topic: message-events on kfake, the test's own on Apache Kafka
	dlq     string // the dead-letter topic, likewise
	api     string
	flags   serveFlags
	done    chan error
	cancel  context.CancelFunc
	kafka   *kfake.Cluster
}

func writeAuthFile(t *testing.T, account string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.json")
	body := fmt.Sprintf(`{"tokens":[
	 {"name":"admin","sha256":%q,"accounts":["*"],"scopes":["read","write","delete","admin"]},
	 {"name":"support","sha256":%q,"accounts":[%q],"scopes":["read"]}]}`,
		api.HashToken(testToken), api.HashToken(supportToken), account)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func defaultFlags(t *testing.T) serveFlags {
	var f serveFlags
	fs := newFlagSet("test", io.Discard)
	f.register(fs)
	if err := parseFlags(fs, nil, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	f.dynamodbAttemptTimeout = testenv.AttemptTimeout
	return f
}

// startStack starts serve on kfake; opts adjust its flags (after the test
// defaults).
func startStack(t *testing.T, account string, opts ...func(*serveFlags)) *stack {
	t.Helper()
	return startStackEnv(t, account, func(string) string { return "" }, opts...)
}

// startStackEnv is startStack with an environment (OTEL_* variables).
func startStackEnv(t *testing.T, account string, getenv func(string) string, opts ...func(*serveFlags)) *stack {
	t.Helper()
	brokers, cluster := testenv.Kafka(t, "message-events", "message-events.dlq")
	s := startStackOn(t, account, getenv, brokers, "message-events", "message-events.dlq", opts...)
	s.kafka = cluster
	return s
}

// startApacheStack starts serve on the binary's shared Apache Kafka broker,
// with topics and a group of the test's own.
func startApacheStack(t *testing.T, account string, opts ...func(*serveFlags)) *stack {
	t.Helper()
	k := testenv.ApacheKafka(t)
	topic := testenv.TopicName(t, "events")
	dlq := topic + ".dlq"
	k.CreateTopic(t, topic, testenv.KafkaPartitions)
	k.CreateTopic(t, dlq, testenv.KafkaPartitions)
	group := testenv.TopicName(t, "group")
	return startStackOn(t, account, func(string) string { return "" }, k.Addrs(), topic, dlq, append([]func(*serveFlags){func(f *serveFlags) {
		f.group = group
	}}, opts...)...)
}

func startStackOn(t *testing.T, account string, getenv func(string) string, brokers []string, topic, dlq string, opts ...func(*serveFlags)) *stack {
	t.Helper()
	ep := testenv.DynamoDBEndpoint(t)
	f := defaultFlags(t)
	f.brokers = strings.Join(brokers, ",")
	f.topic, f.dlqTopic = topic, dlq
	f.table = testenv.TableName(t)
	f.dynamodbEndpoint = ep
	f.authFile = writeAuthFile(t, account)
	f.drainTimeout = 10 * time.Second
	for _, o := range opts {
		o(&f)
	}
	db := testenv.DynamoDBClient(t, ep)
	st, err := store.New(db, store.Config{Table: f.table, AttemptTimeout: testenv.AttemptTimeout}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.listen = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	s := &stack{brokers: brokers, topic: topic, dlq: dlq, api: "http://" + ln.Addr().String(), flags: f, done: make(chan error, 1), cancel: cancel}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { s.done <- serve(ctx, f, getenv, log, ln) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

func (s *stack) stop(t *testing.T) {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("serve did not stop within 30s")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func (s *stack) get(t *testing.T, token, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.api+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s: %v: %s", path, err, b)
		}
	}
	return resp.StatusCode
}

func newEvent(account, sid string, seq int64, st postflight.Status, created time.Time) *postflight.Event {
	body := fmt.Sprintf("body %s %d", sid[len(sid)-4:], seq)
	return &postflight.Event{
		EventID: randomUUID(), AccountSID: account, MessageSID: sid, Sequence: seq, Status: st,
		Channel: postflight.ChannelSMS, Direction: postflight.DirectionOutboundAPI,
		From: "+15550000001", To: "+15550000002", Body: &body, NumSegments: 1,
		DateCreated: created, EventTime: created.Add(time.Duration(seq) * time.Second),
	}
}

func produce(t *testing.T, brokers []string, recs ...*sarama.ProducerMessage) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.SendMessages(recs); err != nil {
		t.Fatal(err)
	}
}

// produce sends recs to the stack's Kafka; records for message-events go to
// the stack's events topic.
func (s *stack) produce(t *testing.T, recs ...*sarama.ProducerMessage) {
	t.Helper()
	for _, r := range recs {
		if r.Topic == "message-events" {
			r.Topic = s.topic
		}
	}
	produce(t, s.brokers, recs...)
}

func record(t *testing.T, ev *postflight.Event, schemaID uint32) *sarama.ProducerMessage {
	v, err := ingest.Encode(schemaID, ev)
	if err != nil {
		t.Fatal(err)
	}
	return &sarama.ProducerMessage{Topic: "message-events", Key: sarama.StringEncoder(ev.MessageSID), Value: sarama.ByteEncoder(v)}
}

func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEndToEnd: Avro events produced with sarama to Apache Kafka, ingested
// into DynamoDB Local and read back through the REST API; poison events
// reach the dead-letter topic with their reasons.
func TestEndToEnd(t *testing.T) {
	account := randomSID("AC")
	s := startApacheStack(t, account)
	created := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	const n = 40
	sids := make([]string, n)
	var recs []*sarama.ProducerMessage
	r := rand.New(rand.NewPCG(1, 2))
	for i := range sids {
		sids[i] = randomSID("SM")
		at := created.Add(time.Duration(i) * time.Second)
		evs := []*sarama.ProducerMessage{
			record(t, newEvent(account, sids[i], 1, postflight.StatusQueued, at), ingest.SchemaIDv1),
			record(t, newEvent(account, sids[i], 2, postflight.StatusSent, at), ingest.SchemaIDv2),
			record(t, newEvent(account, sids[i], 3, postflight.StatusDelivered, at), uint32(1+r.IntN(2))),
		}
		r.Shuffle(len(evs), func(a, b int) { evs[a], evs[b] = evs[b], evs[a] })
		recs = append(recs, evs...)
	}
	poison := []*sarama.ProducerMessage{
		{Topic: "message-events", Key: sarama.StringEncoder("junk"), Value: sarama.ByteEncoder(`{"not":"avro"}`)},
		record(t, newEvent(account, "SMnot-a-sid", 3, postflight.StatusDelivered, created), ingest.SchemaIDv2),
	}
	s.produce(t, append(recs, poison...)...)

	for _, sid := range sids {
		var m postflight.Message
		eventually(t, 30*time.Second, "message "+sid, func() bool {
			return s.get(t, testToken, "/v1/accounts/"+account+"/messages/"+sid, &m) == http.StatusOK
		})
		if m.Status != postflight.StatusDelivered || m.Sequence != 3 || m.AccountSID != account {
			t.Fatalf("message %s: status %v seq %d", sid, m.Status, m.Sequence)
		}
	}

	// The list returns all of them, newest first, in exact pages.
	var got []postflight.Message
	path := "/v1/accounts/" + account + "/messages?page_size=7"
	for {
		var page struct {
			Messages      []postflight.Message `json:"messages"`
			NextPageToken string               `json:"next_page_token"`
		}
		if code := s.get(t, supportToken, path, &page); code != http.StatusOK {
			t.Fatalf("list: %d", code)
		}
		if page.NextPageToken != "" && len(page.Messages) != 7 {
			t.Fatalf("page of %d with a next token", len(page.Messages))
		}
		got = append(got, page.Messages...)
		if page.NextPageToken == "" {
			break
		}
		path = "/v1/accounts/" + account + "/messages?page_size=7&page_token=" + page.NextPageToken
	}
	if len(got) != n {
		t.Fatalf("listed %d messages, want %d", len(got), n)
	}
	for i := range got {
		if want := sids[n-1-i]; got[i].SID != want {
			t.Fatalf("list[%d] = %s, want %s (newest first)", i, got[i].SID, want)
		}
	}

	// Auth: no token 401, another account 403.
	if code := s.get(t, "", "/v1/accounts/"+account+"/messages/"+sids[0], nil); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code := s.get(t, supportToken, "/v1/accounts/"+randomSID("AC")+"/messages", nil); code != http.StatusForbidden {
		t.Fatalf("other account: %d", code)
	}

	// Both poison records are in the dead-letter topic with their reasons.
	dl := readDLQ(t, s.brokers, s.dlq, len(poison))
	for _, rec := range dl {
		if rec.reason == "" || !strings.HasPrefix(rec.source, s.topic+"/") {
			t.Fatalf("dead letter without reason or source: %+v", rec)
		}
	}
	if !strings.Contains(dl[0].reason+dl[1].reason, "message_sid") {
		t.Fatalf("dead letters do not name the bad SID: %+v", dl)
	}
	if code := s.get(t, "", "/readyz", nil); code != http.StatusOK {
		t.Fatalf("readyz: %d", code)
	}
}

type deadLetter struct {
	key, reason, source string
}

func readDLQ(t *testing.T, brokers []string, dlq string, n int) []deadLetter {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(dlq),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []deadLetter
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d dead letters, want %d", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			d := deadLetter{key: string(r.Key)}
			for _, h := range r.Headers {
				switch h.Key {
				case ingest.HeaderError:
					d.reason = string(h.Value)
				case ingest.HeaderSource:
					d.source = string(h.Value)
				}
			}
			out = append(out, d)
		})
	}
	return out
}

// Stopped while its broker is down, serve still stops cleanly and returns
// nil (exit 0): leaving the group and the final commit cannot reach Kafka,
// which is logged; the uncommitted records are delivered again to the next
// owner, where the conditional writes make them harmless. Before, the group's
// close error made serve fail.
func TestServeStopsCleanlyDuringKafkaOutage(t *testing.T) {
	account := randomSID("AC")
	k := testenv.OwnApacheKafka(t)
	topic := testenv.TopicName(t, "events")
	k.CreateTopic(t, topic, testenv.KafkaPartitions)
	k.CreateTopic(t, topic+".dlq", testenv.KafkaPartitions)
	s := startStackOn(t, account, func(string) string { return "" }, k.Addrs(), topic, topic+".dlq")
	sid := randomSID("SM")
	s.produce(t, record(t, newEvent(account, sid, 3, postflight.StatusDelivered, time.Now().Add(-time.Minute)), ingest.SchemaIDv2))
	eventually(t, 60*time.Second, "the message", func() bool {
		return s.get(t, testToken, "/v1/accounts/"+account+"/messages/"+sid, nil) == http.StatusOK
	})
	k.Kill(t)
	s.stop(t) // fails the test if serve returned an error or did not stop within 30s
}
