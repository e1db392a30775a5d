package store

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// statements holds the PartiQL texts of event writes. Every event write sets
// the same attributes (valueAttrs), so there are three texts per table,
// built once.
type statements struct {
	insert string // fails with DuplicateItem if the item exists
	update string // condition: older sequence, no tombstone, nothing pinned
	pinned string // condition: older sequence, no tombstone, same revision
}

type stmtKind uint8

const (
	kindInsert stmtKind = iota
	kindUpdate
	kindPinned
)

func (s *statements) init(table string) {
	t := `"` + strings.ReplaceAll(table, `"`, `""`) + `"`
	var b strings.Builder
	b.WriteString("INSERT INTO " + t + " VALUE {'p':?,'s':?")
	for _, a := range valueAttrs {
		b.WriteString(",'" + a + "':?")
	}
	b.WriteString(",'" + aRev + "':1}")
	s.insert = b.String()

	b.Reset()
	b.WriteString("UPDATE " + t)
	for _, a := range valueAttrs {
		b.WriteString(` SET "` + a + `"=?`)
	}
	b.WriteString(` SET "` + aRev + `"="` + aRev + `"+1 WHERE "p"=? AND "s"=? AND "` + aSeq + `"<? AND "` + aDeleted + `" IS MISSING`)
	common := b.String()
	s.update = common + ` AND "` + aRedacted + `" IS MISSING AND "` + aPriceFixed + `" IS MISSING`
	s.pinned = common + ` AND "` + aRev + `"=?`
}

func (s *statements) text(k stmtKind) string {
	switch k {
	case kindInsert:
		return s.insert
	case kindUpdate:
		return s.update
	}
	return s.pinned
}

// params returns the parameters of statement k for e, in statement order.
// rev is the expected revision of a kindPinned statement.
func (e *encoded) params(k stmtKind, rev int64) []types.AttributeValue {
	ps := make([]types.AttributeValue, 0, 2+len(e.values)+4)
	if k == kindInsert {
		ps = append(ps, e.key[:]...)
		return append(ps, e.values[:]...)
	}
	ps = append(ps, e.values[:]...)
	ps = append(ps, e.key[0], e.key[1], e.values[2]) // WHERE p, s, q <
	if k == kindPinned {
		ps = append(ps, num(rev))
	}
	return ps
}
