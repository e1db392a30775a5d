package store

// Item size on a realistic body-length mix, through the store's own
// encoding (encode, e.size). The mix: 70% SMS of 20–160 characters, 20%
// multi-segment SMS of 160–600, 10% WhatsApp of 600–4000; bodies are
// English-like text from a word list with Zipf-distributed frequencies,
// plus what real messages carry that does not compress (codes, order
// numbers, tracking links with random tokens, names, emoji). Long bodies of
// this generator deflate about as well as English prose does (logged, next
// to the ratio of a real English text: see realTextRatios), so the figures
// are not flattered by an unrealistically repetitive text.

import (
	"bytes"
	"compress/flate"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/postflight/postflight"
	"github.com/postflight/postflight/keydesign"
)

var bodyWords = strings.Fields(`the to and a of you your is for in it on we this that be with are will
have at our order has can not please from us as by if or me my i an all now here more get was there
just so up out about what when one no time they do new see today back been thank thanks hi hello dear
team code verification appointment reminder delivery delivered shipped package account payment due
balance card bank confirm confirmed cancel booking reservation flight gate seat check link click reply
stop help call visit store pickup ready tomorrow morning afternoon evening monday tuesday wednesday
thursday friday saturday sunday week month minutes hours expires valid offer sale off free shipping
points rewards member club welcome sorry issue problem ticket support agent update status tracking
number details receipt invoice amount total refund return exchange item items size color quantity
price discount coupon promo last chance ends tonight exclusive early access limited stock available
doctor clinic dental pharmacy prescription refill pick office address street suite floor parking arrive
arrival departure driver vehicle ride trip on its way minutes away meet outside door table party
guests confirm attendance event tickets venue opens starts doors concert show game match score win
congratulations password reset login sign security alert unusual activity device location approve deny
secure never share anyone including staff service plan usage data limit renew subscription trial
feedback survey rate experience review love great good happy best regards cheers let know questions
anything else would like any need make sure keep also only some other into than then them these those
which who how why where because while after before during between through over under again still well
very really much many most such own same each every both few being having doing going coming taking`)

var bodyNames = strings.Fields(`Ana Ben Carla David Emma Farid Grace Hiro Ines Jamal Kate Luis Maya Noah
Olga Priya Quinn Rosa Sam Tara Umar Vera Will Xena Yusuf Zoe Acme Globex Initech Umbrella Hooli Stark`)

var bodyEmoji = []string{"😊", "🎉", "👍", "📦", "✅", "❤️", "🙏", "🚗", "✈️", "🔥"}

// bodyGen writes English-like message text.
type bodyGen struct {
	r    *mrand.Rand
	zipf *mrand.Zipf
}

func newBodyGen(seed uint64) *bodyGen {
	r := mrand.New(mrand.NewPCG(seed, 42))
	return &bodyGen{r: r, zipf: mrand.NewZipf(r, 1.07, 2, uint64(len(bodyWords)-1))}
}

const base62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func (g *bodyGen) token(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = base62[g.r.IntN(len(base62))]
	}
	return string(b)
}

// sentence returns one sentence: words, sometimes a name, a number, a link
// or an emoji.
func (g *bodyGen) sentence() string {
	var b strings.Builder
	n := 4 + g.r.IntN(14)
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		w := bodyWords[g.zipf.Uint64()]
		switch x := g.r.IntN(40); {
		case x == 0:
			w = bodyNames[g.r.IntN(len(bodyNames))]
		case x == 1:
			w = fmt.Sprintf("%d", g.r.IntN(1_000_000))
		case x == 2:
			w = fmt.Sprintf("#%d", 10_000_000+g.r.IntN(90_000_000))
		case x == 3 && n > 8:
			w = "https://acme.co/t/" + g.token(10)
		case x == 4:
			w = fmt.Sprintf("$%d.%02d", g.r.IntN(500), g.r.IntN(100))
		}
		if i == 0 {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
		b.WriteString(w)
	}
	switch g.r.IntN(10) {
	case 0:
		b.WriteString("! " + bodyEmoji[g.r.IntN(len(bodyEmoji))])
	case 1:
		b.WriteByte('?')
	default:
		b.WriteByte('.')
	}
	return b.String()
}

// body returns a text of exactly n bytes (cut at a byte boundary that keeps
// it valid UTF-8).
func (g *bodyGen) body(n int) string {
	var b strings.Builder
	if g.r.IntN(3) == 0 { // a one-time code or a greeting first, as many messages start
		fmt.Fprintf(&b, "Your Acme code is %06d. ", g.r.IntN(1_000_000))
	}
	for b.Len() < n {
		if g.r.IntN(6) == 0 && b.Len() > 200 {
			b.WriteString("\n\n")
		}
		b.WriteString(g.sentence())
		b.WriteByte(' ')
	}
	return strings.ToValidUTF8(b.String()[:n], "")
}

