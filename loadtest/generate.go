package loadtest

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/ingest"
)

// Bounds of the generator's knobs.
const (
	maxEventsPerMessage = 16
	// maxBodyBytes caps a generated body, so every item stays well under
	// DynamoDB's 400 KB whatever --item-bytes asks for.
	maxBodyBytes = 350_000
	// precomputedAccounts is how many account SIDs (the hottest ranks) the
	// generator keeps rather than formats per message.
	precomputedAccounts = 1 << 17
)

// GeneratorConfig configures a Generator. RunConfig.GeneratorConfig derives
// it from the command line.
type GeneratorConfig struct {
	Seed  uint64
	Shard ShardSpec // processes with other shard indexes generate disjoint SIDs
	// RunID goes into the SIDs (only), so that runs with the same seed
	// against one table do not write over each other's messages. Run sets
	// it from the start time; 0 is as good as any other value.
	RunID uint64

	Accounts int     // accounts in the Zipf mix
	TopShare float64 // the largest account's share of all messages

	// EventsPerMessage is the mean number of lifecycle events: each message
	// has EventsPerMessage−1 to EventsPerMessage+1 of them (at least 1),
	// uniformly, before any duplicate.
	EventsPerMessage int
	// ItemBytes is the mean body length of long (WhatsApp, RCS) messages;
	// SMS bodies stay within three segments and MMS bodies short.
	ItemBytes int
	// NonFinalShare of messages never reach a final status: every one of
	// their events is non-final, so nothing of them may be stored.
	NonFinalShare float64
	// DuplicateShare of messages have one of their events sent twice (the
	// copy after all the others, as a redelivery would).
	DuplicateShare float64
	// ReorderWindow is how far (in positions) an event may be sent from its
	// place in sequence order; 0 sends every message's events in order.
	ReorderWindow int
	// V1Share of events are written with schema v1 (ID 1), the rest with v2.
	V1Share float64
	// EventGap spaces the event_time of a message's consecutive events.
	EventGap time.Duration
}

// GeneratorConfig returns the generator configuration of a run. In direct
// mode every message is driven to a final state (only final states are
// written), so NonFinalShare is 0.
func (c RunConfig) GeneratorConfig() GeneratorConfig {
	g := GeneratorConfig{
		Seed: c.Seed, Shard: c.Shard, Accounts: c.Accounts, TopShare: c.TopShare,
		EventsPerMessage: c.EventsPerMessage, ItemBytes: c.ItemBytes, NonFinalShare: c.NonFinalShare,
		DuplicateShare: c.DuplicateShare, ReorderWindow: c.ReorderWindow, V1Share: c.V1Share, EventGap: c.EventGap,
	}
	if c.Mode == ModeDirect {
		g.NonFinalShare = 0
	}
	return g
}

// Generator produces the run's messages: the plan of message m (its
// account, SID, lifecycle events in sending order, and the state it must end
// in) is a pure function of the configuration, m and its creation time, so
// the verifier can regenerate any message instead of remembering it. A
// Generator is immutable and safe for concurrent use.
type Generator struct {
	cfg      GeneratorConfig
	zipf     *Zipf
	accounts []string // SIDs of ranks below precomputedAccounts
	corpus   string   // bodies are slices of it
	seed     uint64   // the per-message random streams' seed
	sidSalt  uint64   // makes the SIDs' low half a bijection of the message number
	runSalt  uint64   // the SIDs' high half, with the low half
}

// NewGenerator validates cfg and builds the generator (the Zipf table and
// the account SIDs of the hottest ranks).
func NewGenerator(cfg GeneratorConfig) (*Generator, error) {
	switch {
	case cfg.Shard.Count == 0:
		cfg.Shard = ShardSpec{Index: 0, Count: 1}
	}
	if err := cfg.Shard.Validate(); err != nil {
		return nil, err
	}
	switch {
	case cfg.EventsPerMessage < 1 || cfg.EventsPerMessage > maxEventsPerMessage:
		return nil, fmt.Errorf("generator: events per message %d out of range [1,%d]", cfg.EventsPerMessage, maxEventsPerMessage)
	case cfg.ItemBytes < 1:
		return nil, fmt.Errorf("generator: item bytes %d must be ≥ 1", cfg.ItemBytes)
	case !share(cfg.NonFinalShare) || !share(cfg.DuplicateShare) || !share(cfg.V1Share):
		return nil, fmt.Errorf("generator: shares must be in [0,1]")
	case cfg.ReorderWindow < 0 || cfg.EventGap < 0:
		return nil, fmt.Errorf("generator: reorder window and event gap must be ≥ 0")
	}
	z, err := ZipfForTopShare(cfg.Accounts, cfg.TopShare)
	if err != nil {
		return nil, fmt.Errorf("generator: %w", err)
	}
	g := &Generator{
		cfg:     cfg,
		zipf:    z,
		seed:    splitmix64(cfg.Seed ^ 0x6c6f616474657374),
		sidSalt: splitmix64(cfg.Seed + 0x736964),
		runSalt: splitmix64(cfg.RunID ^ 0x72756e),
	}
	g.accounts = make([]string, min(cfg.Accounts, precomputedAccounts))
	for i := range g.accounts {
		g.accounts[i] = AccountSID(i)
	}
	longest := max(459, min(maxBodyBytes, cfg.ItemBytes*3/2))
	g.corpus = buildCorpus(longest+4096, cfg.Seed)
	return g, nil
}

