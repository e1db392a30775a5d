package keydesign

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Attribute names of the key attributes. Short names keep items small:
// DynamoDB charges names as well as values.
const (
	AttrPK      = "p" // base partition key: message SID
	AttrSK      = "s" // base sort key: account SID
	AttrIndexPK = "g" // index partition key: account SID # shard
	AttrIndexSK = "t" // index sort key: date_created millis (13 digits) + message SID
	IndexName   = "by-date"
)

// MaxShards bounds an account's shard count, and with it a list request's
// fan-out. At 500 units/s per shard it carries 128k write units/s.
const MaxShards = 256

// sidLen is the length of a message SID (mirrors postflight.SIDLen; keydesign
// imports nothing of Postflight's so that it stays a leaf).
const sidLen = 34

// msDigits is the width of the millisecond prefix of an index sort key: it
// covers every time from 1970 to 2286, and the domain rejects dates before 2000.
const msDigits = 13

// Shard returns the index shard of a message among n: FNV-1a of the SID mod
// n. It depends only on the SID, so a reader can find it again.
func Shard(messageSID string, n int) int {
	if n <= 1 {
		return 0
	}
	// FNV-1a 64 inline: the same value as hash/fnv, without its allocations
	// on the write path.
	h := uint64(fnvOffset64)
	for i := 0; i < len(messageSID); i++ {
		h ^= uint64(messageSID[i])
		h *= fnvPrime64
	}
	return int(h % uint64(n))
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// IndexPK returns the index partition key of an account's shard.
func IndexPK(accountSID string, shard int) string {
	var b strings.Builder // one allocation: the string itself
	b.Grow(len(accountSID) + 4)
	b.WriteString(accountSID)
	b.WriteByte('#')
	var d [20]byte
	b.Write(strconv.AppendInt(d[:0], int64(shard), 10))
	return b.String()
}

// IndexSK returns the index sort key of a message: its date_created in
// milliseconds, zero-padded to 13 digits, followed by its SID.
func IndexSK(created time.Time, messageSID string) string {
	var b strings.Builder // one allocation: the string itself
	b.Grow(msDigits + len(messageSID))
	var d [msDigits]byte
	b.Write(appendMillis(d[:0], created.UnixMilli()))
	b.WriteString(messageSID)
	return b.String()
}

// IndexSKBound returns the sort-key prefix of a time: every key of a message
// created at or after t sorts at or after it, every key created before sorts
// before it. So [start, end) is t >= bound(start) AND t < bound(end).
func IndexSKBound(t time.Time) string {
	return string(appendMillis(make([]byte, 0, msDigits), t.UnixMilli()))
}

func appendMillis(b []byte, ms int64) []byte {
	if ms < 0 {
		ms = 0
	}
	var d [msDigits]byte
	for i := msDigits - 1; i >= 0; i-- {
		d[i] = byte('0' + ms%10)
		ms /= 10
	}
	return append(b, d[:]...)
}

// ErrBadIndexSK is returned for a malformed index sort key.
var ErrBadIndexSK = errors.New("malformed index sort key")

// ParseIndexSK splits an index sort key into date_created and message SID.
func ParseIndexSK(sk string) (time.Time, string, error) {
	if len(sk) != msDigits+sidLen {
		return time.Time{}, "", ErrBadIndexSK
	}
	var ms int64
	for i := 0; i < msDigits; i++ {
		c := sk[i]
		if c < '0' || c > '9' {
			return time.Time{}, "", ErrBadIndexSK
		}
		ms = ms*10 + int64(c-'0')
	}
	return time.UnixMilli(ms).UTC(), sk[msDigits:], nil
}

// Before returns the largest string that sorts strictly before bound among
// index sort keys: every key k with k < bound satisfies k <= Before(bound),
// and every key k >= bound sorts after it. bound may be a full key or a
// millisecond prefix (IndexSKBound). DynamoDB key conditions allow one
// comparison on the sort key, so a half-open range [lo, hi) is queried as
// BETWEEN lo AND Before(hi). The trick: decrement the last byte and append
// '~', which sorts after every character a key contains.
func Before(bound string) string {
	if bound == "" {
		return ""
	}
	b := []byte(bound)
	b[len(b)-1]--
	return string(append(b, '~'))
}
