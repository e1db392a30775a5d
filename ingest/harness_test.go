package ingest_test

// The rig the fault tests of issue 4 share. Everything is real: kfake (a
// Kafka broker in Go, over TCP), DynamoDB Local (the binary's shared one, or a
// test's own when the test stops it), sarama producers, and ingest.Service
// instances writing through store.Store. The rig produces a generated stream
// whose expected final state is known (per message, its final event with the
// highest sequence), waits until the consumer group has committed every
// record, then checks every message in DynamoDB, that nothing else is there,
// and what reached the dead-letter topic.

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
	"github.com/postflight/postflight/internal/testenv"
	"github.com/postflight/postflight/keydesign"
	"github.com/postflight/postflight/store"
)

const (
	eventsTopic = "message-events"
	dlqTopic    = "message-events.dlq"
)

// rig is one test's Kafka, table, and what its consumers share (the ledger
// of writes, the log records).
type rig struct {
	t       *testing.T
	brokers []string
	kafka   *kfake.Cluster        // nil on Apache Kafka
	apache  *testenv.ApacheBroker // nil on kfake
	topic   string                // events topic: eventsTopic on kfake, the test's own on Apache Kafka
	dlq     string                // dead-letter topic, likewise
	ddb     string                // DynamoDB endpoint (not through any proxy)
	db      *dynamodb.Client      // on ddb: verification only
	st      *store.Store          // on ddb: verification only
	table   string
	group   string
	ledger  *ledger
	logs    *logBuffer
}

// newRig starts kfake with the events and dead-letter topics and creates a
// table on endpoint ("" means the binary's shared DynamoDB Local, where the
// table is deleted afterwards).
func newRig(t *testing.T, endpoint string) *rig {
	t.Helper()
	brokers, kc := testenv.Kafka(t, eventsTopic, dlqTopic)
	return newRigOn(t, endpoint, &rig{brokers: brokers, kafka: kc, topic: eventsTopic, dlq: dlqTopic})
}

