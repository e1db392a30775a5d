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

// Handler answers DynamoDB JSON-protocol requests. Like DynamoDB, an INSERT
// statement of a BatchExecuteStatement fails with DuplicateItem when its key
// (the first two parameters, p and s) was inserted before, so the UPDATE
// round the store then sends is paid for as it is against DynamoDB; every
// other statement succeeds. Conditions are not evaluated: an UPDATE always
// applies. Asked for consumed capacity, it bills as DynamoDB does for items
// of at most 1 KB: a failed INSERT one write unit on the table, an applied
// statement one on the table and one on the index (IndexName). Other
// operations get an empty success.
type Handler struct {
	// IndexName names the index in ConsumedCapacity; default "by-date".
	IndexName string

	Statements atomic.Int64 // statements answered
	Duplicates atomic.Int64 // INSERTs answered DuplicateItem

	mu   sync.Mutex
	seen map[string]struct{}
}

type statement struct {
	Statement  string
	Parameters []struct{ S string }
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
			if h.duplicate(st) {
				h.Duplicates.Add(1)
				b.WriteString(`{"Error":{"Code":"DuplicateItem","Message":"Duplicate primary key exists in table"}}`)
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
	default:
		reply(w, `{}`)
	}
}

// duplicate reports whether st is an INSERT of a key inserted before, and
// remembers the key.
func (h *Handler) duplicate(st statement) bool {
	if !strings.HasPrefix(st.Statement, "INSERT") || len(st.Parameters) < 2 {
		return false
	}
	k := st.Parameters[0].S + "\x00" + st.Parameters[1].S
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen == nil {
		h.seen = map[string]struct{}{}
	}
	if _, ok := h.seen[k]; ok {
		return true
	}
	h.seen[k] = struct{}{}
	return false
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
