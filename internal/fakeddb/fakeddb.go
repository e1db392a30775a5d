// Package fakeddb is a DynamoDB endpoint that answers every request at once
// and writes nothing. It is NOT a DynamoDB emulator: benchmarks point the
// real AWS SDK at it to measure the ingest pipeline's own CPU cost without
// DynamoDB Local's (tests use DynamoDB Local for everything else). It
// understands only the calls the write path makes.
package fakeddb

import (
	"encoding/json"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
)

// Handler answers DynamoDB JSON-protocol requests: every statement of a
// BatchExecuteStatement succeeds; other operations get an empty success.
type Handler struct {
	Statements atomic.Int64 // statements answered
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
		var req struct{ Statements []json.RawMessage }
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.Statements.Add(int64(len(req.Statements)))
		var b strings.Builder
		b.WriteString(`{"Responses":[`)
		for i := range req.Statements {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{}`)
		}
		b.WriteString(`]}`)
		reply(w, b.String())
	case "Query":
		reply(w, `{"Items":[],"Count":0}`)
	default:
		reply(w, `{}`)
	}
}

// reply writes body with the CRC32 header DynamoDB sends and the SDK checks.
func reply(w http.ResponseWriter, body string) {
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10))
	_, _ = io.WriteString(w, body)
}