// MaxEmissions is the most events one message sends, duplicate included.
func (g *Generator) MaxEmissions() int { return g.cfg.EventsPerMessage + 2 }

// Account returns the SID of the account of Zipf rank k.
func (g *Generator) Account(k int) string {
	if k < len(g.accounts) {
		return g.accounts[k]
	}
	return AccountSID(k)
}

// SampleAccount draws an account rank from the traffic mix.
func (g *Generator) SampleAccount(r *rand.Rand) int { return g.zipf.Sample(r) }

// MessagePlan is everything the load test sends for, and expects of, one
// message.
type MessagePlan struct {
	Index   int64 // this process's message number
	Rank    int   // the account's Zipf rank
	Account string
	SID     string
	Created time.Time // date_created (milliseconds)
	Channel postflight.Channel

	// Emissions are the events in sending order: sequence order permuted
	// within the reorder window, then a duplicate if there is one.
	Emissions []Emission
	// Final is the record the message must end as: the state of its final
	// event with the highest sequence. Nil for a message that never becomes
	// final (nothing of it may be stored).
	Final *postflight.Message
	// Winner is the index in Emissions of the first sending of the event
	// behind Final, or -1.
	Winner int
	// Finals counts the message's distinct final events (1 or 2, or 0).
	Finals int
}

// Emission is one event as sent.
type Emission struct {
	Event     *postflight.Event
	SchemaID  uint32 // ingest.SchemaIDv1 or ingest.SchemaIDv2
	Rank      int    // position of the event in sequence order (from 0)
	Duplicate bool   // a second sending of an event already in Emissions
}

var channelMix = [...]struct {
	c postflight.Channel
	p float64
}{{postflight.ChannelSMS, 0.60}, {postflight.ChannelMMS, 0.10}, {postflight.ChannelWhatsApp, 0.25}, {postflight.ChannelRCS, 0.05}}

var campaigns = [...]string{"spring-sale", "otp", "renewal", "black-friday", "welcome", "survey", "reminder", "shipping"}

var errorCodes = [...]int32{30003, 30005, 30006, 30007, 30008}

var priceUnit = "USD"