// newRigOn completes r (its Kafka set) with a table on endpoint, as newRig.
func newRigOn(t *testing.T, endpoint string, r *rig) *rig {
	t.Helper()
	shared := endpoint == ""
	if shared {
		endpoint = testenv.DynamoDBEndpoint(t)
	}
	*r = rig{
		t: t, brokers: r.brokers, kafka: r.kafka, apache: r.apache, topic: r.topic, dlq: r.dlq, ddb: endpoint,
		db:     testenv.DynamoDBClient(t, endpoint),
		table:  testenv.TableName(t),
		group:  "postflight-" + randomHex(4),
		ledger: &ledger{applied: map[string]appliedSeq{}},
		logs:   &logBuffer{},
	}
	st, err := store.New(r.db, store.Config{Table: r.table, AttemptTimeout: testenv.AttemptTimeout}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.st = st
	if err := st.CreateTable(t.Context()); err != nil {
		t.Fatal(err)
	}
	if shared {
		testenv.DropTable(t, r.db, r.table)
	}
	// Cleanups run last-registered first: every consumer stops (its own
	// cleanup) before this one runs, and this one before the table goes.
	t.Cleanup(func() {
		if t.Failed() {
			r.logs.dump(t)
			r.ledger.mu.Lock()
			for e, n := range r.ledger.errs {
				t.Logf("write error ×%d: %.300s", n, e)
			}
			r.ledger.mu.Unlock()
		}
		if regs := r.ledger.regressions(); len(regs) > 0 {
			t.Errorf("%d writes regressed a message (Applied at or below a sequence applied before): %v", len(regs), regs[:min(len(regs), 10)])
		}
	})
	return r
}

// testConfig is ingest's config for these tests: quick retries, a breaker
// that probes after 1s, and a drain deadline well inside the test timeouts.
func (r *rig) testConfig(cfg ingest.Config) ingest.Config {
	if len(cfg.Brokers) == 0 {
		cfg.Brokers = r.brokers
	}
	if cfg.Group == "" {
		cfg.Group = r.group
	}
	if cfg.Topic == "" {
		cfg.Topic, cfg.DLQTopic = r.topic, r.dlq
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.DrainTimeout, 20*time.Second)
	def(&cfg.RetryInitial, 20*time.Millisecond)
	def(&cfg.RetryMax, 500*time.Millisecond)
	def(&cfg.BreakerOpen, time.Second)
	return cfg
}

// consumer is one ingest.Service of a rig, running in its own goroutine.
type consumer struct {
	name   string
	svc    *ingest.Service
	w      *recordingWriter
	cancel context.CancelFunc
	done   chan error

	once sync.Once
	err  error
}

type consumerOpts struct {
	cfg      ingest.Config // zero fields: testConfig's and ingest's defaults
	endpoint string        // DynamoDB endpoint to write to (a fault proxy); default the rig's
	mp       metric.MeterProvider
	tp       trace.TracerProvider
}

// startConsumer builds a store on o.endpoint and an ingest.Service on the
// rig's Kafka, and runs it until stop (or the test's end).
func (r *rig) startConsumer(name string, o consumerOpts) *consumer {
	r.t.Helper()
	endpoint := o.endpoint
	if endpoint == "" {
		endpoint = r.ddb
	}
	st, err := store.New(testenv.DynamoDBClient(r.t, endpoint), store.Config{Table: r.table, AttemptTimeout: testenv.AttemptTimeout}, nil, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	w := &recordingWriter{w: st, ledger: r.ledger, done: map[string][]int64{}}
	dec := ingest.NewDecoder(ingest.StaticSchemas{}, 15*time.Minute, nil)
	log := slog.New(logHandler{buf: r.logs}).With("consumer", name)
	svc, err := ingest.New(r.testConfig(o.cfg), w, dec, log, o.mp, o.tp)
	if err != nil {
		r.t.Fatalf("consumer %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &consumer{name: name, svc: svc, w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- svc.Run(ctx) }()
	// Registered after anything the consumer writes through (a fault
	// proxy), so it stops before that goes.
	r.t.Cleanup(func() {
		if err := c.stop(); err != nil {
			r.t.Errorf("consumer %s: Run returned %v", c.name, err)
		}
	})
	return c
}

// stop cancels the consumer and waits for Run to return (a clean shutdown:
// drain, commit), returning its error. Later calls return the same.
func (c *consumer) stop() error {
	c.once.Do(func() {
		c.cancel()
		select {
		case c.err = <-c.done:
		case <-time.After(90 * time.Second):
			c.err = errors.New("Run did not return within 90s of cancel")
		}
	})
	return c.err
}

// recordingWriter is the real store with a record of what it settled: per
// message, every sequence this consumer wrote with a final outcome (Applied,
// Superseded, Tombstoned, Expired or Rejected).
type recordingWriter struct {
	w      ingest.Writer
	ledger *ledger

	mu      sync.Mutex
	done    map[string][]int64 // account+sid → sequences settled here
	sent    []sentMsg          // every message handed to the store, in order
	batches atomic.Int64
}

// sentMsg is one message handed to the store, and whether ingest said it
// was stored already.
type sentMsg struct {
	key    string
	seq    int64
	stored bool
}

var (
	_ ingest.StoredWriter = (*recordingWriter)(nil)
	_ ingest.StoredWriter = (*store.Store)(nil)
)

func (rw *recordingWriter) WriteBatch(ctx context.Context, msgs []*postflight.Message, res []postflight.WriteResult) {
	rw.WriteBatchStored(ctx, msgs, nil, res)
}

// WriteBatchStored passes the hint on when the wrapped writer takes it.
func (rw *recordingWriter) WriteBatchStored(ctx context.Context, msgs []*postflight.Message, stored []bool, res []postflight.WriteResult) {
	started := time.Now()
	if sw, ok := rw.w.(ingest.StoredWriter); ok && stored != nil {
		sw.WriteBatchStored(ctx, msgs, stored, res)
	} else {
		rw.w.WriteBatch(ctx, msgs, res)
	}
	rw.batches.Add(1)
	rw.ledger.record(msgs, res, started)
	rw.mu.Lock()
	defer rw.mu.Unlock()
	for i, m := range msgs {
		k := m.AccountSID + m.SID
		rw.sent = append(rw.sent, sentMsg{key: k, seq: m.Sequence, stored: stored != nil && stored[i]})
		if res[i].Outcome.Done() {
			k := m.AccountSID + m.SID
			rw.done[k] = append(rw.done[k], m.Sequence)
		}
	}
}

// sentMsgs returns a copy of what was handed to the store.
func (rw *recordingWriter) sentMsgs() []sentMsg {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return slices.Clone(rw.sent)
}

// settled returns a copy of what this writer settled.
func (rw *recordingWriter) settled() map[string][]int64 {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	out := make(map[string][]int64, len(rw.done))
	for k, v := range rw.done {
		out[k] = slices.Clone(v)
	}
	return out
}

// ledger is shared by a rig's consumers: per message, the highest sequence
// the store reported Applied and when that call returned. A write the store
// reports Applied below it, in a call that started after that one returned,
// is a regression: a conditional write let an older event overwrite a newer
// one. (Calls that overlap in time are not ordered, so they are not judged.)
type ledger struct {
	mu       sync.Mutex
	applied  map[string]appliedSeq
	regs     []string
	outcomes [8]int64
	errs     map[string]int // error text of failed writes → count (diagnostics)
}

// requestID matches the request ID in an SDK error, so that errors can be
// counted by kind.
var requestID = regexp.MustCompile(`RequestID: [^,]*, `)

type appliedSeq struct {
	seq int64
	at  time.Time // when the call that applied it returned
}

func (l *ledger) record(msgs []*postflight.Message, res []postflight.WriteResult, started time.Time) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, m := range msgs {
		o := res[i].Outcome
		if int(o) < len(l.outcomes) {
			l.outcomes[o]++
		}
		if err := res[i].Err; err != nil {
			e := o.String() + ": " + requestID.ReplaceAllString(err.Error(), "")
			if l.errs == nil {
				l.errs = map[string]int{}
			}
			if len(l.errs) < 20 || l.errs[e] > 0 {
				l.errs[e]++
			}
		}
		if o != postflight.Applied {
			continue
		}
		k := m.AccountSID + m.SID
		prev, ok := l.applied[k]
		switch {
		case ok && m.Sequence <= prev.seq && started.After(prev.at):
			l.regs = append(l.regs, fmt.Sprintf("%s: applied %d in a call that started after %d was applied", m.SID, m.Sequence, prev.seq))
		case !ok || m.Sequence > prev.seq:
			l.applied[k] = appliedSeq{seq: m.Sequence, at: now}
		}
	}
}

func (l *ledger) regressions() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.regs)
}

// outcome returns how many writes ended with o.
func (l *ledger) outcome(o postflight.WriteOutcome) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.outcomes[o]
}

