package store

import (
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// statements builds and caches the PartiQL texts of event writes. A text
// depends only on which optional fields are present (and, for the slow path,
// which fields are pinned), so there are a few dozen in practice and each is
// built once.
type statements struct {
	table string
	mu    sync.RWMutex
	cache map[stmtKey]string
}

type stmtKind uint8

const (
	kindInsert stmtKind = iota
	kindUpdate          // condition: older sequence, no tombstone, nothing pinned
	kindPinned          // condition: older sequence, no tombstone, same revision; pinned fields untouched
)

type stmtKey struct {
	kind       stmtKind
	mask       uint16
	redacted   bool
	priceFixed bool
}

func (s *statements) init(table string) {
	s.table = `"` + strings.ReplaceAll(table, `"`, `""`) + `"`
	s.cache = map[stmtKey]string{}
}

func (s *statements) get(k stmtKey) string {
	s.mu.RLock()
	t, ok := s.cache[k]
	s.mu.RUnlock()
	if ok {
		return t
	}
	t = s.build(k)
	s.mu.Lock()
	s.cache[k] = t
	s.mu.Unlock()
	return t
}

func (s *statements) build(k stmtKey) string {
	var b strings.Builder
	if k.kind == kindInsert {
		b.WriteString("INSERT INTO " + s.table + " VALUE {'p':?,'s':?")
		for _, a := range requiredAttrs {
			b.WriteString(",'" + a + "':?")
		}
		for f := range numFields {
			if k.mask&(1<<f) != 0 {
				b.WriteString(",'" + fieldAttr[f] + "':?")
			}
		}
		for _, a := range extraAttrs {
			b.WriteString(",'" + a + "':?")
		}
		b.WriteString(",'" + aRev + "':1}")
		return b.String()
	}
	b.WriteString("UPDATE " + s.table)
	for _, a := range requiredAttrs {
		b.WriteString(` SET "` + a + `"=?`)
	}
	for f := range numFields {
		switch {
		case f.pinnedBy(k.redacted, k.priceFixed):
		case k.mask&(1<<f) != 0:
			b.WriteString(` SET "` + fieldAttr[f] + `"=?`)
		default:
			b.WriteString(` REMOVE "` + fieldAttr[f] + `"`)
		}
	}
	for _, a := range extraAttrs {
		b.WriteString(` SET "` + a + `"=?`)
	}
	b.WriteString(` SET "` + aRev + `"="` + aRev + `"+1 WHERE "p"=? AND "s"=? AND "` + aSeq + `"<? AND "` + aDeleted + `" IS MISSING`)
	if k.kind == kindUpdate {
		b.WriteString(` AND "` + aRedacted + `" IS MISSING AND "` + aPriceFixed + `" IS MISSING`)
	} else {
		b.WriteString(` AND "` + aRev + `"=?`)
	}
	return b.String()
}

// params returns the parameters of statement k for e, in statement order.
// rev is the expected revision of a kindPinned statement.
func (e *encoded) params(k stmtKey, rev int64) []types.AttributeValue {
	ps := make([]types.AttributeValue, 0, 2+len(e.required)+int(numFields)+len(e.extra)+3)
	if k.kind == kindInsert {
		ps = append(ps, e.key[:]...)
	}
	ps = append(ps, e.required[:]...)
	for f := range numFields {
		if e.mask&(1<<f) != 0 && (k.kind == kindInsert || !f.pinnedBy(k.redacted, k.priceFixed)) {
			ps = append(ps, e.opt[f])
		}
	}
	ps = append(ps, e.extra[:]...)
	if k.kind != kindInsert {
		ps = append(ps, e.key[0], e.key[1], e.required[2]) // WHERE p, s, q <
		if k.kind == kindPinned {
			ps = append(ps, num(rev))
		}
	}
	return ps
}
