// Package fakeddb is a DynamoDB endpoint that answers every request at once
// and stores nothing but the keys it was asked to INSERT. It is NOT a
// DynamoDB emulator: benchmarks point the real AWS SDK at it to measure the
// ingest pipeline's own CPU cost without DynamoDB Local's (tests use
// DynamoDB Local for everything else). It understands only the calls the
// write path makes.
package fakeddb

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Handler answers DynamoDB JSON-protocol requests. It keeps each key's
// sequence (and nothing else) so that the store's rounds are paid for as
// against DynamoDB: in a BatchExecuteStatement an INSERT of a key it holds
// fails with DuplicateItem, and an UPDATE (the store's event UPDATE: the key
// and the sequence bound are its last three parameters) fails with
// ConditionalCheckFailed unless it holds the key with a lower sequence;
// GetItem returns the key and its sequence. Tombstones, pins and revisions
// are not modelled: it is a benchmark endpoint, not a store. Asked for
// consumed capacity, it bills as DynamoDB does for items of at most 1 KB: a
// failed statement one write unit on the table, an applied one one on the
// table and one on the index (IndexName). Other operations get an empty
// success.
type Handler struct {
	// IndexName names the index in ConsumedCapacity; default "by-date".
	IndexName string

	Statements atomic.Int64 // statements answered
	Failed     atomic.Int64 // statements answered DuplicateItem or ConditionalCheckFailed

	mu   sync.Mutex
	seqs map[string]int64 // by key
}

type statement struct {
	Statement  string
	Parameters []struct{ S, N string }
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	switch op {
	case "BatchExecuteStatement":
		var req struct {
			Statements             []statement
			ReturnConsumedCapacity string
		}
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.Statements.Add(int64(len(req.Statements)))
		var b strings.Builder
		b.WriteString(`{"Responses":[`)
		base, index := 0, 0
		for i, st := range req.Statements {
			if i > 0 {
				b.WriteByte(',')
			}
			base++
			if code := h.apply(st); code != "" {
				h.Failed.Add(1)
				fmt.Fprintf(&b, `{"Error":{"Code":%q,"Message":"The conditional request failed"}}`, code)
				continue
			}
			index++
			b.WriteString(`{}`)
		}
		b.WriteString(`]`)
		if c := req.ReturnConsumedCapacity; c == "TOTAL" || c == "INDEXES" {
			table := tableOf(req.Statements)
			fmt.Fprintf(&b, `,"ConsumedCapacity":[{"TableName":%q,"CapacityUnits":%d`, table, base+index)
			if c == "INDEXES" {
				name := h.IndexName
				if name == "" {
					name = "by-date"
				}
				fmt.Fprintf(&b, `,"Table":{"CapacityUnits":%d},"GlobalSecondaryIndexes":{%q:{"CapacityUnits":%d}}`, base, name, index)
			}
			b.WriteString(`}]`)
		}
		b.WriteString(`}`)
		reply(w, b.String())
	case "Query":
		reply(w, `{"Items":[],"Count":0}`)
	case "GetItem":
		var req struct {
			Key struct{ P, S struct{ S string } } `json:"Key"`
		}
		_ = json.Unmarshal(body, &req)
		h.mu.Lock()
		seq, ok := h.seqs[req.Key.P.S+"\x00"+req.Key.S.S]
		h.mu.Unlock()
		if !ok {
			reply(w, `{}`)
			return
		}
		reply(w, fmt.Sprintf(`{"Item":{"p":{"S":%q},"s":{"S":%q},"q":{"N":"%d"},"v":{"N":"1"}}}`, req.Key.P.S, req.Key.S.S, seq))
	default:
		reply(w, `{}`)
	}
}

// apply applies a statement to the sequences held and returns the error
// code of a failed one, or "".
func (h *Handler) apply(st statement) string {
	ps := st.Parameters
	insert := strings.HasPrefix(st.Statement, "INSERT")
	if (insert && len(ps) < 5) || (!insert && len(ps) < 3) {
		return ""
	}
	// INSERT: p, s, then the values (g, t, q, …); UPDATE: …, p, s, q bound.
	k, q := ps[0].S+"\x00"+ps[1].S, ps[4].N
	if !insert {
		k, q = ps[len(ps)-3].S+"\x00"+ps[len(ps)-2].S, ps[len(ps)-1].N
	}
	seq, _ := strconv.ParseInt(q, 10, 64)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seqs == nil {
		h.seqs = map[string]int64{}
	}
	old, ok := h.seqs[k]
	switch {
	case insert && ok:
		return "DuplicateItem"
	case !insert && (!ok || old >= seq):
		return "ConditionalCheckFailed"
	}
	h.seqs[k] = seq
	return ""
}

// tableOf returns the table the statements name ("INSERT INTO "t" …",
// "UPDATE "t" …").
func tableOf(sts []statement) string {
	if len(sts) == 0 {
		return ""
	}
	s := sts[0].Statement
	i := strings.IndexByte(s, '"')
	if i < 0 {
		return ""
	}
	j := strings.IndexByte(s[i+1:], '"')
	if j < 0 {
		return ""
	}
	return s[i+1 : i+1+j]
}

// reply writes body with the CRC32 header DynamoDB sends and the SDK checks.
func reply(w http.ResponseWriter, body string) {
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10))
	_, _ = io.WriteString(w, body)
}