// --- the generated stream ---

// msgSpec is one generated message: its events in sequence order and the
// one that must win.
type msgSpec struct {
	account, sid string
	events       []*postflight.Event
	want         *postflight.Event // the final event with the highest sequence; nil: none is final
	deleted      bool              // deleted through the store: a tombstone, never a message again (want is nil)
}

func (m *msgSpec) key() string { return m.account + m.sid }

type streamOpts struct {
	messages   int
	accounts   int     // default 7
	seed       uint64  // default 1
	shuffle    bool    // shuffle all events; otherwise each message's events stay in order
	duplicates float64 // chance that an event is produced once more (at a random place if shuffled)
	bodyBytes  int     // pad every body to this length (larger records fill the pending bound sooner)
}

var (
	nonFinal = []postflight.Status{postflight.StatusQueued, postflight.StatusSending, postflight.StatusSent}
	endings  = []postflight.Status{postflight.StatusDelivered, postflight.StatusUndelivered, postflight.StatusFailed, postflight.StatusCanceled}
)

// genStream makes o.messages messages of 1–5 events each: up to three
// non-final ones, then (for nine in ten messages) one or two final ones
// (e.g. delivered, then read), with gaps between sequences. It returns the
// messages and the events in producing order.
func genStream(o streamOpts) ([]*msgSpec, []*postflight.Event) {
	if o.accounts == 0 {
		o.accounts = 7
	}
	if o.seed == 0 {
		o.seed = 1
	}
	r := rand.New(rand.NewPCG(o.seed, 0x5eed))
	accounts := make([]string, o.accounts)
	for i := range accounts {
		accounts[i] = randomSID("AC")
	}
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Millisecond)
	msgs := make([]*msgSpec, o.messages)
	for i := range msgs {
		m := &msgSpec{account: accounts[r.IntN(len(accounts))], sid: randomSID("SM")}
		created := base.Add(time.Duration(r.IntN(3600_000)) * time.Millisecond)
		var statuses []postflight.Status
		for range r.IntN(4) {
			statuses = append(statuses, nonFinal[r.IntN(len(nonFinal))])
		}
		if r.IntN(10) > 0 {
			end := endings[r.IntN(len(endings))]
			statuses = append(statuses, end)
			if end == postflight.StatusDelivered && r.IntN(2) == 0 {
				statuses = append(statuses, postflight.StatusRead)
			}
		}
		if len(statuses) == 0 {
			statuses = append(statuses, postflight.StatusQueued)
		}
		seq := int64(r.IntN(3))
		for _, st := range statuses {
			seq += 1 + int64(r.IntN(3))
			ev := newEvent(m.account, m.sid, seq, st, created)
			if pad := o.bodyBytes - len(*ev.Body); pad > 0 {
				b := *ev.Body + " " + strings.Repeat("lorem ipsum ", pad/12+1)[:pad-1]
				ev.Body = &b
			}
			m.events = append(m.events, ev)
			if st.IsFinal() {
				m.want = ev
			}
		}
		msgs[i] = m
	}
	var evs []*postflight.Event
	if o.shuffle {
		for _, m := range msgs {
			evs = append(evs, m.events...)
		}
		for _, ev := range slices.Clone(evs) {
			if r.Float64() < o.duplicates {
				evs = append(evs, ev)
			}
		}
		r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		return msgs, evs
	}
	// Interleave messages, each in order: round k emits every message's k-th event.
	for k := 0; ; k++ {
		any := false
		for _, m := range msgs {
			if k < len(m.events) {
				any = true
				evs = append(evs, m.events[k])
				if r.Float64() < o.duplicates {
					evs = append(evs, m.events[k])
				}
			}
		}
		if !any {
			return msgs, evs
		}
	}
}