// Message returns the plan of message m, created at created. The same
// configuration, m and created give the same plan.
func (g *Generator) Message(m int64, created time.Time) *MessagePlan {
	cfg := &g.cfg
	global := uint64(m)*uint64(cfg.Shard.Count) + uint64(cfg.Shard.Index)
	r := rand.New(rand.NewPCG(g.seed, global))
	p := &MessagePlan{Index: m, Created: created.UTC().Truncate(time.Millisecond), Winner: -1}

	p.Rank = g.zipf.Sample(r)
	p.Account = g.Account(p.Rank)
	u := r.Float64()
	for _, c := range channelMix {
		p.Channel = c.c
		if u < c.p {
			break
		}
		u -= c.p
	}
	dir := postflight.DirectionOutboundAPI
	switch u := r.Float64(); {
	case u < 0.10:
		dir = postflight.DirectionInbound
	case u < 0.15:
		dir = postflight.DirectionOutboundReply
	}
	// SIDs: the low half is a bijection of the global message number, so
	// distinct messages and shard processes (same seed) never collide; the
	// high half varies with the run.
	var b [16]byte
	lo := splitmix64(global + g.sidSalt)
	binary.BigEndian.PutUint64(b[:8], splitmix64(lo^g.runSalt))
	binary.BigEndian.PutUint64(b[8:], lo)
	prefix := "SM"
	if p.Channel == postflight.ChannelMMS {
		prefix = "MM"
	}
	p.SID = sid(prefix, b)

	n := max(1, cfg.EventsPerMessage-1+r.IntN(3))
	statuses, finals := lifecycle(r, n, dir, p.Channel, r.Float64() < cfg.NonFinalShare)
	p.Finals = finals

	// What every event of the message carries.
	own, peer := senderNumber(p.Rank, p.Channel), phoneNumber(r, p.Channel)
	from, to := own, peer
	if dir == postflight.DirectionInbound {
		from, to = peer, own
	}
	body, segments, media := g.body(r, p.Channel)
	var msgService, content *string
	if dir != postflight.DirectionInbound && r.Float64() < 0.6 {
		s := messagingServiceSID(p.Rank)
		msgService = &s
	}
	if (p.Channel == postflight.ChannelWhatsApp || p.Channel == postflight.ChannelRCS) && r.Float64() < 0.4 {
		var hb [16]byte
		binary.BigEndian.PutUint64(hb[:8], r.Uint64())
		binary.BigEndian.PutUint64(hb[8:], r.Uint64())
		s := sid("HX", hb)
		content = &s
	}
	var tags map[string]string
	if r.Float64() < 0.15 {
		tags = map[string]string{"campaign": campaigns[r.IntN(len(campaigns))]}
	}
	price := -int64(segments) * [...]int64{7900, 20000, 5000, 3000}[p.Channel]
	sent := p.Created.Add(cfg.EventGap / 2).Truncate(time.Millisecond)

	events := make([]postflight.Event, n)
	reached := false // sent or beyond: date_sent and price are known
	for i, st := range statuses {
		ev := &events[i]
		*ev = postflight.Event{
			EventID: uuid(r), AccountSID: p.Account, MessageSID: p.SID, Sequence: int64(i + 1),
			Status: st, Channel: p.Channel, Direction: dir, From: from, To: to, Body: body,
			NumSegments: segments, NumMedia: media, MessagingServiceSID: msgService, ContentSID: content, Tags: tags,
			DateCreated: p.Created,
			EventTime:   p.Created.Add(time.Duration(i)*cfg.EventGap + time.Duration(r.IntN(1000))*time.Microsecond).Truncate(time.Millisecond),
		}
		switch st {
		case postflight.StatusSent, postflight.StatusDelivered, postflight.StatusUndelivered, postflight.StatusRead, postflight.StatusReceived:
			reached = true
		}
		if reached || dir == postflight.DirectionInbound {
			ev.DateSent = &sent
			ev.PriceMicros, ev.PriceUnit = &price, &priceUnit
		}
		if st == postflight.StatusUndelivered || st == postflight.StatusFailed {
			c := errorCodes[r.IntN(len(errorCodes))]
			ev.ErrorCode = &c
		}
	}

	// Sending order: event i goes to position ≤ W away from i (sort by
	// i + U·(W+1): j can pass i only when j−i ≤ W).
	w := cfg.ReorderWindow
	order := make([]int, n, n+1)
	keys := make([]float64, n)
	for i := range order {
		order[i] = i
		keys[i] = float64(i) + r.Float64()*float64(w+1)
	}
	if w > 0 {
		for i := 1; i < n; i++ { // insertion sort: n is tiny
			for j := i; j > 0 && keys[order[j]] < keys[order[j-1]]; j-- {
				order[j], order[j-1] = order[j-1], order[j]
			}
		}
	}
	p.Emissions = make([]Emission, 0, n+1)
	for _, i := range order {
		p.Emissions = append(p.Emissions, Emission{Event: &events[i], SchemaID: schemaFor(r, cfg.V1Share), Rank: i})
	}
	if r.Float64() < cfg.DuplicateShare {
		d := p.Emissions[r.IntN(n)]
		d.Duplicate = true
		p.Emissions = append(p.Emissions, d)
	}

	// The winner: the final event with the highest sequence.
	win := -1
	for i := n - 1; i >= 0; i-- {
		if statuses[i].IsFinal() {
			win = i
			break
		}
	}
	if win >= 0 {
		for j, e := range p.Emissions {
			if e.Rank == win {
				p.Winner = j
				m := ExpectedMessage(e.Event, e.SchemaID)
				p.Final = &m
				break
			}
		}
	}
	return p
}

// ExpectedMessage is the record an event leaves when it wins, as written
// with schema schemaID: schema v1 has no content_sid or tags, so a v1
// event's record has neither.
func ExpectedMessage(ev *postflight.Event, schemaID uint32) postflight.Message {
	m := ev.Message()
	if schemaID == ingest.SchemaIDv1 {
		m.ContentSID, m.Tags = nil, nil
	}
	return m
}

func schemaFor(r *rand.Rand, v1 float64) uint32 {
	if r.Float64() < v1 {
		return ingest.SchemaIDv1
	}
	return ingest.SchemaIDv2
}