// bodyLength draws from the mix: 70% 20–160, 20% 160–600, 10% 600–4000.
func bodyLength(r *mrand.Rand) (n int, whatsapp bool) {
	switch x := r.IntN(100); {
	case x < 70:
		return 20 + r.IntN(141), false
	case x < 90:
		return 160 + r.IntN(441), false
	default:
		return 600 + r.IntN(3401), true
	}
}

func e164(r *mrand.Rand) string { return fmt.Sprintf("+1%03d555%04d", 200+r.IntN(800), r.IntN(10000)) }

func hexSID(r *mrand.Rand, prefix string) string {
	return fmt.Sprintf("%s%016x%016x", prefix, r.Uint64(), r.Uint64())
}

// realisticMessage returns a final message as the mix has them, with the
// optional fields real traffic carries in realistic proportions.
func realisticMessage(r *mrand.Rand, g *bodyGen, created time.Time) *postflight.Message {
	n, wa := bodyLength(r)
	body := g.body(n)
	m := &postflight.Message{
		SID: hexSID(r, "SM"), AccountSID: hexSID(r, "AC"), Status: postflight.StatusDelivered,
		Channel: postflight.ChannelSMS, Direction: postflight.DirectionOutboundAPI,
		From: e164(r), To: e164(r), Body: &body, NumSegments: int32((len(body) + 152) / 153),
		DateCreated: created, DateUpdated: created.Add(3 * time.Second), Sequence: 4,
	}
	if wa {
		m.Channel, m.NumSegments = postflight.ChannelWhatsApp, 1
		m.From, m.To = "whatsapp:"+m.From, "whatsapp:"+m.To
		if r.IntN(2) == 0 {
			cs := hexSID(r, "HX")
			m.ContentSID = &cs
		}
		if r.IntN(10) == 0 {
			m.NumMedia = 1
		}
	}
	if r.IntN(10) < 6 {
		ms := hexSID(r, "MG")
		m.MessagingServiceSID = &ms
	}
	price, unit := -int64(7900*m.NumSegments), "USD"
	m.PriceMicros, m.PriceUnit = &price, &unit
	sent := created.Add(time.Second)
	m.DateSent = &sent
	switch x := r.IntN(100); {
	case x < 5:
		code := int32(30003 + r.IntN(5))
		m.Status, m.ErrorCode = postflight.StatusUndelivered, &code
	case x < 15 && wa:
		m.Status = postflight.StatusRead
	}
	if r.IntN(5) == 0 {
		m.Tags = map[string]string{"campaign": "spring-" + g.token(4)}
		if r.IntN(2) == 0 {
			m.Tags["team"] = bodyNames[r.IntN(len(bodyNames))]
		}
	}
	return m
}

// itemMix is the size statistics of n realistic messages' items.
type itemMix struct {
	n, bytes, units int
	bucketN         [3]int
	bucketBytes     [3]int
	bucketUnits     [3]int
	maxUnits        [3]int
	bodyBytes       [3]int
}

func bucket(m *postflight.Message) int {
	switch n := len(*m.Body); {
	case n <= 160:
		return 0
	case n <= 600:
		return 1
	}
	return 2
}

func measureMix(tb testing.TB, n int) itemMix {
	tb.Helper()
	r := mrand.New(mrand.NewPCG(2026, 6))
	g := newBodyGen(7)
	created := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	var mix itemMix
	for i := range n {
		m := realisticMessage(r, g, created.Add(time.Duration(i)*time.Millisecond))
		e := encode(m, keydesign.IndexPK(m.AccountSID, keydesign.Shard(m.SID, 8)), created.Add(400*24*time.Hour))
		u := keydesign.WriteUnits(e.size)
		b := bucket(m)
		mix.n++
		mix.bytes += e.size
		mix.units += u
		mix.bucketN[b]++
		mix.bucketBytes[b] += e.size
		mix.bucketUnits[b] += u
		mix.maxUnits[b] = max(mix.maxUnits[b], u)
		mix.bodyBytes[b] += len(*m.Body)
	}
	return mix
}

// deflateRatio is DEFLATE's (level 6) output size over the input's.
func deflateRatio(s string) float64 {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	_, _ = w.Write([]byte(s))
	_ = w.Close()
	return float64(buf.Len()) / float64(len(s))
}