func newEvent(account, sid string, seq int64, st postflight.Status, created time.Time) *postflight.Event {
	body := fmt.Sprintf("message %s, event %d, %s", sid[len(sid)-6:], seq, st)
	return &postflight.Event{
		EventID: randomUUID(), AccountSID: account, MessageSID: sid, Sequence: seq, Status: st,
		Channel: postflight.ChannelSMS, Direction: postflight.DirectionOutboundAPI,
		From: "+15550000001", To: "+15550000002", Body: &body, NumSegments: 1,
		DateCreated: created, EventTime: created.Add(time.Duration(seq) * time.Second),
	}
}

// records encodes events as Kafka records keyed by message SID, half of
// them (at random) with schema v1 where v1 can carry the event.
func records(t testing.TB, evs []*postflight.Event) []*sarama.ProducerMessage {
	t.Helper()
	out := make([]*sarama.ProducerMessage, len(evs))
	for i, ev := range evs {
		out[i] = record(t, ev, ingest.SchemaIDv1+uint32(i%2))
	}
	return out
}

func record(t testing.TB, ev *postflight.Event, schemaID uint32) *sarama.ProducerMessage {
	t.Helper()
	v, err := ingest.Encode(schemaID, ev)
	if err != nil && schemaID != ingest.SchemaIDv2 {
		v, err = ingest.Encode(ingest.SchemaIDv2, ev)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &sarama.ProducerMessage{Topic: eventsTopic, Key: sarama.StringEncoder(ev.MessageSID), Value: sarama.ByteEncoder(v)}
}

// produce sends recs with acks=all through a sarama producer with the given
// partitioner (nil: sarama's default, hashing the key), and fills in each
// record's partition and offset.
func (r *rig) produce(recs []*sarama.ProducerMessage, part sarama.PartitionerConstructor) {
	r.t.Helper()
	if err := r.send(recs, part); err != nil {
		r.t.Fatal(err)
	}
}

// send is produce for goroutines other than the test's: it returns the error.
func (r *rig) send(recs []*sarama.ProducerMessage, part sarama.PartitionerConstructor) error {
	cfg := sarama.NewConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	if part != nil {
		cfg.Producer.Partitioner = part
	}
	p, err := sarama.NewSyncProducer(r.brokers, cfg)
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	defer p.Close()
	for _, rec := range recs {
		// record() names eventsTopic; on Apache Kafka each test has its own.
		if rec.Topic == eventsTopic {
			rec.Topic = r.topic
		}
	}
	for chunk := range slices.Chunk(recs, 2000) {
		if err := p.SendMessages(chunk); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
	}
	return nil
}

// --- progress and verification ---

// committed returns the records the group has committed and the records in
// the events topic, summed over partitions.
func (r *rig) committed() (done, total int64) {
	if r.apache != nil {
		return r.apacheCommitted()
	}
	commits := map[int32]kfake.GroupCommit{}
	if gi := r.kafka.GroupInfo(r.group); gi != nil {
		commits = gi.Commits[eventsTopic]
	}
	for _, pi := range r.kafka.PartitionInfos(eventsTopic) {
		total += pi.HighWatermark
		if c, ok := commits[pi.Partition]; ok {
			done += min(c.Offset, pi.HighWatermark)
		}
	}
	return done, total
}

// commitOf returns the group's committed offset of one partition (-1: none).
func (r *rig) commitOf(part int32) int64 {
	if r.apache != nil {
		if c, ok := r.apacheCommits()[part]; ok {
			return c
		}
		return -1
	}
	if gi := r.kafka.GroupInfo(r.group); gi != nil {
		if c, ok := gi.Commits[eventsTopic][part]; ok {
			return c.Offset
		}
	}
	return -1
}

// waitMembers waits until the group is stable with n members, each of them
// assigned partitions.
func (r *rig) waitMembers(n int) {
	r.t.Helper()
	if r.apache != nil {
		r.apacheWaitMembers(n)
		return
	}
	ctx, cancel := context.WithTimeout(r.t.Context(), time.Minute)
	defer cancel()
	_, err := r.kafka.WaitGroupInfo(ctx, r.group, func(g *kfake.GroupInfo) bool {
		if g == nil || g.State != "Stable" || len(g.Members) != n {
			return false
		}
		for i := range g.Members {
			if g.Members[i].NumAssigned() == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		r.t.Fatalf("group %s never became stable with %d members: %+v", r.group, n, r.kafka.GroupInfo(r.group))
	}
}

// waitCommitted waits until the group has committed every record of the
// events topic: then, by ingest's contract, every one of them is written or
// dead-lettered.
func (r *rig) waitCommitted(timeout time.Duration) {
	r.t.Helper()
	testenv.Eventually(r.t, timeout, "the group to commit every record", func() string {
		done, total := r.committed()
		if done == total {
			return ""
		}
		return fmt.Sprintf("%d of %d records committed", done, total)
	})
}

// within is eventually that reports a timeout with t.Errorf and returns
// false, so the test goes on to check the rest.
func within(t testing.TB, timeout time.Duration, what string, cond func() string) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		state := cond()
		if state == "" {
			return true
		}
		if time.Now().After(deadline) {
			t.Errorf("timed out after %s waiting for %s: %s", timeout, what, state)
			return false
		}
		<-tick.C
	}
}

// verify checks every message with the store's Get: a message with a final
// event holds exactly its winning event's state; one without is absent. It
// then scans the table: no message item exists that the stream did not make.
func (r *rig) verify(msgs []*msgSpec) {
	r.t.Helper()
	ctx := r.t.Context()
	var (
		mu       sync.Mutex
		problems []string
		lost     int
		wrong    int
	)
	report := func(lostOne bool, format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if lostOne {
			lost++
		} else {
			wrong++
		}
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	work := make(chan *msgSpec)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for m := range work {
				got, err := r.st.Get(ctx, m.account, m.sid)
				switch {
				case m.want == nil && errors.Is(err, postflight.ErrNotFound):
				case m.want == nil && err == nil:
					report(false, "%s has no final event but is stored (seq %d %s)", m.sid, got.Sequence, got.Status)
				case errors.Is(err, postflight.ErrNotFound):
					report(true, "%s lost: want seq %d %s", m.sid, m.want.Sequence, m.want.Status)
				case err != nil:
					report(false, "%s: get: %v", m.sid, err)
				default:
					if diff := diffMessage(got, m.want); diff != "" {
						report(false, "%s: %s", m.sid, diff)
					}
				}
			}
		})
	}
	final := map[string]bool{}
	for _, m := range msgs {
		if m.want != nil || m.deleted {
			final[m.sid+"/"+m.account] = true
		}
		work <- m
	}
	close(work)
	wg.Wait()
	if len(problems) > 0 {
		slices.Sort(problems)
		r.t.Errorf("%d of %d messages lost, %d wrong; first problems:\n  %s", lost, len(msgs), wrong,
			strings.Join(problems[:min(len(problems), 15)], "\n  "))
	}
	// Nothing else is in the table (account configuration aside).
	var unexpected []string
	items := 0
	pager := dynamodb.NewScanPaginator(r.db, &dynamodb.ScanInput{
		TableName:                aws.String(r.table),
		ProjectionExpression:     aws.String("#p, #s"),
		ExpressionAttributeNames: map[string]string{"#p": keydesign.AttrPK, "#s": keydesign.AttrSK},
		ConsistentRead:           aws.Bool(true),
	})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			r.t.Fatalf("scan: %v", err)
		}
		for _, it := range page.Items {
			p := it[keydesign.AttrPK].(*types.AttributeValueMemberS).Value
			s := it[keydesign.AttrSK].(*types.AttributeValueMemberS).Value
			if p == "cfg" {
				continue
			}
			items++
			if !final[p+"/"+s] {
				unexpected = append(unexpected, p+"/"+s)
			}
		}
	}
	if len(unexpected) > 0 || items != len(final) {
		r.t.Errorf("table holds %d message items, want %d; %d unexpected: %v", items, len(final), len(unexpected), unexpected[:min(len(unexpected), 10)])
	}
}

