package store

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Request bodies written by the store
//
// The SDK serializes a BatchExecuteStatement from []types.AttributeValue:
// ten interface values per statement, each a heap object, then walked by a
// schema-driven serializer. On the ingest path that cost ~1.5 µs per record
// (a sixth of the pipeline's budget) to produce a few hundred bytes of JSON
// whose shape never changes. So execute writes the request body straight
// from encoded values (appendStatement) and sends it (sender.go).
// TestBatchBodyMatchesSDK checks that the SDK would serialize the same
// batch alike, and every store test on DynamoDB Local writes through here.

// pval is a statement parameter: S, N or B.
type pval struct {
	t byte // 'S', 'N' or 'B'
	s string
	n int64
	b []byte
}

// batchBodyEnd closes a BatchExecuteStatement body after its statements,
// asking for the write units it consumes, by table and index (capacity.go).
const batchBodyEnd = `],"ReturnConsumedCapacity":"INDEXES"}`

// maxParams is the most parameters an event write statement takes.
const maxParams = len(valueAttrs) + 4

// values returns the parameters of statement k for e, in statement order.
// rev is the expected revision of a kindPinned statement.
func (e *encoded) values(k stmtKind, rev int64, buf *[maxParams]pval) []pval {
	p, s, q := pval{t: 'S', s: e.sid}, pval{t: 'S', s: e.account}, pval{t: 'N', n: e.seq}
	vs := buf[:0]
	if k == kindInsert {
		vs = append(vs, p, s)
	}
	vs = append(vs, // valueAttrs
		pval{t: 'S', s: e.indexPK}, pval{t: 'S', s: e.indexSK}, q, pval{t: 'N', n: e.status},
		pval{t: 'S', s: e.from}, pval{t: 'S', s: e.to}, pval{t: 'N', n: e.expires}, pval{t: 'B', b: e.d})
	if k == kindInsert {
		return vs
	}
	vs = append(vs, p, s, q) // WHERE p, s, q <
	if k == kindPinned {
		vs = append(vs, pval{t: 'N', n: rev}) // AND v =
	}
	return vs
}

// params returns the parameters of statement k as the SDK takes them, for
// single statements (resolve).
func (e *encoded) params(k stmtKind, rev int64) []types.AttributeValue {
	var buf [maxParams]pval
	vs := e.values(k, rev, &buf)
	ps := make([]types.AttributeValue, len(vs))
	for i, v := range vs {
		switch v.t {
		case 'S':
			ps[i] = str(v.s)
		case 'N':
			ps[i] = num(v.n)
		default:
			ps[i] = &types.AttributeValueMemberB{Value: v.b}
		}
	}
	return ps
}

// appendStatement appends one BatchStatementRequest (statement k for e) in
// DynamoDB's JSON protocol.
func (st *statements) appendStatement(b []byte, k stmtKind, e *encoded) []byte {
	b = append(b, st.jsonPrefix[k]...)
	var buf [maxParams]pval
	for i, v := range e.values(k, 0, &buf) {
		if i > 0 {
			b = append(b, ',')
		}
		switch v.t {
		case 'S':
			b = appendJSONString(append(b, `{"S":`...), v.s)
		case 'N':
			b = append(strconv.AppendInt(append(b, `{"N":"`...), v.n, 10), '"')
		default:
			b = base64.StdEncoding.AppendEncode(append(b, `{"B":"`...), v.b)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// batchBodySize estimates the JSON size of statement k for e: the prefix,
// the values (e.size, with d in base64), the keys again for an UPDATE's
// WHERE, and up to 16 bytes of {"N":""}, digits and commas per parameter.
// Escapes in from and to can exceed it; the buffer then grows.
func (st *statements) batchBodySize(k stmtKind, e *encoded) int {
	return len(st.jsonPrefix[k]) + base64.StdEncoding.EncodedLen(len(e.d)) - len(e.d) + e.size +
		len(e.sid) + len(e.account) + 16*maxParams + 2
}

// appendJSONString appends s as a JSON string. Like encoding/json it
// escapes quotes, backslashes and control characters and turns invalid
// UTF-8 into U+FFFD; unlike it, it leaves <, > and & alone (DynamoDB is
// no HTML page). FuzzAppendJSONString holds it to encoding/json's reading.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(append(b, s[start:i]...), `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	return append(append(b, s[start:]...), '"')
}
