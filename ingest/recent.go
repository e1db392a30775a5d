package ingest

import (
	"context"
	"sync"

	"github.com/postflight/postflight"
)

// Recently stored messages
//
// DynamoDB bills a failed conditional write like a successful one. A
// message's first final event is INSERTed; its later ones (read after
// delivered, a redelivered event, a reordered one) would be INSERTed too,
// fail with DuplicateItem, and then be UPDATEd: a write unit spent on a
// write known to fail, and a duplicate or an older event costs a failed
// UPDATE and a read on top. So each partition's claim remembers, in bounded
// memory, the messages this process stored recently and a lower bound of
// the sequence the store holds for each. A final event of a remembered
// message goes straight to the conditional UPDATE (the store's
// StoredWriter), and one whose sequence is not above the remembered bound
// is settled as Superseded without a request: the store's sequences only
// grow, so the bound stays true.
//
// The memory is a hint, never the authority: a message remembered but no
// longer stored (its item expired) fails the UPDATE's condition and is
// settled by the store's read-and-decide path, which writes it afresh.
//
// Bounds: at most Config.RecentPerPartition messages per partition (default
// 32,768), in two generations of half that each: when the current one is
// full the older is dropped. Measured, the two full generations take ~110
// bytes per message (a 33-byte key and the sequence in 48-byte slots, map
// groups rounded up to a power of two), so the default is ~3.5 MB per
// partition held. It should cover the time from a message's first stored
// state to its later events (a read receipt): 32,768 messages are a minute
// at ~550 messages/s per partition. The memory belongs
// to the partition's claim: a rebalance drops it with the claim, and the
// partition's next owner starts empty (its first event per message pays one
// failed INSERT, as before this memory existed).

// recentKey is a message's identity in 33 bytes: the SID's first letter (S
// or M), then the SID's and the account's 16 bytes (both are validated
// lowercase hex).
type recentKey [33]byte

func recentKeyOf(m *postflight.Message) (recentKey, bool) {
	var k recentKey
	if len(m.SID) != postflight.SIDLen || len(m.AccountSID) != postflight.SIDLen {
		return k, false
	}
	k[0] = m.SID[0]
	ok := unhex(k[1:17], m.SID[2:])
	return k, ok && unhex(k[17:], m.AccountSID[2:])
}

func unhex(dst []byte, s string) bool {
	var bad byte
	for i := range dst {
		hi, lo := hexVal[s[2*i]], hexVal[s[2*i+1]]
		bad |= hi | lo // no early exit: one branch, not 32
		dst[i] = hi<<4 | lo&0xf
	}
	return bad&0xf0 == 0
}

// hexVal is the value of a lowercase hex digit, 0xff for any other byte.
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	return t
}()

// recent is one partition's memory of recently stored messages. Its methods
// are safe for concurrent use (the claim's goroutine and the writers); mu is
// a leaf lock.
type recent struct {
	half int // entries per generation

	mu        sync.Mutex
	cur, prev map[recentKey]int64
}

// newRecent returns a memory of at most n messages, or nil (which remembers
// nothing) if n < 2.
func newRecent(n int) *recent {
	if n < 2 {
		return nil
	}
	return &recent{half: n / 2, cur: make(map[recentKey]int64)}
}

// stored returns the remembered lower bound of m's stored sequence.
func (r *recent) stored(m *postflight.Message) (int64, bool) {
	if r == nil {
		return 0, false
	}
	k, ok := recentKeyOf(m)
	if !ok {
		return 0, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq, ok := r.cur[k]; ok {
		return seq, true
	}
	seq, ok := r.prev[k]
	return seq, ok
}

// remember records that the store holds m with at least m's sequence.
func (r *recent) remember(m *postflight.Message) {
	if r == nil {
		return
	}
	k, ok := recentKeyOf(m)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// The older generation is not consulted: stored reads the current one
	// first, and a lower bound lower than need be is still a lower bound.
	seq := m.Sequence
	if old, ok := r.cur[k]; ok {
		r.cur[k] = max(old, seq)
		return
	}
	if len(r.cur) >= r.half {
		r.prev, r.cur = r.cur, make(map[recentKey]int64, r.half)
	}
	r.cur[k] = seq
}

// len returns how many messages are remembered (tests).
func (r *recent) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.cur)
	for k := range r.prev {
		if _, dup := r.cur[k]; !dup {
			n++
		}
	}
	return n
}

// StoredWriter is a Writer that can be told which messages the store is
// known to hold, and sends those straight to the conditional UPDATE.
// store.Store satisfies it.
type StoredWriter interface {
	Writer
	WriteBatchStored(ctx context.Context, msgs []*postflight.Message, stored []bool, res []postflight.WriteResult)
}

// memory is the recently-stored memory of the partition the item's records
// came from (all of a message's records come from one partition), or nil.
func (it *item) memory() *recent {
	if len(it.tickets) == 0 || it.tickets[0].t == nil {
		return nil // an item built without records (unit tests of later stages)
	}
	return it.tickets[0].t.recent
}

// settleKnown settles, without a request, the items of a batch whose
// sequence the store is known to hold already or exceed (Superseded), marks
// those it is known to hold (item.stored), and returns the rest.
func (s *Service) settleKnown(ctx context.Context, batch []*item) []*item {
	keep := batch[:0]
	for _, it := range batch {
		seq, ok := it.memory().stored(it.msg)
		switch {
		case ok && seq >= it.msg.Sequence:
			s.m.n.knownSuperseded.Add(int64(len(it.tickets)))
			s.finish(ctx, it, postflight.WriteResult{Outcome: postflight.Superseded})
		default:
			if it.stored = ok; ok {
				s.m.n.knownStored.Add(1)
			}
			keep = append(keep, it)
		}
	}
	return keep
}

// write hands a batch to the writer, telling a StoredWriter which messages
// the store is known to hold.
func (s *Service) write(ctx context.Context, batch []*item, msgs []*postflight.Message, res []postflight.WriteResult) {
	sw, ok := s.w.(StoredWriter)
	if !ok {
		s.w.WriteBatch(ctx, msgs, res)
		return
	}
	var buf [maxBatch]bool
	stored, any := buf[:len(batch)], false
	for i, it := range batch {
		stored[i] = it.stored
		any = any || it.stored
	}
	if !any {
		sw.WriteBatch(ctx, msgs, res)
		return
	}
	sw.WriteBatchStored(ctx, msgs, stored, res)
}