// diffMessage compares a stored message with the event that should have won.
func diffMessage(got postflight.Message, want *postflight.Event) string {
	var d []string
	if got.Sequence != want.Sequence {
		d = append(d, fmt.Sprintf("sequence %d, want %d", got.Sequence, want.Sequence))
	}
	if got.Status != want.Status {
		d = append(d, fmt.Sprintf("status %s, want %s", got.Status, want.Status))
	}
	if got.Body == nil || *got.Body != *want.Body {
		d = append(d, fmt.Sprintf("body %q, want %q", deref(got.Body), *want.Body))
	}
	if !got.DateUpdated.Equal(want.EventTime) {
		d = append(d, fmt.Sprintf("date_updated %s, want %s", got.DateUpdated, want.EventTime))
	}
	if !got.DateCreated.Equal(want.DateCreated) {
		d = append(d, fmt.Sprintf("date_created %s, want %s", got.DateCreated, want.DateCreated))
	}
	if got.AccountSID != want.AccountSID || got.From != want.From || got.To != want.To {
		d = append(d, fmt.Sprintf("account/from/to %s %s %s", got.AccountSID, got.From, got.To))
	}
	return strings.Join(d, "; ")
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// deadLetter is one record of the dead-letter topic.
type deadLetter struct {
	key, value     []byte
	reason, source string
	headers        map[string]string
}

// deadLetters reads the whole dead-letter topic as it is now.
func (r *rig) deadLetters() []deadLetter {
	r.t.Helper()
	var total int64
	for _, hw := range r.highWatermarks(r.dlq) {
		total += hw
	}
	if total == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.brokers...), kgo.ConsumeTopics(r.dlq),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		r.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(r.t.Context(), 30*time.Second)
	defer cancel()
	var out []deadLetter
	for int64(len(out)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			r.t.Fatalf("read %d dead letters, the topic holds %d", len(out), total)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			d := deadLetter{key: rec.Key, value: rec.Value, headers: map[string]string{}}
			for _, h := range rec.Headers {
				d.headers[h.Key] = string(h.Value)
			}
			d.reason, d.source = d.headers[ingest.HeaderError], d.headers[ingest.HeaderSource]
			out = append(out, d)
		})
	}
	return out
}