// lifecycle returns a message's n statuses in sequence order and how many of
// them are final. A final message ends in one final status, or two
// (delivered then read; received then read).
func lifecycle(r *rand.Rand, n int, dir postflight.Direction, ch postflight.Channel, nonFinal bool) ([]postflight.Status, int) {
	out := make([]postflight.Status, n)
	inbound := dir == postflight.DirectionInbound
	prog := []postflight.Status{postflight.StatusAccepted, postflight.StatusQueued, postflight.StatusSending, postflight.StatusSent}
	if inbound {
		prog = []postflight.Status{postflight.StatusReceiving}
	}
	if nonFinal {
		for i := range out {
			out[i] = prog[min(i, len(prog)-1)]
		}
		return out, 0
	}
	var finals []postflight.Status
	u := r.Float64()
	switch {
	case inbound:
		finals = []postflight.Status{postflight.StatusReceived}
		if n >= 3 && u < 0.3 {
			finals = append(finals, postflight.StatusRead)
		}
	case u < 0.88:
		finals = []postflight.Status{postflight.StatusDelivered}
		if n >= 3 && (ch == postflight.ChannelWhatsApp || ch == postflight.ChannelRCS) && r.Float64() < 0.5 {
			finals = append(finals, postflight.StatusRead)
		}
	case u < 0.93:
		finals = []postflight.Status{postflight.StatusUndelivered}
	case u < 0.98:
		finals = []postflight.Status{postflight.StatusFailed}
		prog = prog[:3] // failed before it was sent
	default:
		finals = []postflight.Status{postflight.StatusCanceled}
		prog = []postflight.Status{postflight.StatusAccepted, postflight.StatusScheduled}
	}
	k := n - len(finals) // the non-final prefix: the progression's last k steps
	for i := range k {
		out[i] = prog[max(0, len(prog)-k+i)]
	}
	copy(out[k:], finals)
	return out, len(finals)
}

// body draws a body for the channel: SMS mostly one segment, sometimes two
// or three; MMS short with media; WhatsApp and RCS long, ItemBytes on
// average. It is a slice of the corpus (no copy).
func (g *Generator) body(r *rand.Rand, ch postflight.Channel) (body *string, segments, media int32) {
	var n int
	segments = 1
	switch ch {
	case postflight.ChannelSMS:
		if r.Float64() < 0.8 {
			n = 20 + r.IntN(141)
		} else {
			n = 161 + r.IntN(299)
			segments = int32((n + 152) / 153)
		}
	case postflight.ChannelMMS:
		n = r.IntN(200)
		media = 1 + int32(r.IntN(3))
	default:
		mean := min(g.cfg.ItemBytes, maxBodyBytes*2/3)
		n = max(1, mean/2+r.IntN(mean+1))
	}
	off := r.IntN(len(g.corpus) - n + 1)
	s := g.corpus[off : off+n]
	return &s, segments, media
}

var corpusWords = strings.Fields(`your verification code is order has shipped and will arrive on
tomorrow between appointment reminder reply STOP to unsubscribe thanks for shopping with us the
package delivered at front door payment received account balance low please call our team
today table for two confirmed see you at pm am hello hi welcome back new message from driver
is arriving now rate your experience link expires in minutes do not share this with anyone`)

// buildCorpus returns at least n bytes of ASCII words (so any slice of it is
// valid UTF-8), the same for a seed.
func buildCorpus(n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 0x636f72707573))
	var b strings.Builder
	b.Grow(n + 16)
	for b.Len() < n {
		b.WriteString(corpusWords[r.IntN(len(corpusWords))])
		if r.IntN(12) == 0 {
			b.WriteString(". ")
		} else {
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// senderNumber is an account's own number on a channel.
func senderNumber(rank int, ch postflight.Channel) string {
	var buf [32]byte
	b := buf[:0]
	if ch == postflight.ChannelWhatsApp {
		b = append(b, "whatsapp:"...)
	}
	b = append(b, "+1555"...)
	return string(appendDigits(b, uint64(rank)%10_000_000, 7))
}

// phoneNumber is a random peer number.
func phoneNumber(r *rand.Rand, ch postflight.Channel) string {
	var buf [32]byte
	b := buf[:0]
	if ch == postflight.ChannelWhatsApp {
		b = append(b, "whatsapp:"...)
	}
	b = append(b, "+1"...)
	b = strconv.AppendUint(b, 2+r.Uint64N(8), 10)
	return string(appendDigits(b, r.Uint64N(1_000_000_000), 9))
}

func appendDigits(b []byte, v uint64, n int) []byte {
	start := len(b)
	for range n {
		b = append(b, '0')
	}
	for i := len(b) - 1; i >= start && v > 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}

func messagingServiceSID(rank int) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], splitmix64(uint64(rank)^0x4d47))
	binary.BigEndian.PutUint64(b[8:], splitmix64(uint64(rank)+0x4d47))
	return sid("MG", b)
}

// uuid returns a random version-4 UUID in canonical form.
func uuid(r *rand.Rand) string {
	var u [16]byte
	binary.BigEndian.PutUint64(u[:8], r.Uint64())
	binary.BigEndian.PutUint64(u[8:], r.Uint64())
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], u[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], u[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], u[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], u[8:10])
	out[23] = '-'
	hex.Encode(out[24:], u[10:])
	return string(out[:])
}