// realText is English prose for calibration (adapted from the introduction
// of the Go Memory Model, https://go.dev/ref/mem, CC BY 4.0).
const realText = `The Go memory model specifies the conditions under which reads of a variable in one goroutine can be guaranteed to observe values produced by writes to the same variable in a different goroutine. Programs that modify data being simultaneously accessed by multiple goroutines must serialize such access. To serialize access, protect the data with channel operations or other synchronization primitives such as those in the sync and sync/atomic packages. If you must read the rest of this document to understand the behavior of your program, you are being too clever. Don't be clever. A data race is defined as a write to a memory location happening concurrently with another read or write to that same location, unless all the accesses involved are atomic data accesses as provided by the sync/atomic package. As noted already, programmers are strongly encouraged to use appropriate synchronization to avoid data races. In the absence of data races, Go programs behave as if all the goroutines were multiplexed onto a single processor. This property is sometimes referred to as DRF-SC: data-race-free programs execute in a sequentially consistent manner. While programmers should write Go programs without data races, there are limitations to what a Go implementation can do in response to a data race. An implementation may always react to a data race by reporting the race and terminating the program. Otherwise, each read of a single-word-sized or sub-word-sized memory location must observe a value actually written to that location (perhaps by a concurrent executing goroutine) and not yet overwritten. These implementation constraints make Go more like Java or JavaScript, in that most races have a limited number of outcomes, and less like C and C++, where the meaning of any program with a race is entirely undefined, and the compiler may do anything at all. Go's approach aims to make errant programs more reliable and easier to debug, while still insisting that races are errors and that tools can diagnose and report them.`

// maxAvgUnits bounds the mean write units of a base item on the mix. The
// index item projects the same attributes, so a record's first write costs
// twice this across table and index.
const maxAvgUnits = 1.3

func TestItemUnitsOnRealisticMix(t *testing.T) {
	mix := measureMix(t, 8000)
	names := [3]string{"SMS 20–160", "SMS 160–600", "WhatsApp 600–4000"}
	t.Logf("%-18s %7s %10s %10s %9s %9s", "bucket", "share", "avg body", "avg item", "avg WCU", "max WCU")
	for b := range 3 {
		k := float64(mix.bucketN[b])
		t.Logf("%-18s %6.1f%% %10.0f %10.0f %9.3f %9d", names[b], 100*k/float64(mix.n),
			float64(mix.bodyBytes[b])/k, float64(mix.bucketBytes[b])/k, float64(mix.bucketUnits[b])/k, mix.maxUnits[b])
	}
	avgUnits := float64(mix.units) / float64(mix.n)
	t.Logf("%-18s %7s %10s %10.0f %9.3f   (×2 with the index item: %.3f WCU per record write)",
		"all", "100%", "", float64(mix.bytes)/float64(mix.n), avgUnits, 2*avgUnits)

	// Calibration: the generator's long text deflates no better than prose.
	g := newBodyGen(99)
	for _, n := range []int{600, 1500} {
		gen := deflateRatio(g.body(n))
		real := deflateRatio(realText[:n])
		t.Logf("DEFLATE ratio at %d bytes: generated %.2f, English prose %.2f", n, gen, real)
		if gen < real-0.1 {
			t.Errorf("generated text at %d bytes deflates to %.2f, English prose to %.2f: the mix flatters the encoding", n, gen, real)
		}
	}

	if avgUnits > maxAvgUnits {
		t.Errorf("%.3f write units per item on average, bound %.1f", avgUnits, maxAvgUnits)
	}
	if mix.maxUnits[0] != 1 {
		t.Errorf("a single-segment SMS takes %d write units, want 1", mix.maxUnits[0])
	}
}

// BenchmarkEncodeRealisticMix reports the encoding's CPU per record on the
// mix and on each of its buckets, with the mean item size and write units.
func BenchmarkEncodeRealisticMix(b *testing.B) {
	r := mrand.New(mrand.NewPCG(1, 1))
	g := newBodyGen(1)
	created := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	var all [4][]*postflight.Message // mix, then by bucket
	for len(all[0]) < 4096 || len(all[3]) < 512 {
		m := realisticMessage(r, g, created)
		if len(all[0]) < 4096 {
			all[0] = append(all[0], m)
		}
		all[1+bucket(m)] = append(all[1+bucket(m)], m)
	}
	for i, name := range []string{"mix", "sms", "long-sms", "whatsapp"} {
		msgs := all[i]
		b.Run(name, func(b *testing.B) {
			var bytes, units, n int
			for b.Loop() {
				m := msgs[n%len(msgs)]
				e := encode(m, keydesign.IndexPK(m.AccountSID, 0), created.Add(time.Hour))
				bytes += e.size
				units += keydesign.WriteUnits(e.size)
				n++
			}
			b.ReportMetric(float64(bytes)/float64(n), "bytes/record")
			b.ReportMetric(float64(units)/float64(n), "WCU/record")
		})
	}
}