// expectNoDeadLetters fails if anything reached the dead-letter topic.
func (r *rig) expectNoDeadLetters() {
	r.t.Helper()
	if dl := r.deadLetters(); len(dl) > 0 {
		r.t.Errorf("%d valid events were dead-lettered, e.g. %s: %s", len(dl), dl[0].source, dl[0].reason)
	}
}

// --- logs ---

// logBuffer keeps the consumers' log records: the tests read the breaker's
// transitions from them, and a failed test prints the last ones.
type logBuffer struct {
	mu   sync.Mutex
	recs []logRec
}

type logRec struct {
	at    time.Time
	level slog.Level
	msg   string
	attrs map[string]string
}

const maxLogRecs = 20000

func (b *logBuffer) add(r logRec) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.recs) >= maxLogRecs {
		b.recs = slices.Delete(b.recs, 0, maxLogRecs/2)
	}
	b.recs = append(b.recs, r)
}

// find returns the records with message msg (and, if consumer is set, of
// that consumer).
func (b *logBuffer) find(msg, consumer string) []logRec {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []logRec
	for _, r := range b.recs {
		if r.msg == msg && (consumer == "" || r.attrs["consumer"] == consumer) {
			out = append(out, r)
		}
	}
	return out
}

// breakerStates returns the states a consumer's breaker went to, in order.
func (b *logBuffer) breakerStates(consumer string) []string {
	var out []string
	for _, r := range b.find("dynamodb circuit breaker", consumer) {
		out = append(out, r.attrs["to"])
	}
	return out
}

func (b *logBuffer) dump(t testing.TB) {
	b.mu.Lock()
	defer b.mu.Unlock()
	recs := b.recs[max(0, len(b.recs)-150):]
	var sb strings.Builder
	for _, r := range recs {
		fmt.Fprintf(&sb, "%s %s %s", r.at.Format("15:04:05.000"), r.level, r.msg)
		keys := make([]string, 0, len(r.attrs))
		for k := range r.attrs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&sb, " %s=%s", k, r.attrs[k])
		}
		sb.WriteByte('\n')
	}
	t.Logf("last %d consumer log records:\n%s", len(recs), sb.String())
}

// logHandler is a slog.Handler into a logBuffer (groups are flattened).
type logHandler struct {
	buf   *logBuffer
	attrs []slog.Attr
}

func (h logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h logHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRec{at: r.Time, level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.buf.add(rec)
	return nil
}

func (h logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return logHandler{buf: h.buf, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h logHandler) WithGroup(string) slog.Handler { return h }

// --- ids ---

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return fmt.Sprintf("%x", b)
}

func randomSID(prefix string) string { return prefix + randomHex(16) }

func randomUUID() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
